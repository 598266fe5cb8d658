#include "model/decoder.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>

#include "model/decode_padding.h"
#include "model/gguf_model.h"
#include "model/safetensors.h"
#include "model/weight_loader.h"
#include "util/check.h"

namespace mlxs {
namespace {

std::string layer_prefix(int i) {
  return "model.layers." + std::to_string(i) + ".";
}

bool ignorable(const std::string& name) {
  return name.size() >= 20 && name.compare(name.size() - 20, 20, "rotary_emb.inv_freq") == 0;
}

}  // namespace

// --- loading ------------------------------------------------------------------------------

Result<std::unique_ptr<Model>> Model::load(const std::string& dir, Backend& backend,
                                           const ModelFileAccess& access) {
  std::unique_ptr<Model> m(new Model(backend));
  m->dir_ = dir;
  std::optional<WeightStore> store;
  if (const std::string gguf = find_gguf_model(dir); !gguf.empty()) {
    MLXS_ASSIGN_OR_RETURN(std::shared_ptr<const GgufFile> file, GgufFile::open(gguf, access));
    MLXS_ASSIGN_OR_RETURN(m->config_, gguf_model_arch(*file));
    MLXS_ASSIGN_OR_RETURN(store, gguf_weight_store(file, m->config_));
  } else {
    MLXS_ASSIGN_OR_RETURN(m->config_, ModelArch::load(dir, access));
    MLXS_ASSIGN_OR_RETURN(store, WeightStore::open_dir(dir, access));
  }
  m->rope_ = m->config_.rope_params();
  m->pad_decode_ = backend.supports_graphs();
  MLXS_RETURN_IF_ERROR(m->load_weights(*store, dir));
  return m;
}

Model::~Model() {
  for (auto& t : scratch_owned_) backend_.free(t);
  for (auto& t : owned_) backend_.free(t);
}

Status Model::load_weights(WeightStore& store, const std::string& dir) {
  const ModelArch& c = config_;
  WeightLoader w(store, backend_, c.quant, owned_);
  const int64_t D = c.hidden_size, I = c.intermediate_size, Dh = c.head_dim;
  const int64_t q_cols = int64_t(c.num_heads) * Dh, kv_cols = int64_t(c.num_kv_heads) * Dh;
  MLXS_ASSIGN_OR_RETURN(embed_, w.matrix({"model.embed_tokens.weight"}, {c.vocab_size}, D));
  MLXS_ASSIGN_OR_RETURN(final_norm_, w.vector({"model.norm.weight"}, {D}));
  if (c.tie_word_embeddings) {
    lm_head_ = embed_;
    w.skip("lm_head.weight");
  } else {
    MLXS_ASSIGN_OR_RETURN(lm_head_, w.matrix({"lm_head.weight"}, {c.vocab_size}, D));
  }
  for (int i = 0; i < c.num_layers; ++i) {
    std::string p = layer_prefix(i), a = p + "self_attn.", m = p + "mlp.";
    LayerWeights L;
    MLXS_ASSIGN_OR_RETURN(L.input_norm, w.vector({p + "input_layernorm.weight"}, {D}));
    MLXS_ASSIGN_OR_RETURN(L.post_norm, w.vector({p + "post_attention_layernorm.weight"}, {D}));
    MLXS_ASSIGN_OR_RETURN(L.qkv,
                          w.matrix({a + "q_proj.weight", a + "k_proj.weight", a + "v_proj.weight"},
                                   {q_cols, kv_cols, kv_cols}, D));
    if (c.qkv_bias) {
      MLXS_ASSIGN_OR_RETURN(L.qkv_bias,
                            w.vector({a + "q_proj.bias", a + "k_proj.bias", a + "v_proj.bias"},
                                     {q_cols, kv_cols, kv_cols}));
    }
    if (c.qk_norm) {
      MLXS_ASSIGN_OR_RETURN(L.q_norm, w.vector({a + "q_norm.weight"}, {Dh}));
      MLXS_ASSIGN_OR_RETURN(L.k_norm, w.vector({a + "k_norm.weight"}, {Dh}));
    }
    MLXS_ASSIGN_OR_RETURN(L.o, w.matrix({a + "o_proj.weight"}, {D}, q_cols));
    if (c.o_bias) {
      MLXS_ASSIGN_OR_RETURN(L.o_bias, w.vector({a + "o_proj.bias"}, {D}));
    }
    MLXS_ASSIGN_OR_RETURN(L.gate_up,
                          w.matrix({m + "gate_proj.weight", m + "up_proj.weight"}, {I, I}, D));
    MLXS_ASSIGN_OR_RETURN(L.down, w.matrix({m + "down_proj.weight"}, {D}, I));
    if (c.mlp_bias) {
      MLXS_ASSIGN_OR_RETURN(L.gate_up_bias,
                            w.vector({m + "gate_proj.bias", m + "up_proj.bias"}, {I, I}));
      MLXS_ASSIGN_OR_RETURN(L.down_bias, w.vector({m + "down_proj.bias"}, {D}));
    }
    backend_.prepare_gate_up(L.gate_up, L.gate_up_bias);
    layers_.push_back(L);
  }
  std::vector<std::string> extra;
  for (const auto& name : store.untaken()) {
    if (!ignorable(name)) extra.push_back(name);
  }
  if (!extra.empty()) {
    std::string list;
    for (size_t i = 0; i < extra.size() && i < 5; ++i) list += (i ? ", '" : "'") + extra[i] + "'";
    if (extra.size() > 5) list += ", ...";
    return error(ErrorCode::kModelLoadError, dir + ": " + std::to_string(extra.size()) +
                                                 " unexpected tensor(s) for " + c.architecture +
                                                 ": " + list);
  }
  return {};
}

// --- forward ------------------------------------------------------------------------------

void Model::ensure_scratch(int64_t T, int64_t R) {
  if (T <= s_.tokens && R <= s_.rows) return;
  for (auto& t : scratch_owned_) backend_.free(t);
  scratch_owned_.clear();
  T = std::max(T, s_.tokens);
  R = std::max(R, s_.rows);
  const ModelArch& c = config_;
  const int64_t q = int64_t(c.num_heads) * c.head_dim, kv = int64_t(c.num_kv_heads) * c.head_dim;
  auto make = [&](DType dt, int64_t r, int64_t cols) {
    Tensor t = backend_.alloc(dt, r, cols);
    MLXS_CHECK(t.data != nullptr);
    scratch_owned_.push_back(t);
    return t;
  };
  s_.tokens = T;
  s_.rows = R;
  s_.ids = make(DType::kI32, 1, T);
  s_.positions = make(DType::kI32, 1, T);
  s_.logit_rows = make(DType::kI32, 1, R);
  s_.next = make(DType::kI32, R, 1);
  s_.sampled = make(DType::kI32, 2, R);
  s_.masks = make(DType::kI32, R, (int64_t(c.vocab_size) + 31) / 32);
  s_.residual = make(DType::kF32, T, c.hidden_size);
  s_.normed = make(DType::kF32, T, c.hidden_size);
  s_.qkv = make(DType::kF32, T, q + 2 * kv);
  s_.q = make(DType::kF32, T, q);
  s_.k = make(DType::kF32, T, kv);
  s_.v = make(DType::kF32, T, kv);
  s_.attn = make(DType::kF32, T, q);
  s_.proj = make(DType::kF32, T, c.hidden_size);
  s_.gate_up = make(DType::kF32, T, 2 * int64_t(c.intermediate_size));
  s_.act = make(DType::kF32, T, c.intermediate_size);
  s_.gathered = make(DType::kF32, R, c.hidden_size);
  s_.logits = make(DType::kF32, R, c.vocab_size);
}

Status Model::run_step(std::span<const int32_t> tokens, const AttentionBatch& batch,
                       std::span<const int32_t> logit_rows, KvCache& cache) {
  const ModelArch& c = config_;
  const int64_t T = int64_t(tokens.size()), R = int64_t(logit_rows.size());
  if (T == 0 || int64_t(batch.positions.size()) != T || int64_t(batch.slot_mapping.size()) != T) {
    return error(ErrorCode::kInternalError, "forward: batch metadata does not match the tokens");
  }
  bool placeholders = false;
  for (int32_t id : tokens) {
    if (id < 0 && int64_t(placeholder_row(id)) < last_ids_.rows) {
      placeholders = true;  // a token the last begun step samples (begin_step)
    } else if (id < 0 || id >= c.vocab_size) {
      return error(ErrorCode::kInvalidParams, "token id " + std::to_string(id) +
                                                  " is outside the vocabulary [0, " +
                                                  std::to_string(c.vocab_size) + ")");
    }
  }
  if (pad_decode_ && T == batch.num_seqs && T <= kMaxGraphTokens && R > 0 && R <= T &&
      (decode_bucket(T) != T || R != T)) {
    PaddedStep p =
        pad_decode_step(tokens, batch, logit_rows, decode_bucket(T), cache.scratch_block());
    return run_step(p.tokens, p.batch, p.logit_rows, cache);  // now T == R == bucket
  }
  std::vector<int32_t> resolved;
  if (placeholders && (T > s_.tokens || R > s_.rows)) {
    // Growing the step buffers frees the ids the placeholders name: read them first (this
    // waits for the step in flight; warm_up() sizes the buffers so that serving never does).
    std::vector<int32_t> prev(size_t(last_ids_.rows));
    backend_.download(last_ids_.data, prev.size() * sizeof(int32_t), prev.data());
    resolved.assign(tokens.begin(), tokens.end());
    for (int32_t& id : resolved) {
      if (id < 0) id = prev[placeholder_row(id)];
    }
    tokens = resolved;
    placeholders = false;
  }
  ensure_scratch(T, std::max<int64_t>(R, 1));
  backend_.upload(tokens.data(), size_t(T) * 4, s_.ids.data);
  if (placeholders) {
    Tensor ids{s_.ids.data, DType::kI32, T, 1};
    backend_.resolve_placeholders(ids, last_ids_);
  }
  backend_.upload(batch.positions.data(), size_t(T) * 4, s_.positions.data);
  backend_.upload(logit_rows.data(), size_t(R) * 4, s_.logit_rows.data);
  backend_.begin_step(batch);
  // A decode step's launches depend only on (T, R), the cache and this model's buffers; the
  // backend drops its recordings whenever a tensor is freed, so pointers cannot go stale.
  const bool graphable = T == batch.num_seqs && T <= kMaxGraphTokens && R > 0;
  if (!graphable) {
    run_ops(T, R, batch, cache);
  } else {
    uint64_t key = uint64_t(T) | uint64_t(R) << 20 | uint64_t(batch.block_size) << 40;
    key ^= reinterpret_cast<uintptr_t>(&cache) * 0x9e3779b97f4a7c15ull;
    key ^= reinterpret_cast<uintptr_t>(this) * 0xc2b2ae3d27d4eb4full;
    if (!backend_.replay_graph(key)) {
      backend_.begin_graph(key);
      run_ops(T, R, batch, cache);
      if (!backend_.end_graph(key)) run_ops(T, R, batch, cache);
    }
  }
  return {};
}

void Model::run_ops(int64_t T, int64_t R, const AttentionBatch& batch, KvCache& cache) {
  const ModelArch& c = config_;
  auto rows = [](Tensor t, int64_t n) { return t.slice_rows(0, n); };
  Tensor ids{s_.ids.data, DType::kI32, T, 1}, pos{s_.positions.data, DType::kI32, T, 1};
  Tensor sel{s_.logit_rows.data, DType::kI32, R, 1};
  Tensor residual = rows(s_.residual, T), normed = rows(s_.normed, T), qkv = rows(s_.qkv, T);
  Tensor q = rows(s_.q, T), k = rows(s_.k, T), v = rows(s_.v, T), attn = rows(s_.attn, T);
  Tensor proj = rows(s_.proj, T), gate_up = rows(s_.gate_up, T), act = rows(s_.act, T);
  const int H = c.num_heads, Hk = c.num_kv_heads, Dh = c.head_dim;
  const float scale = 1.0f / std::sqrt(float(Dh));

  backend_.embedding(ids, embed_, residual);
  backend_.rms_norm(residual, layers_[0].input_norm, c.rms_norm_eps, normed);
  for (int l = 0; l < c.num_layers; ++l) {
    const LayerWeights& L = layers_[size_t(l)];
    backend_.linear(normed, L.qkv, L.qkv_bias, qkv);
    backend_.qkv_prepare(qkv, q, k, v, L.q_norm, L.k_norm, c.rms_norm_eps, pos, rope_, H, Hk, Dh,
                         cache.layer(l));
    backend_.attention(q, k, v, cache.layer(l), batch, H, Hk, Dh, scale, attn);
    backend_.linear(attn, L.o, L.o_bias, proj);
    backend_.add_rms_norm(residual, proj, L.post_norm, c.rms_norm_eps, normed);
    backend_.linear_swiglu(normed, L.gate_up, L.gate_up_bias, gate_up, act);
    backend_.linear(act, L.down, L.down_bias, proj);
    const Tensor& next_norm =
        l + 1 < c.num_layers ? layers_[size_t(l) + 1].input_norm : final_norm_;
    backend_.add_rms_norm(residual, proj, next_norm, c.rms_norm_eps, normed);
  }
  if (R == 0) return;
  Tensor gathered = rows(s_.gathered, R), out = rows(s_.logits, R);
  backend_.gather_rows(normed, sel, gathered);
  backend_.linear(gathered, lm_head_, Tensor{}, out);
}

static_assert(std::end(kDecodeBuckets)[-1] == Model::kMaxGraphTokens);

Status Model::reserve_step_buffers(KvCache& cache, int max_batch, int max_blocks_per_seq,
                                   int64_t max_step_tokens) {
  // With padding, decode steps have a bucket's rows (at least max_batch up to kMaxGraphTokens).
  const int64_t decode_rows =
      pad_decode_ ? std::max<int64_t>(max_batch, decode_buckets_up_to(max_batch).back())
                  : max_batch;
  const int bs = cache.block_size(), window = config_.sliding_window;
  // Model buffers first: a later growth frees tensors, which drops every graph.
  ensure_scratch(std::max(max_step_tokens, decode_rows), decode_rows);
  // One eager prefill-shaped step (not one token per sequence: no graph) grows the backend's
  // step buffers (metadata, activation casts, attention splits) to the largest step.
  if (max_step_tokens > 1) {
    std::vector<int32_t> ids, rows;
    AttentionBatch b = scratch_prefill_batch(max_step_tokens, bs, window, cache.scratch_block(),
                                             max_blocks_per_seq, &ids, &rows);
    MLXS_RETURN_IF_ERROR(run_step(ids, b, rows, cache));
  }
  // And the largest decode step, once (a graph key's first run is eager).
  AttentionBatch empty;
  empty.block_size = bs;
  empty.sliding_window = window;
  empty.query_start = {0};
  PaddedStep p =
      pad_decode_step({}, empty, {}, decode_rows, cache.scratch_block(), max_blocks_per_seq);
  MLXS_RETURN_IF_ERROR(run_step(p.tokens, p.batch, p.logit_rows, cache));
  backend_.synchronize();
  return backend_.take_error();
}

Status Model::warm_up(KvCache& cache, int max_batch, int max_blocks_per_seq,
                      int64_t max_step_tokens, int* num_graphs) {
  *num_graphs = 0;
  if (!pad_decode_) return {};
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<int64_t> buckets = decode_buckets_up_to(max_batch);
  const int bs = cache.block_size(), window = config_.sliding_window;
  // Every buffer at the size of the largest steps first, so serving prefill does not drop the
  // graphs.
  MLXS_RETURN_IF_ERROR(reserve_step_buffers(cache, max_batch, max_blocks_per_seq, max_step_tokens));
  // Largest bucket first, so smaller ones never grow a buffer; each runs twice (the backend
  // runs a key eagerly once, then records it). A pass that still lost graphs to a buffer growth
  // is repeated, now with every buffer at its final size.
  AttentionBatch empty;
  empty.block_size = bs;
  empty.sliding_window = window;
  empty.query_start = {0};
  for (int pass = 0; pass < 3 && backend_.num_graphs() < int(buckets.size()); ++pass) {
    for (auto it = buckets.rbegin(); it != buckets.rend(); ++it) {
      PaddedStep p = pad_decode_step({}, empty, {}, *it, cache.scratch_block(), max_blocks_per_seq);
      for (int rep = 0; rep < 2; ++rep) {
        MLXS_RETURN_IF_ERROR(run_step(p.tokens, p.batch, p.logit_rows, cache));
      }
    }
  }
  backend_.synchronize();
  MLXS_RETURN_IF_ERROR(backend_.take_error());
  *num_graphs = backend_.num_graphs();
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "model %s: %d decode graphs for batch sizes 1..%lld recorded in %.0f ms\n",
               dir_.c_str(), *num_graphs, static_cast<long long>(buckets.back()), ms);
  return {};
}

Status Model::begin_step(StepKind kind, std::span<const int32_t> tokens,
                         const AttentionBatch& batch, std::span<const int32_t> logit_rows,
                         KvCache& cache, const SampleBatch* sampling, bool masked) {
  const int64_t R = int64_t(logit_rows.size());
  if (in_flight_.size() >= kMaxStepsInFlight) {
    return error(ErrorCode::kInternalError, "begin_step: two steps are already in flight");
  }
  if (!in_flight_.empty() &&
      (in_flight_.back().kind == StepKind::kLogits || in_flight_.back().awaiting_draw)) {
    // Its logits stay in the step buffers until end_step() copies them out or draw_masked()
    // draws from them.
    return error(ErrorCode::kInternalError,
                 "begin_step: a logits step must end, and a masked one be drawn, first");
  }
  if (masked && kind == StepKind::kLogits) {
    return error(ErrorCode::kInternalError, "begin_step: a logits step takes no masks");
  }
  if (kind == StepKind::kSampled && (!sampling || sampling->num_rows() != R)) {
    return error(ErrorCode::kInternalError,
                 "begin_step: " + std::to_string(sampling ? sampling->num_rows() : 0) +
                     " sampling rows for " + std::to_string(R) + " logit rows");
  }
  MLXS_RETURN_IF_ERROR(run_step(tokens, batch, logit_rows, cache));
  InFlight& f = in_flight_.emplace_back();
  f.kind = kind;
  f.rows = R;
  last_ids_ = {};
  if (R == 0 || kind == StepKind::kLogits) {
    // R * V floats: too large for an asynchronous landing buffer, copied at end_step().
    return {};
  }
  if (masked) {
    f.awaiting_draw = true;
    return {};
  }
  draw(f, sampling);
  return {};
}

Status Model::draw_masked(std::span<const uint32_t> masks, const SampleBatch* sampling) {
  if (in_flight_.empty() || !in_flight_.back().awaiting_draw) {
    return error(ErrorCode::kInternalError, "draw_masked: the last begun step is not masked");
  }
  InFlight& f = in_flight_.back();
  const int64_t R = f.rows, W = s_.masks.cols;
  if (masks.size() != size_t(R * W)) {
    return error(ErrorCode::kInternalError, "draw_masked: " + std::to_string(masks.size()) +
                                                " mask words for " + std::to_string(R) +
                                                " rows of " + std::to_string(W));
  }
  if (f.kind == StepKind::kSampled && (!sampling || sampling->num_rows() != R)) {
    return error(ErrorCode::kInternalError, "draw_masked: sampling rows do not match");
  }
  Tensor rows = s_.masks.slice_rows(0, R);
  backend_.upload(masks.data(), masks.size() * sizeof(uint32_t), rows.data);
  Tensor logits = s_.logits.slice_rows(0, R);
  backend_.mask_logits(logits, rows);
  f.awaiting_draw = false;
  draw(f, sampling);
  return {};
}

void Model::draw(InFlight& f, const SampleBatch* sampling) {
  const int64_t R = f.rows;
  if (f.kind == StepKind::kGreedy) {
    last_ids_ = {s_.next.data, DType::kI32, R, 1};
    backend_.argmax_rows(s_.logits.slice_rows(0, R), last_ids_);
    f.ids.resize(size_t(R));
    f.ticket = backend_.download_async(last_ids_.data, size_t(R) * 4, f.ids.data());
    return;
  }
  // One buffer [2, R] so one copy brings ids and logprobs back.
  last_ids_ = {s_.sampled.data, DType::kI32, R, 1};
  Tensor lps{s_.sampled.as<int32_t>() + R, DType::kF32, R, 1};
  backend_.sample_rows(s_.logits.slice_rows(0, R), *sampling, last_ids_, lps);
  f.ids.resize(size_t(2 * R));
  f.ticket = backend_.download_async(s_.sampled.data, size_t(2 * R) * 4, f.ids.data());
}

Status Model::end_step(std::vector<int32_t>* next, std::vector<float>* logprobs,
                       std::vector<float>* logits) {
  if (in_flight_.empty()) return error(ErrorCode::kInternalError, "end_step: no step in flight");
  if (in_flight_.front().awaiting_draw) {
    return error(ErrorCode::kInternalError, "end_step: a masked step was never drawn");
  }
  const InFlight f = std::move(in_flight_.front());
  in_flight_.pop_front();
  if (in_flight_.empty()) last_ids_ = {};  // placeholders only name the step in flight
  const int64_t R = f.rows;
  backend_.wait_download(f.ticket);
  switch (f.kind) {
    case StepKind::kLogits: {
      Tensor out = s_.logits.slice_rows(0, R);
      logits->resize(out.numel());
      if (R > 0) backend_.download(out.data, out.nbytes(), logits->data());
      break;
    }
    case StepKind::kGreedy:
      next->assign(f.ids.begin(), f.ids.begin() + R);
      break;
    case StepKind::kSampled:
      next->assign(f.ids.begin(), f.ids.begin() + R);
      logprobs->resize(size_t(R));
      if (R > 0) std::memcpy(logprobs->data(), f.ids.data() + R, size_t(R) * 4);
      break;
  }
  return backend_.take_error();
}

Status Model::forward(std::span<const int32_t> tokens, const AttentionBatch& batch,
                      std::span<const int32_t> logit_rows, KvCache& cache,
                      std::vector<float>* logits) {
  MLXS_RETURN_IF_ERROR(begin_step(StepKind::kLogits, tokens, batch, logit_rows, cache, nullptr));
  return end_step(nullptr, nullptr, logits);
}

Status Model::forward_greedy(std::span<const int32_t> tokens, const AttentionBatch& batch,
                             std::span<const int32_t> logit_rows, KvCache& cache,
                             std::vector<int32_t>* next) {
  MLXS_RETURN_IF_ERROR(begin_step(StepKind::kGreedy, tokens, batch, logit_rows, cache, nullptr));
  return end_step(next, nullptr, nullptr);
}

Status Model::forward_sampled(std::span<const int32_t> tokens, const AttentionBatch& batch,
                              std::span<const int32_t> logit_rows, KvCache& cache,
                              const SampleBatch& sampling, std::vector<int32_t>* next,
                              std::vector<float>* logprobs) {
  MLXS_RETURN_IF_ERROR(begin_step(StepKind::kSampled, tokens, batch, logit_rows, cache, &sampling));
  return end_step(next, logprobs, nullptr);
}

}  // namespace mlxs
