// Bucketed decode graphs on the CUDA backend: the load-time warm-up records one graph per bucket
// and writes only the scratch block; serving steps (prefill, decode of odd batch sizes) replay
// those graphs without dropping or adding any; padded graph steps give the same tokens as
// unpadded eager steps. Skipped where the build has no CUDA or the machine no GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numeric>

#include "backend/cuda/cuda_backend.h"
#include "model/decode_padding.h"
#include "model/decoder.h"
#include "model/random_model.h"
#include "model/test_model.h"
#include "runtime/step_batch.h"

namespace mlxs {
namespace {

// backend.cuda in the fast (bf16) mode, every other key at its default.
const CudaBackendConfig kFastMode = [] {
  CudaBackendConfig c;
  c.precision = CudaPrecision::kFast;
  return c;
}();

constexpr int kBlock = 4;
constexpr int kBlocksPerSeq = 16;
constexpr int kSeqs = 13;

using Loaded = test_support::LoadedModel;

Loaded load(std::unique_ptr<Backend> b, DType kv) {
  const std::string dir =
      test_support::write_test_model("tiny-llama", DType::kBF16, "mlxs_cuda_decode_padding", 21);
  return test_support::load_test_model(std::move(b), dir, kSeqs * kBlocksPerSeq, kBlock, kv);
}

// Fills every K/V byte with 0x3c (a recognisable pattern in any float dtype).
void fill_cache(Loaded& l) {
  for (int i = 0; i < l.model->config().num_layers; ++i) {
    for (Tensor* t : {&l.cache->layer(i).k, &l.cache->layer(i).v}) {
      std::vector<char> host(t->nbytes(), 0x3c);
      l.backend->upload(host.data(), host.size(), t->data);
    }
  }
  l.backend->synchronize();
}

// Blocks [first, first + n) of every layer's K and V, downloaded.
std::vector<char> kv_bytes(Loaded& l, int first, int n) {
  std::vector<char> out;
  for (int i = 0; i < l.model->config().num_layers; ++i) {
    for (const Tensor* t : {&l.cache->layer(i).k, &l.cache->layer(i).v}) {
      Tensor s = t->slice_rows(int64_t(first) * kBlock, int64_t(n) * kBlock);
      std::vector<char> host(s.nbytes());
      l.backend->download(s.data, host.size(), host.data());
      out.insert(out.end(), host.begin(), host.end());
    }
  }
  return out;
}

struct ServeRun {
  std::vector<std::vector<int32_t>> tokens;  // per decode step, per live sequence
  std::vector<float> first_logits;           // the first decode step's logits
};

// Prefills kSeqs prompts (3..9 tokens, one step each), then decodes greedily in steps of
// shrinking batches (13 -> 16, 7 -> 8, 3 -> 4, 1 -> 1 when padded).
ServeRun serve(Loaded& l) {
  Model& m = *l.model;
  const int V = m.config().vocab_size;
  std::vector<std::vector<int32_t>> tables(kSeqs), last(kSeqs);
  std::vector<int> cached(kSeqs);
  for (int s = 0; s < kSeqs; ++s) {
    tables[size_t(s)].resize(kBlocksPerSeq);
    std::iota(tables[size_t(s)].begin(), tables[size_t(s)].end(), s * kBlocksPerSeq);
    std::vector<int32_t> p = test_support::test_prompt(3 + s % 7, s, V);
    SeqStep st{tables[size_t(s)], 0, p};
    std::vector<int32_t> flat;
    AttentionBatch b = make_attention_batch(std::span(&st, 1), kBlock, 0, &flat);
    std::vector<int32_t> rows = {int32_t(p.size()) - 1};
    EXPECT_TRUE(m.forward_greedy(flat, b, rows, *l.cache, &last[size_t(s)]).ok());
    cached[size_t(s)] = int(p.size());
  }
  ServeRun run;
  for (int live : {13, 13, 13, 7, 7, 3, 3, 1, 1}) {
    std::vector<SeqStep> steps;
    for (int s = 0; s < live; ++s)
      steps.push_back({tables[size_t(s)], cached[size_t(s)], last[size_t(s)]});
    std::vector<int32_t> flat, rows(static_cast<size_t>(live));
    std::iota(rows.begin(), rows.end(), 0);
    AttentionBatch b = make_attention_batch(steps, kBlock, 0, &flat);
    std::vector<float> logits;
    EXPECT_TRUE(m.forward(flat, b, rows, *l.cache, &logits).ok());
    if (logits.size() != size_t(live) * size_t(V)) return run;
    if (run.first_logits.empty()) run.first_logits = logits;
    std::vector<int32_t> next;
    for (int s = 0; s < live; ++s) {
      auto row = logits.begin() + ptrdiff_t(s) * V;
      next.push_back(int32_t(std::max_element(row, row + V) - row));
      last[size_t(s)] = {next.back()};
      ++cached[size_t(s)];
    }
    run.tokens.push_back(next);
  }
  return run;
}

TEST(CudaDecodePadding, WarmUpRecordsEveryBucketAndServingKeepsThem) {
  auto gpu = make_cuda_backend(kFastMode);
  if (!gpu.ok()) GTEST_SKIP() << gpu.status().to_string();
  Loaded l = load(std::move(*gpu), DType::kBF16);
  ASSERT_TRUE(l.cache);
  ASSERT_TRUE(l.model->decode_padding());
  fill_cache(l);
  const int n = l.cache->num_blocks();
  int num_graphs = 0;
  // Batches up to 64 (buckets 1..64: 11 graphs), prefill steps up to 1024 tokens.
  ASSERT_TRUE(l.model->warm_up(*l.cache, 64, kBlocksPerSeq, 1024, &num_graphs).ok());
  EXPECT_EQ(num_graphs, 11);
  EXPECT_EQ(l.backend->num_graphs(), 11);
  const std::vector<char> real = kv_bytes(l, 0, n), scratch = kv_bytes(l, n, 1);
  EXPECT_TRUE(real == std::vector<char>(real.size(), 0x3c)) << "the warm-up wrote a real block";
  EXPECT_FALSE(scratch == std::vector<char>(scratch.size(), 0x3c))
      << "the warm-up did not write the scratch block";
  ServeRun r = serve(l);
  EXPECT_EQ(r.tokens.size(), 9u);
  EXPECT_TRUE(l.backend->take_error().ok());
  // Prefill and decode of 13, 7, 3 and 1 sequences replayed the warm-up's graphs: none was
  // dropped by a buffer growth, none added for an unpadded size.
  EXPECT_EQ(l.backend->num_graphs(), 11);
}

// Precise mode (f32-precise activations and KV cache): padded graph replays decode the same
// tokens as unpadded eager steps (graphs off), with logits equal up to summation order.
TEST(CudaDecodePadding, PaddedGraphStepsMatchUnpaddedEagerSteps) {
  CudaBackendConfig graphs;
  graphs.precision = CudaPrecision::kPrecise;
  CudaBackendConfig eager = graphs;
  eager.graphs = false;
  auto g = make_cuda_backend(graphs);
  if (!g.ok()) GTEST_SKIP() << g.status().to_string();
  auto e = make_cuda_backend(eager);
  ASSERT_TRUE(e.ok());
  Loaded padded = load(std::move(*g), DType::kF32);
  Loaded plain = load(std::move(*e), DType::kF32);
  ASSERT_TRUE(padded.cache && plain.cache);
  EXPECT_TRUE(padded.model->decode_padding());
  EXPECT_FALSE(plain.model->decode_padding());  // graphs = false keeps steps unpadded
  int num_graphs = 0;
  ASSERT_TRUE(padded.model->warm_up(*padded.cache, kSeqs, kBlocksPerSeq, 64, &num_graphs).ok());
  EXPECT_EQ(num_graphs, 5);  // buckets 1, 2, 4, 8, 16
  ASSERT_TRUE(plain.model->warm_up(*plain.cache, kSeqs, kBlocksPerSeq, 64, &num_graphs).ok());
  EXPECT_EQ(num_graphs, 0);
  ServeRun want = serve(plain);
  ServeRun got = serve(padded);
  ASSERT_EQ(want.tokens.size(), 9u);
  EXPECT_EQ(got.tokens, want.tokens);
  ASSERT_EQ(got.first_logits.size(), want.first_logits.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < want.first_logits.size(); ++i) {
    num += std::pow(double(got.first_logits[i]) - want.first_logits[i], 2);
    den += std::pow(double(want.first_logits[i]), 2);
  }
  EXPECT_LE(std::sqrt(num / den), 1e-4);
  // A second serve replays the same graphs: same tokens again.
  ServeRun again = serve(padded);
  EXPECT_EQ(again.tokens, got.tokens);
}

}  // namespace
}  // namespace mlxs
