#include "model/batch_util.h"

#include <algorithm>

#include "util/check.h"

namespace mlxs {

AttentionBatch make_attention_batch(std::span<const SeqStep> seqs, int block_size,
                                    int sliding_window, std::vector<int32_t>* tokens) {
  AttentionBatch b;
  b.num_seqs = int(seqs.size());
  b.block_size = block_size;
  b.sliding_window = sliding_window;
  for (const auto& s : seqs) b.max_blocks_per_seq = std::max(b.max_blocks_per_seq, int(s.block_table.size()));
  b.block_tables.assign(seqs.size() * size_t(b.max_blocks_per_seq), -1);
  b.query_start.push_back(0);
  tokens->clear();
  for (size_t i = 0; i < seqs.size(); ++i) {
    const SeqStep& s = seqs[i];
    const int ctx = s.num_cached + int(s.new_tokens.size());
    MLXS_CHECK(int(s.block_table.size()) * block_size >= ctx);
    std::copy(s.block_table.begin(), s.block_table.end(),
              b.block_tables.begin() + ptrdiff_t(i) * b.max_blocks_per_seq);
    for (size_t j = 0; j < s.new_tokens.size(); ++j) {
      int pos = s.num_cached + int(j);
      tokens->push_back(s.new_tokens[j]);
      b.positions.push_back(pos);
      b.slot_mapping.push_back(s.block_table[size_t(pos / block_size)] * block_size + pos % block_size);
    }
    b.query_start.push_back(int32_t(tokens->size()));
    b.context_len.push_back(ctx);
  }
  return b;
}

}  // namespace mlxs
