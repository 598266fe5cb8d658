#include "runtime/step_batch.h"

#include <algorithm>

#include "sched/scheduler_output.h"
#include "util/check.h"

namespace mlxs {

StepBatch make_step_batch(std::span<const SeqStep> seqs, int block_size, int sliding_window) {
  StepBatch step;
  AttentionBatch& b = step.attention;
  b.num_seqs = int(seqs.size());
  b.block_size = block_size;
  b.sliding_window = sliding_window;
  for (const auto& s : seqs) {
    b.max_blocks_per_seq = std::max(b.max_blocks_per_seq, int(s.block_table.size()));
  }
  b.block_tables.assign(seqs.size() * size_t(b.max_blocks_per_seq), -1);
  b.query_start.reserve(seqs.size() + 1);
  b.context_len.reserve(seqs.size());
  b.query_start.push_back(0);
  for (size_t i = 0; i < seqs.size(); ++i) {
    const SeqStep& s = seqs[i];
    const int ctx = s.num_cached + int(s.new_tokens.size());
    MLXS_CHECK(int(s.block_table.size()) * block_size >= ctx);
    std::copy(s.block_table.begin(), s.block_table.end(),
              b.block_tables.begin() + ptrdiff_t(i) * b.max_blocks_per_seq);
    for (size_t j = 0; j < s.new_tokens.size(); ++j) {
      const int pos = s.num_cached + int(j);
      step.token_ids.push_back(s.new_tokens[j]);
      b.positions.push_back(pos);
      b.slot_mapping.push_back(s.block_table[size_t(pos / block_size)] * block_size +
                               pos % block_size);
    }
    b.query_start.push_back(int32_t(step.token_ids.size()));
    b.context_len.push_back(ctx);
    if (s.needs_logits && !s.new_tokens.empty()) {
      const int end = int(step.token_ids.size());
      MLXS_CHECK(s.num_proposals >= 0 && s.num_proposals < int(s.new_tokens.size()));
      for (int row = end - 1 - s.num_proposals; row < end; ++row) step.sample_rows.push_back(row);
    }
  }
  return step;
}

StepBatch make_step_batch(const sched::SchedulerOutput& output, int sliding_window) {
  std::vector<SeqStep> seqs;
  seqs.reserve(output.seqs.size());
  const std::span<const int32_t> tokens(output.token_ids);
  for (const sched::ScheduledSeq& s : output.seqs) {
    seqs.push_back({s.block_table, s.start_pos,
                    tokens.subspan(size_t(s.token_begin), size_t(s.num_new_tokens)), s.needs_logits,
                    s.num_proposals});
  }
  return make_step_batch(seqs, output.block_size, sliding_window);
}

AttentionBatch make_attention_batch(std::span<const SeqStep> seqs, int block_size,
                                    int sliding_window, std::vector<int32_t>* tokens) {
  StepBatch step = make_step_batch(seqs, block_size, sliding_window);
  *tokens = std::move(step.token_ids);
  return std::move(step.attention);
}

}  // namespace mlxs
