// The memory-bound linear layer for decode: out[M, N] = x[M, K] @ w[N, K]^T with M <= 8.
//
// Napkin math (Llama-3.1-8B, bf16, batch 1): a decode step reads 16.06 GB of weights once and
// does 2 FLOP per weight per row of x, i.e. 0.25 FLOP/byte at M = 1 and 2 at M = 8: far under
// the H200's ~180 FLOP/byte ridge, so the kernel's only job is to stream w at copy bandwidth
// (~4.3 TB/s counted read + write, i.e. the roofline of 3.75 ms per step). Per layer:
// qkv 6144x4096 (50 MB, 11.7 us), o 4096x4096 (34 MB, 7.8 us), gate_up 28672x4096 (235 MB,
// 55 us), down 4096x14336 (117 MB, 27 us); lm_head 128256x4096 (1.05 GB, 244 us).
//
// Shape of the kernel: a warp owns kRowsPerWarp rows of w and walks K with 16-byte loads
// (8 bf16), kUnroll chunks per lane per iteration, so each lane keeps kRowsPerWarp * kUnroll
// = 8 independent 16-byte loads in flight (4 KB per warp). Run 1 (H200, 2026-11-28) measured
// 94 % of copy bandwidth on gate_up (N = 28672) but 63-77 % on o_proj/down/qkv, where N = 4096
// gives only ~16 warps per SM: for those, 4 warps share each row pair and split K (KS = 4).
// Weights are loaded with the streaming hint (read once, evict first); x (at most 8 rows of K
// f32) stays in L1/L2. f32 accumulation; warp-shuffle (and for KS > 1 shared-memory) reduction.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/cuda_launch.cuh"

namespace mlxs::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kRowsPerWarp = 2;
constexpr int kUnroll = 4;

template <typename W>
struct WTraits;
template <>
struct WTraits<float> {
  static constexpr int kVec = 4;
  __device__ static float get(const uint4& v, int e) { return __uint_as_float((&v.x)[e]); }
  __device__ static float round(float x) { return x; }
};
template <>
struct WTraits<__nv_bfloat16> {
  static constexpr int kVec = 8;
  __device__ static float get(const uint4& v, int e) {
    const uint32_t word = (&v.x)[e / 2];
    return __uint_as_float(e % 2 ? (word & 0xffff0000u) : (word << 16));
  }
  __device__ static float round(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }
};
template <>
struct WTraits<__half> {
  static constexpr int kVec = 8;
  __device__ static float get(const uint4& v, int e) {
    const uint32_t word = (&v.x)[e / 2];
    return __half2float(__ushort_as_half(uint16_t(e % 2 ? word >> 16 : word & 0xffffu)));
  }
  __device__ static float round(float x) { return __half2float(__float2half_rn(x)); }
};

// ============================== kernel ======================================================

// MT: rows of x this instantiation holds accumulators for (M <= MT). KS: warps that share the
// same rows and split K between them (interleaved chunks), reduced through shared memory; KS > 1
// puts more loads in flight when N alone gives too few warps (o_proj, down: N = 4096).
// kPro: what x goes through before the product (GemvPrologue): nothing, or the row's RMSNorm
// times f.norm_weight (each CTA reduces the row itself: at most 2 x K f32 from L2, while its
// first weights are in flight). f.accumulate adds the result to out. (A SwiGLU prologue was
// tried and measured: every CTA recomputing silu over all of K costs ~0.6 ms per 8B step.)
template <int MT, int KS, typename W, bool kRound, int kPro>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_kernel(const float* __restrict__ x, int M, int K, const W* __restrict__ w, int N,
                const float* __restrict__ bias, GemvFusion f, float* __restrict__ out) {
  using Tr = WTraits<W>;
  constexpr int V = Tr::kVec;
  constexpr int kGroups = kWarps / KS;
  __shared__ float red[kWarps][MT][kRowsPerWarp];
  __shared__ float inv_rms[MT];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group = warp / KS, slice = warp % KS;
  const int n0 = (blockIdx.x * kGroups + group) * kRowsPerWarp;
  const int chunks = K / V;
  float acc[MT][kRowsPerWarp];
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) acc[m][r] = 0.f;

  uint4 wv[kUnroll][kRowsPerWarp];
  auto load_w = [&](int c0) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + 32 * KS * u;
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        const bool ok = c < chunks && n0 + r < N;
        wv[u][r] = ok ? __ldcs(reinterpret_cast<const uint4*>(w + size_t(n0 + r) * K) + c)
                      : make_uint4(0, 0, 0, 0);
      }
    }
  };
  // Weights never depend on earlier kernels: the first batch is in flight before the wait.
  const int first = slice * 32 + lane;
  load_w(first);
  pdl_launch_dependents();
  pdl_wait();
  if constexpr (kPro == kProNorm) {
    for (int m = 0; m < M; ++m) {
      float ss = 0.f;
      for (int k = threadIdx.x * 4; k < K; k += kWarps * 32 * 4) {
        const float4 v = *reinterpret_cast<const float4*>(x + size_t(m) * K + k);
        ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
      }
      for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
      if (lane == 0) red[warp][0][0] = ss;
      __syncthreads();
      if (threadIdx.x == 0) {
        float t = 0.f;
        for (int i = 0; i < kWarps; ++i) t += red[i][0][0];
        inv_rms[m] = 1.0f / sqrtf(t / float(K) + f.eps);
      }
      __syncthreads();
    }
  }
  const size_t x_stride = size_t(K);
  for (int c0 = first; c0 < chunks && n0 < N; c0 += 32 * KS * kUnroll) {
    if (c0 != first) load_w(c0);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + 32 * KS * u;
      if (c >= chunks) break;
#pragma unroll
      for (int m = 0; m < MT; ++m) {
        if (m >= M) break;
        float xv[V];
        const float4* xp = reinterpret_cast<const float4*>(x + m * x_stride + size_t(c) * V);
#pragma unroll
        for (int q = 0; q < V / 4; ++q) {
          const float4 a = __ldg(xp + q);
          xv[4 * q] = a.x, xv[4 * q + 1] = a.y, xv[4 * q + 2] = a.z, xv[4 * q + 3] = a.w;
        }
        if constexpr (kPro == kProNorm) {
          const float4* np = reinterpret_cast<const float4*>(f.norm_weight + size_t(c) * V);
#pragma unroll
          for (int q = 0; q < V / 4; ++q) {
            const float4 nw = __ldg(np + q);
            const float inv = inv_rms[m];
            xv[4 * q] = nw.x * (xv[4 * q] * inv), xv[4 * q + 1] = nw.y * (xv[4 * q + 1] * inv);
            xv[4 * q + 2] = nw.z * (xv[4 * q + 2] * inv);
            xv[4 * q + 3] = nw.w * (xv[4 * q + 3] * inv);
          }
        }
#pragma unroll
        for (int e = 0; e < V; ++e) {
          const float xe = kRound ? Tr::round(xv[e]) : xv[e];
#pragma unroll
          for (int r = 0; r < kRowsPerWarp; ++r)
            acc[m][r] = fmaf(xe, Tr::get(wv[u][r], e), acc[m][r]);
        }
      }
    }
  }
#pragma unroll
  for (int m = 0; m < MT; ++m) {
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      float v = acc[m][r];
      for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
      if (KS == 1) {
        if (lane == 0 && m < M && n0 + r < N) {
          float& o = out[size_t(m) * N + n0 + r];
          o = (f.accumulate ? o : 0.f) + (v + (bias ? bias[n0 + r] : 0.f));
        }
      } else if (lane == 0) {
        red[warp][m][r] = v;
      }
    }
  }
  if (KS > 1) {
    __syncthreads();
    // Thread i of the block finishes output (group, m, r) = i in row-major order.
    const int i = threadIdx.x;
    if (i < kGroups * MT * kRowsPerWarp) {
      const int g = i / (MT * kRowsPerWarp), m = (i / kRowsPerWarp) % MT, r = i % kRowsPerWarp;
      const int n = (blockIdx.x * kGroups + g) * kRowsPerWarp + r;
      if (m < M && n < N) {
        float v = 0.f;
#pragma unroll
        for (int k = 0; k < KS; ++k) v += red[g * KS + k][m][r];
        float& o = out[size_t(m) * N + n];
        o = (f.accumulate ? o : 0.f) + (v + (bias ? bias[n] : 0.f));
      }
    }
  }
}

template <int MT, int KS, typename W, int kPro>
void launch_gemv(const float* x, int M, int K, const void* w, int N, const float* bias,
                 bool round_x, const GemvFusion& f, float* out, cudaStream_t stream) {
  const int rows_per_block = (kWarps / KS) * kRowsPerWarp;
  const unsigned blocks = unsigned((N + rows_per_block - 1) / rows_per_block);
  const W* wt = static_cast<const W*>(w);
  if (round_x) {
    launch(gemv_kernel<MT, KS, W, true, kPro>, blocks, kWarps * 32, 0, stream, x, M, K, wt, N, bias,
           f, out);
  } else {
    launch(gemv_kernel<MT, KS, W, false, kPro>, blocks, kWarps * 32, 0, stream, x, M, K, wt, N,
           bias, f, out);
  }
  MLXS_CUDA_LAUNCHED();
}

// Split K over 4 warps when the rows alone give fewer than ~32 warps per SM on 132 SMs.
template <int MT, typename W, int kPro>
void dispatch_ks(const float* x, int M, int K, const void* w, int N, const float* bias,
                 bool round_x, const GemvFusion& f, float* out, cudaStream_t stream) {
  const bool few_rows = N / kRowsPerWarp < 132 * 32 && K >= 2048;
  if (few_rows)
    launch_gemv<MT, 4, W, kPro>(x, M, K, w, N, bias, round_x, f, out, stream);
  else
    launch_gemv<MT, 1, W, kPro>(x, M, K, w, N, bias, round_x, f, out, stream);
}

// The norm prologue is instantiated for M <= kGemvMaxFusedRows only (the decode sizes).
template <typename W>
void dispatch_m(const float* x, int M, int K, const void* w, int N, const float* bias, bool round_x,
                const GemvFusion& f, float* out, cudaStream_t stream) {
  const int pro = gemv_prologue(f);
  if (pro == kProNorm) {
    if (M == 1) return dispatch_ks<1, W, kProNorm>(x, M, K, w, N, bias, round_x, f, out, stream);
    return dispatch_ks<2, W, kProNorm>(x, M, K, w, N, bias, round_x, f, out, stream);
  }
  if (M == 1)
    dispatch_ks<1, W, kProNone>(x, M, K, w, N, bias, round_x, f, out, stream);
  else if (M == 2)
    dispatch_ks<2, W, kProNone>(x, M, K, w, N, bias, round_x, f, out, stream);
  else if (M <= 4)
    dispatch_ks<4, W, kProNone>(x, M, K, w, N, bias, round_x, f, out, stream);
  else
    dispatch_ks<8, W, kProNone>(x, M, K, w, N, bias, round_x, f, out, stream);
}

}  // namespace

// ============================== launcher ====================================================

bool gemv_supported(int64_t M, int64_t K, DType wt, const GemvFusion& f) {
  const int64_t vec = wt == DType::kF32 ? 4 : 8;
  const int64_t max_rows = gemv_prologue(f) == kProNone ? kGemvMaxRows : kGemvMaxFusedRows;
  return M >= 1 && M <= max_rows && K % vec == 0 && K < (int64_t(1) << 30) &&
         (wt == DType::kF32 || wt == DType::kBF16 || wt == DType::kF16);
}

void gemv(const float* x, int64_t M, int64_t K, const void* w, DType wt, int64_t N,
          const float* bias, bool round_x, const GemvFusion& f, float* out, cudaStream_t stream) {
  switch (wt) {
    case DType::kBF16:
      dispatch_m<__nv_bfloat16>(x, int(M), int(K), w, int(N), bias, round_x, f, out, stream);
      break;
    case DType::kF16:
      dispatch_m<__half>(x, int(M), int(K), w, int(N), bias, round_x, f, out, stream);
      break;
    default:
      dispatch_m<float>(x, int(M), int(K), w, int(N), bias, false, f, out, stream);
  }
}

}  // namespace mlxs::cuda
