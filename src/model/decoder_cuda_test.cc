// The decoder on the CUDA backend: the same greedy tokens as the CPU reference over batched,
// chunked prefill and 32 decode steps (tiny Llama and Qwen3 shapes, f32 and bf16 weights), and
// batch invariance on the GPU (a sequence alone and inside a batch of 64 decode alike).
// Skipped where the build has no CUDA or the machine no GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "backend/cuda/cuda_backend.h"
#include "model/decoder.h"
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

constexpr int kBlockSize = 4;

using test_support::generate;
using test_support::generate_pipelined;
using test_support::GenRun;

using test_support::test_prompt;
const auto prompt = test_prompt;

using Loaded = test_support::LoadedModel;

Loaded load(std::unique_ptr<Backend> b, const std::string& dir, int num_blocks, DType kv) {
  return test_support::load_test_model(std::move(b), dir, num_blocks, kBlockSize, kv);
}

std::string write_model(const std::string& shape, DType dt) {
  return test_support::write_test_model(shape, dt, "mlxs_cuda_" + shape + "_" + dtype_name(dt), 11);
}

using Param = std::tuple<std::string, DType>;

class CudaDecoder : public ::testing::TestWithParam<Param> {};

TEST_P(CudaDecoder, GreedyTokensMatchCpu) {
  auto [shape, dt] = GetParam();
  CudaBackendConfig precise;
  precise.precision = CudaPrecision::kPrecise;
  auto gpu = make_cuda_backend(precise);
  if (!gpu.ok()) GTEST_SKIP() << gpu.status().to_string();
  const std::string dir = write_model(shape, dt);
  Loaded c = load(make_cpu_backend(), dir, 256, DType::kF32);
  Loaded g = load(std::move(*gpu), dir, 256, DType::kF32);
  ASSERT_TRUE(c.cache && g.cache);
  const int V = c.model->config().vocab_size;
  std::vector<std::vector<int32_t>> prompts = {prompt(13, 1, V), prompt(6, 2, V), prompt(21, 3, V)};
  GenRun ref = generate(*c.model, *c.cache, prompts, 5, 32, false);
  GenRun got = generate(*g.model, *g.cache, prompts, 5, 32, true);
  for (size_t s = 0; s < prompts.size(); ++s) {
    ASSERT_EQ(ref.generated[s].size(), 32u);
    EXPECT_EQ(got.generated[s], ref.generated[s]) << "sequence " << s;
  }
  // Pipelined as the engine runs it: two steps in flight, the second one's tokens read on the
  // device from the first one's argmax (placeholders).
  GenRun whole = generate(*g.model, *g.cache, prompts, 64, 32, true);
  GenRun piped = generate_pipelined(*g.model, *g.cache, prompts, 32);
  EXPECT_EQ(piped.generated, whole.generated);
  // The same run again on the GPU replays recorded decode graphs: it must not drift.
  GenRun again = generate(*g.model, *g.cache, prompts, 5, 32, false);
  EXPECT_EQ(again.generated, got.generated);
}

// The serving configuration (bf16 activations into the linears, bf16 KV cache) stays within
// the bf16 bound of the reference logits.
TEST_P(CudaDecoder, FastModeLogitsNearCpu) {
  auto [shape, dt] = GetParam();
  auto gpu = make_cuda_backend(kFastMode);
  if (!gpu.ok()) GTEST_SKIP() << gpu.status().to_string();
  const std::string dir = write_model(shape, dt);
  Loaded c = load(make_cpu_backend(), dir, 256, DType::kF32);
  Loaded g = load(std::move(*gpu), dir, 256, DType::kBF16);
  ASSERT_TRUE(c.cache && g.cache);
  const int V = c.model->config().vocab_size;
  std::vector<std::vector<int32_t>> prompts = {prompt(13, 1, V), prompt(6, 2, V), prompt(21, 3, V)};
  GenRun ref = generate(*c.model, *c.cache, prompts, 5, 1, false);
  GenRun got = generate(*g.model, *g.cache, prompts, 5, 1, false);
  ASSERT_EQ(got.first_logits.size(), ref.first_logits.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.first_logits.size(); ++i) {
    ASSERT_FALSE(std::isnan(got.first_logits[i]));
    num += std::pow(double(got.first_logits[i]) - ref.first_logits[i], 2);
    den += std::pow(double(ref.first_logits[i]), 2);
  }
  EXPECT_LE(std::sqrt(num / den), 1e-2);
}

INSTANTIATE_TEST_SUITE_P(Models, CudaDecoder,
                         ::testing::Combine(::testing::Values("tiny-llama", "tiny-qwen3"),
                                            ::testing::Values(DType::kF32, DType::kBF16)),
                         [](const auto& info) {
                           std::string n =
                               std::get<0>(info.param) + "_" + dtype_name(std::get<1>(info.param));
                           for (auto& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

// A sequence alone and the same sequence inside a batch of 64 (serving configuration).
TEST(CudaBatchInvariance, SequenceAloneAndInBatchOf64DecodeAlike) {
  auto gpu = make_cuda_backend(kFastMode);
  if (!gpu.ok()) GTEST_SKIP() << gpu.status().to_string();
  const std::string dir = write_model("tiny-llama", DType::kBF16);
  Loaded g = load(std::move(*gpu), dir, 64 * 16, DType::kBF16);
  ASSERT_TRUE(g.cache);
  const int V = g.model->config().vocab_size;
  std::vector<std::vector<int32_t>> batch;
  for (int s = 0; s < 64; ++s) batch.push_back(prompt(7 + s % 9, 10 + s, V));
  GenRun alone = generate(*g.model, *g.cache, {batch[0]}, 8, 32, true);
  GenRun together = generate(*g.model, *g.cache, batch, 8, 32, true);
  ASSERT_EQ(alone.generated[0].size(), 32u);
  EXPECT_EQ(together.generated[0], alone.generated[0]);
}

}  // namespace
}  // namespace mlxs
