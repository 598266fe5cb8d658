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
// = 8 independent 16-byte loads in flight (4 KB per warp; ~16 warps per SM gives the ~32 KB per
// SM that Little's law asks for at 4.3 TB/s and ~1 us latency). Weights are loaded with the
// streaming hint (read once, evict first); x (at most 8 rows of K f32) stays in L1/L2.
// f32 accumulation; a warp-shuffle reduction per output.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_kernels.h"

namespace mlxs::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kRowsPerWarp = 2;
constexpr int kUnroll = 4;

template <typename W> struct WTraits;
template <> struct WTraits<float> {
  static constexpr int kVec = 4;
  __device__ static float get(const uint4& v, int e) { return __uint_as_float((&v.x)[e]); }
  __device__ static float round(float x) { return x; }
};
template <> struct WTraits<__nv_bfloat16> {
  static constexpr int kVec = 8;
  __device__ static float get(const uint4& v, int e) {
    const uint32_t word = (&v.x)[e / 2];
    return __uint_as_float(e % 2 ? (word & 0xffff0000u) : (word << 16));
  }
  __device__ static float round(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }
};
template <> struct WTraits<__half> {
  static constexpr int kVec = 8;
  __device__ static float get(const uint4& v, int e) {
    const uint32_t word = (&v.x)[e / 2];
    return __half2float(__ushort_as_half(uint16_t(e % 2 ? word >> 16 : word & 0xffffu)));
  }
  __device__ static float round(float x) { return __half2float(__float2half_rn(x)); }
};

// ============================== kernel ======================================================

// MT: rows of x this instantiation holds accumulators for (M <= MT).
template <int MT, typename W, bool kRound>
__global__ void __launch_bounds__(kWarps * 32) gemv_kernel(const float* __restrict__ x, int M,
                                                           int K, const W* __restrict__ w, int N,
                                                           const float* __restrict__ bias,
                                                           float* __restrict__ out) {
  using Tr = WTraits<W>;
  constexpr int V = Tr::kVec;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int n0 = (blockIdx.x * kWarps + warp) * kRowsPerWarp;
  if (n0 >= N) return;
  const int chunks = K / V;
  float acc[MT][kRowsPerWarp];
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) acc[m][r] = 0.f;

  for (int c0 = lane; c0 < chunks; c0 += 32 * kUnroll) {
    uint4 wv[kUnroll][kRowsPerWarp];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + 32 * u;
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        const bool ok = c < chunks && n0 + r < N;
        wv[u][r] = ok ? __ldcs(reinterpret_cast<const uint4*>(w + size_t(n0 + r) * K) + c)
                      : make_uint4(0, 0, 0, 0);
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + 32 * u;
      if (c >= chunks) break;
#pragma unroll
      for (int m = 0; m < MT; ++m) {
        if (m >= M) break;
        float xv[V];
        const float4* xp = reinterpret_cast<const float4*>(x + size_t(m) * K + size_t(c) * V);
#pragma unroll
        for (int q = 0; q < V / 4; ++q) {
          const float4 f = __ldg(xp + q);
          xv[4 * q] = f.x, xv[4 * q + 1] = f.y, xv[4 * q + 2] = f.z, xv[4 * q + 3] = f.w;
        }
#pragma unroll
        for (int e = 0; e < V; ++e) {
          const float xe = kRound ? Tr::round(xv[e]) : xv[e];
#pragma unroll
          for (int r = 0; r < kRowsPerWarp; ++r) acc[m][r] = fmaf(xe, Tr::get(wv[u][r], e), acc[m][r]);
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
      if (lane == 0 && m < M && n0 + r < N) {
        out[size_t(m) * N + n0 + r] = v + (bias ? bias[n0 + r] : 0.f);
      }
    }
  }
}

template <int MT, typename W>
void launch(const float* x, int M, int K, const void* w, int N, const float* bias, bool round_x,
            float* out, cudaStream_t stream) {
  const int rows_per_block = kWarps * kRowsPerWarp;
  const unsigned blocks = unsigned((N + rows_per_block - 1) / rows_per_block);
  const W* wt = static_cast<const W*>(w);
  if (round_x) {
    gemv_kernel<MT, W, true><<<blocks, kWarps * 32, 0, stream>>>(x, M, K, wt, N, bias, out);
  } else {
    gemv_kernel<MT, W, false><<<blocks, kWarps * 32, 0, stream>>>(x, M, K, wt, N, bias, out);
  }
  MLXS_CUDA_LAUNCHED();
}

template <typename W>
void dispatch_m(const float* x, int M, int K, const void* w, int N, const float* bias,
                bool round_x, float* out, cudaStream_t stream) {
  if (M == 1) launch<1, W>(x, M, K, w, N, bias, round_x, out, stream);
  else if (M == 2) launch<2, W>(x, M, K, w, N, bias, round_x, out, stream);
  else if (M <= 4) launch<4, W>(x, M, K, w, N, bias, round_x, out, stream);
  else launch<8, W>(x, M, K, w, N, bias, round_x, out, stream);
}

}  // namespace

// ============================== launcher ====================================================

bool gemv_supported(int64_t M, int64_t K, DType wt) {
  const int64_t vec = wt == DType::kF32 ? 4 : 8;
  return M >= 1 && M <= kGemvMaxRows && K % vec == 0 && K < (int64_t(1) << 31) &&
         (wt == DType::kF32 || wt == DType::kBF16 || wt == DType::kF16);
}

void gemv(const float* x, int64_t M, int64_t K, const void* w, DType wt, int64_t N,
          const float* bias, bool round_x, float* out, cudaStream_t stream) {
  switch (wt) {
    case DType::kBF16:
      dispatch_m<__nv_bfloat16>(x, int(M), int(K), w, int(N), bias, round_x, out, stream);
      break;
    case DType::kF16:
      dispatch_m<__half>(x, int(M), int(K), w, int(N), bias, round_x, out, stream);
      break;
    default: dispatch_m<float>(x, int(M), int(K), w, int(N), bias, false, out, stream);
  }
}

}  // namespace mlxs::cuda
