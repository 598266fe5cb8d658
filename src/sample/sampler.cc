#include "sample/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "sample/sample_math.h"

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

double uniform_draw(uint64_t seed, uint64_t step, int32_t token) {
  return sample_math::open_unit(sample_math::hash3(seed, step, uint32_t(token)));
}

void SampleBatch::add_row(const SamplingParams& p, const SamplingHistory& h, uint64_t step) {
  params.push_back(p);
  steps.push_back(step);
  const bool repetition = p.repetition_penalty != 1.0f;
  const bool counts = p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f;
  if (repetition) {
    for (int32_t t : h.seen) {
      auto it = h.output_counts.find(t);
      history_token.push_back(t);
      history_count.push_back(counts && it != h.output_counts.end() ? it->second : 0);
      history_seen.push_back(1);
    }
  } else if (counts) {
    for (const auto& [t, n] : h.output_counts) {
      history_token.push_back(t);
      history_count.push_back(n);
      history_seen.push_back(0);
    }
  }
  history_start.push_back(int32_t(history_token.size()));
}

SamplingHistory SampleBatch::history(int r) const {
  SamplingHistory h;
  for (int32_t e = history_start[size_t(r)]; e < history_start[size_t(r) + 1]; ++e) {
    const int32_t t = history_token[size_t(e)];
    if (history_count[size_t(e)] > 0) h.output_counts[t] = history_count[size_t(e)];
    if (history_seen[size_t(e)] && !h.seen_set[t]) {
      h.seen_set[t] = true;
      h.seen.push_back(t);
    }
  }
  return h;
}

namespace {

void apply_penalties(std::vector<float>& z, const SamplingParams& p, const SamplingHistory& h) {
  const int32_t V = int32_t(z.size());
  for (int32_t t : h.seen) {
    if (t < 0 || t >= V) continue;
    z[size_t(t)] = sample_math::penalised(z[size_t(t)], true, 0, p.repetition_penalty, 0, 0);
  }
  for (const auto& [t, n] : h.output_counts) {
    if (t < 0 || t >= V) continue;
    z[size_t(t)] = sample_math::penalised(z[size_t(t)], false, n, 1.0f, p.presence_penalty,
                                          p.frequency_penalty);
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

// Draws from softmax(z / T) restricted by min-p, top-k and top-p (see sampler.h): a pure
// function of (z, params, seed, step). The plain case (temperature alone) is O(V) with no sort.
int32_t draw(const std::vector<float>& z, const SamplingParams& p, uint64_t step) {
  using namespace sample_math;
  const double inv_t = 1.0 / double(p.temperature);
  const float top = *std::max_element(z.begin(), z.end());
  const double floor = p.min_p > 0 ? std::log(double(p.min_p)) : -INFINITY;
  std::vector<int32_t> idx;
  idx.reserve(z.size());
  for (int32_t i = 0; i < int32_t(z.size()); ++i) {
    if (scaled_logit(z[size_t(i)], top, inv_t) >= floor) idx.push_back(i);
  }
  if (idx.empty()) return argmax(z);  // min_p > 1 keeps nothing; the top token stands
  auto by_order = [&](int32_t a, int32_t b) {
    return order_key(z[size_t(a)], uint32_t(a)) > order_key(z[size_t(b)], uint32_t(b));
  };
  if (p.top_k > 0 && size_t(p.top_k) < idx.size()) {
    std::nth_element(idx.begin(), idx.begin() + p.top_k, idx.end(), by_order);
    idx.resize(size_t(p.top_k));
  }
  if (p.top_p < 1.0f) {
    std::sort(idx.begin(), idx.end(), by_order);
    std::vector<uint64_t> weight(idx.size());
    uint64_t total = 0;
    for (size_t i = 0; i < idx.size(); ++i) {
      total += weight[i] = fixed_weight(scaled_logit(z[size_t(idx[i])], top, inv_t));
    }
    const uint64_t target = top_p_target(total, p.top_p);
    uint64_t mass = 0;
    size_t keep = 0;
    while (keep < idx.size() && mass < target) mass += weight[keep++];
    idx.resize(keep);
  }
  // The Gumbel-max draw, exact but without two logs per candidate: first the candidates within
  // kNear of the top scaled logit (the top token is one of them: filters always keep it), then
  // the rest, of which a candidate can only win if its noise reaches best_score + kNear, i.e.
  // if its uniform u reaches exp(-exp(-(best_score + kNear))): the others are skipped on u
  // alone (u is exact; the margin covers the rounding of the logs). The result is the argmax of
  // draw_score over every candidate, as on the GPU.
  constexpr double kNear = 8.0;
  int32_t best = -1;
  double best_score = -INFINITY;
  auto consider = [&](int32_t i, double scaled) {
    const double s = draw_score(scaled, p.seed, step, uint32_t(i));
    if (best < 0 || s > best_score || (s == best_score && i < best)) best_score = s, best = i;
  };
  for (int32_t i : idx) {
    const double scaled = scaled_logit(z[size_t(i)], top, inv_t);
    if (scaled >= -kNear) consider(i, scaled);
  }
  const double u_min = std::exp(-std::exp(-(best_score + kNear))) - 1e-9;
  for (int32_t i : idx) {
    const double scaled = scaled_logit(z[size_t(i)], top, inv_t);
    if (scaled >= -kNear || open_unit(hash3(p.seed, step, uint32_t(i))) < u_min) continue;
    consider(i, scaled);
  }
  return best;
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
