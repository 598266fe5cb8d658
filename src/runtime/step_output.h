// The output side of a step: the live requests of one model and what happens to their sampled
// tokens after the model. Owns, per request: token accounting (counts, first-token time, the
// penalty history), detokenising, stop strings, the chunks pushed to its Stream, backpressure
// pauses, and its end (the metadata chunk, or an error chunk).
//
// Contract with the scheduler: it never decides that a sequence ends because of its tokens; the
// scheduler does (stop token ids, length) and the caller passes its verdict with each token.
// What only the text shows (a stop string) and what the consumer does (a full stream) are
// reported back to the scheduler here: abort(id, kStop) and pause(id).
//
// Two phases, so a pipelined engine does the slow part while the device runs the next step:
// add_token() accounts a token at once (the next step's sampling may read the history), and
// flush() streams what was added since the last flush, then ends the requests whose last token
// went out. Engine thread only; not thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mlxs/events.h"
#include "runtime/request.h"
#include "sample/sampler.h"
#include "sched/scheduler.h"
#include "tokenizer/tokenizer.h"

namespace mlxs {

using EventSink = std::function<void(EventPayload)>;

class StepOutput {
 public:
  struct Hooks {
    EventSink events;  // generation started / token / completed
    // A paused request's stream drained: the caller resumes `id` in the scheduler. Called on
    // the consumer's thread.
    std::function<void(sched::SeqId id)> resume;
    // Request r leaves the engine, just before its final chunk is pushed: finished (true, with
    // its metadata) or failed (false).
    std::function<void(const Request& r, bool finished)> ended;
  };

  // `scheduler` must outlive this; `tokenizer` may be null (token ids only).
  StepOutput(std::string model_id, const Tokenizer* tokenizer, sched::Scheduler& scheduler,
             Hooks hooks);

  // --- the live requests ---
  // r's sequence was added to the scheduler: r is live until it ends.
  void add(std::unique_ptr<Request> r);
  Request* find(sched::SeqId id) const;
  // Ids of the live requests that are cancelled or abandoned (kCancelled) or past their
  // deadline (kTimeout) at `now`.
  std::vector<std::pair<sched::SeqId, FinishReason>> expired(EngineClock::time_point now) const;
  bool empty() const { return live_.empty(); }

  // --- a step ---
  // The requests of `out` are planned: the first time, how much of the prompt the prefix cache
  // served.
  void mark_scheduled(const sched::SchedulerOutput& out);
  // A token sampled for `id`: counted and added to the history now, streamed by flush().
  // `finish` is the scheduler's verdict when this token ends the sequence (kStop = a stop token
  // id, not streamed as text; kLength).
  void add_token(sched::SeqId id, const SampleResult& sample, std::optional<FinishReason> finish);
  // A step verified `num_proposals` proposals for `id`, `num_accepted` of which are among the
  // tokens added next (speculative decoding; counted in its metadata).
  void add_speculation(sched::SeqId id, int num_proposals, int num_accepted);
  // The scheduler ended `id` without a token of its own: finished at the next flush().
  void add_finish(sched::SeqId id, FinishReason reason);
  // Streams the tokens added since the last flush (detokenized, stop strings matched), then
  // finishes the requests they ended. A stream that is full pauses its request: at once, or
  // when `defer_pauses` (the step in flight has not been applied to the scheduler yet) at
  // apply_pauses().
  void flush(bool defer_pauses);
  void apply_pauses();

  // --- ending a request now ---
  // Ends live request `id` with `reason` (its sequence must already be out of the scheduler).
  void finish(sched::SeqId id, FinishReason reason);
  // Ends request r (live or never added) with an error chunk.
  void fail(Request& r, ErrorCode code, const std::string& message);
  void fail(sched::SeqId id, ErrorCode code, const std::string& message);
  // Fails every live request (the model is unloaded).
  void fail_all(ErrorCode code, const std::string& message);

 private:
  struct PendingToken {
    sched::SeqId id;
    SampleResult sample;
    std::optional<FinishReason> finish;  // this token is the request's last
  };
  // Pushes p's chunk to r's stream; true when it completed a stop string.
  bool emit_token(Request& r, const PendingToken& p);
  void apply_backpressure(Request& r, bool defer);
  void finish(Request& r, FinishReason reason);

  const std::string model_id_;
  const Tokenizer* tokenizer_;
  sched::Scheduler& scheduler_;
  Hooks hooks_;
  std::unordered_map<sched::SeqId, std::unique_ptr<Request>> live_;
  // Accounted but not yet streamed: tokens, ends without a token, and backpressure pauses
  // waiting for the plan of the step in flight to be applied.
  std::vector<PendingToken> pending_tokens_;
  std::vector<std::pair<sched::SeqId, FinishReason>> pending_finishes_;
  std::vector<sched::SeqId> pending_pauses_;
};

}  // namespace mlxs
