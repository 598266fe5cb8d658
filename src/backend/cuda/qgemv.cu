// Affine-quantized weights (backend.h AffineQuant: w[n, k] = scale[n, k / g] * q[n, k] +
// bias[n, k / g], q an unsigned `bits`-bit value in a little-endian bit stream per row) on the
// GPU: the decode GEMV that reads the packed weights once, and a dequantizer into f32 / bf16
// rows (the embedding gather, and the weight tiles of the cuBLAS path for many rows).
//
// Napkin math (Llama-3.1-8B, batch 1, 4-bit g64 with f16 scales and biases): 0.5 byte per
// weight plus 4 bytes per 64 weights = 0.5625 B/weight, so a decode step reads ~4.5 GB instead
// of the 16.06 GB of bf16 (2.1 ms against 4.8 ms at ~3.35 TB/s copy bandwidth on an H100, 1.4 ms
// on an H200). 8-bit g64: 1.0625 B/weight. The roofline of one call is its bytes (packed data +
// scales + biases) over the copy bandwidth: gate_up 28672x4096 at 4 bits = 66 MB, 20 us on an
// H100; o_proj 4096x4096 = 9.4 MB, 2.8 us.
//
// The unit of work is a chunk: 32 consecutive values of a row, `bits` 32-bit words (16 bytes at
// 4 bits, 32 at 8, 20 at 5, 24 at 6), always inside one group when g >= 32 (g = 16: two groups,
// each half of the chunk its own scale and bias). Shape of the GEMV (as gemv.cu, whose bf16
// kernel reaches 81-94 % of copy bandwidth): a warp owns a pair of rows (for SwiGLU, a gate row
// and its up row), lane l takes chunks l, l + 32 KS, ..., and keeps kUnroll chunks per row in
// flight (4 x 16 B per row at 4 bits: 128 B per lane, 4 KB per warp), with each chunk's scales
// and biases loaded in the same batch so no load waits on another. Values are unpacked in
// registers without integer-to-float conversions: for a 4-bit value at bits [4j, 4j + 4) of a
// word, (word & (0xf << 4j)) | exponent(23 - 4j) is the f32 number 2^(23-4j) + q exactly, so
// one LOP3 and one FADD give q (8 bits: the same with bytes); 5 and 6 bits extract with funnel
// shifts. At M = 1 no conversion at all: acc += scale * sum(x q) + bias * sum(x) per group,
// with each q left in place and read as an f32 subnormal (q * 2^(shift - 149), exact) against x
// scaled by 2^(100 - shift) (unpack8_raw), so a value costs an AND and an FFMA per row, plus an
// FMUL and an FADD shared by the row pair; at M > 1 each value is dequantized once (w =
// fma(q, scale, bias)) and costs one FFMA per row of x. f32 throughout (x is not rounded). KS = 4
// warps split K for shapes with few rows and long rows (down_proj: N = 4096, K = 14336), reduced
// through shared memory.
//
// Issue-rate budget (M = 1, 4 bits): ~3.3 instructions per value and row (with the loads and
// shifts). An H100 SM at 3.35 TB/s needs ~25 values per clock, ~80 of its 128 lane-instructions
// per clock: enough slack for ~85 % of copy bandwidth; an H200 (4.8 TB/s) needs ~115, close to
// the SM's issue rate, so expect less there. x (f32, from L1) is read once per chunk per
// row pair: from M = 2 the L1 and from M = 8 the FFMAs bound the kernel. The next step for both
// is tensor cores (mma with weights dequantized to bf16 in registers, Marlin-style).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/cuda_launch.cuh"

namespace mlxs::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kRowsPerWarp = 2;
constexpr int kChunk = 32;  // values per chunk

// Scale/bias element types, as a kernel argument (a uniform branch per chunk load).
enum ScaleType { kScaleF32 = 0, kScaleBF16 = 1, kScaleF16 = 2 };

ScaleType scale_type(DType dt) {
  return dt == DType::kF32 ? kScaleF32 : dt == DType::kBF16 ? kScaleBF16 : kScaleF16;
}

int log2_exact(int v) {
  int l = 0;
  while ((1 << l) < v) ++l;
  return l;
}

// ============================== device helpers ==============================================

// The raw bits of element i of a scale or bias array.
__device__ __forceinline__ uint32_t load_scale_bits(const void* p, int st, size_t i) {
  if (st == kScaleF32) return __ldcs(static_cast<const unsigned int*>(p) + i);
  return __ldcs(static_cast<const unsigned short*>(p) + i);
}

__device__ __forceinline__ float scale_value(uint32_t bits, int st) {
  if (st == kScaleF32) return __uint_as_float(bits);
  if (st == kScaleBF16) return __uint_as_float(bits << 16);
  return __half2float(__ushort_as_half(static_cast<unsigned short>(bits)));
}

// The B words of a chunk starting at p (16-byte aligned at 4 and 8 bits, 8 at 6, 4 at 5).
template <int B>
__device__ __forceinline__ void load_chunk(const uint32_t* p, uint32_t (&w)[B]) {
  if constexpr (B % 4 == 0) {
#pragma unroll
    for (int i = 0; i < B / 4; ++i) {
      const uint4 v = __ldcs(reinterpret_cast<const uint4*>(p) + i);
      w[4 * i] = v.x, w[4 * i + 1] = v.y, w[4 * i + 2] = v.z, w[4 * i + 3] = v.w;
    }
  } else if constexpr (B % 2 == 0) {
#pragma unroll
    for (int i = 0; i < B / 2; ++i) {
      const uint2 v = __ldcs(reinterpret_cast<const uint2*>(p) + i);
      w[2 * i] = v.x, w[2 * i + 1] = v.y;
    }
  } else {
#pragma unroll
    for (int i = 0; i < B; ++i) w[i] = __ldcs(p + i);
  }
}

// The field (word >> Pos) & mask as an exact float, without a shift or a conversion: the field
// left at bits [Pos, Pos + width) of the mantissa (Pos + width <= 23) under the exponent 23 - Pos
// is the number 2^(23 - Pos) + field; one subtraction leaves the field.
template <int Pos>
__device__ __forceinline__ float in_place(uint32_t word, uint32_t mask) {
  constexpr uint32_t kExp = uint32_t(127 + 23 - Pos) << 23;
  constexpr float kBase = float(1u << (23 - Pos));
  return __uint_as_float((word & (mask << Pos)) | kExp) - kBase;
}

// Values 8p .. 8p + 7 of a chunk's B words, as exact floats.
template <int B, int P>
__device__ __forceinline__ void unpack8(const uint32_t (&w)[B], float (&q)[8]) {
  if constexpr (B == 4) {
    const uint32_t lo = w[P], hi = w[P] >> 16;
    q[0] = in_place<0>(lo, 0xfu), q[1] = in_place<4>(lo, 0xfu);
    q[2] = in_place<8>(lo, 0xfu), q[3] = in_place<12>(lo, 0xfu);
    q[4] = in_place<0>(hi, 0xfu), q[5] = in_place<4>(hi, 0xfu);
    q[6] = in_place<8>(hi, 0xfu), q[7] = in_place<12>(hi, 0xfu);
  } else if constexpr (B == 8) {
#pragma unroll
    for (int t = 0; t < 2; ++t) {
      const uint32_t lo = w[2 * P + t], hi = w[2 * P + t] >> 16;
      q[4 * t] = in_place<0>(lo, 0xffu), q[4 * t + 1] = in_place<8>(lo, 0xffu);
      q[4 * t + 2] = in_place<0>(hi, 0xffu), q[4 * t + 3] = in_place<8>(hi, 0xffu);
    }
  } else {
    constexpr uint32_t kMask = (1u << B) - 1;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int pos = (8 * P + j) * B, wi = pos / 32, sh = pos % 32;
      uint32_t v;
      if (sh + B <= 32)
        v = w[wi] >> sh;
      else
        v = __funnelshift_r(w[wi], w[wi + 1], sh);
      q[j] = __uint_as_float((v & kMask) | 0x4b000000u) - 8388608.0f;
    }
  }
}

// 2^n as a float, for the unrolled constant n of the raw unpacking below.
__device__ __forceinline__ float pow2f(int n) {
  return __uint_as_float(uint32_t(127 + n) << 23);
}

// Values 8p .. 8p + 7 of a chunk left in place and read as f32 subnormals: f[e] = q * 2^(shift
// - 149) exactly, shift = the value's bit offset kept in its word (4-bit: 0, 4, 8, 12; 8-bit: 0,
// 8; otherwise 0). One AND per value, no conversion. Multiplied by x * raw_x_scale<B>(e) =
// x * 2^(100 - shift) in an FFMA (subnormal operands run at full rate and the product is exact)
// the term is x q 2^-49, a normal number for |x q| > 2^-77; the caller scales the sum by 2^49.
template <int B, int P>
__device__ __forceinline__ void unpack8_raw(const uint32_t (&w)[B], float (&f)[8]) {
  if constexpr (B == 4) {
    const uint32_t lo = w[P], hi = w[P] >> 16;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      f[j] = __uint_as_float(lo & (0xfu << (4 * j)));
      f[4 + j] = __uint_as_float(hi & (0xfu << (4 * j)));
    }
  } else if constexpr (B == 8) {
#pragma unroll
    for (int t = 0; t < 2; ++t) {
      const uint32_t lo = w[2 * P + t], hi = w[2 * P + t] >> 16;
      f[4 * t] = __uint_as_float(lo & 0xffu), f[4 * t + 1] = __uint_as_float(lo & 0xff00u);
      f[4 * t + 2] = __uint_as_float(hi & 0xffu), f[4 * t + 3] = __uint_as_float(hi & 0xff00u);
    }
  } else {
    constexpr uint32_t kMask = (1u << B) - 1;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int pos = (8 * P + j) * B, wi = pos / 32, sh = pos % 32;
      const uint32_t v = sh + B <= 32 ? w[wi] >> sh : __funnelshift_r(w[wi], w[wi + 1], sh);
      f[j] = __uint_as_float(v & kMask);
    }
  }
}

template <int B>
__device__ __forceinline__ float raw_x_scale(int e) {
  if constexpr (B == 4) return pow2f(100 - 4 * (e % 4));
  if constexpr (B == 8) return pow2f(100 - 8 * (e % 2));
  return pow2f(100);
}

// The SwiGLU epilogue, as gemv.cu and silu_mul.
__device__ __forceinline__ float swiglu(float g, float u) {
  return g / (1.0f + expf(-g)) * u;
}

struct QArgs {
  const float* x;  // [M, K]
  int M, K, N;
  const uint32_t* data;  // [N, K * B / 32] words
  const void* scales;    // [N, K / g]
  const void* biases;
  int scale_type, group_log2, ks_log2, epi;
  const float* bias;  // [N] or null
  float* out;         // [M, N], or [M, N / 2] for SwiGLU
};

// ============================== kernels =====================================================

// B bits per value; MT rows of x held in registers (M <= MT). Per CTA: kWarps / KS row pairs,
// KS warps per pair splitting K by interleaved chunks.
template <int B, int MT>
__global__ void __launch_bounds__(kWarps * 32) qgemv_kernel(QArgs a) {
  constexpr int kUnroll = B == 4 ? 4 : B == 5 ? 3 : 2;  // ~128 B of packed data per lane per row
  constexpr int R = kRowsPerWarp;
  __shared__ float red[kWarps][MT][R];
  const int KS = 1 << a.ks_log2;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group = warp >> a.ks_log2, slice = warp & (KS - 1);
  const int n0 = (blockIdx.x * (kWarps >> a.ks_log2) + group) * R;
  const int chunks = a.K / kChunk, groups = a.K >> a.group_log2;
  const bool g16 = a.group_log2 < 5;  // two groups per chunk
  float acc[MT][R];
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int r = 0; r < R; ++r) acc[m][r] = 0.f;

  uint32_t wv[kUnroll][R][B];
  uint32_t sv[kUnroll][R][2], bv[kUnroll][R][2];  // raw scale and bias bits per half chunk
  auto load = [&](int c0) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + 32 * KS * u;
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const int n = n0 + r;
        if (c < chunks && n < a.N) {
          load_chunk<B>(a.data + (size_t(n) * chunks + c) * B, wv[u][r]);
          const size_t g0 = size_t(n) * groups + ((c * kChunk) >> a.group_log2);
          sv[u][r][0] = load_scale_bits(a.scales, a.scale_type, g0);
          bv[u][r][0] = load_scale_bits(a.biases, a.scale_type, g0);
          if (g16) {
            sv[u][r][1] = load_scale_bits(a.scales, a.scale_type, g0 + 1);
            bv[u][r][1] = load_scale_bits(a.biases, a.scale_type, g0 + 1);
          } else {
            sv[u][r][1] = sv[u][r][0], bv[u][r][1] = bv[u][r][0];
          }
        } else {
#pragma unroll
          for (int i = 0; i < B; ++i) wv[u][r][i] = 0;
          sv[u][r][0] = sv[u][r][1] = bv[u][r][0] = bv[u][r][1] = 0;
        }
      }
    }
  };
  // Weights never depend on earlier kernels: the first batch is in flight before the wait.
  const int first = slice * 32 + lane;
  load(first);
  pdl_launch_dependents();
  pdl_wait();
  for (int c0 = first; c0 < chunks && n0 < a.N; c0 += 32 * KS * kUnroll) {
    if (c0 != first) load(c0);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + 32 * KS * u;
      if (c >= chunks) break;
      float s[R][2], z[R][2];
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          s[r][h] = scale_value(sv[u][r][h], a.scale_type);
          z[r][h] = scale_value(bv[u][r][h], a.scale_type);
        }
      const float* xc = a.x + size_t(c) * kChunk;
      if constexpr (MT == 1) {
        // One row of x: acc += scale * sum(x q) + bias * sum(x) per half chunk, with q read
        // raw (unpack8_raw: one AND and one FFMA per value and row; the scaling of x and sum(x)
        // are shared by the row pair).
        float dot[2][R] = {}, sx[2] = {};
        auto piece = [&](auto p_const) {
          constexpr int P = decltype(p_const)::value;
          const float4* xp = reinterpret_cast<const float4*>(xc + 8 * P);
          const float4 x0 = __ldg(xp), x1 = __ldg(xp + 1);
          const float xv[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
          float xs[8];
#pragma unroll
          for (int e = 0; e < 8; ++e) sx[P / 2] += xv[e], xs[e] = xv[e] * raw_x_scale<B>(e);
#pragma unroll
          for (int r = 0; r < R; ++r) {
            float f[8];
            unpack8_raw<B, P>(wv[u][r], f);
#pragma unroll
            for (int e = 0; e < 8; ++e) dot[P / 2][r] = fmaf(xs[e], f[e], dot[P / 2][r]);
          }
        };
        piece(std::integral_constant<int, 0>{});
        piece(std::integral_constant<int, 1>{});
        piece(std::integral_constant<int, 2>{});
        piece(std::integral_constant<int, 3>{});
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
          for (int h = 0; h < 2; ++h)
            acc[0][r] = fmaf(s[r][h] * 0x1p49f, dot[h][r], fmaf(z[r][h], sx[h], acc[0][r]));
      } else {
        // Several rows of x: each value dequantized once (w = q scale + bias), then one FFMA
        // per row of x.
        auto piece = [&](auto p_const) {
          constexpr int P = decltype(p_const)::value;
          float wq[R][8];
#pragma unroll
          for (int r = 0; r < R; ++r) {
            float q[8];
            unpack8<B, P>(wv[u][r], q);
#pragma unroll
            for (int e = 0; e < 8; ++e) wq[r][e] = fmaf(q[e], s[r][P / 2], z[r][P / 2]);
          }
#pragma unroll
          for (int m = 0; m < MT; ++m) {
            if (m >= a.M) break;
            const float4* xp = reinterpret_cast<const float4*>(xc + size_t(m) * a.K + 8 * P);
            const float4 x0 = __ldg(xp), x1 = __ldg(xp + 1);
            const float xv[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
#pragma unroll
            for (int e = 0; e < 8; ++e)
#pragma unroll
              for (int r = 0; r < R; ++r) acc[m][r] = fmaf(xv[e], wq[r][e], acc[m][r]);
          }
        };
        piece(std::integral_constant<int, 0>{});
        piece(std::integral_constant<int, 1>{});
        piece(std::integral_constant<int, 2>{});
        piece(std::integral_constant<int, 3>{});
      }
    }
  }
  // Reduce: lane 0 of each warp holds its rows' sums (KS == 1 writes them; KS > 1 goes through
  // shared memory, where thread i of the block finishes output i), as gemv.cu.
  const int half_n = a.N / 2;
  const float* bias = a.bias;
  float* out = a.out;
#pragma unroll
  for (int m = 0; m < MT; ++m) {
    float v[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      v[r] = acc[m][r];
      for (int o = 16; o > 0; o >>= 1) v[r] += __shfl_xor_sync(0xffffffffu, v[r], o);
    }
    if (lane != 0 || m >= a.M) continue;
    if (KS > 1) {
#pragma unroll
      for (int r = 0; r < R; ++r) red[warp][m][r] = v[r];
    } else if (a.epi == kEpiSwiGLU) {
      if (n0 + 1 < a.N) {
        out[size_t(m) * half_n + n0 / 2] =
            swiglu(v[0] + (bias ? bias[n0] : 0.f), v[1] + (bias ? bias[n0 + 1] : 0.f));
      }
    } else {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        if (n0 + r < a.N) out[size_t(m) * a.N + n0 + r] = v[r] + (bias ? bias[n0 + r] : 0.f);
      }
    }
  }
  if (KS > 1) {
    __syncthreads();
    const int pairs = kWarps >> a.ks_log2;
    const int outs = a.epi == kEpiSwiGLU ? 1 : R;  // outputs per row pair
    const int i = threadIdx.x;
    if (i < pairs * MT * outs) {
      const int g = i / (MT * outs), m = (i / outs) % MT, r = i % outs;
      const int n = (blockIdx.x * pairs + g) * R + r;
      float sum[R] = {};
      for (int k = 0; k < KS; ++k)
#pragma unroll
        for (int rr = 0; rr < R; ++rr) sum[rr] += red[g * KS + k][m][rr];
      if (a.epi == kEpiSwiGLU) {
        if (m < a.M && n + 1 < a.N) {
          out[size_t(m) * half_n + n / 2] =
              swiglu(sum[0] + (bias ? bias[n] : 0.f), sum[1] + (bias ? bias[n + 1] : 0.f));
        }
      } else if (m < a.M && n < a.N) {
        out[size_t(m) * a.N + n] = sum[r] + (bias ? bias[n] : 0.f);
      }
    }
  }
}

// One thread per chunk: out[r, 32c .. 32c + 31] = the dequantized values of chunk c of row
// (ids ? ids[r] : row0 + r), as f32 or bf16 (OutBF16), for r < rows.
template <int B, bool OutBF16>
__global__ void dequantize_kernel(const uint32_t* data, const void* scales, const void* biases,
                                  int st, int group_log2, int K, const int32_t* ids, int64_t row0,
                                  int64_t rows, void* out) {
  pdl_launch_dependents();
  pdl_wait();
  const int chunks = K / kChunk, groups = K >> group_log2;
  const int64_t total = rows * chunks;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / chunks;
    const int c = int(i % chunks);
    const int64_t n = ids ? int64_t(ids[r]) : row0 + r;
    uint32_t w[B];
#pragma unroll
    for (int j = 0; j < B; ++j) w[j] = data[(size_t(n) * chunks + c) * B + j];
    const size_t g0 = size_t(n) * groups + ((c * kChunk) >> group_log2);
    const size_t g1 = size_t(n) * groups + ((c * kChunk + 16) >> group_log2);
    const float s[2] = {scale_value(load_scale_bits(scales, st, g0), st),
                        scale_value(load_scale_bits(scales, st, g1), st)};
    const float z[2] = {scale_value(load_scale_bits(biases, st, g0), st),
                        scale_value(load_scale_bits(biases, st, g1), st)};
    float v[kChunk];
    auto piece = [&](auto p_const) {
      constexpr int P = decltype(p_const)::value;
      float q[8];
      unpack8<B, P>(w, q);
#pragma unroll
      for (int e = 0; e < 8; ++e) v[8 * P + e] = fmaf(q[e], s[P / 2], z[P / 2]);
    };
    piece(std::integral_constant<int, 0>{});
    piece(std::integral_constant<int, 1>{});
    piece(std::integral_constant<int, 2>{});
    piece(std::integral_constant<int, 3>{});
    const size_t o = size_t(r) * size_t(K) + size_t(c) * kChunk;
    if constexpr (OutBF16) {
      uint4* dst = reinterpret_cast<uint4*>(static_cast<__nv_bfloat16*>(out) + o);
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        uint32_t p[4];
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const __nv_bfloat162 h = __floats2bfloat162_rn(v[8 * q + 2 * j], v[8 * q + 2 * j + 1]);
          p[j] = *reinterpret_cast<const uint32_t*>(&h);
        }
        dst[q] = make_uint4(p[0], p[1], p[2], p[3]);
      }
    } else {
      float4* dst = reinterpret_cast<float4*>(static_cast<float*>(out) + o);
#pragma unroll
      for (int q = 0; q < 8; ++q)
        dst[q] = make_float4(v[4 * q], v[4 * q + 1], v[4 * q + 2], v[4 * q + 3]);
    }
  }
}

// ============================== launchers ===================================================

template <int B, int MT>
void launch_qgemv(const QArgs& a, Stream& stream) {
  const int rows_per_block = (kWarps >> a.ks_log2) * kRowsPerWarp;
  const unsigned blocks = unsigned((a.N + rows_per_block - 1) / rows_per_block);
  launch(qgemv_kernel<B, MT>, blocks, kWarps * 32, 0, stream, a);
  MLXS_CUDA_LAUNCHED(stream);
}

template <int B>
void dispatch_m(const QArgs& a, Stream& stream) {
  if (a.M == 1)
    launch_qgemv<B, 1>(a, stream);
  else if (a.M == 2)
    launch_qgemv<B, 2>(a, stream);
  else if (a.M <= 4)
    launch_qgemv<B, 4>(a, stream);
  else
    launch_qgemv<B, 8>(a, stream);
}

template <int B, bool OutBF16>
void launch_dequantize(const QuantView& w, const int32_t* ids, int64_t row0, int64_t rows,
                       void* out, Stream& stream) {
  const int64_t chunks = rows * (w.cols / kChunk);
  if (chunks == 0) return;
  const unsigned blocks = unsigned(std::min<int64_t>((chunks + 255) / 256, 132 * 16));
  launch(dequantize_kernel<B, OutBF16>, blocks, 256, 0, stream,
         static_cast<const uint32_t*>(w.data), w.scales, w.biases, int(scale_type(w.scale_dtype)),
         log2_exact(w.group_size), int(w.cols), ids, row0, rows, out);
  MLXS_CUDA_LAUNCHED(stream);
}

template <bool OutBF16>
void dispatch_dequantize(const QuantView& w, const int32_t* ids, int64_t row0, int64_t rows,
                         void* out, Stream& stream) {
  switch (w.bits) {
    case 4:
      return launch_dequantize<4, OutBF16>(w, ids, row0, rows, out, stream);
    case 5:
      return launch_dequantize<5, OutBF16>(w, ids, row0, rows, out, stream);
    case 6:
      return launch_dequantize<6, OutBF16>(w, ids, row0, rows, out, stream);
    default:
      return launch_dequantize<8, OutBF16>(w, ids, row0, rows, out, stream);
  }
}

}  // namespace

bool quant_supported(int bits, int group_size) {
  const bool bits_ok = bits == 4 || bits == 5 || bits == 6 || bits == 8;
  const bool group_ok =
      group_size == 16 || group_size == 32 || group_size == 64 || group_size == 128;
  return bits_ok && group_ok;
}

bool quant_shape_supported(const QuantView& w) {
  const uintptr_t align = w.bits % 4 == 0 ? 16 : w.bits % 2 == 0 ? 8 : 4;
  const uintptr_t scale_align = w.scale_dtype == DType::kF32 ? 4 : 2;
  const bool scales_ok = (w.scale_dtype == DType::kF32 || w.scale_dtype == DType::kBF16 ||
                          w.scale_dtype == DType::kF16) &&
                         reinterpret_cast<uintptr_t>(w.scales) % scale_align == 0 &&
                         reinterpret_cast<uintptr_t>(w.biases) % scale_align == 0;
  return quant_supported(w.bits, w.group_size) && w.cols % kChunk == 0 &&
         w.cols % w.group_size == 0 && w.cols < (int64_t(1) << 30) && w.rows < (int64_t(1) << 30) &&
         reinterpret_cast<uintptr_t>(w.data) % align == 0 && scales_ok;
}

void qgemv(const float* x, int64_t M, const QuantView& w, const float* bias, GemvEpilogue epi,
           float* out, Stream& stream) {
  QArgs a{};
  a.x = x, a.M = int(M), a.K = int(w.cols), a.N = int(w.rows);
  a.data = static_cast<const uint32_t*>(w.data);
  a.scales = w.scales, a.biases = w.biases;
  a.scale_type = scale_type(w.scale_dtype);
  a.group_log2 = log2_exact(w.group_size);
  a.epi = epi;
  a.bias = bias, a.out = out;
  // Split K over 4 warps when the rows alone give fewer than ~32 warps per SM on 132 SMs and a
  // row is long enough that each of the 4 warps still gets a full batch of loads per lane.
  const int64_t chunks = w.cols / kChunk;
  const int unroll = w.bits == 4 ? 4 : w.bits == 5 ? 3 : 2;
  const bool few_rows = w.rows / kRowsPerWarp < 132 * 32;
  a.ks_log2 = few_rows && chunks >= 2 * 32 * unroll ? 2 : 0;
  switch (w.bits) {
    case 4:
      return dispatch_m<4>(a, stream);
    case 5:
      return dispatch_m<5>(a, stream);
    case 6:
      return dispatch_m<6>(a, stream);
    default:
      return dispatch_m<8>(a, stream);
  }
}

void dequantize_rows(const QuantView& w, const int32_t* ids, int64_t row0, int64_t rows,
                     DType out_dt, void* out, Stream& stream) {
  if (out_dt == DType::kBF16)
    dispatch_dequantize<true>(w, ids, row0, rows, out, stream);
  else
    dispatch_dequantize<false>(w, ids, row0, rows, out, stream);
}

}  // namespace mlxs::cuda
