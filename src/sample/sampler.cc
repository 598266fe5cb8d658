#include "sample/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace mlxs {

void SamplingHistory::add_prompt(std::span<const int32_t> tokens) {
  for (int32_t t : tokens) {
    if (!seen_set[t]) {
      seen_set[t] = true;
      seen.push_back(t);
    }
  }
}

void SamplingHistory::add_output(int32_t token) {
  ++output_counts[token];
  if (!seen_set[token]) {
    seen_set[token] = true;
    seen.push_back(token);
  }
}

double uniform_draw(uint64_t seed, uint64_t step) {
  uint64_t x = seed ^ (step * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull);
  for (int i = 0; i < 2; ++i) {  // two rounds of splitmix64
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    x ^= x >> 31;
  }
  return double(x >> 11) * (1.0 / 9007199254740992.0);
}

namespace {

void apply_penalties(std::vector<float>& z, const SamplingParams& p, const SamplingHistory& h) {
  const int32_t V = int32_t(z.size());
  if (p.repetition_penalty != 1.0f) {
    for (int32_t t : h.seen) {
      if (t < 0 || t >= V) continue;
      float& v = z[size_t(t)];
      v = v > 0 ? v / p.repetition_penalty : v * p.repetition_penalty;
    }
  }
  if (p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
    for (const auto& [t, n] : h.output_counts) {
      if (t < 0 || t >= V) continue;
      z[size_t(t)] -= p.presence_penalty + p.frequency_penalty * float(n);
    }
  }
}

// Token with the largest value; ties go to the lowest id.
int32_t argmax(const std::vector<float>& z) {
  return int32_t(std::max_element(z.begin(), z.end()) - z.begin());
}

void fill_logprobs(const std::vector<float>& z, const SamplingParams& p, SampleResult* r) {
  const float m = *std::max_element(z.begin(), z.end());
  double sum = 0;
  for (float v : z) sum += std::exp(double(v - m));
  const float log_norm = m + float(std::log(sum));
  r->logprob = z[size_t(r->token)] - log_norm;
  if (p.top_logprobs <= 0) return;
  std::vector<int32_t> idx(z.size());
  std::iota(idx.begin(), idx.end(), 0);
  const size_t k = std::min(size_t(p.top_logprobs), idx.size());
  std::partial_sort(idx.begin(), idx.begin() + ptrdiff_t(k), idx.end(), [&](int32_t a, int32_t b) {
    return z[size_t(a)] != z[size_t(b)] ? z[size_t(a)] > z[size_t(b)] : a < b;
  });
  for (size_t i = 0; i < k; ++i) r->top.push_back({idx[i], z[size_t(idx[i])] - log_norm});
}

// Draws from softmax(z / T) restricted by min-p, top-k and top-p: a pure function of
// (z, params, seed, step). The inverse-CDF walk goes through the candidates in decreasing logit
// order (ties: lower id first) when top-k or top-p needs that order, else in id order, so the
// plain case (temperature alone) is O(V) with no sort.
int32_t draw(const std::vector<float>& z, const SamplingParams& p, uint64_t step) {
  const double inv_t = 1.0 / double(p.temperature);
  const float top = *std::max_element(z.begin(), z.end());
  // min-p keeps p_i >= min_p * p_max, i.e. (z_i - top) / T >= log(min_p).
  const double floor = p.min_p > 0 ? std::log(double(p.min_p)) : -INFINITY;
  std::vector<int32_t> idx;
  idx.reserve(z.size());
  for (int32_t i = 0; i < int32_t(z.size()); ++i) {
    if ((double(z[size_t(i)]) - top) * inv_t >= floor) idx.push_back(i);
  }
  auto by_logit = [&](int32_t a, int32_t b) {
    return z[size_t(a)] != z[size_t(b)] ? z[size_t(a)] > z[size_t(b)] : a < b;
  };
  if (p.top_k > 0 && size_t(p.top_k) < idx.size()) {
    std::nth_element(idx.begin(), idx.begin() + p.top_k, idx.end(), by_logit);
    idx.resize(size_t(p.top_k));
  }
  const bool need_order = p.top_p < 1.0f;
  if (need_order || p.top_k > 0) std::sort(idx.begin(), idx.end(), by_logit);
  std::vector<double> prob(idx.size());
  double sum = 0;
  for (size_t i = 0; i < idx.size(); ++i) {
    sum += prob[i] = std::exp((double(z[size_t(idx[i])]) - top) * inv_t);
  }
  size_t keep = idx.size();
  if (need_order) {
    double cum = 0;
    for (size_t i = 0; i < keep; ++i) {
      cum += prob[i] / sum;
      if (cum >= double(p.top_p)) {
        keep = i + 1;
        break;
      }
    }
  }
  double mass = 0;
  for (size_t i = 0; i < keep; ++i) mass += prob[i];
  double u = uniform_draw(p.seed, step) * mass, cum = 0;
  for (size_t i = 0; i < keep; ++i) {
    cum += prob[i];
    if (u < cum) return idx[i];
  }
  return idx[keep - 1];
}

}  // namespace

SampleResult sample(std::span<const float> logits, const SamplingParams& params,
                    const SamplingHistory& history, uint64_t step) {
  std::vector<float> z(logits.begin(), logits.end());
  apply_penalties(z, params, history);
  SampleResult r;
  r.token = params.temperature <= 0.0f || params.top_k == 1 ? argmax(z) : draw(z, params, step);
  fill_logprobs(z, params, &r);
  return r;
}

}  // namespace mlxs
