// The decoder-only transformer shared by every supported family, run on a Backend: its weights
// and its forward pass (the KV cache it writes is model/kv_cache.h; the plan of a step,
// runtime/).
//
// Per layer: h = x + o_proj(attn(rope(q), rope(k), v)); x = h + down(silu(gate(n)) * up(n)),
// with RMSNorm before attention and MLP. q/k/v and gate/up are fused into one matrix each at load.
#pragma once

#include <deque>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "mlxs/status.h"
#include "model/config.h"
#include "model/kv_cache.h"

namespace mlxs {

class WeightStore;

struct LayerWeights {
  Tensor input_norm, post_norm;  // [1, D]
  Tensor qkv, qkv_bias;          // [(H + 2 Hk) * Dh, D], [1, (H + 2 Hk) * Dh] or empty
  Tensor q_norm, k_norm;         // [1, Dh] (Qwen3) or empty
  Tensor o, o_bias;              // [D, H * Dh]
  Tensor gate_up, gate_up_bias;  // [2I, D]
  Tensor down, down_bias;        // [D, I]
};

class Model {
 public:
  // Loads `dir` (config.json + safetensors, or a GGUF file: model/gguf_model.h) onto
  // `backend`, which must outlive the model.
  // Weight errors name the file and tensor; unexpected tensors are errors too.
  static Result<std::unique_ptr<Model>> load(const std::string& dir, Backend& backend,
                                             const ModelFileAccess& access = {});
  ~Model();

  const ModelArch& config() const { return config_; }
  Backend& backend() { return backend_; }
  const std::string& dir() const { return dir_; }

  // One step over T tokens of S sequences planned in `batch`: writes their K/V into `cache` and
  // returns in `logits` the f32 logits [R, V] of the token rows listed in `logit_rows`.
  // Not thread-safe: one engine thread per model.
  Status forward(std::span<const int32_t> tokens, const AttentionBatch& batch,
                 std::span<const int32_t> logit_rows, KvCache& cache, std::vector<float>* logits);
  // As forward(), but returns the greedy next token (argmax, lowest id on ties) of each logit
  // row, computed on the backend, so only R ids cross to the host instead of R * V logits.
  Status forward_greedy(std::span<const int32_t> tokens, const AttentionBatch& batch,
                        std::span<const int32_t> logit_rows, KvCache& cache,
                        std::vector<int32_t>* next);
  // As forward(), but samples each logit row r on the backend with batch.params[r] (see
  // Backend::sample_rows): only the R tokens and their logprobs cross to the host.
  // `sampling` must have one row per logit row.
  Status forward_sampled(std::span<const int32_t> tokens, const AttentionBatch& batch,
                         std::span<const int32_t> logit_rows, KvCache& cache,
                         const SampleBatch& sampling, std::vector<int32_t>* next,
                         std::vector<float>* logprobs);
  // The same three kinds of step, split so the caller can do host work while the backend runs
  // the step: begin_step() queues it (an asynchronous backend returns at once; the CPU backend
  // computes it here) and end_step() waits for the oldest step in flight and returns what its
  // kind gives: ids (greedy, sampled), logprobs (sampled) or logits [R, V]; outputs of other
  // kinds are left untouched.
  //
  // Two steps may be in flight, so the backend never waits for the host between them: step
  // N + 1 is begun before step N ends. Its tokens may then name tokens step N samples, which
  // the host does not know yet: a placeholder -(k + 1) stands for the token of step N's logit
  // row k (step N being the last begun step, greedy or sampled, still in flight), read on the
  // device. A logits step must end before the next one begins.
  enum class StepKind { kGreedy, kSampled, kLogits };
  static constexpr size_t kMaxStepsInFlight = 2;
  // The placeholder token id for row k of the last begun step, and the row a placeholder
  // (a negative token id) names. The engine's side of the protocol is runtime/step_pipeline.h.
  static constexpr int32_t placeholder(size_t row) { return -int32_t(row) - 1; }
  static constexpr size_t placeholder_row(int32_t token) { return size_t(-int64_t(token) - 1); }
  //
  // Constrained decoding: with `masked`, a greedy or sampled step queues its forward only, and
  // its draw waits for draw_masked(), which the caller calls once it has filled the rows'
  // token masks (the host computes them while the backend runs the forward).
  Status begin_step(StepKind kind, std::span<const int32_t> tokens, const AttentionBatch& batch,
                    std::span<const int32_t> logit_rows, KvCache& cache,
                    const SampleBatch* sampling, bool masked = false);
  // Applies `masks` [R, W] (bit v % 32 of word v / 32 of a row: token v allowed; W = (V + 31) /
  // 32) to the logits of the last begun step, which must be masked and not yet drawn, then
  // queues its draw as begin_step() would have (`sampling` as there).
  Status draw_masked(std::span<const uint32_t> masks, const SampleBatch* sampling);
  Status end_step(std::vector<int32_t>* next, std::vector<float>* logprobs,
                  std::vector<float>* logits);

  // Decode steps (one token per sequence) of at most this many tokens run as backend graphs.
  static constexpr int64_t kMaxGraphTokens = 512;

  // Pads decode steps to the bucket sizes of model/decode_padding.h (so backend graphs are
  // recorded per bucket). On by default exactly when the backend supports graphs; tests turn
  // it on for the CPU backend, where real rows must come out bitwise unchanged.
  void set_decode_padding(bool on) { pad_decode_ = on; }
  bool decode_padding() const { return pad_decode_; }
  // Grows every buffer of the model and the backend to the largest step: one eager
  // prefill-shaped step of max_step_tokens tokens and one decode step of max_batch sequences
  // (the largest bucket with padding) with block tables of max_blocks_per_seq blocks. Writes
  // only cache.scratch_block(); records no graph. Afterwards the device memory in use is the
  // weights, the cache and the activations at their peak (ModelRunner sizes the KV pool from
  // what is left). Returns the backend's error, if any. On the engine thread.
  Status reserve_step_buffers(KvCache& cache, int max_batch, int max_blocks_per_seq,
                              int64_t max_step_tokens);
  // With decode padding on: sizes the step buffers for steps of up to max_step_tokens tokens and
  // max_batch sequences with block tables of up to max_blocks_per_seq blocks, then runs padded
  // dummy decode steps of every bucket up to max_batch (capped at kMaxGraphTokens) so their
  // graphs are recorded before the first request. Writes only cache.scratch_block(). Returns
  // the number of graphs the backend holds afterwards in *num_graphs (0 without padding), and
  // the backend's error, if any. Call before serving, on the engine thread.
  Status warm_up(KvCache& cache, int max_batch, int max_blocks_per_seq, int64_t max_step_tokens,
                 int* num_graphs);

 private:
  Model(Backend& backend) : backend_(backend) {}
  Status load_weights(WeightStore& store, const std::string& dir);
  // A step begun by begin_step() and not yet ended: its kind, rows and host landing buffer.
  struct InFlight {
    StepKind kind = StepKind::kGreedy;
    int64_t rows = 0;
    std::vector<int32_t> ids;    // greedy: [R]; sampled: [2R] (ids, then logprob bits)
    uint64_t ticket = 0;         // of the download into `ids`
    bool awaiting_draw = false;  // masked: the forward is queued, the draw is not
  };
  // Queues the draw of step `f` (greedy or sampled) from s_.logits and the download of its ids.
  void draw(InFlight& f, const SampleBatch* sampling);
  std::deque<InFlight> in_flight_;  // oldest first; a deque keeps `ids` in place
  // The device ids [R, 1] the last begun step samples (placeholders point here); null when that
  // step was a logits step or has ended.
  Tensor last_ids_;
  void ensure_scratch(int64_t tokens, int64_t rows);
  // Validates and uploads the step, then runs every layer and the lm_head into s_.logits
  // (through a backend graph for decode steps).
  Status run_step(std::span<const int32_t> tokens, const AttentionBatch& batch,
                  std::span<const int32_t> logit_rows, KvCache& cache);
  void run_ops(int64_t T, int64_t R, const AttentionBatch& batch, KvCache& cache);

  Backend& backend_;
  std::string dir_;
  ModelArch config_;
  RopeParams rope_;
  Tensor embed_, final_norm_, lm_head_;
  std::vector<LayerWeights> layers_;
  std::vector<Tensor> owned_;  // every tensor allocated on the backend, freed in the destructor

  struct Scratch {
    int64_t tokens = 0, rows = 0;
    Tensor ids, positions, logit_rows, next;  // int32
    Tensor sampled;  // [2, R] int32: sample_rows() tokens, then logprobs (f32 bits)
    Tensor masks;    // [R, (V + 31) / 32] int32: draw_masked()'s token masks
    Tensor x, residual, normed, qkv, q, k, v, attn, proj, gate_up, act, gathered, logits;
  } s_;
  std::vector<Tensor> scratch_owned_;
  bool pad_decode_ = false;
};

}  // namespace mlxs
