#include "model/decode_padding.h"

#include <algorithm>
#include <iterator>

#include "util/check.h"

namespace mlxs {

int64_t decode_bucket(int64_t num_seqs) {
  MLXS_CHECK(num_seqs >= 1);
  for (int64_t b : kDecodeBuckets) {
    if (b >= num_seqs) return b;
  }
  return num_seqs;
}

std::vector<int64_t> decode_buckets_up_to(int64_t max_batch) {
  const int64_t top =
      decode_bucket(std::clamp<int64_t>(max_batch, 1, std::end(kDecodeBuckets)[-1]));
  std::vector<int64_t> out;
  for (int64_t b : kDecodeBuckets) {
    if (b <= top) out.push_back(b);
  }
  return out;
}

namespace {

// Copies the block table rows of `src` into a matrix of `cols` columns (-1 filled), with room
// for `num_rows` rows.
std::vector<int32_t> widen_tables(const AttentionBatch& src, int cols, int64_t num_rows) {
  std::vector<int32_t> out(size_t(num_rows) * size_t(cols), -1);
  for (int s = 0; s < src.num_seqs; ++s) {
    auto row = src.block_tables.begin() + ptrdiff_t(s) * src.max_blocks_per_seq;
    std::copy(row, row + src.max_blocks_per_seq, out.begin() + ptrdiff_t(s) * cols);
  }
  return out;
}

}  // namespace

PaddedStep pad_decode_step(std::span<const int32_t> tokens, const AttentionBatch& batch,
                           std::span<const int32_t> logit_rows, int64_t bucket, int scratch_block,
                           int min_blocks_per_seq) {
  const int64_t T = int64_t(tokens.size()), R = int64_t(logit_rows.size());
  MLXS_CHECK(T == batch.num_seqs && T <= bucket && R <= bucket);
  MLXS_CHECK(int64_t(batch.query_start.size()) == T + 1 && int64_t(batch.positions.size()) == T &&
             int64_t(batch.slot_mapping.size()) == T);
  PaddedStep p;
  p.tokens.assign(tokens.begin(), tokens.end());
  p.tokens.resize(size_t(bucket), 0);
  AttentionBatch& b = p.batch;
  b.num_seqs = int(bucket);
  b.block_size = batch.block_size;
  b.sliding_window = batch.sliding_window;
  b.max_blocks_per_seq = std::max({batch.max_blocks_per_seq, min_blocks_per_seq, 1});
  b.block_tables = widen_tables(batch, b.max_blocks_per_seq, bucket);
  b.query_start = batch.query_start;
  b.context_len = batch.context_len;
  b.positions = batch.positions;
  b.slot_mapping = batch.slot_mapping;
  for (int64_t s = T; s < bucket; ++s) {
    b.block_tables[size_t(s) * size_t(b.max_blocks_per_seq)] = scratch_block;
    b.query_start.push_back(int32_t(s + 1));
    b.context_len.push_back(1);
    b.positions.push_back(0);
    b.slot_mapping.push_back(scratch_block * batch.block_size);
  }
  p.logit_rows.assign(logit_rows.begin(), logit_rows.end());
  for (int64_t i = R; i < bucket; ++i) p.logit_rows.push_back(int32_t(i));
  return p;
}

AttentionBatch scratch_prefill_batch(int64_t num_tokens, int block_size, int sliding_window,
                                     int scratch_block, int min_blocks_per_seq,
                                     std::vector<int32_t>* tokens,
                                     std::vector<int32_t>* logit_rows) {
  MLXS_CHECK(num_tokens >= 1 && block_size >= 1);
  AttentionBatch b;
  b.block_size = block_size;
  b.sliding_window = sliding_window;
  b.num_seqs = int((num_tokens + block_size - 1) / block_size);
  b.max_blocks_per_seq = std::max(min_blocks_per_seq, 1);
  b.block_tables.assign(size_t(b.num_seqs) * size_t(b.max_blocks_per_seq), -1);
  b.query_start.push_back(0);
  for (int s = 0; s < b.num_seqs; ++s) {
    const int64_t n = std::min<int64_t>(block_size, num_tokens - int64_t(s) * block_size);
    b.block_tables[size_t(s) * size_t(b.max_blocks_per_seq)] = scratch_block;
    for (int64_t i = 0; i < n; ++i) {
      b.positions.push_back(int32_t(i));
      b.slot_mapping.push_back(int32_t(int64_t(scratch_block) * block_size + i));
    }
    b.query_start.push_back(int32_t(b.positions.size()));
    b.context_len.push_back(int32_t(n));
  }
  tokens->assign(size_t(num_tokens), 0);
  logit_rows->assign(1, int32_t(num_tokens - 1));
  return b;
}

}  // namespace mlxs
