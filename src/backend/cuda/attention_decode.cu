// Paged attention for decode steps (one query row per sequence), on CUDA cores.
//
// Why its own kernel: the general kernel (attention.cu) scores one 32-key shared-memory tile
// per barrier pair with one lane per key; at batch 1 that is latency-bound (20 us per layer at
// context 640 on the H200, 0.66 ms of a 4.77 ms step) and under concurrency it reaches ~1.1 TB/s
// of KV, a quarter of the bandwidth (18.6 of 26.5 ms at 256 sequences).
//
// Work decomposition: a CTA takes one sequence, one KV head and one split of its keys; its
// G = H / Hk query heads (1 to 8) share every K/V byte it loads (GQA). Inside the CTA, 8 lanes
// own a key (a "key group": 4 per warp, 16 per CTA), each lane a slice of Dh/8 dimensions laid
// out as 16-byte chunks interleaved across the 8 lanes, so the 8 lanes of a group read one K
// row (and one V row) with fully coalesced 16-byte loads. A key group walks its keys kPerGroup
// at a time: all their K and V loads are issued together, then the G scores of each key are
// reduced over the group's lanes with 3 shuffles, the group's online softmax (running max m,
// sum l, unnormalised output acc over its dimension slice) takes the chunk with one rescale.
// No shared memory traffic and no barrier in the loop; at the end the 16 groups' states are
// merged (shuffles within a warp, shared memory across warps), and the CTA writes the output
// or, when the keys are split, its partial state; the last split to finish merges them.
// Latency at batch 1: a CTA issues its first K/V loads before waiting for the previous kernel
// (programmatic dependent launch), since only the query and its own key come from that kernel.
//
// Napkin math (Llama-3.1-8B, bf16 cache, G = 4, Dh 128): per key and KV head 512 B of K/V and
// ~1.1 k lane-instructions; at 256 sequences x 640 keys x 8 KV heads per layer that is 671 MB
// (~160 us at 4.2 TB/s) against ~60 us of issue: memory-bound, as it should be.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/cuda_launch.cuh"
#include "backend/cuda/warp_reduce.cuh"

namespace mlxs::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kLanesPerKey = 8;
constexpr int kGroupsPerWarp = 32 / kLanesPerKey;
constexpr int kGroups = kWarps * kGroupsPerWarp;
constexpr float kLog2e = 1.4426950408889634f;
constexpr int kMaxSplits = 32;     // one lane per split in the merge
constexpr int kMinSplitKeys = 64;  // one pass of the CTA's 16 key groups x 4 (16-bit) keys
constexpr int kMaxG = 8;           // query heads per KV head (GQA group) with an instantiation

template <typename T>
struct Kv;
template <>
struct Kv<float> {
  static constexpr int kPerChunk = 4;  // elements per 16-byte load
  __device__ static void to_f32(const uint4& u, float* f) {
    f[0] = __uint_as_float(u.x), f[1] = __uint_as_float(u.y);
    f[2] = __uint_as_float(u.z), f[3] = __uint_as_float(u.w);
  }
};
template <>
struct Kv<__nv_bfloat16> {
  static constexpr int kPerChunk = 8;
  __device__ static void to_f32(const uint4& u, float* f) {
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      f[2 * i] = __uint_as_float(w[i] << 16);
      f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
  }
};
template <>
struct Kv<__half> {
  static constexpr int kPerChunk = 8;
  __device__ static void to_f32(const uint4& u, float* f) {
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 p = __half22float2(*reinterpret_cast<const __half2*>(&w[i]));
      f[2 * i] = p.x, f[2 * i + 1] = p.y;
    }
  }
};

// KvT: cache element type; DH: head dim; G: query heads per KV head (compile-time, so the
// accumulators live in registers). Grid: x = decode tile (one sequence), y = KV head, z = split.
template <typename KvT, int DH, int G>
__global__ void __launch_bounds__(kWarps * 32) decode_kernel(AttentionArgs a) {
  constexpr int kChunk = Kv<KvT>::kPerChunk;
  constexpr int kChunksPerLane = DH / kChunk / kLanesPerKey;  // 16-byte loads per row per lane
  static_assert(kChunksPerLane >= 1 && DH % (kChunk * kLanesPerKey) == 0, "head_dim");
  static_assert(G >= 1 && G <= kMaxG, "query heads per KV head");
  constexpr int kDims = kChunksPerLane * kChunk;  // dimensions a lane owns
  // Keys per group per iteration, whose K and V rows (kPerGroup x kChunksPerLane x 2 16-byte
  // registers) are in flight together: 4 for 16-bit caches, 2 for f32 ones and wherever the G
  // accumulators pass 64 registers (G >= 5 at Dh 128), so that G up to 8 does not spill.
  constexpr int kPerGroup = sizeof(KvT) == 4 || G * kDims > 64 ? 2 : 4;
  __shared__ __align__(16) float q_s[G][DH];
  __shared__ float merge_ml[kWarps][G][2];
  __shared__ __align__(16) float merge_acc[kWarps][G][DH];

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int sub = lane % kLanesPerKey;  // this lane's slice of the key row
  const int* tile = a.tiles + 4 * blockIdx.x;
  const int s = tile[0], t = tile[1];
  const int kvh = blockIdx.y;
  const int pos = a.context_len[s] - 1;  // the query's position (its key is the last one)
  const int lo = a.sliding_window > 0 ? max(0, pos - a.sliding_window + 1) : 0;
  const int span = pos + 1 - lo;
  // The grid has a.num_splits splits (fixed for a recorded graph); short contexts use fewer,
  // of at least kMinSplitKeys keys each, and the CTAs past them only take their ticket.
  const int splits = min(a.num_splits, max(1, (span + kMinSplitKeys - 1) / kMinSplitKeys));
  const int split_len = (span + splits - 1) / splits;
  const int kb = lo + int(blockIdx.z) * split_len, ke = min(pos + 1, kb + split_len);

  const int64_t q_cols = int64_t(a.heads) * DH, kv_cols = int64_t(a.kv_heads) * DH;
  const KvT* kc = static_cast<const KvT*>(a.k_cache) + int64_t(kvh) * DH;
  const KvT* vc = static_cast<const KvT*>(a.v_cache) + int64_t(kvh) * DH;
  const int* table = a.block_tables + int64_t(s) * a.bt_stride;
  // Loads the K and V rows of the group's keys [j0, j0 + kPerGroup) that are < ke (zeros
  // past the end); with skip_last, the query's own key `pos` is left out.
  uint4 kr[kPerGroup][kChunksPerLane], vr[kPerGroup][kChunksPerLane];
  auto load_keys = [&](int j0, bool skip_last) {
#pragma unroll
    for (int k = 0; k < kPerGroup; ++k) {
      const int p = j0 + k;
      if (p < ke && !(skip_last && p == pos)) {
        const int64_t slot = int64_t(table[p / a.block_size]) * a.block_size + p % a.block_size;
#pragma unroll
        for (int c = 0; c < kChunksPerLane; ++c) {
          const int64_t at = slot * kv_cols + (c * kLanesPerKey + sub) * kChunk;
          kr[k][c] = *reinterpret_cast<const uint4*>(kc + at);
          vr[k][c] = *reinterpret_cast<const uint4*>(vc + at);
        }
      } else if (!skip_last || p != pos) {
#pragma unroll
        for (int c = 0; c < kChunksPerLane; ++c) kr[k][c] = vr[k][c] = make_uint4(0, 0, 0, 0);
      }
    }
  };
  // The step's metadata was uploaded before the step and every cached key but the query's own
  // was written by earlier steps, so the first keys are in flight before the wait for the
  // previous kernel (the attention prologue, which writes q and key `pos`).
  const int jw0 = kb + warp * kGroupsPerWarp * kPerGroup;
  const int g0 = jw0 + (lane / kLanesPerKey) * kPerGroup;
  if (jw0 < ke) load_keys(g0, true);
  pdl_launch_dependents();
  pdl_wait();
  if (jw0 < ke && g0 <= pos && pos < g0 + kPerGroup && pos < ke) {
    const int k = pos - g0;
    const int64_t slot = int64_t(table[pos / a.block_size]) * a.block_size + pos % a.block_size;
#pragma unroll
    for (int kk = 0; kk < kPerGroup; ++kk) {
      if (kk != k) continue;
#pragma unroll
      for (int c = 0; c < kChunksPerLane; ++c) {
        const int64_t at = slot * kv_cols + (c * kLanesPerKey + sub) * kChunk;
        kr[kk][c] = *reinterpret_cast<const uint4*>(kc + at);
        vr[kk][c] = *reinterpret_cast<const uint4*>(vc + at);
      }
    }
  }
  // q pre-scaled by scale * log2(e), so scores are in the exp2 domain.
  const float qscale = a.scale * kLog2e;
  for (int i = threadIdx.x; i < G * DH; i += blockDim.x) {
    const int g = i / DH, d = i % DH;
    q_s[g][d] = a.q[int64_t(t) * q_cols + int64_t(kvh * G + g) * DH + d] * qscale;
  }
  __syncthreads();

  float m[G], l[G], acc[G][kDims];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    m[g] = -INFINITY, l[g] = 0.f;
#pragma unroll
    for (int e = 0; e < kDims; ++e) acc[g][e] = 0.f;
  }

  // The loop runs warp-uniformly (the shuffles below need every lane of the warp): a warp
  // walks 4 groups x kPerGroup keys per iteration, groups past the split's end score -inf.
  for (int jw = jw0; jw < ke; jw += kGroups * kPerGroup) {
    const int j0 = jw + (lane / kLanesPerKey) * kPerGroup;
    if (jw != jw0) load_keys(j0, false);
    // Scores of the chunk's keys for every head, reduced over the group's 8 lanes.
    float sc[G][kPerGroup];
#pragma unroll
    for (int g = 0; g < G; ++g)
#pragma unroll
      for (int k = 0; k < kPerGroup; ++k) sc[g][k] = 0.f;
#pragma unroll
    for (int c = 0; c < kChunksPerLane; ++c) {
      const int d0 = (c * kLanesPerKey + sub) * kChunk;
#pragma unroll
      for (int k = 0; k < kPerGroup; ++k) {
        float kf[kChunk];
        Kv<KvT>::to_f32(kr[k][c], kf);
#pragma unroll
        for (int g = 0; g < G; ++g) {
#pragma unroll
          for (int e4 = 0; e4 < kChunk / 4; ++e4) {
            const float4 qq = *reinterpret_cast<const float4*>(&q_s[g][d0 + 4 * e4]);
            sc[g][k] = fmaf(qq.x, kf[4 * e4], sc[g][k]);
            sc[g][k] = fmaf(qq.y, kf[4 * e4 + 1], sc[g][k]);
            sc[g][k] = fmaf(qq.z, kf[4 * e4 + 2], sc[g][k]);
            sc[g][k] = fmaf(qq.w, kf[4 * e4 + 3], sc[g][k]);
          }
        }
      }
    }
#pragma unroll
    for (int g = 0; g < G; ++g) {
#pragma unroll
      for (int k = 0; k < kPerGroup; ++k) {
        float v = sc[g][k];
        v += __shfl_xor_sync(0xffffffffu, v, 1);
        v += __shfl_xor_sync(0xffffffffu, v, 2);
        v += __shfl_xor_sync(0xffffffffu, v, 4);
        sc[g][k] = j0 + k < ke ? v : -INFINITY;
      }
    }
    // Online softmax over the chunk: one rescale per head, then V converted one 16-byte chunk
    // at a time into every head's accumulator.
    float p[G][kPerGroup];
#pragma unroll
    for (int g = 0; g < G; ++g) {
      float cmax = sc[g][0];
#pragma unroll
      for (int k = 1; k < kPerGroup; ++k) cmax = fmaxf(cmax, sc[g][k]);
      const float m_new = fmaxf(m[g], cmax);
      // -inf while this group has seen no key: every weight below is then 0.
      const float m_ref = m_new == -INFINITY ? 0.f : m_new;
      const float corr = exp2f(m[g] - m_ref);
      m[g] = m_new;
      float psum = 0.f;
#pragma unroll
      for (int k = 0; k < kPerGroup; ++k) psum += p[g][k] = exp2f(sc[g][k] - m_ref);
      l[g] = l[g] * corr + psum;
#pragma unroll
      for (int e = 0; e < kDims; ++e) acc[g][e] *= corr;
    }
#pragma unroll
    for (int k = 0; k < kPerGroup; ++k) {
#pragma unroll
      for (int c = 0; c < kChunksPerLane; ++c) {
        float vf[kChunk];
        Kv<KvT>::to_f32(vr[k][c], vf);
#pragma unroll
        for (int g = 0; g < G; ++g)
#pragma unroll
          for (int e = 0; e < kChunk; ++e)
            acc[g][c * kChunk + e] = fmaf(p[g][k], vf[e], acc[g][c * kChunk + e]);
      }
    }
  }

  // Merge the 4 groups of each warp (lanes sub, sub + 8, sub + 16, sub + 24 own the same dims).
#pragma unroll
  for (int off = kLanesPerKey; off < 32; off *= 2) {
#pragma unroll
    for (int g = 0; g < G; ++g) {
      const float mo = __shfl_xor_sync(0xffffffffu, m[g], off);
      const float lo_ = __shfl_xor_sync(0xffffffffu, l[g], off);
      const float mn = fmaxf(m[g], mo);
      const float ca = mn == -INFINITY ? 0.f : exp2f(m[g] - mn);
      const float cb = mn == -INFINITY ? 0.f : exp2f(mo - mn);
      l[g] = l[g] * ca + lo_ * cb;
#pragma unroll
      for (int e = 0; e < kDims; ++e) {
        const float ao = __shfl_xor_sync(0xffffffffu, acc[g][e], off);
        acc[g][e] = acc[g][e] * ca + ao * cb;
      }
      m[g] = mn;
    }
  }
  if (lane < kLanesPerKey) {
#pragma unroll
    for (int g = 0; g < G; ++g) {
      if (lane == 0) merge_ml[warp][g][0] = m[g], merge_ml[warp][g][1] = l[g];
#pragma unroll
      for (int c = 0; c < kChunksPerLane; ++c)
#pragma unroll
        for (int e = 0; e < kChunk; ++e)
          merge_acc[warp][g][(c * kLanesPerKey + sub) * kChunk + e] = acc[g][c * kChunk + e];
    }
  }
  __syncthreads();
  // Across warps: thread i finishes (head g, dim d) pairs.
  for (int i = threadIdx.x; i < G * DH; i += blockDim.x) {
    const int g = i / DH, d = i % DH;
    float mx = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) mx = fmaxf(mx, merge_ml[w][g][0]);
    float sum = 0.f, o = 0.f;
    if (mx != -INFINITY) {
#pragma unroll
      for (int w = 0; w < kWarps; ++w) {
        const float c = exp2f(merge_ml[w][g][0] - mx);
        sum += merge_ml[w][g][1] * c;
        o += merge_acc[w][g][d] * c;
      }
    }
    const int h = kvh * G + g;
    if (a.num_splits == 1) {
      a.out[int64_t(t) * q_cols + int64_t(h) * DH + d] = o / sum;
    } else {
      const int64_t at = (int64_t(blockIdx.z) * a.num_tokens + t) * a.heads + h;
      a.part_o[at * DH + d] = o;
      if (d == 0) a.part_ml[at * 2] = mx, a.part_ml[at * 2 + 1] = sum;  // exp2 domain
    }
  }
  if (a.num_splits == 1) return;
  // The last CTA of this (sequence, KV head) to finish merges every split's partial state
  // (threadfence + ticket, so the other splits' stores are visible to it) and resets the ticket.
  __shared__ bool last;
  __threadfence();
  __syncthreads();
  int* ticket = a.split_counters + int64_t(s) * a.kv_heads + kvh;
  if (threadIdx.x == 0) last = atomicAdd(ticket, 1) == a.num_splits - 1;
  __syncthreads();
  if (!last) return;
  __threadfence();
  if (threadIdx.x == 0) *ticket = 0;
  // Warp w turns split z's (m, l) of heads w, w + kWarps into their weights
  // 2^(m_z - max) / sum (lane z); the loop is warp-uniform, as the reductions need.
  __shared__ float weight[G][kMaxSplits];
  const int64_t stride = a.num_tokens * a.heads;
  for (int g = warp; g < G; g += kWarps) {
    const int64_t at = int64_t(lane) * stride + int64_t(t) * a.heads + kvh * G + g;
    const bool used = lane < splits;
    const float mz = used ? __ldcg(&a.part_ml[at * 2]) : -INFINITY;
    const float lz = used ? __ldcg(&a.part_ml[at * 2 + 1]) : 0.f;
    const float mx = warp_max(mz);
    const float wz = mz == -INFINITY ? 0.f : lz * exp2f(mz - mx);
    const float total = warp_sum(wz);
    weight[g][lane] = mz == -INFINITY ? 0.f : exp2f(mz - mx) / total;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < G * DH; i += blockDim.x) {
    const int g = i / DH, d = i % DH, h = kvh * G + g;
    const float* po = a.part_o + (int64_t(t) * a.heads + h) * DH + d;
    float o = 0.f;
#pragma unroll 8
    for (int z = 0; z < splits; ++z) o = fmaf(weight[g][z], __ldcg(po + z * stride * DH), o);
    a.out[int64_t(t) * q_cols + int64_t(h) * DH + d] = o;
  }
}

template <typename KvT, int DH, int G>
void launch_decode(const AttentionArgs& a, Stream& stream) {
  dim3 grid(unsigned(a.num_tiles), unsigned(a.kv_heads), unsigned(a.num_splits));
  launch(decode_kernel<KvT, DH, G>, grid, kWarps * 32, 0, stream, a);
  MLXS_CUDA_LAUNCHED(stream);
}

template <typename KvT, int DH>
bool dispatch_g(const AttentionArgs& a, Stream& stream) {
  switch (a.heads / a.kv_heads) {
    case 1:
      return launch_decode<KvT, DH, 1>(a, stream), true;
    case 2:
      return launch_decode<KvT, DH, 2>(a, stream), true;
    case 3:
      return launch_decode<KvT, DH, 3>(a, stream), true;
    case 4:
      return launch_decode<KvT, DH, 4>(a, stream), true;
    case 5:
      return launch_decode<KvT, DH, 5>(a, stream), true;
    case 6:
      return launch_decode<KvT, DH, 6>(a, stream), true;
    case 7:
      return launch_decode<KvT, DH, 7>(a, stream), true;
    case 8:
      return launch_decode<KvT, DH, 8>(a, stream), true;
    default:
      return false;
  }
}

template <typename KvT>
bool dispatch_dh(const AttentionArgs& a, Stream& stream) {
  switch (a.head_dim) {
    case 64:
      return dispatch_g<KvT, 64>(a, stream);
    case 128:
      return dispatch_g<KvT, 128>(a, stream);
    default:
      return false;
  }
}

}  // namespace

bool attention_decode_supported(const AttentionArgs& a) {
  const int g = a.kv_heads > 0 ? a.heads / a.kv_heads : 0;
  return a.max_tile_rows == 1 && (a.head_dim == 64 || a.head_dim == 128) && g >= 1 && g <= kMaxG &&
         a.heads == g * a.kv_heads &&
         (a.cache_dtype == DType::kF32 || a.cache_dtype == DType::kBF16 ||
          a.cache_dtype == DType::kF16);
}

int attention_decode_splits(int num_seqs, int kv_heads) {
  // ~2 CTAs per SM on an H100/H200; at most 32 splits (each split's partial state is
  // Dh + 2 floats per head, merged by combine_attention()).
  constexpr int kTargetCtas = 264;
  const int ctas = std::max(1, num_seqs * kv_heads);
  return std::clamp((kTargetCtas + ctas - 1) / ctas, 1, kMaxSplits);
}

void paged_attention_decode(const AttentionArgs& a, Stream& stream) {
  bool ok = false;
  switch (a.cache_dtype) {
    case DType::kBF16:
      ok = dispatch_dh<__nv_bfloat16>(a, stream);
      break;
    case DType::kF16:
      ok = dispatch_dh<__half>(a, stream);
      break;
    default:
      ok = dispatch_dh<float>(a, stream);
  }
  if (!ok) {
    stream.check(cudaErrorInvalidValue, "paged_attention_decode: unsupported shape", __FILE__,
                 __LINE__);
  }
}

}  // namespace mlxs::cuda
