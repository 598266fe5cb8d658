// The pipelining protocol, in one place: how a step is planned, begun on the model and ended,
// and how the tokens of a step still in flight are named before they are known.
//
// Protocol (one engine thread; at most one step in flight between calls):
//  1. plan(): the scheduler's output becomes a StepPlan: per sampled row its sequence and draw
//     index, and the step's kind (StepKind): argmax on the backend when every row is plain
//     greedy, sampling on the backend unless a row wants top_logprobs alternatives or has a
//     token mask, else the logits come to the host and are sampled there.
//  2. advance(plan): begins `plan` and ends the step N that was in flight. Plan N + 1 may name
//     N's sampled tokens, which the host does not know yet: the scheduler holds a placeholder
//     -(k + 1) for N's row k (placeholders(), applied by apply_in_flight()). When N + 1 may
//     overlap N (overlap_steps on, N's tokens stay on the device, and N + 1's rows need no
//     penalty history), N + 1 is queued first and the model reads the placeholders on the
//     device; otherwise N is ended first and its tokens replace the placeholders on the host.
//     A constrained N + 1 overlaps too: its forward pass is queued, N is ended (its tokens
//     accepted by the constraints), then N + 1's masks are filled while its forward runs and its
//     draw is queued after them.
//  3. end(): waits for the step in flight, samples its logits rows on the host (after the
//     rows' token masks, which begin() filled while the device ran; each drawn token is then
//     accepted by its row's constraint, and a constraint that is complete ends its sequence),
//     keeps the accepted tokens of each sequence (accept_proposals()) and
//     resolves the scheduler's placeholders with them, which also tells which sequences these
//     tokens end (a stop token id, or the length reached on the placeholder).
//  4. apply_in_flight(): applies the step in flight's plan to the scheduler, with placeholders,
//     once the tokens before it are resolved.
// Consequences, invisible to clients: a sequence that step N ends still computes one token in
// N + 1, which is dropped (the scheduler has forgotten it when N + 1 is applied).
//
// Failures: a step the backend fails comes back as an EndedStep with its error; a plan that
// could not begin (or whose predecessor failed before it began) too. Its sequences are the
// caller's to fail and abort.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "model/decoder.h"
#include "runtime/request.h"
#include "runtime/step_plan.h"
#include "sample/sampler.h"
#include "sched/scheduler.h"

namespace mlxs {

// A step that has ended: its plan and what came of it.
struct EndedStep {
  // What one sequence of the step got: tokens sampled[first_row, first_row + num_tokens) are
  // its new tokens (one on the plain path), the last of which ends it when `finish` is set (the
  // scheduler's verdict: a stop token id or the length).
  struct Seq {
    sched::SeqId id = 0;
    int first_row = 0;
    int num_tokens = 0;
    std::optional<FinishReason> finish;
    // Set when this sequence alone failed (its constraint refused the drawn token or allowed
    // none): it got no token and the caller fails it; the other sequences are unaffected.
    Status error;
  };
  StepPlan plan;
  Status status;                      // the backend's error: then nothing below is set
  std::vector<SampleResult> sampled;  // R: per row of the plan
  std::vector<Status> row_errors;     // R when a constraint failed a row, else empty
  std::vector<Seq> seqs;              // the sequences still live when it ended
};

class StepPipeline {
 public:
  // The live request of a sequence, or null once it has ended (its rows are then skipped).
  using RequestLookup = std::function<const Request*(sched::SeqId)>;

  // `model`, `cache` and `scheduler` must outlive the pipeline.
  StepPipeline(Model& model, KvCache& cache, sched::Scheduler& scheduler, bool overlap_steps,
               RequestLookup requests);

  // Protocol step 1. Every sequence of `out` must have a live request.
  StepPlan plan(sched::SchedulerOutput out) const;
  // Protocol step 2: begins `plan`, leaving it in flight. Returns the steps that ended, oldest
  // first: the step that was in flight (if any), then `plan` itself if it could not begin.
  std::vector<EndedStep> advance(StepPlan plan);
  // Protocol step 3: ends the step in flight, if any.
  std::optional<EndedStep> end();
  // Protocol step 4: scheduler.update() of the step in flight with placeholders. Returns the
  // sequences it finished (none in practice: a length reached on a placeholder is reported by
  // end(), when the token is known).
  std::vector<sched::FinishedSeq> apply_in_flight();

  // The plan of the step in flight, or null.
  const StepPlan* in_flight() const { return in_flight_ ? &*in_flight_ : nullptr; }
  bool overlap_steps() const { return overlap_steps_; }

  // The scheduler's tokens for `plan`: placeholder -(k + 1) for the sequence of row k.
  static std::vector<sched::SampledToken> placeholders(const StepPlan& plan);
  // Replaces each placeholder -(k + 1) in `tokens` with prev[k].token.
  static void resolve_on_host(std::span<int32_t> tokens, std::span<const SampleResult> prev);

 private:
  bool overlaps(const StepPlan& plan) const;
  // Queues the plan's forward pass, and its draw unless the plan is constrained; `sampling`
  // gets the rows of a sampled step.
  Status begin(StepPlan& plan, SampleBatch* sampling);
  // A constrained plan, begun: fills its masks (every token before them accepted by the
  // constraints) and queues its masked draw, or leaves the masks to end() for a kLogits step.
  Status draw_constrained(StepPlan& plan, const SampleBatch& sampling);
  // Fills plan.masks (protocol step 2).
  void fill_masks(StepPlan& plan) const;
  // Samples the logits rows of `f` on the host, each after its row's token mask.
  void sample_on_host(EndedStep& f, std::span<float> logits) const;
  // Tells each constraint of `f` the token its row drew.
  void accept_constrained(EndedStep& f) const;
  void resolve_in_scheduler(EndedStep& f);

  Model& model_;
  KvCache& cache_;
  sched::Scheduler& scheduler_;
  const bool overlap_steps_;
  RequestLookup requests_;
  std::optional<StepPlan> in_flight_;
};

}  // namespace mlxs
