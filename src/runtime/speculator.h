// Speculative decoding on the engine thread: which sequences propose tokens this step, and what
// (prompt lookup, runtime/prompt_lookup.h). The design and its limits:
// docs/speculative-decoding.md.
//
// Policy, per step (propose(), before the scheduler plans it):
//  1. A sequence proposes only when its request is plain greedy (temperature 0 or top_k 1; no
//     penalties, logprobs, structured output or spliced embeddings: for those the verified
//     token would not be the one the plain path draws, or the draw needs state per token),
//     when its next token is its only missing one, and when that token is known.
//  2. It proposes up to k tokens; the scheduler trims them to the step's token budget, the
//     request's max_tokens and context, and the free KV blocks. k (num_to_propose()) adapts to
//     the sequence's running acceptance: speculative.num_tokens at first, then one more than
//     the proposals it recently had accepted per step (at most num_tokens); none while its
//     recent share of accepted proposals is below speculative.min_acceptance_rate, except for
//     a probe of 2 tokens every 16th token, so a sequence that turns repetitive speculates again.
//  3. The verdict comes back per sequence (record()): the proposals it verified and how many
//     were accepted, counted on its Request (MetadataChunk::draft_tokens_accepted).
#pragma once

#include <functional>

#include "runtime/request.h"
#include "sched/scheduler.h"

namespace mlxs {

struct SpeculatorConfig {
  bool enabled = false;
  int num_tokens = 4;
  int min_ngram = 1;
  int max_ngram = 3;
  double min_acceptance_rate = 0.1;
  bool force_rejection = false;  // benchmarks: each proposal + 1 (nearly always rejected)
  int vocab_size = 0;            // the model's, for force_rejection
};

// True when r's tokens are the same with and without speculation under the greedy rule
// (policy 1).
bool can_speculate(const Request& r);

class Speculator {
 public:
  using RequestLookup = std::function<const Request*(sched::SeqId)>;

  Speculator(SpeculatorConfig config, RequestLookup requests)
      : config_(config), requests_(std::move(requests)) {}

  bool enabled() const { return config_.enabled; }
  // Proposals for the running sequences of `scheduler` (policy 1 and 2); empty when disabled.
  sched::Proposals propose(const sched::Scheduler& scheduler) const;

  // Policy 2: k for r before trimming.
  int num_to_propose(const Request& r) const;

 private:
  SpeculatorConfig config_;
  RequestLookup requests_;
};

}  // namespace mlxs
