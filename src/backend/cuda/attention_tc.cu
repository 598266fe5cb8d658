// Prefill attention on tensor cores (FlashAttention-2 style, mma.sync m16n8k16 bf16, f32
// accumulation), over the paged bf16 KV cache. Used for steps that contain prefill chunks; the
// CUDA-core kernel of attention.cu keeps decode steps. backend.cuda.attention_tc false turns it
// off.
//
// Work decomposition: a CTA takes 16 tokens of one sequence times up to 4 query heads of one
// KV group (GQA: 64 query rows share every K/V tile the CTA loads), and one split of the key
// range. Warp w owns rows [16w, 16w + 16) (row = token * heads_in_chunk + head). K/V tiles of
// 64 keys stream through shared memory with cp.async, double-buffered, so the next tile loads
// while this one is computed. Per tile and warp: S = Q K^T (64 mma for Dh = 128), masked online
// softmax in registers, O += P V (64 mma), P going from the S accumulators to A fragments
// without touching shared memory.
//
// Napkin math (Llama-3.1-8B, 2048-token prompt): 4 * 2048^2 / 2 * 32 heads * 128 = 34 GFLOP per
// layer, 1.1 TFLOP per prompt: 1.4 ms at the ~790 TFLOP/s dense rate, against ~120 ms on CUDA
// cores (run 2). K/V traffic is small: each CTA re-reads its sequence's K/V from L2.
#include <cuda_bf16.h>

#include <algorithm>

#include "backend/cuda/attention_tile.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/cuda_launch.cuh"

namespace mlxs::cuda {
namespace {

constexpr int kTcWarps = 4;
constexpr int kTcKeys = 64;
constexpr int kTcRows = 16 * kTcWarps;

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return uint32_t(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  const int bytes = valid ? 16 : 0;  // 0: the destination is zero-filled, nothing is read
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::);
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// d += a (16x16, row) * b (16x8, col); bf16 inputs, f32 accumulators.
__device__ __forceinline__ void mma_bf16(float* d, const uint32_t* a, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// ============================== kernel ======================================================

// Grid: x = 16-token tile, y = kv head * head chunks, z = split. Dynamic shared memory:
// Q [64][DH + 8], then two stages of K [64][DH + 8] and V [64][DH + 8], all bf16 (the 16-byte
// row padding keeps ldmatrix conflict-free).
template <int DH>
__global__ void __launch_bounds__(kTcWarps * 32)
    attention_tc_kernel(AttentionArgs a, const int* tiles, int heads_per_chunk) {
  pdl_launch_dependents();
  pdl_wait();
  constexpr int kStride = DH + 8;
  constexpr int kDt = DH / 8;   // n-tiles of the output
  constexpr int kKk = DH / 16;  // k-steps of Q K^T
  extern __shared__ __align__(16) __nv_bfloat16 sm[];
  __nv_bfloat16* q_s = sm;
  __nv_bfloat16* kv_s = q_s + kTcRows * kStride;  // stage s: K at 2s, V at 2s + 1
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

  const AttentionTile geo = attention_tile<kTcKeys>(a, tiles, heads_per_chunk);
  const int s = geo.s, t0 = geo.t0, kvh = geo.kvh, h0 = geo.h0, nh = geo.nh;
  const int nrows = geo.rows * nh;
  const int pos0 = geo.pos0, kb = geo.kb, ke = geo.ke;
  const int64_t q_cols = int64_t(a.heads) * DH, kv_cols = int64_t(a.kv_heads) * DH;

  // Q rows to bf16 in shared memory (zero rows past nrows).
  for (int i = threadIdx.x; i < kTcRows * DH; i += blockDim.x) {
    const int r = i / DH, d = i % DH;
    float v = 0.f;
    if (r < nrows) v = a.q[int64_t(t0 + r / nh) * q_cols + int64_t(h0 + r % nh) * DH + d];
    q_s[r * kStride + d] = __float2bfloat16_rn(v);
  }
  const __nv_bfloat16* kc = static_cast<const __nv_bfloat16*>(a.k_cache);
  const __nv_bfloat16* vc = static_cast<const __nv_bfloat16*>(a.v_cache);
  const int* table = a.block_tables + int64_t(s) * a.bt_stride;
  auto load_tile = [&](int j0, int stage) {
    __nv_bfloat16* k_dst = kv_s + (2 * stage) * kTcKeys * kStride;
    __nv_bfloat16* v_dst = kv_s + (2 * stage + 1) * kTcKeys * kStride;
    constexpr int kChunks = DH / 8;  // 16-byte chunks per row
    for (int i = threadIdx.x; i < kTcKeys * kChunks; i += blockDim.x) {
      const int r = i / kChunks, c = i % kChunks, p = j0 + r;
      const bool valid = p < ke;
      int64_t at = 0;
      if (valid) {
        const int64_t slot = int64_t(table[p / a.block_size]) * a.block_size + p % a.block_size;
        at = slot * kv_cols + int64_t(kvh) * DH + c * 8;
      }
      cp_async16(k_dst + r * kStride + c * 8, kc + at, valid);
      cp_async16(v_dst + r * kStride + c * 8, vc + at, valid);
    }
    cp_async_commit();
  };

  // Rows this thread holds in the accumulators: r0 = 16 * warp + lane / 4 and r0 + 8.
  const int r0 = 16 * warp + lane / 4;
  int pos_r[2], lo_r[2];
  bool live[2];
  for (int h = 0; h < 2; ++h) {
    const int r = r0 + 8 * h;
    live[h] = r < nrows;
    pos_r[h] = pos0 + (live[h] ? r / nh : 0);
    lo_r[h] = a.sliding_window > 0 ? max(0, pos_r[h] - a.sliding_window + 1) : 0;
  }
  float o[kDt][4];
#pragma unroll
  for (int i = 0; i < kDt; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  const bool warp_active = 16 * warp < nrows;

  if (kb < ke) load_tile(kb, 0);
  __syncthreads();  // q_s written
  uint32_t qf[kKk][4];
  if (warp_active) {
#pragma unroll
    for (int kk = 0; kk < kKk; ++kk) {
      ldmatrix_x4(qf[kk], q_s + (16 * warp + lane % 16) * kStride + kk * 16 + (lane / 16) * 8);
    }
  }
  int stage = 0;
  for (int j0 = kb; j0 < ke; j0 += kTcKeys, stage ^= 1) {
    if (j0 + kTcKeys < ke) {
      load_tile(j0 + kTcKeys, stage ^ 1);
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const __nv_bfloat16* k_s = kv_s + (2 * stage) * kTcKeys * kStride;
    const __nv_bfloat16* v_s = kv_s + (2 * stage + 1) * kTcKeys * kStride;
    if (warp_active) {
      float sc[8][4];
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) {
        sc[nt][0] = sc[nt][1] = sc[nt][2] = sc[nt][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < kKk; kk += 2) {
          uint32_t b[4];
          ldmatrix_x4(b, k_s + (nt * 8 + lane % 8) * kStride + kk * 16 + (lane / 8) * 8);
          mma_bf16(sc[nt], qf[kk], b[0], b[1]);
          mma_bf16(sc[nt], qf[kk + 1], b[2], b[3]);
        }
      }
      // Mask, scale, online softmax per row half h (accumulator elements 2h, 2h + 1).
      float corr[2];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float mx = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < 8; ++nt) {
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int key = j0 + nt * 8 + 2 * (lane % 4) + e;
            const bool ok = live[h] && key < ke && key >= lo_r[h] && key <= pos_r[h];
            float& v = sc[nt][2 * h + e];
            v = ok ? v * a.scale : -INFINITY;
            mx = fmaxf(mx, v);
          }
        }
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float m_new = fmaxf(m[h], mx);
        corr[h] = m_new == -INFINITY ? 1.f : expf(m[h] - m_new);
        float sum = 0.f;
#pragma unroll
        for (int nt = 0; nt < 8; ++nt) {
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            float& v = sc[nt][2 * h + e];
            v = m_new == -INFINITY ? 0.f : expf(v - m_new);
            sum += v;
          }
        }
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        sum += __shfl_xor_sync(0xffffffffu, sum, 2);
        l[h] = l[h] * corr[h] + sum;
        m[h] = m_new;
      }
#pragma unroll
      for (int dt = 0; dt < kDt; ++dt) {
        o[dt][0] *= corr[0], o[dt][1] *= corr[0], o[dt][2] *= corr[1], o[dt][3] *= corr[1];
      }
      // O += P V, four k-steps of 16 keys.
#pragma unroll
      for (int k2 = 0; k2 < kTcKeys / 16; ++k2) {
        uint32_t pf[4] = {pack_bf16(sc[2 * k2][0], sc[2 * k2][1]),
                          pack_bf16(sc[2 * k2][2], sc[2 * k2][3]),
                          pack_bf16(sc[2 * k2 + 1][0], sc[2 * k2 + 1][1]),
                          pack_bf16(sc[2 * k2 + 1][2], sc[2 * k2 + 1][3])};
#pragma unroll
        for (int dt = 0; dt < kDt; dt += 2) {
          uint32_t b[4];
          ldmatrix_x4_trans(b, v_s + (k2 * 16 + lane % 8 + ((lane / 8) % 2) * 8) * kStride +
                                   dt * 8 + (lane / 16) * 8);
          mma_bf16(o[dt], pf, b[0], b[1]);
          mma_bf16(o[dt + 1], pf, b[2], b[3]);
        }
      }
    }
    __syncthreads();  // this stage is consumed before it is refilled
  }
  // Write rows r0 and r0 + 8: columns 2 * (lane % 4) + {0, 1} of every n-tile.
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    if (!live[h]) continue;
    const int r = r0 + 8 * h;
    const int64_t t = t0 + r / nh;
    const int head = h0 + r % nh;
    const float inv = l[h] > 0.f ? 1.f / l[h] : 0.f;
#pragma unroll
    for (int dt = 0; dt < kDt; ++dt) {
      const int d = dt * 8 + 2 * (lane % 4);
      if (a.num_splits == 1) {
        float* dst = a.out + t * q_cols + int64_t(head) * DH + d;
        dst[0] = o[dt][2 * h] * inv;
        dst[1] = o[dt][2 * h + 1] * inv;
      } else {
        float* dst =
            a.part_o + ((int64_t(blockIdx.z) * a.num_tokens + t) * a.heads + head) * DH + d;
        dst[0] = o[dt][2 * h];
        dst[1] = o[dt][2 * h + 1];
      }
    }
    if (a.num_splits > 1 && lane % 4 == 0) {
      float* ml = a.part_ml + ((int64_t(blockIdx.z) * a.num_tokens + t) * a.heads + head) * 2;
      ml[0] = m[h];
      ml[1] = l[h];
    }
  }
}

// Dynamic shared memory of a CTA: the query rows and two stages of K and V tiles (bf16).
template <int DH>
constexpr size_t tc_smem() {
  return sizeof(__nv_bfloat16) * size_t(DH + 8) * (kTcRows + 4 * kTcKeys);
}

template <int DH>
void configure_tc(Stream& stream) {
  MLXS_CUDA(stream,
            cudaFuncSetAttribute(attention_tc_kernel<DH>,
                                 cudaFuncAttributeMaxDynamicSharedMemorySize, int(tc_smem<DH>())));
}

template <int DH>
void launch_tc(const AttentionArgs& a, const int32_t* tiles, int num_tiles, int hpc,
               Stream& stream) {
  const size_t smem = tc_smem<DH>();
  const int group = a.heads / a.kv_heads;
  const int chunks = (group + hpc - 1) / hpc;
  dim3 grid(unsigned(num_tiles), unsigned(a.kv_heads * chunks), unsigned(a.num_splits));
  launch(attention_tc_kernel<DH>, grid, kTcWarps * 32, smem, stream, a, tiles, hpc);
}

}  // namespace

// ============================== launcher ====================================================

void configure_attention_tc(Stream& stream) {
  configure_tc<64>(stream);
  configure_tc<128>(stream);
}

bool attention_tc_supported(const AttentionArgs& a) {
  return a.cache_dtype == DType::kBF16 && (a.head_dim == 64 || a.head_dim == 128);
}

int attention_tc_heads_per_chunk(int heads, int kv_heads) {
  return std::min(heads / kv_heads, kTcRows / kAttnTcTileRows);
}

void paged_attention_tc(const AttentionArgs& a, const int32_t* tiles, int num_tiles,
                        Stream& stream) {
  const int hpc = attention_tc_heads_per_chunk(a.heads, a.kv_heads);
  if (a.head_dim == 64)
    launch_tc<64>(a, tiles, num_tiles, hpc, stream);
  else
    launch_tc<128>(a, tiles, num_tiles, hpc, stream);
  MLXS_CUDA_LAUNCHED(stream);
}

}  // namespace mlxs::cuda
