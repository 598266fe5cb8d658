#include "sched/scheduler_output.h"

#include <algorithm>

namespace mlxs::sched {

StepBatch make_step_batch(const SchedulerOutput& output, int sliding_window) {
  StepBatch b;
  AttentionBatch& a = b.attention;
  const int num_seqs = int(output.seqs.size());
  a.num_seqs = num_seqs;
  a.block_size = output.block_size;
  a.sliding_window = sliding_window;
  a.max_blocks_per_seq = 0;
  for (const ScheduledSeq& s : output.seqs) {
    a.max_blocks_per_seq = std::max(a.max_blocks_per_seq, int(s.block_table.size()));
  }
  a.query_start.reserve(size_t(num_seqs) + 1);
  a.context_len.reserve(size_t(num_seqs));
  a.block_tables.assign(size_t(num_seqs) * size_t(a.max_blocks_per_seq), -1);
  for (int i = 0; i < num_seqs; ++i) {
    const ScheduledSeq& s = output.seqs[size_t(i)];
    a.query_start.push_back(s.token_begin);
    a.context_len.push_back(s.context_len());
    std::copy(s.block_table.begin(), s.block_table.end(),
              a.block_tables.begin() + ptrdiff_t(i) * a.max_blocks_per_seq);
    if (s.needs_logits) b.sample_rows.push_back(s.token_begin + s.num_new_tokens - 1);
  }
  a.query_start.push_back(output.num_tokens());
  a.positions = output.positions;
  a.slot_mapping = output.slot_mapping;
  b.token_ids = output.token_ids;
  return b;
}

}  // namespace mlxs::sched
