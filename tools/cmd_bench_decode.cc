// `mlx-serving bench-decode --model DIR`: prefill and decode throughput of the CPU backend and
// the memory bandwidth decode achieves, against the machine's measured read bandwidth.
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>

#include "bench_suite.h"
#include "cli.h"
#include "model/decoder.h"
#include "runtime/step_batch.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string model;
  std::string backend = "cpu";
  std::string isa = "auto";  // CPU kernel family, as backend.cpu.isa
  mlxs::bench::SuiteArgs suite;
  int prompt_len = 128, decode_steps = 32, threads = 0, repeats = 3;
  std::vector<int> batches = {1, 8};
};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Read bandwidth of a streaming integer sum over 1 GiB with all threads (best of 3), in GB/s.
// Integer adds with independent accumulators vectorise at the baseline ISA and never limit it.
double measure_read_bandwidth() {
  const size_t n = (size_t(1) << 30) / sizeof(uint64_t);
  auto* p = static_cast<uint64_t*>(std::aligned_alloc(64, n * sizeof(uint64_t)));
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) p[i] = i;
  double best = 0;
  volatile uint64_t sink = 0;
  for (int r = 0; r < 3; ++r) {
    auto t0 = Clock::now();
#pragma omp parallel
    {
      const size_t nt = size_t(omp_get_num_threads()), chunk = n / nt / 8 * 8;
      const uint64_t* q = p + size_t(omp_get_thread_num()) * chunk;
      uint64_t a[8] = {};
      for (size_t i = 0; i < chunk; i += 8) {
        for (int j = 0; j < 8; ++j) a[j] += q[i + size_t(j)];
      }
      sink = sink + a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
    }
    best = std::max(best, double(n * sizeof(uint64_t)) / seconds_since(t0) / 1e9);
  }
  std::free(p);
  return best;
}

int run(const Args& a) {
  using namespace mlxs;
  if (a.backend != "cpu") {
    bench::SuiteArgs s = a.suite;
    s.model = a.model;
    s.backend = a.backend;
    return bench::run_suite(s);
  }
  if (auto why = cpu::isa_choice_error(a.isa, cpu::supported_isa())) {
    std::fprintf(stderr, "bench-decode: --isa: %s\n", why->c_str());
    return 2;
  }
  const cpu::Isa isa = cpu::isa_for_choice(a.isa);
  auto backend = make_cpu_backend(a.threads, isa);
  auto loaded = Model::load(a.model, *backend);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", loaded.status().to_string().c_str());
    return 1;
  }
  Model& model = **loaded;
  const ModelArch& c = model.config();
  const int bs = 16, max_batch = *std::max_element(a.batches.begin(), a.batches.end());
  const int per_seq = (a.prompt_len + a.decode_steps + bs - 1) / bs;
  auto cache = KvCache::create(*backend, c, per_seq * max_batch, bs);
  if (!cache.ok()) return 1;
  // Bytes of weights one decode step reads (lm_head once more when it is not tied).
  const double weight_bytes =
      double(c.num_parameters() -
             (c.tie_word_embeddings ? 0 : int64_t(c.vocab_size) * c.hidden_size)) *
      c.bytes_per_parameter();
  std::vector<std::vector<int32_t>> tables(static_cast<size_t>(max_batch));
  for (int s = 0; s < max_batch; ++s) {
    tables[size_t(s)].resize(size_t(per_seq));
    std::iota(tables[size_t(s)].begin(), tables[size_t(s)].end(), s * per_seq);
  }
  std::vector<int32_t> prompt(static_cast<size_t>(a.prompt_len));
  for (int i = 0; i < a.prompt_len; ++i) prompt[size_t(i)] = (i * 7919 + 13) % c.vocab_size;

  auto step = [&](int nseq, int cached, int len) {
    std::vector<SeqStep> steps;
    std::vector<int32_t> feed(prompt.begin(), prompt.begin() + len);
    for (int s = 0; s < nseq; ++s) steps.push_back({tables[size_t(s)], cached, feed});
    std::vector<int32_t> flat;
    AttentionBatch b = make_attention_batch(steps, bs, c.sliding_window, &flat);
    std::vector<int32_t> rows;
    for (int s = 0; s < nseq; ++s) rows.push_back(b.query_start[size_t(s) + 1] - 1);
    std::vector<float> logits;
    Status st = model.forward(flat, b, rows, **cache, &logits);
    if (!st.ok()) std::fprintf(stderr, "%s\n", st.to_string().c_str());
  };

  double prefill_best = 1e30;
  for (int r = 0; r < a.repeats; ++r) {
    auto t0 = Clock::now();
    step(1, 0, a.prompt_len);
    prefill_best = std::min(prefill_best, seconds_since(t0));
  }
  const double bw = measure_read_bandwidth();
  std::printf("model %s: %s, %.3f B params, %s, %d threads, kernels %s\n", a.model.c_str(),
              c.architecture.c_str(), double(c.num_parameters()) / 1e9, dtype_name(c.dtype),
              omp_get_max_threads(), cpu::isa_name(isa));
  std::printf("machine read bandwidth (streaming sum, 1 GiB): %.1f GB/s\n", bw);
  std::printf(
      "| phase | batch | tokens/s | ms/step | weight GB/s | %% of read bw "
      "|\n|---|---|---|---|---|---|\n");
  std::printf("| prefill %d tokens | 1 | %.1f | %.1f | | |\n", a.prompt_len,
              a.prompt_len / prefill_best, prefill_best * 1e3);
  for (int nb : a.batches) {
    step(nb, 0, a.prompt_len);
    double best = 1e30;
    for (int i = 0; i < a.decode_steps; ++i) {
      auto t0 = Clock::now();
      std::vector<SeqStep> steps;
      std::vector<int32_t> one = {prompt[size_t(i) % prompt.size()]};
      for (int s = 0; s < nb; ++s) steps.push_back({tables[size_t(s)], a.prompt_len + i, one});
      std::vector<int32_t> flat;
      AttentionBatch b = make_attention_batch(steps, bs, c.sliding_window, &flat);
      std::vector<int32_t> rows(static_cast<size_t>(nb));
      std::iota(rows.begin(), rows.end(), 0);
      std::vector<float> logits;
      (void)model.forward(flat, b, rows, **cache, &logits);
      best = std::min(best, seconds_since(t0));
    }
    double gbs = weight_bytes / best / 1e9;
    std::printf("| decode | %d | %.1f | %.1f | %.1f | %.0f %% |\n", nb, nb / best, best * 1e3, gbs,
                100 * gbs / bw);
  }
  return 0;
}

mlxs::cli::CommandRegistrar reg(
    "bench-decode", "Benchmark prefill and decode throughput (CPU table, or the GPU serving suite)",
    [](CLI::App& app) {
      auto a = std::make_shared<Args>();
      app.add_option("--model", a->model, "Model folder")->required();
      app.add_option("--prompt-len", a->prompt_len, "Prompt tokens for the prefill");
      app.add_option("--decode-steps", a->decode_steps, "Decode steps timed (best is reported)");
      app.add_option("--batch", a->batches, "Decode batch sizes")->delimiter(',');
      app.add_option("--threads", a->threads, "Threads (0 = all)");
      app.add_option("--isa", a->isa,
                     "CPU kernel family: auto|scalar|avx2|avx512|avx512bf16 (as backend.cpu.isa)");
      app.add_option("--repeats", a->repeats, "Prefill repeats (best is reported)");
      app.add_option("--backend", a->backend,
                     "cpu (this table) or cuda (the serving suite: batch-1 decode vs roofline, "
                     "TTFT, concurrency)");
      app.add_option("--kv-dtype", a->suite.kv_dtype, "KV cache dtype for the suite: bf16|f16|f32");
      app.add_option("--ttft", a->suite.ttft, "Suite: prompt lengths for time to first token")
          ->delimiter(',');
      app.add_option("--concurrency", a->suite.concurrency, "Suite: concurrent sequences")
          ->delimiter(',');
      app.add_option("--in-len", a->suite.in_len, "Suite: prompt tokens per sequence");
      app.add_option("--out-len", a->suite.out_len, "Suite: generated tokens per sequence");
      app.add_option("--context", a->suite.context, "Suite: prompt before the batch-1 decode");
      app.add_option("--steps", a->suite.decode_steps, "Suite: batch-1 decode steps timed");
      app.add_flag("!--no-graphs", a->suite.graphs, "Suite: run decode steps eagerly");
      app.add_flag("!--no-per-op", a->suite.per_op, "Suite: skip the per-op timing table");
      app.add_flag("--sweep", a->suite.sweep, "Suite: GEMV vs cuBLAS timings for 1..16 rows");
      app.add_flag("--quick", a->suite.quick, "Suite: only the batch-1 decode");
      app.add_flag("!--no-pipeline", a->suite.pipelined,
                   "Suite: end each decode step before queueing the next (A/B)");
      return [a] { return run(*a); };
    });

}  // namespace
