// Paged attention over the KV cache, for decode, prefill and chunked prefill alike.
//
// Work decomposition: a CTA takes one tile (up to kAttnTileRows query rows of one sequence),
// one chunk of the heads that share a KV head (GQA: the K/V tile it loads serves every query
// vector of the group, so K/V is read once per KV head, not once per query head), and one
// split of the key range (flash-decoding: few tiles, e.g. batch-1 decode, split the sequence
// so that ~2 CTAs per SM run; a combine kernel merges the splits by their softmax statistics).
// Keys stream through shared memory 32 at a time (f32 after conversion from the cache dtype);
// each warp owns up to 8 query vectors and keeps an online softmax (running max m, sum l,
// unnormalised output acc) per vector: lane j scores key j, then each lane accumulates its
// Dh/32 output dimensions over the 32 keys.
//
// Napkin math (Llama-3.1-8B, bf16 cache, decode at context 640): per layer and sequence the
// kernel reads 640 * 8 KV heads * 128 * 2 (K, V) * 2 B = 2.6 MB, 84 MB over 32 layers: 20 us
// at 4.3 TB/s per sequence, small next to the 3.75 ms of weights at batch 1 and equal to them
// at ~190 sequences. Prefill is different: 4 * ctx^2/2 * H * Dh FLOP per layer runs on CUDA
// cores here (~20 TFLOP/s reachable), which is the known gap to a tensor-core FlashAttention.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>

#include "backend/cuda/attention_tile.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/cuda_launch.cuh"
#include "backend/cuda/warp_reduce.cuh"

namespace mlxs::cuda {
namespace {

constexpr int kKeys = 32;
constexpr int kWarps = 4;

template <typename KvT>
__device__ __forceinline__ float to_f32(KvT v);
template <>
__device__ __forceinline__ float to_f32(float v) {
  return v;
}
template <>
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
template <>
__device__ __forceinline__ float to_f32(__half v) {
  return __half2float(v);
}

// Raw K and V of one 32-key tile, loaded with 16-byte loads into registers and converted into
// shared memory later, so the next tile's loads are in flight while this one is computed.
template <typename KvT, int DH>
struct TileLoader {
  static constexpr int kElems = 16 / int(sizeof(KvT));
  static_assert(DH % kElems == 0, "head_dim must fill whole 16-byte loads");
  static constexpr int kPerRow = DH / kElems;
  static constexpr int kLoads = (kKeys * kPerRow + kWarps * 32 - 1) / (kWarps * 32);
  uint4 k[kLoads], v[kLoads];

  __device__ void load(int j0, int ke, const int* table, int block_size, const KvT* kc,
                       const KvT* vc, int64_t kv_cols, int kvh) {
#pragma unroll
    for (int i = 0; i < kLoads; ++i) {
      const int idx = threadIdx.x + kWarps * 32 * i, r = idx / kPerRow, c = idx % kPerRow;
      const int p = j0 + r;
      if (idx < kKeys * kPerRow && p < ke) {
        const int64_t slot = int64_t(table[p / block_size]) * block_size + p % block_size;
        const int64_t at = slot * kv_cols + int64_t(kvh) * DH + c * kElems;
        k[i] = *reinterpret_cast<const uint4*>(kc + at);
        v[i] = *reinterpret_cast<const uint4*>(vc + at);
      } else {
        k[i] = v[i] = make_uint4(0, 0, 0, 0);
      }
    }
  }
  __device__ void store(float* k_s, float* v_s) const {
#pragma unroll
    for (int i = 0; i < kLoads; ++i) {
      const int idx = threadIdx.x + kWarps * 32 * i, r = idx / kPerRow, c = idx % kPerRow;
      if (idx >= kKeys * kPerRow) continue;
      const KvT* kp = reinterpret_cast<const KvT*>(&k[i]);
      const KvT* vp = reinterpret_cast<const KvT*>(&v[i]);
#pragma unroll
      for (int e = 0; e < kElems; ++e) {
        k_s[r * (DH + 4) + c * kElems + e] = to_f32(kp[e]);
        v_s[r * DH + c * kElems + e] = to_f32(vp[e]);
      }
    }
  }
};

// ============================== kernels =====================================================

// Grid: x = tile, y = kv head * head chunks, z = split. Shared memory (dynamic):
// q_s [vectors][DH], k_s [32][DH + 4] (lane j reads row j with 16-byte loads: the padding puts
// the 8 lanes of each load phase on distinct banks), v_s [32][DH]. Each lane owns kDimsPerLane
// output dimensions: contiguous (float4 reads of v_s) when DH is a multiple of 128.
// kVecPerWarp: query vectors a warp can own (2 for decode tiles, 8 = kAttnMaxVectors / kWarps
// for prefill tiles); decode instantiations keep fewer accumulators, so more CTAs fit per SM.
template <typename KvT, int DH, int kVecPerWarp>
__global__ void __launch_bounds__(kWarps * 32)
    attention_kernel(AttentionArgs a, int heads_per_chunk, int max_vectors) {
  pdl_launch_dependents();
  pdl_wait();
  constexpr int kDimsPerLane = (DH + 31) / 32;
  constexpr bool kContig = DH % 128 == 0;
  extern __shared__ __align__(16) float smem[];
  float* q_s = smem;
  float* k_s = q_s + max_vectors * DH;
  float* v_s = k_s + kKeys * (DH + 4);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

  const AttentionTile geo = attention_tile<kKeys>(a, a.tiles, heads_per_chunk);
  const int s = geo.s, t0 = geo.t0, kvh = geo.kvh, h0 = geo.h0, nh = geo.nh;
  const int nvec = geo.rows * nh;
  const int pos0 = geo.pos0, kb = geo.kb, ke = geo.ke;

  const int64_t q_cols = int64_t(a.heads) * DH, kv_cols = int64_t(a.kv_heads) * DH;
  for (int i = threadIdx.x; i < nvec * DH; i += blockDim.x) {
    const int vec = i / DH, d = i % DH;
    q_s[i] = a.q[int64_t(t0 + vec / nh) * q_cols + int64_t(h0 + vec % nh) * DH + d];
  }
  float m[kVecPerWarp], l[kVecPerWarp], acc[kVecPerWarp][kDimsPerLane];
#pragma unroll
  for (int i = 0; i < kVecPerWarp; ++i) {
    m[i] = -INFINITY, l[i] = 0.f;
#pragma unroll
    for (int e = 0; e < kDimsPerLane; ++e) acc[i][e] = 0.f;
  }
  const KvT* kc = static_cast<const KvT*>(a.k_cache);
  const KvT* vc = static_cast<const KvT*>(a.v_cache);
  const int* table = a.block_tables + int64_t(s) * a.bt_stride;

  TileLoader<KvT, DH> loader;
  if (kb < ke) loader.load(kb, ke, table, a.block_size, kc, vc, kv_cols, kvh);
  for (int j0 = kb; j0 < ke; j0 += kKeys) {
    __syncthreads();  // q_s written / previous tile consumed
    loader.store(k_s, v_s);
    __syncthreads();
    if (j0 + kKeys < ke) loader.load(j0 + kKeys, ke, table, a.block_size, kc, vc, kv_cols, kvh);
#pragma unroll
    for (int i = 0; i < kVecPerWarp; ++i) {
      const int vec = warp + kWarps * i;
      if (vec < nvec) {  // uniform per warp
        const int pos = pos0 + vec / nh;
        const int lo = a.sliding_window > 0 ? max(0, pos - a.sliding_window + 1) : 0;
        const int key = j0 + lane;
        const bool valid = key < ke && key >= lo && key <= pos;
        float dot = 0.f;
        const float4* qv = reinterpret_cast<const float4*>(q_s + vec * DH);
        const float4* kr = reinterpret_cast<const float4*>(k_s + lane * (DH + 4));
#pragma unroll 8
        for (int d = 0; d < DH / 4; ++d) {
          const float4 qq = qv[d], kk = kr[d];
          dot = fmaf(qq.x, kk.x, dot);
          dot = fmaf(qq.y, kk.y, dot);
          dot = fmaf(qq.z, kk.z, dot);
          dot = fmaf(qq.w, kk.w, dot);
        }
        const float score = valid ? dot * a.scale : -INFINITY;
        const float m_new = fmaxf(m[i], warp_max(score));
        if (m_new != -INFINITY) {
          const float p = valid ? expf(score - m_new) : 0.f;
          const float corr = expf(m[i] - m_new);
          l[i] = l[i] * corr + warp_sum(p);
#pragma unroll
          for (int e = 0; e < kDimsPerLane; ++e) acc[i][e] *= corr;
#pragma unroll 8
          for (int j = 0; j < kKeys; ++j) {
            const float pj = __shfl_sync(0xffffffffu, p, j);
            if constexpr (kContig) {
              const float4* vr =
                  reinterpret_cast<const float4*>(v_s + j * DH + lane * kDimsPerLane);
#pragma unroll
              for (int e4 = 0; e4 < kDimsPerLane / 4; ++e4) {
                const float4 vv = vr[e4];
                acc[i][4 * e4] = fmaf(pj, vv.x, acc[i][4 * e4]);
                acc[i][4 * e4 + 1] = fmaf(pj, vv.y, acc[i][4 * e4 + 1]);
                acc[i][4 * e4 + 2] = fmaf(pj, vv.z, acc[i][4 * e4 + 2]);
                acc[i][4 * e4 + 3] = fmaf(pj, vv.w, acc[i][4 * e4 + 3]);
              }
            } else {
#pragma unroll
              for (int e = 0; e < kDimsPerLane; ++e) {
                const int d = lane + 32 * e;
                if (d < DH) acc[i][e] = fmaf(pj, v_s[j * DH + d], acc[i][e]);
              }
            }
          }
          m[i] = m_new;
        }
      }
    }
  }
#pragma unroll
  for (int i = 0; i < kVecPerWarp; ++i) {
    const int vec = warp + kWarps * i;
    if (vec >= nvec) continue;
    const int64_t t = t0 + vec / nh;
    const int h = h0 + vec % nh;
#pragma unroll
    for (int e = 0; e < kDimsPerLane; ++e) {
      const int d = kContig ? lane * kDimsPerLane + e : lane + 32 * e;
      if (d >= DH) continue;
      if (a.num_splits == 1) {
        a.out[t * q_cols + int64_t(h) * DH + d] = acc[i][e] / l[i];
      } else {
        a.part_o[((int64_t(blockIdx.z) * a.num_tokens + t) * a.heads + h) * DH + d] = acc[i][e];
      }
    }
    if (a.num_splits > 1 && lane == 0) {
      float* ml = a.part_ml + ((int64_t(blockIdx.z) * a.num_tokens + t) * a.heads + h) * 2;
      ml[0] = m[i];
      ml[1] = l[i];
    }
  }
}

// Grid: x = token, y = head; block: max(32, DH) threads, one per output dimension.
__global__ void combine_kernel(AttentionArgs a) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t t = blockIdx.x;
  const int h = blockIdx.y, d = threadIdx.x, DH = a.head_dim;
  const int64_t stride = a.num_tokens * a.heads;
  float mx = -INFINITY;
  for (int z = 0; z < a.num_splits; ++z)
    mx = fmaxf(mx, a.part_ml[((z * stride) + t * a.heads + h) * 2]);
  float sum = 0.f, o = 0.f;
  for (int z = 0; z < a.num_splits; ++z) {
    const int64_t at = z * stride + t * a.heads + h;
    const float mz = a.part_ml[at * 2];
    if (mz == -INFINITY) continue;
    const float wz = expf(mz - mx);
    sum += a.part_ml[at * 2 + 1] * wz;
    if (d < DH) o += a.part_o[at * DH + d] * wz;
  }
  if (d < DH) a.out[t * int64_t(a.heads) * DH + int64_t(h) * DH + d] = o / sum;
}

// Dynamic shared memory of a CTA with `vectors` query vectors: q_s, K and V tiles (f32).
template <int DH>
constexpr size_t attention_smem(int vectors) {
  return sizeof(float) * (size_t(vectors) * DH + kKeys * (DH + 4) + kKeys * DH);
}

template <typename KvT, int DH, int VPW>
void launch_attention_vpw(const AttentionArgs& a, int heads_per_chunk, int max_vectors,
                          Stream& stream) {
  const int group = a.heads / a.kv_heads;
  const int chunks = (group + heads_per_chunk - 1) / heads_per_chunk;
  dim3 grid(unsigned(a.num_tiles), unsigned(a.kv_heads * chunks), unsigned(a.num_splits));
  launch(attention_kernel<KvT, DH, VPW>, grid, kWarps * 32, attention_smem<DH>(max_vectors), stream,
         a, heads_per_chunk, max_vectors);
}

// The shared memory limit of every kernel launch_attention_vpw() can pick for (KvT, DH).
template <typename KvT, int DH>
void configure_dh(Stream& stream) {
  constexpr int kLimit = int(attention_smem<DH>(kAttnMaxVectors));
  MLXS_CUDA(stream, cudaFuncSetAttribute(attention_kernel<KvT, DH, 2>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, kLimit));
  MLXS_CUDA(stream, cudaFuncSetAttribute(attention_kernel<KvT, DH, kAttnMaxVectors / kWarps>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, kLimit));
}

template <typename KvT>
void configure_kv(Stream& stream) {
  configure_dh<KvT, 16>(stream);
  configure_dh<KvT, 32>(stream);
  configure_dh<KvT, 64>(stream);
  configure_dh<KvT, 128>(stream);
  configure_dh<KvT, 256>(stream);
}

template <typename KvT, int DH>
void launch_attention(const AttentionArgs& a, int heads_per_chunk, Stream& stream) {
  // Decode tiles hold one row: size q_s and the accumulators for the vectors a CTA can have.
  const int max_vectors = std::min(kAttnMaxVectors, a.max_tile_rows * heads_per_chunk);
  if (max_vectors <= 2 * kWarps) {
    launch_attention_vpw<KvT, DH, 2>(a, heads_per_chunk, max_vectors, stream);
  } else {
    launch_attention_vpw<KvT, DH, kAttnMaxVectors / kWarps>(a, heads_per_chunk, max_vectors,
                                                            stream);
  }
}

template <typename KvT>
void dispatch_dh(const AttentionArgs& a, int hpc, Stream& stream) {
  switch (a.head_dim) {
    case 16:
      return launch_attention<KvT, 16>(a, hpc, stream);
    case 32:
      return launch_attention<KvT, 32>(a, hpc, stream);
    case 64:
      return launch_attention<KvT, 64>(a, hpc, stream);
    case 128:
      return launch_attention<KvT, 128>(a, hpc, stream);
    case 256:
      return launch_attention<KvT, 256>(a, hpc, stream);
    default:
      stream.check(cudaErrorInvalidValue, "paged_attention: unsupported head_dim", __FILE__,
                   __LINE__);
  }
}

int heads_per_chunk(int heads, int kv_heads, int max_tile_rows) {
  const int group = heads / kv_heads;
  return std::max(1, std::min(group, kAttnMaxVectors / std::max(1, max_tile_rows)));
}

}  // namespace

// ============================== launchers ===================================================

void configure_attention(Stream& stream) {
  configure_kv<__nv_bfloat16>(stream);
  configure_kv<__half>(stream);
  configure_kv<float>(stream);
}

int attention_splits(int num_tiles, int kv_heads, int heads, int max_tile_rows) {
  const int group = heads / kv_heads;
  const int hpc = heads_per_chunk(heads, kv_heads, max_tile_rows);
  const int ctas = num_tiles * kv_heads * ((group + hpc - 1) / hpc);
  constexpr int kTargetCtas = 264;  // ~2 per SM on an H100/H200
  return std::clamp((kTargetCtas + ctas - 1) / ctas, 1, 16);
}

void paged_attention(const AttentionArgs& a, Stream& stream) {
  const int hpc = heads_per_chunk(a.heads, a.kv_heads, a.max_tile_rows);
  switch (a.cache_dtype) {
    case DType::kBF16:
      dispatch_dh<__nv_bfloat16>(a, hpc, stream);
      break;
    case DType::kF16:
      dispatch_dh<__half>(a, hpc, stream);
      break;
    default:
      dispatch_dh<float>(a, hpc, stream);
  }
  if (a.num_splits > 1) combine_attention(a, stream);
}

void combine_attention(const AttentionArgs& a, Stream& stream) {
  {
    launch(combine_kernel, dim3(unsigned(a.num_tokens), unsigned(a.heads)),
           std::max(32, a.head_dim), 0, stream, a);
    MLXS_CUDA_LAUNCHED(stream);
  }
}

}  // namespace mlxs::cuda
