// Sampling on the device: one CTA per logit row computes the same token as the host sampler
// (src/sample/sampler.{h,cc}, the reference) and the token's logprob, so only 8 bytes per row
// cross to the host instead of the V * 4 bytes of logits.
//
// Per row (V = vocab, all passes strided over the row, 1024 threads):
//   0. penalties: copy the row to scratch and apply the row's history entries (if any);
//   1. max key (= greedy token) and the double sum of exp(z - top) (the logprob's norm);
//   2. top-k: radix select of the k-th key (count weights) among the min-p candidates;
//   3. top-p: the fixed-point mass of the candidates, then a radix select of the key where the
//      running mass (in key order) reaches ceil(top_p * mass);
//   4. Gumbel-max over the candidates left (key >= threshold, min-p kept).
// Keys are sample_math::order_key: (orderable float bits, inverted id), so every threshold is
// exact and ties follow the host's (logit desc, id asc) order. The radix select walks 8-bit
// digits from the top and stops as soon as the chosen bucket holds one element (usually after
// 2-3 digits); histograms are warp-aggregated shared atomics on integers, so they are exact
// and independent of thread order.
//
// Napkin math (H200, V = 128256, one row): each pass reads the row's 513 KB (from L2 after the
// first); plain temperature sampling makes 3 passes, top-p ~6-8. At ~150 GB/s per SM from L2
// that is ~10-30 us per row, with rows in parallel on 132 SMs, against a 513 KB PCIe download
// and a host sort per row before. Unmeasured so far.
#include <cfloat>
#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/cuda_launch.cuh"
#include "sample/sample_math.h"

namespace mlxs::cuda {
namespace {

using namespace mlxs::sample_math;

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFull = 0xffffffffu;

struct Shared {
  unsigned long long hist_w[256];  // weight (count or fixed-point mass) per digit value
  unsigned int hist_c[256];        // elements per digit value
  unsigned long long red_u64[kWarps];
  double red_f64[kWarps];
  uint32_t red_u32[kWarps];
  unsigned long long prefix, above, result;
  unsigned int count;
};

// ============================== block reductions ============================================
// Each returns the result to every thread; the leading __syncthreads() makes back-to-back
// calls safe.

__device__ unsigned long long block_max(unsigned long long v, Shared& s) {
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(kFull, v, o));
  __syncthreads();
  if ((threadIdx.x & 31) == 0) s.red_u64[threadIdx.x / 32] = v;
  __syncthreads();
  v = s.red_u64[0];
  for (int w = 1; w < kWarps; ++w) v = max(v, s.red_u64[w]);
  return v;
}

__device__ unsigned long long block_sum(unsigned long long v, Shared& s) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) s.red_u64[threadIdx.x / 32] = v;
  __syncthreads();
  v = 0;
  for (int w = 0; w < kWarps; ++w) v += s.red_u64[w];
  return v;
}

__device__ double block_sum(double v, Shared& s) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) s.red_f64[threadIdx.x / 32] = v;
  __syncthreads();
  v = 0;
  for (int w = 0; w < kWarps; ++w) v += s.red_f64[w];
  return v;
}

// The id with the largest score (ties: lowest id).
__device__ uint32_t block_argmax(double score, uint32_t id, Shared& s) {
  for (int o = 16; o > 0; o >>= 1) {
    const double os = __shfl_xor_sync(kFull, score, o);
    const uint32_t oi = __shfl_xor_sync(kFull, id, o);
    if (os > score || (os == score && oi < id)) score = os, id = oi;
  }
  __syncthreads();
  if ((threadIdx.x & 31) == 0)
    s.red_f64[threadIdx.x / 32] = score, s.red_u32[threadIdx.x / 32] = id;
  __syncthreads();
  score = s.red_f64[0], id = s.red_u32[0];
  for (int w = 1; w < kWarps; ++w) {
    if (s.red_f64[w] > score || (s.red_f64[w] == score && s.red_u32[w] < id)) {
      score = s.red_f64[w], id = s.red_u32[w];
    }
  }
  return id;
}

// Adds (1, w) to histogram bucket `bucket` (-1 = nothing) of every lane: one shared atomic
// per distinct bucket of the warp. Every lane of the warp must call it. w < 2^41.
__device__ void warp_histogram_add(int bucket, unsigned long long w, Shared& s) {
  unsigned todo = __ballot_sync(kFull, bucket >= 0);
  while (todo) {
    const int leader = __ffs(todo) - 1;
    const int b = __shfl_sync(kFull, bucket, leader);
    const bool mine = bucket == b;
    const unsigned members = __ballot_sync(kFull, mine);
    // 21-bit halves: 32 lanes of them sum below 2^26 in a 32-bit reduction.
    const unsigned lo = __reduce_add_sync(kFull, mine ? unsigned(w & 0x1fffffu) : 0u);
    const unsigned hi = __reduce_add_sync(kFull, mine ? unsigned(w >> 21) : 0u);
    if (int(threadIdx.x & 31) == leader) {
      atomicAdd(&s.hist_c[b], unsigned(__popc(members)));
      atomicAdd(&s.hist_w[b], ((unsigned long long)hi << 21) + lo);
    }
    todo &= ~members;
  }
}

// ============================== the row ======================================================

struct RowView {
  const float* z;  // [V] penalised logits
  int64_t V;
  SampleRowParams p;
  float top;
};

// True when token i (logit v) passes min-p and has a key >= lower.
__device__ __forceinline__ bool candidate(const RowView& row, float v, unsigned long long key,
                                          unsigned long long lower, double* scaled) {
  *scaled = scaled_logit(v, row.top, row.p.inv_t);
  return key >= lower && *scaled >= row.p.log_min_p;
}

// The largest key K such that the candidates (min-p kept, key >= lower) with key >= K weigh at
// least `target` (1 per element when by_count, else their fixed-point softmax weight).
// The candidates must weigh at least `target` in all.
__device__ unsigned long long select_key(const RowView& row, unsigned long long lower,
                                         bool by_count, unsigned long long target, Shared& s) {
  unsigned long long prefix = 0, above = 0;
  int shift = 56;
  for (;; shift -= 8) {
    for (int b = threadIdx.x; b < 256; b += blockDim.x) s.hist_w[b] = 0, s.hist_c[b] = 0;
    __syncthreads();
    const unsigned long long high = shift == 56 ? 0ull : ~0ull << (shift + 8);
    for (int64_t base = 0; base < row.V; base += blockDim.x) {  // uniform: whole warps call
      const int64_t i = base + threadIdx.x;
      int bucket = -1;
      unsigned long long w = 0;
      if (i < row.V) {
        const float v = row.z[i];
        const unsigned long long key = order_key(v, uint32_t(i));
        double scaled;
        if ((key & high) == (prefix & high) && candidate(row, v, key, lower, &scaled)) {
          bucket = int((key >> shift) & 255);
          w = by_count ? 1ull : fixed_weight(scaled);
        }
      }
      warp_histogram_add(bucket, w, s);
    }
    __syncthreads();
    if (threadIdx.x == 0) {  // walk the buckets from the top until the mass reaches target
      unsigned long long acc = above;
      int b = 255;
      for (; b > 0 && acc + s.hist_w[b] < target; --b) acc += s.hist_w[b];
      s.prefix = prefix | (unsigned long long)b << shift;
      s.above = acc;
      s.count = s.hist_c[b];
    }
    __syncthreads();
    prefix = s.prefix, above = s.above;
    if (shift == 0) return prefix;  // every digit chosen: prefix is the key
    if (s.count == 1) break;        // one candidate left in the bucket: its key is the answer
  }
  // The single candidate whose key has prefix's digits from bit `shift` up.
  for (int64_t i = threadIdx.x; i < row.V; i += blockDim.x) {
    const float v = row.z[i];
    const unsigned long long key = order_key(v, uint32_t(i));
    double scaled;
    if ((key >> shift) == (prefix >> shift) && candidate(row, v, key, lower, &scaled)) {
      s.result = key;
    }
  }
  __syncthreads();
  return s.result;
}

// Copies row r of logits to scratch and applies the row's penalties there; returns the row to
// sample from (the logits themselves when the row has no history entries).
__device__ const float* penalise_row(const float* z, int64_t V, const SampleRowParams& p,
                                     const SampleHistoryView& h, float* scratch) {
  if (p.history_end <= p.history_begin) return z;
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x) scratch[i] = z[i];
  __syncthreads();
  for (int32_t e = p.history_begin + int32_t(threadIdx.x); e < p.history_end; e += blockDim.x) {
    const int32_t t = h.token[e];
    if (t < 0 || t >= V) continue;
    scratch[t] =
        penalised(scratch[t], h.seen[e] != 0, h.count[e], p.repetition, p.presence, p.frequency);
  }
  __syncthreads();
  return scratch;
}

// One CTA per row r: out_tokens[r] and out_logprobs[r] as the host sample() computes them.
__global__ void __launch_bounds__(kThreads)
    sample_kernel(const float* logits, int64_t V, const SampleRowParams* params,
                  SampleHistoryView history, float* scratch, int32_t* out_tokens,
                  float* out_logprobs) {
  pdl_launch_dependents();
  pdl_wait();
  __shared__ Shared s;
  const int64_t r = blockIdx.x;
  RowView row;
  row.p = params[r];
  row.V = V;
  row.z = penalise_row(logits + r * V, V, row.p, history, scratch + r * V);

  // Pass 1: the top key (greedy token) and the softmax norm of the penalised logits.
  unsigned long long best = 0;
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {
    best = max(best, (unsigned long long)order_key(row.z[i], uint32_t(i)));
  }
  best = block_max(best, s);
  uint32_t token = token_of_key(best);
  row.top = row.z[token];
  double sum = 0;
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x) sum += exp(double(row.z[i] - row.top));
  sum = block_sum(sum, s);
  const float log_norm = row.top + float(log(sum));

  if (!row.p.greedy) {
    unsigned long long lower = 0;  // candidates: min-p kept and key >= lower
    double scaled;
    if (row.p.top_k > 0) {
      unsigned long long n = 0;
      for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {
        n += candidate(row, row.z[i], order_key(row.z[i], uint32_t(i)), 0, &scaled);
      }
      n = block_sum(n, s);
      const unsigned long long k = (unsigned long long)row.p.top_k;
      if (k < n) lower = select_key(row, 0, true, k, s);
    }
    if (row.p.top_p < 1.0f) {
      unsigned long long mass = 0;
      for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {
        if (candidate(row, row.z[i], order_key(row.z[i], uint32_t(i)), lower, &scaled)) {
          mass += fixed_weight(scaled);
        }
      }
      mass = block_sum(mass, s);
      lower = select_key(row, lower, false, top_p_target(mass, row.p.top_p), s);
    }
    double best_score = -INFINITY;
    uint32_t best_id = 0xffffffffu;
    for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {  // ids rise: strict > keeps the lowest
      if (candidate(row, row.z[i], order_key(row.z[i], uint32_t(i)), lower, &scaled)) {
        const double score = draw_score(scaled, row.p.seed, row.p.step, uint32_t(i));
        if (score > best_score) best_score = score, best_id = uint32_t(i);
      }
    }
    token = block_argmax(best_score, best_id, s);
  }
  if (threadIdx.x == 0) {
    out_tokens[r] = int32_t(token);
    out_logprobs[r] = row.z[token] - log_norm;
  }
}

}  // namespace

// ============================== launcher ====================================================

void sample_rows(const float* logits, int64_t R, int64_t V, const SampleRowParams* params,
                 const SampleHistoryView& history, float* scratch, int32_t* out_tokens,
                 float* out_logprobs, Stream& stream) {
  if (R == 0) return;
  launch(sample_kernel, unsigned(R), kThreads, 0, stream, logits, V, params, history, scratch,
         out_tokens, out_logprobs);
  MLXS_CUDA_LAUNCHED(stream);
}

}  // namespace mlxs::cuda
