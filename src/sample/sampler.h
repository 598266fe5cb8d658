// Turns one row of logits into a token: penalties, temperature, top-k, top-p, min-p, seeded
// draws, logprobs. Pure function of (logits, params, history, step): the same seed and params
// give the same token whatever else is in the batch.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

namespace mlxs {

struct SamplingParams {
  float temperature = 1.0f;         // 0 = greedy
  int top_k = 0;                    // 0 = off
  float top_p = 1.0f;               // 1 = off
  float min_p = 0.0f;               // 0 = off
  float presence_penalty = 0.0f;    // OpenAI: minus this once for every token already generated
  float frequency_penalty = 0.0f;   // OpenAI: minus this times the token's count in the output
  float repetition_penalty = 1.0f;  // HF/CTRL: divides positive logits (multiplies negative) of
                                    // every token in the prompt or the output
  uint64_t seed = 0;
  int top_logprobs = 0;             // alternatives to report, 0..20
};

// What a sequence has seen so far, for the penalties. Owned by the caller, one per sequence.
struct SamplingHistory {
  std::unordered_map<int32_t, int> output_counts;
  std::vector<int32_t> seen;  // distinct tokens of prompt + output (repetition penalty)
  std::unordered_map<int32_t, bool> seen_set;

  void add_prompt(std::span<const int32_t> tokens);
  void add_output(int32_t token);
};

struct TokenLogprob {
  int32_t token;
  float logprob;
};

struct SampleResult {
  int32_t token = -1;
  float logprob = 0.f;               // log-softmax of the penalised logits, before temperature
  std::vector<TokenLogprob> top;     // top_logprobs best alternatives, most likely first
};

// Samples from `logits` (vocab entries). `step` is the index of the token being generated
// (0 for the first); with the seed it fixes the random draw. Thread-safe (no shared state).
SampleResult sample(std::span<const float> logits, const SamplingParams& params,
                    const SamplingHistory& history, uint64_t step);

// Uniform in [0, 1) from (seed, step): the counter-based generator behind sample().
double uniform_draw(uint64_t seed, uint64_t step);

}  // namespace mlxs
