#include "sample/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>

#include "sample/sample_math.h"

namespace mlxs {
namespace {

std::vector<float> logits_of(std::vector<double> probs) {
  std::vector<float> z;
  for (double p : probs) z.push_back(float(std::log(p)));
  return z;
}

TEST(Sampler, GreedyTakesTheArgmaxAndLowestIdOnTies) {
  SamplingParams p;
  p.temperature = 0;
  SamplingHistory h;
  EXPECT_EQ(sample(std::vector<float>{1, 3, 2}, p, h, 0).token, 1);
  EXPECT_EQ(sample(std::vector<float>{5, 5, 2}, p, h, 0).token, 0);
}

TEST(Sampler, SameSeedSameStepSameToken_DifferentStepsDiffer) {
  auto z = logits_of({0.25, 0.25, 0.25, 0.25});
  SamplingParams p;
  p.seed = 42;
  SamplingHistory h;
  std::map<int, int> seen;
  for (uint64_t step = 0; step < 64; ++step) {
    int a = sample(z, p, h, step).token, b = sample(z, p, h, step).token;
    EXPECT_EQ(a, b);
    ++seen[a];
  }
  EXPECT_EQ(seen.size(), 4u);  // 64 draws over 4 equal tokens hit all of them
}

TEST(Sampler, EmpiricalFrequenciesFollowTheTemperatureScaledDistribution) {
  auto z = logits_of({0.5, 0.3, 0.15, 0.05});
  for (float temp : {1.0f, 0.5f}) {
    SamplingParams p;
    p.temperature = temp;
    p.seed = 7;
    SamplingHistory h;
    std::vector<int> counts(4);
    const int n = 20000;
    for (int i = 0; i < n; ++i) ++counts[size_t(sample(z, p, h, uint64_t(i)).token)];
    std::vector<double> want = {0.5, 0.3, 0.15, 0.05};
    double norm = 0;
    for (auto& w : want) norm += w = std::pow(w, 1.0 / temp);
    for (int t = 0; t < 4; ++t) {
      double expect = want[size_t(t)] / norm;
      double sd = std::sqrt(expect * (1 - expect) / n);
      EXPECT_NEAR(double(counts[size_t(t)]) / n, expect, 5 * sd)
          << "temp " << temp << " token " << t;
    }
  }
}

// Frequencies of n seeded draws (steps 0..n-1) against `want` (probabilities summing to 1):
// every token within 5 standard deviations of its expected frequency.
void expect_frequencies(const std::vector<float>& z, const SamplingParams& p,
                        const std::vector<double>& want, const std::string& what) {
  SamplingHistory h;
  std::vector<int> counts(z.size());
  const int n = 20000;
  for (int i = 0; i < n; ++i) ++counts[size_t(sample(z, p, h, uint64_t(i)).token)];
  for (size_t t = 0; t < z.size(); ++t) {
    const double sd = std::sqrt(std::max(want[t] * (1 - want[t]), 1e-12) / n);
    EXPECT_NEAR(double(counts[t]) / n, want[t], 5 * sd + 1e-12) << what << " token " << t;
  }
}

TEST(Sampler, RestrictedDrawsFollowTheRenormalisedSoftmax) {
  auto z = logits_of({0.4, 0.3, 0.2, 0.1});
  SamplingParams k2;
  k2.top_k = 2;
  k2.seed = 11;
  expect_frequencies(z, k2, {0.4 / 0.7, 0.3 / 0.7, 0, 0}, "top_k 2");
  SamplingParams p75;
  p75.top_p = 0.75f;
  p75.seed = 12;
  expect_frequencies(z, p75, {0.4 / 0.9, 0.3 / 0.9, 0.2 / 0.9, 0}, "top_p 0.75");
  SamplingParams m;
  m.min_p = 0.5f;
  m.temperature = 0.5f;  // min-p on p^2 (0.16, 0.09, 0.04, 0.01): keeps the first two
  m.seed = 13;
  expect_frequencies(z, m, {0.16 / 0.25, 0.09 / 0.25, 0, 0}, "min_p 0.5, temperature 0.5");
}

// The sampler skips the logs of candidates that cannot win; the token must still be the argmax
// of draw_score over every candidate (what the GPU computes), ties to the lowest id. Wide and
// narrow logit spreads, low and high temperatures, min-p, many seeds and steps.
TEST(Sampler, PrunedDrawEqualsTheFullGumbelArgmax) {
  std::mt19937 rng(7);
  int checked = 0;
  for (double spread : {0.5, 4.0, 12.0, 40.0}) {
    for (float temperature : {0.3f, 1.0f, 1.7f}) {
      for (float min_p : {0.0f, 0.02f}) {
        std::normal_distribution<float> n(0.f, float(spread));
        std::vector<float> z(3000);
        for (float& v : z) v = n(rng);
        z[17] = z[18];  // a tie
        const float top = *std::max_element(z.begin(), z.end());
        const double inv_t = 1.0 / double(temperature);
        const double floor = min_p > 0 ? std::log(double(min_p)) : -INFINITY;
        for (uint64_t seed = 1; seed <= 5; ++seed) {
          for (uint64_t step = 0; step < 8; ++step) {
            SamplingParams p;
            p.temperature = temperature;
            p.min_p = min_p;
            p.seed = seed;
            int32_t want = -1;
            double best = -INFINITY;
            for (int32_t i = 0; i < int32_t(z.size()); ++i) {
              const double scaled = sample_math::scaled_logit(z[size_t(i)], top, inv_t);
              if (scaled < floor) continue;
              const double sc = sample_math::draw_score(scaled, seed, step, uint32_t(i));
              if (want < 0 || sc > best) best = sc, want = i;
            }
            ASSERT_EQ(sample(z, p, SamplingHistory{}, step).token, want)
                << "spread " << spread << " T " << temperature << " min_p " << min_p << " seed "
                << seed << " step " << step;
            ++checked;
          }
        }
      }
    }
  }
  EXPECT_EQ(checked, 4 * 3 * 2 * 5 * 8);
}

TEST(Sampler, TopKBreaksLogitTiesByLowestId) {
  SamplingParams p;
  p.top_k = 2;
  SamplingHistory h;
  std::vector<float> z = {0, 1, 1, 1, 1};
  std::map<int, int> seen;
  for (uint64_t i = 0; i < 500; ++i) ++seen[sample(z, p, h, i).token];
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_TRUE(seen.count(1) && seen.count(2));
}

TEST(Sampler, UniformDrawIsInTheOpenUnitIntervalWithMeanOneHalf) {
  double sum = 0;
  for (int32_t t = 0; t < 10000; ++t) {
    const double u = uniform_draw(5, 3, t);
    ASSERT_GT(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / 10000, 0.5, 5 * std::sqrt(1.0 / 12 / 10000));
  EXPECT_EQ(uniform_draw(5, 3, 7), uniform_draw(5, 3, 7));
  EXPECT_NE(uniform_draw(5, 3, 7), uniform_draw(5, 4, 7));
  EXPECT_NE(uniform_draw(5, 3, 7), uniform_draw(6, 3, 7));
}

TEST(Sampler, SampleBatchCarriesTheHistoryThePenaltiesUse) {
  SamplingParams p;
  p.repetition_penalty = 1.3f;
  p.presence_penalty = 0.4f;
  p.frequency_penalty = 0.2f;
  p.top_logprobs = 5;
  SamplingHistory h;
  std::vector<int32_t> prompt = {3, 5, 3, 9};
  h.add_prompt(prompt);
  for (int32_t t : {5, 7, 7, 2}) h.add_output(t);
  SampleBatch b;
  b.add_row(p, h, 4);
  SamplingParams rep_only;
  rep_only.repetition_penalty = 1.3f;
  b.add_row(rep_only, h, 4);
  b.add_row(SamplingParams{}, h, 4);  // no penalties: no entries
  ASSERT_EQ(b.num_rows(), 3);
  EXPECT_EQ(b.history_start[3] - b.history_start[2], 0);
  std::vector<float> z = {0.5f, -1, 2, 1.5f, 0, 3, -2, 2.5f, 1, 0.25f};
  for (int r = 0; r < 2; ++r) {
    auto want = sample(z, b.params[size_t(r)], h, 4);
    auto got = sample(z, b.params[size_t(r)], b.history(r), 4);
    EXPECT_EQ(got.token, want.token) << "row " << r;
    ASSERT_EQ(got.top.size(), want.top.size());
    for (size_t i = 0; i < want.top.size(); ++i) {
      EXPECT_EQ(got.top[i].token, want.top[i].token) << "row " << r;
      EXPECT_EQ(got.top[i].logprob, want.top[i].logprob) << "row " << r;
    }
  }
}

TEST(Sampler, TopKTopPAndMinPRestrictTheCandidates) {
  auto z = logits_of({0.4, 0.3, 0.2, 0.1});
  SamplingHistory h;
  auto support = [&](SamplingParams p) {
    std::map<int, int> seen;
    for (uint64_t i = 0; i < 2000; ++i) ++seen[sample(z, p, h, i).token];
    return seen.size();
  };
  SamplingParams k2;
  k2.top_k = 2;
  EXPECT_EQ(support(k2), 2u);
  SamplingParams p75;
  p75.top_p = 0.75f;  // 0.4 + 0.3 = 0.7 < 0.75, so three tokens
  EXPECT_EQ(support(p75), 3u);
  SamplingParams m;
  m.min_p = 0.6f;  // keeps p >= 0.24: tokens 0 and 1
  EXPECT_EQ(support(m), 2u);
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  SamplingParams p;
  p.temperature = 0;
  p.repetition_penalty = 2.0f;
  p.top_logprobs = 3;
  SamplingHistory h;
  std::vector<int32_t> prompt = {0, 2};
  h.add_prompt(prompt);
  // 4 -> 2 (seen, positive), 3 stays, -1 -> -2 (seen, negative).
  auto r = sample(std::vector<float>{4, 3, -1}, p, h, 0);
  EXPECT_EQ(r.token, 1);
  ASSERT_EQ(r.top.size(), 3u);
  EXPECT_EQ(r.top[0].token, 1);
  EXPECT_EQ(r.top[1].token, 0);
  EXPECT_NEAR(r.top[1].logprob - r.top[0].logprob, 2.0f - 3.0f, 1e-5);
  EXPECT_NEAR(r.top[2].logprob - r.top[0].logprob, -2.0f - 3.0f, 1e-5);
}

TEST(Sampler, PresenceAndFrequencyPenaltiesCountOnlyTheOutput) {
  SamplingParams p;
  p.temperature = 0;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  p.top_logprobs = 2;
  SamplingHistory h;
  std::vector<int32_t> prompt = {1};
  h.add_prompt(prompt);  // prompt tokens are not penalised
  h.add_output(0);
  h.add_output(0);
  auto r = sample(std::vector<float>{2.0f, 1.5f}, p, h, 0);
  // token 0: 2 - 0.5 - 2 * 0.25 = 1.0 < 1.5
  EXPECT_EQ(r.token, 1);
  EXPECT_NEAR(r.top[1].logprob - r.top[0].logprob, 1.0f - 1.5f, 1e-5);
}

TEST(Sampler, LogprobIsLogSoftmaxOfTheChosenToken) {
  SamplingParams p;
  p.temperature = 0;
  SamplingHistory h;
  auto r = sample(logits_of({0.7, 0.2, 0.1}), p, h, 0);
  EXPECT_EQ(r.token, 0);
  EXPECT_NEAR(r.logprob, std::log(0.7), 1e-5);
}

}  // namespace
}  // namespace mlxs
