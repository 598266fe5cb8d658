// Bucketed decode steps: a decode step of T sequences (one token each) is padded to the smallest
// bucket B >= T, so a backend with step graphs (CUDA graphs) needs one recording per bucket,
// all captured at load (Model::warm_up), instead of one per batch size met while serving.
//
// A padding row is a dummy sequence of context length 1: token 0 at position 0, writing its K/V
// into the KV cache's scratch block (KvCache::scratch_block(), which the scheduler never hands
// out) and attending only to that slot. Every op is row-independent outside attention, and a
// padding row's attention reads only the scratch block, so real rows compute exactly what they
// compute unpadded (bitwise on a batch-invariant backend). Logit rows are padded to B too (a
// graph bakes in R); the real rows stay first, so callers read back rows [0, R) as before.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backend/backend.h"

namespace mlxs {

// The buckets, ascending; the last one is Model::kMaxGraphTokens (checked in decoder.cc).
// Why these: up to 64 rows a decode step is bound by reading the weights, so extra rows cost
// little, and steps of 8 keep the padding under 8 rows where most serving load sits (1, 2 and 4
// stay exact: the GEMV path takes up to 2 rows); above 64 the step turns compute-bound, so the gap
// grows with the bucket (16 up to 128, 32 up to 256, 64 up to 512), keeping the padding under
// a quarter of the batch. 23 graphs in all for max_num_seqs >= 512 (19 for 256).
inline constexpr int64_t kDecodeBuckets[] = {1,   2,   4,   8,   16,  24,  32,  40,
                                             48,  56,  64,  80,  96,  112, 128, 160,
                                             192, 224, 256, 320, 384, 448, 512};

// The smallest bucket >= num_seqs, or num_seqs itself when it exceeds the largest bucket
// (such steps are not padded). num_seqs >= 1.
int64_t decode_bucket(int64_t num_seqs);

// The buckets a step of up to max_batch sequences can use: every bucket <= decode_bucket of
// min(max_batch, the largest bucket), ascending.
std::vector<int64_t> decode_buckets_up_to(int64_t max_batch);

struct PaddedStep {
  std::vector<int32_t> tokens;      // B
  AttentionBatch batch;             // B sequences of one token
  std::vector<int32_t> logit_rows;  // B: the real rows first, then i for i >= R
};

// `tokens`, `batch`, `logit_rows` (one token per sequence: T == batch.num_seqs, R <= bucket)
// padded to `bucket` >= T rows as described above. Padding rows use block `scratch_block`; the
// block table gets at least `min_blocks_per_seq` columns (so a backend sizes its tables for the
// longest sequence up front). Pure function, thread-safe.
PaddedStep pad_decode_step(std::span<const int32_t> tokens, const AttentionBatch& batch,
                           std::span<const int32_t> logit_rows, int64_t bucket, int scratch_block,
                           int min_blocks_per_seq = 0);

// A prefill-shaped step of `num_tokens` tokens (id 0) that touches only `scratch_block`: dummy
// sequences of at most block_size tokens each, all in that block; one logit row (the last).
// Run once at load, it grows a backend's step buffers to the largest step before any graph is
// recorded. Returns the batch; tokens and logit rows go to the out-parameters.
AttentionBatch scratch_prefill_batch(int64_t num_tokens, int block_size, int sliding_window,
                                     int scratch_block, int min_blocks_per_seq,
                                     std::vector<int32_t>* tokens,
                                     std::vector<int32_t>* logit_rows);

}  // namespace mlxs
