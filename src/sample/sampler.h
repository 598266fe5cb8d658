// Turns one row of logits into a token: penalties, temperature, top-k, top-p, min-p, seeded
// draws, logprobs. Pure function of (logits, params, history, step): the same seed and params
// give the same token whatever else is in the batch. This host sampler is the reference that
// Backend::sample_rows (src/backend/backend.h) reproduces on a device.
//
// The draw is Gumbel-max: token = argmax over the kept candidates of (z_i - top) / T + g_i,
// with g_i = -log(-log(u_i)) and u_i from an integer hash of (seed, step, i) (sample_math.h),
// ties to the lowest id. That samples exactly from softmax(z / T) restricted to the candidates,
// and it needs no sum, so a parallel reduction finds the same token as this sequential loop.
//
// Candidates, in the total order (logit descending, id ascending):
//   min-p: keep (z_i - top) / T >= log(min_p)               (a threshold on the value)
//   top-k: keep exactly the first k of those                 (ties broken by id)
//   top-p: keep the shortest prefix of those whose softmax mass reaches top_p.
// The masses of top-p are fixed-point integers (sample_math::fixed_weight, 2^-40 units), so
// they too are exact and independent of summation order. What can still differ between this
// code and a device is the library exp/log in double (within 1 ulp): a top-p boundary whose
// running mass is within one 2^-40 unit of its target, or two scores within ~1e-16, can then
// fall either way; with random logits that is practically never.
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
  int top_logprobs = 0;  // alternatives to report, 0..20
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
  float logprob = 0.f;            // log-softmax of the penalised logits, before temperature
  std::vector<TokenLogprob> top;  // top_logprobs best alternatives, most likely first
};

// Samples from `logits` (vocab entries). `step` is the index of the token being generated
// (0 for the first); with the seed it fixes the random draw. Thread-safe (no shared state).
SampleResult sample(std::span<const float> logits, const SamplingParams& params,
                    const SamplingHistory& history, uint64_t step);

// Uniform in (0, 1) from (seed, step, token): the counter-based generator behind the draw's
// noise (sample_math::hash3). Integer ops only, so identical on every backend.
double uniform_draw(uint64_t seed, uint64_t step, int32_t token);

// The sampling inputs of R rows for Backend::sample_rows: per-row parameters and step, and the
// penalty history in CSR form. Row r's history entries are [history_start[r],
// history_start[r + 1]) of the three history arrays: a token id, its count in the output (0 if
// only in the prompt) and whether it was seen in the prompt or the output (repetition penalty).
// top_logprobs is ignored (rows that want alternatives take the logits to the host).
struct SampleBatch {
  std::vector<SamplingParams> params;     // R
  std::vector<uint64_t> steps;            // R: index of the token being generated
  std::vector<int32_t> history_start{0};  // R + 1
  std::vector<int32_t> history_token;
  std::vector<int32_t> history_count;
  std::vector<uint8_t> history_seen;

  int num_rows() const { return int(params.size()); }
  // Appends a row; only the history entries its penalties use are copied.
  void add_row(const SamplingParams& p, const SamplingHistory& h, uint64_t step);
  // Row r's history as a SamplingHistory (what sample() takes).
  SamplingHistory history(int r) const;
};

}  // namespace mlxs
