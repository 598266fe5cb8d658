// The CUDA backend's sample_rows against the host sampler sample() (the reference) on the same
// random logits: for every parameter combination, both vocab sizes, several seeds and steps,
// the tokens must be identical and the logprobs within 1e-4. Outputs are poisoned before each
// call (token -1, logprob NaN). Skipped where the build has no CUDA or the machine no GPU.
// Run: ./build/cuda/mlxs_tests --gtest_filter='CudaSample*'
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>

#include "backend/cuda/cuda_backend.h"
#include "sample/sampler.h"
#include "util/dtype.h"

namespace mlxs {
namespace {

// backend.cuda in the fast (bf16) mode, every other key at its default.
const CudaBackendConfig kFastMode = [] {
  CudaBackendConfig c;
  c.precision = CudaPrecision::kFast;
  return c;
}();

struct Config {
  std::string name;
  SamplingParams params;
};

std::vector<Config> configs() {
  auto make = [](std::string name, auto set) {
    SamplingParams p;
    set(p);
    return Config{std::move(name), p};
  };
  return {
      make("temperature 1", [](SamplingParams&) {}),
      make("temperature 0.6", [](SamplingParams& p) { p.temperature = 0.6f; }),
      make("temperature 1.8", [](SamplingParams& p) { p.temperature = 1.8f; }),
      make("greedy", [](SamplingParams& p) { p.temperature = 0; }),
      make("top_k 1", [](SamplingParams& p) { p.top_k = 1; }),
      make("top_k 5", [](SamplingParams& p) { p.top_k = 5; }),
      make("top_k 50", [](SamplingParams& p) { p.top_k = 50, p.temperature = 0.8f; }),
      make("top_p 0.5", [](SamplingParams& p) { p.top_p = 0.5f; }),
      make("top_p 0.9", [](SamplingParams& p) { p.top_p = 0.9f; }),
      make("top_p 0.95 temperature 1.5",
           [](SamplingParams& p) { p.top_p = 0.95f, p.temperature = 1.5f; }),
      make("min_p 0.05", [](SamplingParams& p) { p.min_p = 0.05f; }),
      make("penalties",
           [](SamplingParams& p) {
             p.repetition_penalty = 1.3f, p.presence_penalty = 0.5f, p.frequency_penalty = 0.2f;
           }),
      make("penalties greedy",
           [](SamplingParams& p) {
             p.temperature = 0, p.repetition_penalty = 1.5f, p.frequency_penalty = 0.7f;
           }),
      make("mix: top_k 50 top_p 0.9 min_p 0.05 temperature 0.8 penalties",
           [](SamplingParams& p) {
             p.top_k = 50, p.top_p = 0.9f, p.min_p = 0.05f, p.temperature = 0.8f;
             p.repetition_penalty = 1.1f, p.presence_penalty = 0.3f;
           }),
      make("mix: top_k 5 top_p 0.5", [](SamplingParams& p) { p.top_k = 5, p.top_p = 0.5f; }),
  };
}

class CudaSample : public ::testing::Test {
 protected:
  void SetUp() override {
    auto gpu = make_cuda_backend(kFastMode);
    if (!gpu.ok()) GTEST_SKIP() << gpu.status().to_string();
    gpu_ = std::move(*gpu);
  }

  // Row logits of one kind: 0 = normal(0, 2), 1 = the same rounded to bf16 (many exact ties),
  // 2 = normal(0, 1) with one token 8 above the rest (a peaked row).
  std::vector<float> row_logits(int64_t V, int kind) {
    std::normal_distribution<float> normal(0.f, kind == 2 ? 1.f : 2.f);
    std::vector<float> z(static_cast<size_t>(V));
    for (auto& x : z) x = normal(rng_);
    if (kind == 1) {
      for (auto& x : z) x = bf16_to_f32(f32_to_bf16(x));
    }
    if (kind == 2) z[rng_() % size_t(V)] += 8.f;
    return z;
  }

  // A history that penalises the row's ten best tokens (output, some repeated) and a random
  // prompt.
  SamplingHistory history_for(const std::vector<float>& z) {
    SamplingHistory h;
    std::vector<int32_t> prompt;
    for (int i = 0; i < 200; ++i) prompt.push_back(int32_t(rng_() % z.size()));
    h.add_prompt(prompt);
    std::vector<int32_t> ids(z.size());
    std::iota(ids.begin(), ids.end(), 0);
    std::partial_sort(ids.begin(), ids.begin() + 10, ids.end(),
                      [&](int32_t a, int32_t b) { return z[size_t(a)] > z[size_t(b)]; });
    for (int i = 0; i < 10; ++i) {
      for (int n = 0; n <= i % 3; ++n) h.add_output(ids[size_t(i)]);
    }
    return h;
  }

  // Samples R rows of V logits with params[r] on the GPU and on the host; expects identical
  // tokens and logprobs within 1e-4.
  void check(int64_t V, const std::vector<SamplingParams>& params, uint64_t seed_base,
             const std::string& what) {
    const int64_t R = int64_t(params.size());
    std::vector<float> logits;
    std::vector<SamplingHistory> histories;
    SampleBatch batch;
    for (int64_t r = 0; r < R; ++r) {
      auto z = row_logits(V, int(r % 3));
      histories.push_back(history_for(z));
      logits.insert(logits.end(), z.begin(), z.end());
      SamplingParams p = params[size_t(r)];
      p.seed = seed_base * 7919 + uint64_t(r);
      batch.add_row(p, histories.back(), seed_base * 13 + uint64_t(r));
    }
    Tensor x = gpu_->alloc(DType::kF32, R, V);
    Tensor tokens = gpu_->alloc(DType::kI32, R, 1), logprobs = gpu_->alloc(DType::kF32, R, 1);
    ASSERT_TRUE(x.data && tokens.data && logprobs.data);
    std::vector<int32_t> got_tokens(static_cast<size_t>(R), -1);
    std::vector<float> got_logprobs(static_cast<size_t>(R),
                                    std::numeric_limits<float>::quiet_NaN());
    gpu_->upload(logits.data(), logits.size() * 4, x.data);
    gpu_->upload(got_tokens.data(), size_t(R) * 4, tokens.data);
    gpu_->upload(got_logprobs.data(), size_t(R) * 4, logprobs.data);
    gpu_->sample_rows(x, batch, tokens, logprobs);
    gpu_->download(tokens.data, size_t(R) * 4, got_tokens.data());
    gpu_->download(logprobs.data, size_t(R) * 4, got_logprobs.data());
    EXPECT_TRUE(gpu_->take_error().ok());
    for (int64_t r = 0; r < R; ++r) {
      const auto want =
          sample(std::span<const float>(logits).subspan(size_t(r * V), size_t(V)),
                 batch.params[size_t(r)], histories[size_t(r)], batch.steps[size_t(r)]);
      EXPECT_EQ(got_tokens[size_t(r)], want.token) << what << ", V " << V << ", row " << r;
      EXPECT_FALSE(std::isnan(got_logprobs[size_t(r)])) << what << ", V " << V << ", row " << r;
      EXPECT_NEAR(got_logprobs[size_t(r)], want.logprob, 1e-4)
          << what << ", V " << V << ", row " << r;
    }
    gpu_->free(x);
    gpu_->free(tokens);
    gpu_->free(logprobs);
  }

  std::mt19937 rng_{4321};
  std::unique_ptr<Backend> gpu_;
};

TEST_F(CudaSample, EachParameterCombinationMatchesTheHostSampler) {
  for (int64_t V : {int64_t(1000), int64_t(128256)}) {
    for (const Config& c : configs()) {
      for (uint64_t seed : {1, 2, 3}) {
        check(V, std::vector<SamplingParams>(12, c.params), seed, c.name);
      }
    }
  }
}

TEST_F(CudaSample, MixedBatchesUseEachRowsOwnParameters) {
  const auto all = configs();
  std::vector<SamplingParams> mixed;
  for (int r = 0; r < 45; ++r) mixed.push_back(all[size_t(r) % all.size()].params);
  for (int64_t V : {int64_t(1000), int64_t(128256)}) {
    for (uint64_t seed : {5, 6}) check(V, mixed, seed, "mixed batch");
  }
}

// 4000 steps of one row at temperature 1 over 5 tokens: the empirical frequencies of the
// GPU's draws follow softmax(z), so the per-(seed, step, token) noise is really random.
TEST_F(CudaSample, DrawsAcrossStepsFollowTheSoftmax) {
  const int64_t V = 5, R = 4000;
  const std::vector<float> z = {1.0f, 0.5f, 0.0f, -0.5f, -3.0f};
  std::vector<float> logits;
  SampleBatch batch;
  SamplingParams p;
  p.seed = 99;
  for (int64_t r = 0; r < R; ++r) {
    logits.insert(logits.end(), z.begin(), z.end());
    batch.add_row(p, SamplingHistory{}, uint64_t(r));
  }
  Tensor x = gpu_->alloc(DType::kF32, R, V);
  Tensor tokens = gpu_->alloc(DType::kI32, R, 1), logprobs = gpu_->alloc(DType::kF32, R, 1);
  gpu_->upload(logits.data(), logits.size() * 4, x.data);
  gpu_->sample_rows(x, batch, tokens, logprobs);
  std::vector<int32_t> got(static_cast<size_t>(R));
  gpu_->download(tokens.data, size_t(R) * 4, got.data());
  ASSERT_TRUE(gpu_->take_error().ok());
  double norm = 0;
  for (float v : z) norm += std::exp(double(v));
  std::vector<int> counts(static_cast<size_t>(V));
  for (int32_t t : got) {
    ASSERT_GE(t, 0);
    ASSERT_LT(t, V);
    ++counts[size_t(t)];
  }
  for (int64_t t = 0; t < V; ++t) {
    const double want = std::exp(double(z[size_t(t)])) / norm;
    const double sd = std::sqrt(want * (1 - want) / double(R));
    EXPECT_NEAR(double(counts[size_t(t)]) / double(R), want, 5 * sd) << "token " << t;
  }
  gpu_->free(x);
  gpu_->free(tokens);
  gpu_->free(logprobs);
}

}  // namespace
}  // namespace mlxs
