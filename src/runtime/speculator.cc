#include "runtime/speculator.h"

#include <algorithm>
#include <cmath>

#include "runtime/prompt_lookup.h"

namespace mlxs {

bool can_speculate(const Request& r) {
  const SamplingParams& p = r.sampling;
  return (p.temperature <= 0.0f || p.top_k == 1) && !r.logprobs && p.top_logprobs == 0 &&
         p.repetition_penalty == 1.0f && p.presence_penalty == 0.0f &&
         p.frequency_penalty == 0.0f && r.constraint == nullptr && r.embeddings.empty();
}

int Speculator::num_to_propose(const Request& r) const {
  if (r.recent_acceptance < config_.min_acceptance_rate) {
    return r.num_generated % 16 == 0 ? std::min(2, config_.num_tokens) : 0;
  }
  const double k = std::ceil(std::min(r.recent_accepted, 1e6)) + 1;
  return std::clamp(int(k), 1, config_.num_tokens);
}

sched::Proposals Speculator::propose(const sched::Scheduler& scheduler) const {
  sched::Proposals out;
  if (!config_.enabled) return out;
  for (sched::SeqId id : scheduler.running_ids()) {
    const Request* r = requests_(id);
    const sched::Sequence* seq = scheduler.find(id);
    if (r == nullptr || seq == nullptr || !can_speculate(*r)) continue;
    if (seq->num_uncomputed_tokens() != 1 || seq->tokens.back() < 0) continue;
    const int k = num_to_propose(*r);
    if (k == 0) continue;
    std::vector<int32_t> p = prompt_lookup(seq->tokens, k, config_.min_ngram, config_.max_ngram);
    if (config_.force_rejection) {
      for (int32_t& t : p) t = (t + 1) % std::max(config_.vocab_size, 1);
    }
    if (!p.empty()) out.emplace(id, std::move(p));
  }
  return out;
}

}  // namespace mlxs
