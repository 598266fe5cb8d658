// The step planner's output: the one place a step's AttentionBatch is built, for the engine
// (from the scheduler's plan), the tests, the tools and the benchmarks (from sequences whose
// block tables they manage themselves). The scheduler stays pure bookkeeping: it plans in its
// own types (sched/scheduler_output.h) and never sees a backend type.
//
// Shapes: S = sequences in the step, T = tokens in the step (every sequence's new tokens,
// concatenated in order). Sequence s owns token rows [query_start[s], query_start[s + 1]).
// Token ids may be pipelining placeholders (-(k+1) = row k of the previous step's samples):
// they are copied as they are and resolved on the device (Backend::resolve_placeholders).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backend/backend.h"

namespace mlxs {

namespace sched {
struct SchedulerOutput;
}

// One sequence of a step.
struct SeqStep {
  std::span<const int32_t> block_table;  // physical blocks covering num_cached + new tokens
  int num_cached = 0;                    // tokens already in the KV cache
  std::span<const int32_t> new_tokens;   // tokens computed this step
  bool needs_logits = false;             // its last row is sampled (StepBatch::sample_rows)
  // Speculative decoding: the last num_proposals new tokens are proposals, and the last
  // num_proposals + 1 rows are sampled (with needs_logits).
  int num_proposals = 0;
};

// Everything the model needs for one step.
struct StepBatch {
  AttentionBatch attention;
  std::vector<int32_t> token_ids;  // T
  // Rows of T whose logits are sampled: the last num_proposals + 1 rows of each sequence with
  // needs_logits, in order.
  std::vector<int32_t> sample_rows;
};

// Builds the step: concatenates the new tokens and fills positions, slot mapping, query starts,
// context lengths and the block-table matrix (padded with -1 to the longest table).
// `sliding_window` is the model's (0 = full attention). Pure function.
StepBatch make_step_batch(std::span<const SeqStep> seqs, int block_size, int sliding_window);

// The same for the scheduler's plan of a step.
StepBatch make_step_batch(const sched::SchedulerOutput& output, int sliding_window = 0);

// The attention part alone, with the tokens written to `tokens` (tests and tools).
AttentionBatch make_attention_batch(std::span<const SeqStep> seqs, int block_size,
                                    int sliding_window, std::vector<int32_t>* tokens);

}  // namespace mlxs
