// The plan of one step as the engine runs it: the scheduler's output, how its tokens are chosen
// (StepKind), one entry per sampled row, and per sequence the inputs beyond its text tokens
// (runtime/step_inputs.h). Built by StepPipeline::plan().
#pragma once

#include <cstdint>
#include <vector>

#include "model/decoder.h"
#include "runtime/step_inputs.h"
#include "sched/scheduler_output.h"

namespace mlxs {

using StepKind = Model::StepKind;

// A sampled row of the step.
struct StepRow {
  int seq = 0;              // index into out.seqs
  uint64_t draw_index = 0;  // index of the output token it draws (with the seed: the noise)
};

struct StepPlan {
  sched::SchedulerOutput out;
  StepKind kind = StepKind::kGreedy;
  std::vector<StepRow> rows;          // R, in the order of out.seqs (StepBatch::sample_rows)
  std::vector<SeqStepInputs> inputs;  // S: one per out.seqs entry
  // A row's penalties read its sequence's tokens so far on the host, so the step before this
  // one must have ended (its tokens accounted) before this one is begun.
  bool needs_history = false;
  // Some row's request has a constraint: then masks[k * W, + W) is row k's bitmask of allowed
  // tokens (W = bitmask_words(V); all ones for an unconstrained row), filled on the host while
  // the device computes the step, and applied before the draw (on the backend, or on the host
  // for a kLogits step). The masks of a step that overlaps the one before it are filled once
  // that step has ended: every token before the mask is accepted by its constraint first.
  bool constrained = false;
  std::vector<uint32_t> masks;       // R * W
  std::vector<uint8_t> mask_failed;  // R: the constraint allowed nothing (its row fails)
};

}  // namespace mlxs
