// What one step computes, as the scheduler plans it. runtime/step_batch.h turns it into the
// backend's batch; the scheduler itself never sees a backend type.
//
// Shapes: S = scheduled sequences, T = tokens in the step (all sequences, concatenated in the
// order of `seqs`). Sequence s owns token rows [seqs[s].token_begin, + num_new_tokens).
#pragma once

#include <cstdint>
#include <vector>

#include "sched/sequence.h"

namespace mlxs::sched {

struct ScheduledSeq {
  SeqId id = 0;
  int token_begin = 0;     // first row of this sequence in the flat T arrays
  int num_new_tokens = 0;  // query tokens this step (>= 1), proposals included
  int start_pos = 0;       // position of the first new token = num_computed_tokens before
  // True when this step computes the sequence's last known token, so the logits of its last
  // row are sampled; false for a partial prefill chunk.
  bool needs_logits = false;
  std::vector<BlockId> block_table;  // ceil((start_pos + num_new_tokens) / block_size) blocks
  // Speculative decoding: the last num_proposals of the new tokens are proposed next tokens,
  // after the sequence's last known token (only with needs_logits). Each of the last
  // num_proposals + 1 rows is sampled: the token after the last known one, then after each
  // proposal. 0 on the plain path.
  int num_proposals = 0;

  int context_len() const { return start_pos + num_new_tokens; }
};

struct SchedulerOutput {
  int block_size = 16;
  std::vector<ScheduledSeq> seqs;     // S, in scheduling order
  std::vector<int32_t> token_ids;     // T
  std::vector<int32_t> positions;     // T
  std::vector<int32_t> slot_mapping;  // T: block * block_size + offset of each token's K/V
  std::vector<SeqId> preempted;       // sequences preempted while planning this step

  int num_tokens() const { return int(token_ids.size()); }
  bool empty() const { return seqs.empty(); }
};

}  // namespace mlxs::sched
