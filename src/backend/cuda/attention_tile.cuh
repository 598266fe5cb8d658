// Work geometry of one CTA of the tiled attention kernels (attention.cu, attention_tc.cu), whose
// grids are x = query tile, y = KV head * head chunks, z = split of the key range.
#pragma once

#include "backend/cuda/cuda_kernels.h"

namespace mlxs::cuda {

struct AttentionTile {
  int s;       // sequence
  int t0;      // first token row of the tile (into q / out)
  int rows;    // token rows in the tile
  int kvh;     // KV head
  int h0;      // first query head of the CTA's chunk of the KV head's group
  int nh;      // query heads in that chunk
  int pos0;    // position of the tile's first token in its sequence
  int kb, ke;  // this split's keys [kb, ke) (empty when kb >= ke)
};

// The geometry of the calling CTA: `tiles` holds int4 {seq, first token row, rows, 0} per
// blockIdx.x; blockIdx.y is kv head * chunks + chunk, with chunks of heads_per_chunk heads of
// the group; the keys [lo0, pos0 + rows) the tile needs (lo0 the sliding window's first key for
// its first row) are cut into a.num_splits splits, each rounded up to whole kKeyTile-key tiles.
template <int kKeyTile>
__device__ __forceinline__ AttentionTile attention_tile(const AttentionArgs& a, const int* tiles,
                                                        int heads_per_chunk) {
  AttentionTile g;
  const int* tile = tiles + 4 * blockIdx.x;
  g.s = tile[0], g.t0 = tile[1], g.rows = tile[2];
  const int group = a.heads / a.kv_heads;
  const int chunks = (group + heads_per_chunk - 1) / heads_per_chunk;
  g.kvh = blockIdx.y / chunks;
  const int chunk = blockIdx.y % chunks;
  g.h0 = g.kvh * group + chunk * heads_per_chunk;
  g.nh = min(heads_per_chunk, group - chunk * heads_per_chunk);
  const int q_len = a.query_start[g.s + 1] - a.query_start[g.s];
  g.pos0 = a.context_len[g.s] - q_len + (g.t0 - a.query_start[g.s]);
  const int lo0 = a.sliding_window > 0 ? max(0, g.pos0 - a.sliding_window + 1) : 0;
  const int end = g.pos0 + g.rows;  // keys [lo0, end) cover the tile
  int split_len = (end - lo0 + a.num_splits - 1) / a.num_splits;
  split_len = (split_len + kKeyTile - 1) / kKeyTile * kKeyTile;
  g.kb = lo0 + int(blockIdx.z) * split_len;
  g.ke = min(end, g.kb + split_len);
  return g;
}

}  // namespace mlxs::cuda
