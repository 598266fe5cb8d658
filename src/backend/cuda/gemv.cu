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

// The SwiGLU epilogue: silu(gate) * up, the formula of silu_mul (elementwise.cu).
__device__ __forceinline__ float swiglu(float g, float u) {
  return g / (1.0f + expf(-g)) * u;
}

// MT: rows of x this instantiation holds accumulators for (M <= MT). KS: warps that share the
// same rows and split K between them (interleaved chunks), reduced through shared memory; KS > 1
// puts more loads in flight when N alone gives too few warps (o_proj, down: N = 4096).
// kEpi (GemvEpilogue): out[m, n] = the product (+ bias), or, for gate/up weights interleaved by
// rows (gate_0, up_0, gate_1, ...: a warp's row pair is one gate and its up), out[m, n / 2] =
// swiglu(gate + bias, up + bias) with out [M, N / 2]: SwiGLU without its own kernel and without
// the [M, N] intermediate. (A SwiGLU prologue in the down GEMV was tried first and measured:
// every CTA recomputing silu over all of K cost ~0.6 ms per 8B step.)
template <int MT, int KS, typename W, bool kRound, int kEpi>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_kernel(const float* __restrict__ x, int M, int K, const W* __restrict__ w, int N,
                const float* __restrict__ bias, float* __restrict__ out) {
  using Tr = WTraits<W>;
  constexpr int V = Tr::kVec;
  constexpr int kGroups = kWarps / KS;
  static_assert(kEpi == kEpiStore || kRowsPerWarp == 2, "SwiGLU pairs a warp's two rows");
  __shared__ float red[kWarps][MT][kRowsPerWarp];
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
  // Reduce: lane 0 of each warp holds its rows' sums (KS == 1 writes them; KS > 1 goes through
  // shared memory, where thread i of the block finishes output i).
  const int half_n = N / 2;
#pragma unroll
  for (int m = 0; m < MT; ++m) {
    float v[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      v[r] = acc[m][r];
      for (int o = 16; o > 0; o >>= 1) v[r] += __shfl_xor_sync(0xffffffffu, v[r], o);
    }
    if (lane != 0 || m >= M) continue;
    if (KS > 1) {
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) red[warp][m][r] = v[r];
    } else if (kEpi == kEpiSwiGLU) {
      if (n0 + 1 < N) {
        out[size_t(m) * half_n + n0 / 2] =
            swiglu(v[0] + (bias ? bias[n0] : 0.f), v[1] + (bias ? bias[n0 + 1] : 0.f));
      }
    } else {
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        if (n0 + r < N) out[size_t(m) * N + n0 + r] = v[r] + (bias ? bias[n0 + r] : 0.f);
      }
    }
  }
  if (KS > 1) {
    __syncthreads();
    constexpr int kOuts = kEpi == kEpiSwiGLU ? 1 : kRowsPerWarp;  // outputs per row pair
    const int i = threadIdx.x;
    if (i < kGroups * MT * kOuts) {
      const int g = i / (MT * kOuts), m = (i / kOuts) % MT, r = i % kOuts;
      const int n = (blockIdx.x * kGroups + g) * kRowsPerWarp + r;
      float sum[kRowsPerWarp] = {};
#pragma unroll
      for (int rr = 0; rr < kRowsPerWarp; ++rr)
#pragma unroll
        for (int k = 0; k < KS; ++k) sum[rr] += red[g * KS + k][m][rr];
      if (kEpi == kEpiSwiGLU) {
        if (m < M && n + 1 < N) {
          out[size_t(m) * half_n + n / 2] =
              swiglu(sum[0] + (bias ? bias[n] : 0.f), sum[1] + (bias ? bias[n + 1] : 0.f));
        }
      } else if (m < M && n < N) {
        out[size_t(m) * N + n] = sum[r] + (bias ? bias[n] : 0.f);
      }
    }
  }
}

template <int MT, int KS, typename W, int kEpi>
void launch_gemv(const float* x, int M, int K, const void* w, int N, const float* bias,
                 bool round_x, float* out, Stream& stream) {
  const int rows_per_block = (kWarps / KS) * kRowsPerWarp;
  const unsigned blocks = unsigned((N + rows_per_block - 1) / rows_per_block);
  const W* wt = static_cast<const W*>(w);
  if (round_x) {
    launch(gemv_kernel<MT, KS, W, true, kEpi>, blocks, kWarps * 32, 0, stream, x, M, K, wt, N, bias,
           out);
  } else {
    launch(gemv_kernel<MT, KS, W, false, kEpi>, blocks, kWarps * 32, 0, stream, x, M, K, wt, N,
           bias, out);
  }
  MLXS_CUDA_LAUNCHED(stream);
}

// Split K over 4 warps when the rows alone give fewer than ~32 warps per SM on 132 SMs.
template <int MT, typename W, int kEpi>
void dispatch_ks(const float* x, int M, int K, const void* w, int N, const float* bias,
                 bool round_x, float* out, Stream& stream) {
  const bool few_rows = N / kRowsPerWarp < 132 * 32 && K >= 2048;
  if (few_rows)
    launch_gemv<MT, 4, W, kEpi>(x, M, K, w, N, bias, round_x, out, stream);
  else
    launch_gemv<MT, 1, W, kEpi>(x, M, K, w, N, bias, round_x, out, stream);
}

template <typename W, int kEpi>
void dispatch_m(const float* x, int M, int K, const void* w, int N, const float* bias, bool round_x,
                float* out, Stream& stream) {
  if (M == 1)
    dispatch_ks<1, W, kEpi>(x, M, K, w, N, bias, round_x, out, stream);
  else if (M == 2)
    dispatch_ks<2, W, kEpi>(x, M, K, w, N, bias, round_x, out, stream);
  else if (M <= 4)
    dispatch_ks<4, W, kEpi>(x, M, K, w, N, bias, round_x, out, stream);
  else
    dispatch_ks<8, W, kEpi>(x, M, K, w, N, bias, round_x, out, stream);
}

template <typename W>
void dispatch_epi(const float* x, int M, int K, const void* w, int N, const float* bias,
                  bool round_x, GemvEpilogue epi, float* out, Stream& stream) {
  if (epi == kEpiSwiGLU)
    dispatch_m<W, kEpiSwiGLU>(x, M, K, w, N, bias, round_x, out, stream);
  else
    dispatch_m<W, kEpiStore>(x, M, K, w, N, bias, round_x, out, stream);
}

}  // namespace

// ============================== launcher ====================================================

bool gemv_supported(int64_t M, int64_t K, DType wt) {
  const int64_t vec = wt == DType::kF32 ? 4 : 8;
  return M >= 1 && M <= kGemvMaxRows && K % vec == 0 && K < (int64_t(1) << 30) &&
         (wt == DType::kF32 || wt == DType::kBF16 || wt == DType::kF16);
}

void gemv(const float* x, int64_t M, int64_t K, const void* w, DType wt, int64_t N,
          const float* bias, bool round_x, GemvEpilogue epi, float* out, Stream& stream) {
  switch (wt) {
    case DType::kBF16:
      dispatch_epi<__nv_bfloat16>(x, int(M), int(K), w, int(N), bias, round_x, epi, out, stream);
      break;
    case DType::kF16:
      dispatch_epi<__half>(x, int(M), int(K), w, int(N), bias, round_x, epi, out, stream);
      break;
    default:
      dispatch_epi<float>(x, int(M), int(K), w, int(N), bias, false, epi, out, stream);
  }
}

}  // namespace mlxs::cuda
