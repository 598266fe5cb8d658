// The default implementations of the Backend interface's optional parts, on the CPU backend.
#include "backend/backend.h"

#include <gtest/gtest.h>

#include <random>

#include "sample/sampler.h"

namespace mlxs {
namespace {

// Parameters of row r of a mixed batch: every sampler feature, in turn.
SamplingParams mixed_params(int r) {
  SamplingParams p;
  p.seed = 1000 + uint64_t(r);
  switch (r % 7) {
    case 0:
      p.temperature = 0;
      break;
    case 1:
      p.temperature = 0.8f;
      break;
    case 2:
      p.top_k = 5;
      break;
    case 3:
      p.top_p = 0.9f, p.temperature = 1.3f;
      break;
    case 4:
      p.min_p = 0.05f;
      break;
    case 5:
      p.repetition_penalty = 1.2f, p.presence_penalty = 0.5f;
      break;
    default:
      p.frequency_penalty = 0.3f, p.top_k = 50, p.top_p = 0.5f;
      break;
  }
  return p;
}

TEST(BackendDefaults, CpuSampleRowsEqualsTheHostSamplerRowByRow) {
  auto cpu = make_cpu_backend();
  const int64_t R = 21, V = 1000;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.f, 3.f);
  std::vector<float> logits(size_t(R * V));
  for (auto& x : logits) x = normal(rng);
  std::vector<SamplingHistory> histories(static_cast<size_t>(R));
  SampleBatch batch;
  for (int64_t r = 0; r < R; ++r) {
    SamplingHistory& h = histories[size_t(r)];
    std::vector<int32_t> prompt;
    for (int i = 0; i < 30; ++i) prompt.push_back(int32_t(rng() % V));
    h.add_prompt(prompt);
    for (int i = 0; i < 20; ++i) h.add_output(int32_t(rng() % 40));  // repeats
    batch.add_row(mixed_params(int(r)), h, uint64_t(r % 4));
  }
  Tensor x = cpu->alloc(DType::kF32, R, V);
  Tensor tokens = cpu->alloc(DType::kI32, R, 1), logprobs = cpu->alloc(DType::kF32, R, 1);
  cpu->upload(logits.data(), logits.size() * 4, x.data);
  cpu->sample_rows(x, batch, tokens, logprobs);
  std::vector<int32_t> got_tokens(static_cast<size_t>(R));
  std::vector<float> got_logprobs(static_cast<size_t>(R));
  cpu->download(tokens.data, size_t(R) * 4, got_tokens.data());
  cpu->download(logprobs.data, size_t(R) * 4, got_logprobs.data());
  for (int64_t r = 0; r < R; ++r) {
    const auto want = sample(std::span<const float>(logits).subspan(size_t(r * V), size_t(V)),
                             mixed_params(int(r)), histories[size_t(r)], uint64_t(r % 4));
    EXPECT_EQ(got_tokens[size_t(r)], want.token) << "row " << r;
    EXPECT_EQ(got_logprobs[size_t(r)], want.logprob) << "row " << r;
  }
  cpu->free(x);
  cpu->free(tokens);
  cpu->free(logprobs);
}

}  // namespace
}  // namespace mlxs
