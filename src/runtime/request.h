// One generation inside the engine: the resolved request (native, validated types) and the
// engine thread's per-request state.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "mlxs/engine.h"
#include "runtime/step_inputs.h"
#include "runtime/stop_matcher.h"
#include "runtime/stream.h"
#include "sample/sampler.h"
#include "sched/sequence.h"
#include "tokenizer/detokenizer.h"

namespace mlxs {

using EngineClock = std::chrono::steady_clock;

struct Request {
  // --- fixed at submission ---
  sched::SeqId id = 0;
  std::string stream_id;
  std::string model_id;
  std::vector<int32_t> prompt;
  int max_tokens = 16;
  SamplingParams sampling;
  bool logprobs = false;
  std::vector<std::string> stop_sequences;
  std::vector<int32_t> stop_token_ids;  // the request's, plus the model's EOS ids
  sched::Priority priority = sched::Priority::kDefault;
  EngineClock::time_point submitted;
  EngineClock::time_point deadline = EngineClock::time_point::max();
  CancelToken cancel;
  std::shared_ptr<Stream> stream;
  // Interfaces for the next features (runtime/step_inputs.h); empty on the plain path.
  std::unique_ptr<TokenConstraint> constraint;  // constrained decoding
  std::vector<EmbeddingSplice> embeddings;      // non-text inputs spliced into the prompt

  // --- engine thread only ---
  SamplingHistory history;
  std::unique_ptr<Detokenizer> detokenizer;
  std::unique_ptr<StopMatcher> stop;
  int num_generated = 0;
  std::string matched_stop;          // the stop sequence that ended the stream
  int num_cached_prompt_tokens = 0;  // prompt tokens served by the prefix cache at admission
  bool scheduled = false;            // planned in a step at least once
  EngineClock::time_point first_token;
  bool paused = false;
  // Speculative decoding: proposals verified, accepted ones streamed, and verification steps;
  // running averages (weight 0.3 on the latest step) of the share of proposals accepted and of
  // the proposals accepted per step, from which the speculator picks k (runtime/speculator.h).
  int num_proposed = 0;
  int num_accepted = 0;
  int num_verify_steps = 0;
  double recent_acceptance = 1.0;
  double recent_accepted = 1e9;  // "unbounded" until measured: the first k is the most
};

}  // namespace mlxs
