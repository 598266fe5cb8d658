#include "backend/cpu/cpu_ops.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace mlxs::cpu {

void rms_norm_row(const float* x, const float* w, int64_t n, float eps, float* out) {
  float sum = 0.f;
  for (int64_t i = 0; i < n; ++i) sum += x[i] * x[i];
  const float inv = 1.0f / std::sqrt(sum / float(n) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = w[i] * (x[i] * inv);
}

void kv_write(const Tensor& k, const Tensor& v, const int32_t* slot_mapping, KvLayer& cache) {
  const int64_t C = k.cols;
  for (int64_t t = 0; t < k.rows; ++t) {
    int64_t slot = slot_mapping[t];
    std::memcpy(cache.k.as<float>() + slot * C, k.as<float>() + t * C, size_t(C) * 4);
    std::memcpy(cache.v.as<float>() + slot * C, v.as<float>() + t * C, size_t(C) * 4);
  }
}

namespace {

// One (query row, head): softmax(q . K[lo..pos] * scale) @ V[lo..pos] into o. The dot products
// reduce in the compiler's SIMD order: fixed for a build and the same for every row and batch, so
// batch invariance holds.
void attend_one(const float* q, const KvLayer& cache, const int32_t* block_table, int block_size,
                int64_t lo, int64_t pos, int64_t kv_col, int64_t kv_cols, int head_dim, float scale,
                std::vector<float>& scores, float* o) {
  const int64_t n = pos - lo + 1;
  scores.resize(size_t(n));
  float max_score = -INFINITY;
  for (int64_t j = 0; j < n; ++j) {
    int64_t p = lo + j;
    int64_t slot = int64_t(block_table[p / block_size]) * block_size + p % block_size;
    const float* kr = cache.k.as<float>() + slot * kv_cols + kv_col;
    float dot = 0.f;
#pragma omp simd reduction(+ : dot)
    for (int d = 0; d < head_dim; ++d) dot += q[d] * kr[d];
    scores[size_t(j)] = dot * scale;
    max_score = std::max(max_score, scores[size_t(j)]);
  }
  float sum = 0.f;
  for (int64_t j = 0; j < n; ++j) {
    scores[size_t(j)] = std::exp(scores[size_t(j)] - max_score);
    sum += scores[size_t(j)];
  }
  std::fill(o, o + head_dim, 0.f);
  for (int64_t j = 0; j < n; ++j) {
    int64_t p = lo + j;
    int64_t slot = int64_t(block_table[p / block_size]) * block_size + p % block_size;
    const float* vr = cache.v.as<float>() + slot * kv_cols + kv_col;
    const float pj = scores[size_t(j)] / sum;
#pragma omp simd
    for (int d = 0; d < head_dim; ++d) o[d] += pj * vr[d];
  }
}

}  // namespace

void paged_attention(const Tensor& q, const KvLayer& cache, const AttentionBatch& b, int heads,
                     int kv_heads, int head_dim, float scale, Tensor& out) {
  const int64_t T = q.rows;
  const int group = heads / kv_heads;
  // Sequence of each token row, so (row, head) pairs can be split evenly over threads.
  std::vector<int32_t> seq_of(static_cast<size_t>(T));
  for (int s = 0; s < b.num_seqs; ++s) {
    for (int32_t t = b.query_start[size_t(s)]; t < b.query_start[size_t(s) + 1]; ++t) {
      seq_of[size_t(t)] = s;
    }
  }
  int64_t work = 0;
  for (int s = 0; s < b.num_seqs; ++s) work += int64_t(b.context_len[size_t(s)]) * heads;
#pragma omp parallel if (work * head_dim > (1 << 16))
  {
    std::vector<float> scores;
#pragma omp for schedule(dynamic, 4)
    for (int64_t th = 0; th < T * heads; ++th) {
      const int64_t t = th / heads;
      const int h = int(th % heads);
      const int s = seq_of[size_t(t)];
      const int64_t q_len = b.query_start[size_t(s) + 1] - b.query_start[size_t(s)];
      const int64_t pos = b.context_len[size_t(s)] - q_len + (t - b.query_start[size_t(s)]);
      const int64_t lo =
          b.sliding_window > 0 ? std::max<int64_t>(0, pos - b.sliding_window + 1) : 0;
      attend_one(q.as<float>() + t * q.cols + int64_t(h) * head_dim, cache,
                 b.block_tables.data() + size_t(s) * size_t(b.max_blocks_per_seq), b.block_size, lo,
                 pos, int64_t(h / group) * head_dim, cache.k.cols, head_dim, scale, scores,
                 out.as<float>() + t * out.cols + int64_t(h) * head_dim);
    }
  }
}

}  // namespace mlxs::cpu
