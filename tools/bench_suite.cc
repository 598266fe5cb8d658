#include "bench_suite.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "api/config.h"
#include "backend/make_backend.h"
#include "model/decoder.h"
#include "runtime/step_batch.h"

namespace mlxs::bench {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

constexpr int kBlock = 16;

// Sequences with fixed, disjoint block ranges in one cache; steps them through the model.
class Driver {
 public:
  Driver(Model& m, KvCache& c, int blocks_per_seq) : m_(m), c_(c), per_seq_(blocks_per_seq) {}

  std::vector<int32_t> table(int seq) const {
    std::vector<int32_t> t(static_cast<size_t>(per_seq_));
    std::iota(t.begin(), t.end(), seq * per_seq_);
    return t;
  }
  // Queues one step: sequence seqs[i] has cached[i] tokens and gets feeds[i] (placeholder
  // Model::placeholder(k) names row k of the step in flight, see Model::begin_step); greedy on
  // the device.
  void begin(const std::vector<int>& seqs, const std::vector<int>& cached,
             const std::vector<std::vector<int32_t>>& feeds) {
    std::vector<std::vector<int32_t>> tables;
    for (int s : seqs) tables.push_back(table(s));
    std::vector<SeqStep> steps;
    for (size_t i = 0; i < seqs.size(); ++i) steps.push_back({tables[i], cached[i], feeds[i]});
    std::vector<int32_t> flat;
    AttentionBatch b = make_attention_batch(steps, kBlock, m_.config().sliding_window, &flat);
    std::vector<int32_t> rows;
    for (size_t i = 0; i < seqs.size(); ++i) rows.push_back(b.query_start[i + 1] - 1);
    Status st = m_.begin_step(Model::StepKind::kGreedy, flat, b, rows, c_, nullptr);
    if (!st.ok()) std::fprintf(stderr, "step failed: %s\n", st.to_string().c_str());
  }
  // Waits for the oldest step in flight; its greedy ids.
  std::vector<int32_t> end() {
    std::vector<int32_t> next;
    Status st = m_.end_step(&next, nullptr, nullptr);
    if (!st.ok()) std::fprintf(stderr, "step failed: %s\n", st.to_string().c_str());
    return next;
  }
  std::vector<int32_t> step(const std::vector<int>& seqs, const std::vector<int>& cached,
                            const std::vector<std::vector<int32_t>>& feeds) {
    begin(seqs, cached, feeds);
    return end();
  }

 private:
  Model& m_;
  KvCache& c_;
  int per_seq_;
};

std::vector<int32_t> prompt(int len, int salt, int vocab) {
  std::vector<int32_t> p(static_cast<size_t>(len));
  for (int i = 0; i < len; ++i)
    p[size_t(i)] = int32_t((uint64_t(i) * 7919 + salt * 104729 + 13) % vocab);
  return p;
}

// Prefills `n` sequences of `len` tokens (whole prompts, up to `budget` tokens a step);
// returns each sequence's first generated token.
std::vector<int32_t> prefill_all(Driver& d, int first_seq, int n, int len, int budget, int vocab) {
  std::vector<int32_t> first;
  const int per_step = std::max(1, budget / len);
  for (int s0 = 0; s0 < n; s0 += per_step) {
    std::vector<int> seqs, cached;
    std::vector<std::vector<int32_t>> feeds;
    for (int s = s0; s < std::min(n, s0 + per_step); ++s) {
      seqs.push_back(first_seq + s);
      cached.push_back(0);
      feeds.push_back(prompt(len, first_seq + s, vocab));
    }
    auto next = d.step(seqs, cached, feeds);
    first.insert(first.end(), next.begin(), next.end());
  }
  return first;
}

// Median seconds per decode step of n sequences (slots [first_seq, first_seq + n)) that hold
// `len` tokens; `steps` steps, all timed, greedy tokens fed back. Pipelined as the engine runs
// (step i + 1 queued before step i ends, its tokens read on the device) the time of a step is
// the interval between two step ends.
double decode_steps(Driver& d, int first_seq, int n, int len, std::vector<int32_t> last, int steps,
                    double* total, bool pipelined) {
  std::vector<double> t;
  std::vector<int> seqs(static_cast<size_t>(n)), cached(size_t(n), len);
  std::iota(seqs.begin(), seqs.end(), first_seq);
  *total = 0;
  if (pipelined && steps > 0) {
    std::vector<std::vector<int32_t>> feeds, placeholders;
    for (int k = 0; k < n; ++k) {
      feeds.push_back({last[size_t(k)]});
      placeholders.push_back({Model::placeholder(size_t(k))});
    }
    auto t0 = Clock::now();
    d.begin(seqs, cached, feeds);
    for (int i = 1; i <= steps; ++i) {
      for (auto& c : cached) ++c;
      if (i < steps) d.begin(seqs, cached, placeholders);
      d.end();
      t.push_back(seconds_since(t0));
      t0 = Clock::now();
      *total += t.back();
    }
    return median(t);
  }
  for (int i = 0; i < steps; ++i) {
    std::vector<std::vector<int32_t>> feeds;
    for (int32_t id : last) feeds.push_back({id});
    auto t0 = Clock::now();
    last = d.step(seqs, cached, feeds);
    t.push_back(seconds_since(t0));
    *total += t.back();
    for (auto& c : cached) ++c;
  }
  return median(t);
}

// Per-op timings of one decode step's work at batch 1 (eager launches, host-timed loops).
void per_op_table(Backend& be, const ModelArch& c, double bw) {
  const int64_t D = c.hidden_size, I = c.intermediate_size, Dh = c.head_dim;
  const int64_t q = int64_t(c.num_heads) * Dh, kv = int64_t(c.num_kv_heads) * Dh;
  struct Mat {
    const char* name;
    int64_t n, k;
  };
  const Mat mats[] = {{"qkv", q + 2 * kv, D},
                      {"o_proj", D, q},
                      {"gate_up", 2 * I, D},
                      {"down", D, I},
                      {"lm_head", c.vocab_size, D}};
  std::printf("\nper-op timings at batch 1 (eager, 200 back-to-back calls, %s weights)\n",
              dtype_name(c.dtype));
  std::printf("| op | shape | us/call | GB/s | %% of copy bw | x per step | us per step |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  double total = 0;
  auto time_it = [&](auto&& fn) {
    for (int i = 0; i < 10; ++i) fn();
    be.synchronize();
    auto t0 = Clock::now();
    for (int i = 0; i < 200; ++i) fn();
    be.synchronize();
    return seconds_since(t0) / 200 * 1e6;
  };
  for (const Mat& m : mats) {
    // Several copies so repeated calls stream from HBM, not from the 60 MB L2.
    const int copies = m.n * m.k * 2 < (int64_t(256) << 20) ? 8 : 1;
    std::vector<Tensor> ws;
    for (int i = 0; i < copies; ++i) ws.push_back(be.alloc(c.dtype, m.n, m.k));
    Tensor x = be.alloc(DType::kF32, 1, m.k), out = be.alloc(DType::kF32, 1, m.n);
    std::vector<float> xh(static_cast<size_t>(m.k), 0.01f);
    be.upload(xh.data(), xh.size() * 4, x.data);
    int i = 0;
    const double us = time_it([&] { be.linear(x, ws[size_t(i++ % copies)], Tensor{}, out); });
    const double bytes = double(m.n) * m.k * dtype_size(c.dtype);
    const int per_step = std::string(m.name) == "lm_head" ? 1 : c.num_layers;
    total += us * per_step;
    std::printf("| linear %s | %lldx%lld | %.1f | %.0f | %.0f %% | %d | %.0f |\n", m.name,
                (long long)m.n, (long long)m.k, us, bytes / us / 1e3, 100 * bytes / us / 1e3 / bw,
                per_step, us * per_step);
    for (auto& w : ws) be.free(w);
    be.free(x);
    be.free(out);
  }
  // Small ops of one layer at batch 1.
  Tensor x = be.alloc(DType::kF32, 1, D), y = be.alloc(DType::kF32, 1, D),
         w = be.alloc(DType::kF32, 1, D);
  Tensor gu = be.alloc(DType::kF32, 1, 2 * I), act = be.alloc(DType::kF32, 1, I);
  std::vector<float> ones(static_cast<size_t>(2 * I), 0.5f);
  for (Tensor* t : {&x, &y, &w, &gu}) be.upload(ones.data(), t->nbytes(), t->data);
  const double us_norm = time_it([&] { be.add_rms_norm(x, y, w, 1e-5f, y); });
  const double us_silu = time_it([&] { be.silu_mul(gu, act); });
  std::printf("| add_rms_norm | 1x%lld | %.1f | | | %d | %.0f |\n", (long long)D, us_norm,
              2 * c.num_layers, us_norm * 2 * c.num_layers);
  std::printf("| silu_mul | 1x%lld | %.1f | | | %d | %.0f |\n", (long long)I, us_silu, c.num_layers,
              us_silu * c.num_layers);
  total += us_norm * 2 * c.num_layers + us_silu * c.num_layers;
  std::printf("| (sum of the above) | | | | | | %.0f |\n", total);
  for (Tensor* t : {&x, &y, &w, &gu, &act}) be.free(*t);

  // Attention (KV write + paged attention, bf16 cache) at context 640 for 1..256 sequences.
  std::printf(
      "\n| attention, one layer | sequences | context | us/call | KV GB/s "
      "|\n|---|---|---|---|---|\n");
  for (int n : {1, 8, 64, 256}) {
    const int ctx = 640, per_seq = ctx / kBlock + 1;
    KvLayer layer{be.alloc(DType::kBF16, int64_t(n) * per_seq * kBlock, kv),
                  be.alloc(DType::kBF16, int64_t(n) * per_seq * kBlock, kv)};
    std::vector<std::vector<int32_t>> tables(static_cast<size_t>(n));
    std::vector<int32_t> one = {1};
    std::vector<SeqStep> steps;
    for (int s = 0; s < n; ++s) {
      tables[size_t(s)].resize(size_t(per_seq));
      std::iota(tables[size_t(s)].begin(), tables[size_t(s)].end(), s * per_seq);
      steps.push_back({tables[size_t(s)], ctx - 1, one});
    }
    std::vector<int32_t> flat;
    AttentionBatch b = make_attention_batch(steps, kBlock, 0, &flat);
    Tensor qt = be.alloc(DType::kF32, n, q), kt = be.alloc(DType::kF32, n, kv),
           vt = be.alloc(DType::kF32, n, kv), ot = be.alloc(DType::kF32, n, q);
    std::vector<float> fill(size_t(n) * size_t(q), 0.1f);
    for (Tensor* t : {&qt, &kt, &vt}) be.upload(fill.data(), t->nbytes(), t->data);
    be.begin_step(b);
    const double us = time_it([&] {
      be.attention(qt, kt, vt, layer, b, c.num_heads, c.num_kv_heads, int(Dh),
                   1.f / std::sqrt(float(Dh)), ot);
    });
    const double bytes = double(n) * ctx * kv * 2 * 2;
    std::printf("| | %d | %d | %.1f | %.0f |\n", n, ctx, us, bytes / us / 1e3);
    for (Tensor* t : {&qt, &kt, &vt, &ot, &layer.k, &layer.v}) be.free(*t);
  }
}

// GEMV against cuBLAS for few rows, to place the crossover (backend.cuda.gemv_max_rows).
void gemv_sweep(const ModelArch& c, const BackendConfig& config, double bw) {
  BackendConfig gemv_all = config, cublas_all = config;
  gemv_all.cuda.gemv_max_rows = 8;
  cublas_all.cuda.gemv_max_rows = 0;
  auto g = make_backend(gemv_all);
  auto cb = make_backend(cublas_all);
  if (!g.ok() || !cb.ok()) return;
  std::printf(
      "\n| linear | rows | GEMV us | cuBLAS us | GEMV %% of copy bw |\n|---|---|---|---|---|\n");
  struct Mat {
    const char* name;
    int64_t n, k;
  };
  const Mat mats[] = {{"o_proj", c.hidden_size, int64_t(c.num_heads) * c.head_dim},
                      {"gate_up", 2 * int64_t(c.intermediate_size), c.hidden_size},
                      {"down", c.hidden_size, c.intermediate_size}};
  for (const Mat& m : mats) {
    for (int rows : {1, 2, 4, 8, 16}) {
      double us[2] = {0, 0};
      for (int i = 0; i < 2; ++i) {
        Backend& be = i == 0 ? **g : **cb;
        if (i == 0 && rows > 8) continue;
        const int copies = m.n * m.k * 2 < (int64_t(256) << 20) ? 8 : 2;
        std::vector<Tensor> ws;
        for (int j = 0; j < copies; ++j) ws.push_back(be.alloc(c.dtype, m.n, m.k));
        Tensor x = be.alloc(DType::kF32, rows, m.k), out = be.alloc(DType::kF32, rows, m.n);
        std::vector<float> xh(size_t(rows) * size_t(m.k), 0.01f);
        be.upload(xh.data(), xh.size() * 4, x.data);
        int j = 0;
        auto fn = [&] { be.linear(x, ws[size_t(j++ % copies)], Tensor{}, out); };
        for (int r = 0; r < 10; ++r) fn();
        be.synchronize();
        auto t0 = Clock::now();
        for (int r = 0; r < 100; ++r) fn();
        be.synchronize();
        us[i] = seconds_since(t0) / 100 * 1e6;
        for (auto& w : ws) be.free(w);
        be.free(x);
        be.free(out);
      }
      const double bytes = double(m.n) * m.k * dtype_size(c.dtype);
      std::printf("| %s %lldx%lld | %d | %.1f | %.1f | %.0f %% |\n", m.name, (long long)m.n,
                  (long long)m.k, rows, us[0], us[1],
                  us[0] > 0 ? 100 * bytes / us[0] / 1e3 / bw : 0.0);
    }
  }
}

}  // namespace

int run_suite(const SuiteArgs& a) {
  std::unique_ptr<Backend> backend;
  double bw = 0;
  // The backend section of the configuration (MLXS_CONFIG file and MLXS_BACKEND_* variables:
  // precision, PDL, kernel choices), on the device --backend names.
  auto loaded_config = load_config("", process_environment());
  if (!loaded_config.ok()) {
    std::fprintf(stderr, "%s\n", loaded_config.status().to_string().c_str());
    return 1;
  }
  BackendConfig config = loaded_config->backend;
  config.device = a.backend == "cuda" ? Device::kCuda : Device::kCpu;
  config.cuda.graphs = config.cuda.graphs && a.graphs;
  auto b = make_backend(config);
  if (!b.ok()) {
    std::fprintf(stderr, "%s\n", b.status().to_string().c_str());
    return 1;
  }
  backend = std::move(*b);
  if (a.backend == "cuda") {
    auto bwr = gpu_copy_bandwidth_gbs(0);
    if (bwr.ok()) bw = *bwr;
    const auto& cc = config.cuda;
    std::printf(
        "backend.cuda: precision %s, graphs %d, pdl %d, swiglu_epilogue %d, "
        "attention_decode %d, attention_tc %d, gemv_max_rows %d\n",
        cc.precision == CudaPrecision::kFast ? "fast" : "precise", cc.graphs, cc.pdl,
        cc.swiglu_epilogue, cc.attention_decode, cc.attention_tc, cc.gemv_max_rows);
  }
  auto t0 = Clock::now();
  auto loaded = Model::load(a.model, *backend);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", loaded.status().to_string().c_str());
    return 1;
  }
  Model& model = **loaded;
  const double load_s = seconds_since(t0);
  const ModelArch& c = model.config();
  DType kv = DType::kBF16;
  if (!parse_dtype(a.kv_dtype == "bf16" ? "BF16" : a.kv_dtype == "f16" ? "F16" : "F32", &kv))
    return 1;
  // --quick runs only (a): one sequence (sizing for 256 would not fit an 8B model on an H100).
  const int max_conc = a.quick || a.concurrency.empty()
                           ? 1
                           : *std::max_element(a.concurrency.begin(), a.concurrency.end());
  const int max_ttft = a.ttft.empty() ? 0 : *std::max_element(a.ttft.begin(), a.ttft.end());
  const int longest =
      std::max({a.in_len + a.out_len, a.context + a.decode_steps + 1, max_ttft + 1});
  const int per_seq = (longest + kBlock - 1) / kBlock;
  auto cache = KvCache::create(*backend, c, per_seq * (max_conc + 2), kBlock, kv);
  if (!cache.ok()) {
    std::fprintf(stderr, "%s\n", cache.status().to_string().c_str());
    return 1;
  }
  if (model.decode_padding()) {
    // Graphs for every batch bucket now, and step buffers that never grow (placeholders read
    // the previous step's ids from them).
    int num_graphs = 0;
    Status w = model.warm_up(**cache, max_conc, per_seq, std::max(a.prefill_budget, max_ttft),
                             &num_graphs);
    if (!w.ok()) {
      std::fprintf(stderr, "%s\n", w.to_string().c_str());
      return 1;
    }
  }
  Driver d(model, **cache, per_seq);
  const double weight_bytes =
      double(c.num_parameters() -
             (c.tie_word_embeddings ? 0 : int64_t(c.vocab_size) * c.hidden_size)) *
      c.bytes_per_parameter();
  std::printf(
      "model %s: %s, %.2f B params, %s weights, %s KV cache, backend %s, graphs %s, decode "
      "steps %s\n",
      a.model.c_str(), c.architecture.c_str(), double(c.num_parameters()) / 1e9,
      dtype_name(c.dtype), dtype_name(kv), a.backend.c_str(), a.graphs ? "on" : "off",
      a.pipelined ? "pipelined" : "one at a time");
  std::printf(
      "load %.1f s; weight bytes read per decode step %.2f GB; copy bandwidth %.0f GB/s; "
      "roofline %.1f tok/s at batch 1\n",
      load_s, weight_bytes / 1e9, bw, bw > 0 ? bw * 1e9 / weight_bytes : 0.0);
  std::printf("\n| metric | value | note |\n|---|---|---|\n");

  // (a) batch-1 decode after a `context`-token prompt.
  {
    auto first = prefill_all(d, 0, 1, a.context, a.prefill_budget, c.vocab_size);
    double total = 0;
    const double step =
        decode_steps(d, 0, 1, a.context, first, a.decode_steps, &total, a.pipelined);
    const double tps = 1.0 / step, roof = bw > 0 ? bw * 1e9 / weight_bytes : 0;
    std::printf(
        "| (a) batch-1 decode | %.1f tok/s | %.3f ms/step median of %d at context %d; "
        "%.1f %% of the %.1f tok/s roofline |\n",
        tps, step * 1e3, a.decode_steps, a.context, roof > 0 ? 100 * tps / roof : 0.0, roof);
    std::fflush(stdout);
  }
  if (a.quick) return 0;
  // (b) time to first token: one whole-prompt prefill step (incl. upload and the greedy id).
  for (int len : a.ttft) {
    std::vector<double> t;
    for (int r = 0; r < 4; ++r) {
      auto t1 = Clock::now();
      prefill_all(d, 1, 1, len, std::max(len, a.prefill_budget), c.vocab_size);
      if (r > 0) t.push_back(seconds_since(t1));  // the first run sizes buffers
    }
    const double s = median(t);
    const double floor_ms = 2.0 * double(c.num_parameters()) * len / 790e12 * 1e3;
    std::printf(
        "| (b) TTFT, %d-token prompt | %.1f ms | %.0f prompt tok/s; dense GEMM floor "
        "%.1f ms at 790 TFLOP/s |\n",
        len, s * 1e3, len / s, floor_ms);
    std::fflush(stdout);
  }
  // (c) concurrency: n sequences, in_len prompt each, then out_len decode steps together.
  for (int n : a.concurrency) {
    auto t1 = Clock::now();
    auto first = prefill_all(d, 2, n, a.in_len, a.prefill_budget, c.vocab_size);
    const double prefill_s = seconds_since(t1);
    double decode_s = 0;
    const double step =
        decode_steps(d, 2, n, a.in_len, first, a.out_len - 1, &decode_s, a.pipelined);
    const double e2e = double(n) * a.out_len / (prefill_s + decode_s);
    std::printf(
        "| (c) %d sequences, %d in / %d out | %.0f tok/s decode | median step %.2f ms; "
        "prefill %.2f s; end-to-end %.0f tok/s |\n",
        n, a.in_len, a.out_len, n / step, step * 1e3, prefill_s, e2e);
    std::fflush(stdout);
  }
  if (a.per_op && bw > 0) {
    per_op_table(*backend, c, bw);
    if (a.sweep) gemv_sweep(c, config, bw);
  }
  return 0;
}

}  // namespace mlxs::bench
