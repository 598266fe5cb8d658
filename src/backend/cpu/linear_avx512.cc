// AVX-512 kernels of linear(): 16 f32 lanes. f32 weights load directly, f16 through vcvtph2ps,
// bf16 either through a 16-bit shift (exact, kAvx512) or pairwise with vdpbf16ps (kAvx512Bf16).
// Tile: 4 rows x 6 columns = 24 zmm accumulators + 4 x + 1 w (of 32 zmm); per chunk 10 loads
// feed 24 FMAs, so the two FMA ports, not the loads, bound the tile when data sits in L1/L2.
// GCC 12's AVX-512 headers build "undefined" vectors from self-initialised locals, which
// -Wmaybe-uninitialized reports in every inlined intrinsic.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "backend/cpu/linear_kernels.h"
#include "backend/cpu/linear_tile.h"

namespace mlxs::cpu::detail {
namespace {

constexpr int kRows = 4;
constexpr int kCols = 6;
// From this many rows of x on, the blocked driver (prefill); below, the streaming one (decode).
constexpr int64_t kBlockedMinRows = 16;

// The halving tree of linear.h: lane i + lane i+8, then +4, +2, +1.
inline float hsum16(__m512 v) {
  __m256 a = _mm256_add_ps(_mm512_extractf32x8_ps(v, 0), _mm512_extractf32x8_ps(v, 1));
  __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  b = _mm_add_ps(b, _mm_movehl_ps(b, b));
  b = _mm_add_ss(b, _mm_movehdup_ps(b));
  return _mm_cvtss_f32(b);
}

inline __mmask16 mask16(int r) {
  return __mmask16((1u << r) - 1u);
}

// Common part of the ops whose x is f32 and accumulation a plain FMA.
struct F32Acc {
  using XT = float;
  using XV = __m512;
  using WV = __m512;
  using Acc = __m512;
  static constexpr int64_t kStep = 16;
  static __m512 zero() { return _mm512_setzero_ps(); }
  static __m512 load_x(const float* p) { return _mm512_loadu_ps(p); }
  static __m512 load_x_tail(const float* p, int r) { return _mm512_maskz_loadu_ps(mask16(r), p); }
  static __m512 fma(__m512 acc, __m512 x, __m512 w) { return _mm512_fmadd_ps(x, w, acc); }
  static float hsum(__m512 v) { return hsum16(v); }
};

struct F32Op : F32Acc {
  using WT = float;
  static __m512 load_w(const float* p) { return _mm512_loadu_ps(p); }
  static __m512 load_w_tail(const float* p, int r) { return _mm512_maskz_loadu_ps(mask16(r), p); }
};

struct F16Op : F32Acc {
  using WT = uint16_t;
  static __m512 load_w(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static __m512 load_w_tail(const uint16_t* p, int r) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask16(r), p));
  }
};

inline __m512 bf16x16_to_f32(__m256i h) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

struct Bf16Op : F32Acc {
  using WT = uint16_t;
  static __m512 load_w(const uint16_t* p) {
    return bf16x16_to_f32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static __m512 load_w_tail(const uint16_t* p, int r) {
    return bf16x16_to_f32(_mm256_maskz_loadu_epi16(mask16(r), p));
  }
};

// x and w both bf16, 32 k per chunk, pairs accumulated by vdpbf16ps.
struct Bf16DotOp {
  using XT = uint16_t;
  using WT = uint16_t;
  using XV = __m512bh;
  using WV = __m512bh;
  using Acc = __m512;
  static constexpr int64_t kStep = 32;
  static __m512 zero() { return _mm512_setzero_ps(); }
  static __m512bh load(const uint16_t* p) { return (__m512bh)_mm512_loadu_si512(p); }
  static __m512bh load_tail(const uint16_t* p, int r) {
    return (__m512bh)_mm512_maskz_loadu_epi16(__mmask32((uint64_t(1) << r) - 1), p);
  }
  static __m512bh load_x(const uint16_t* p) { return load(p); }
  static __m512bh load_x_tail(const uint16_t* p, int r) { return load_tail(p, r); }
  static __m512bh load_w(const uint16_t* p) { return load(p); }
  static __m512bh load_w_tail(const uint16_t* p, int r) { return load_tail(p, r); }
  static __m512 fma(__m512 acc, __m512bh x, __m512bh w) { return _mm512_dpbf16_ps(acc, x, w); }
  static float hsum(__m512 v) { return hsum16(v); }
};

// Weight rows per panel of the blocked driver (f32 panel of kPanelBytes, whole tiles).
int64_t panel_rows(int64_t K, int64_t elem_bytes) {
  int64_t rows = kPanelBytes / (K * elem_bytes) / kCols * kCols;
  return rows < kCols ? kCols : rows;
}

// n 16-bit weights (bf16 or f16) widened to f32 (exact).
template <class Op>
void widen(const uint16_t* w, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, Op::load_w(w + i));
  if (i < n) _mm512_mask_storeu_ps(out + i, mask16(int(n - i)), Op::load_w_tail(w + i, int(n - i)));
}

// 16-bit weights: the streaming driver converts each chunk in registers (decode); the blocked
// driver widens a panel to f32 once and reuses it for every row of x (prefill). Both give the
// same bits, since widening is exact and the FMA sequence is the same.
template <class Op>
void cols_16bit(const LinearArgs& a, int64_t n_begin, int64_t n_end) {
  const auto* w = static_cast<const uint16_t*>(a.w);
  if (a.M < kBlockedMinRows) {
    linear_cols<Op, kRows, kCols>(a.x, w, a, n_begin, n_end);
    return;
  }
  const int64_t rows = panel_rows(a.K, 4);
  auto* panel =
      static_cast<float*>(thread_scratch(Scratch::kPanel, size_t(rows * a.K) * sizeof(float)));
  linear_cols_blocked<F32Op, kRows, kCols>(a.x, a, n_begin, n_end, rows,
                                           [&](int64_t n, int64_t count) {
                                             widen<Op>(w + n * a.K, count * a.K, panel);
                                             return static_cast<const float*>(panel);
                                           });
}

// 16 packed 4-bit values (8 bytes; value 2i in the low nibble of byte i) as f32.
inline __m512 unpack4x16(const uint8_t* p) {
  const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  const __m128i nib = _mm_set1_epi8(0x0f);
  const __m128i lo = _mm_and_si128(b, nib), hi = _mm_and_si128(_mm_srli_epi16(b, 4), nib);
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi)));
}

// 16 packed 8-bit values as f32.
inline __m512 unpack8x16(const uint8_t* p) {
  return _mm512_cvtepi32_ps(
      _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}

// 4- and 8-bit rows, 16 values per step (a group holds a whole number of steps).
template <int kBits>
void dequantize_rows_pow2(const AffineWeights& w, int64_t K, int64_t n, int64_t count, float* out) {
  const int64_t gs = w.group_size, G = K / gs;
  const size_t row_bytes = size_t(K) * kBits / 8;
  float s[kMaxGroups], b[kMaxGroups];
  for (int64_t r = 0; r < count; ++r) {
    const auto* row = static_cast<const uint8_t*>(w.data) + size_t(n + r) * row_bytes;
    row_scales(w, n + r, G, s, b);
    float* o = out + r * K;
    for (int64_t g = 0; g < G; ++g) {
      const __m512 sv = _mm512_set1_ps(s[g]), bv = _mm512_set1_ps(b[g]);
      for (int64_t k = g * gs; k < (g + 1) * gs; k += 16) {
        const __m512 q = kBits == 4 ? unpack4x16(row + k / 2) : unpack8x16(row + k);
        _mm512_storeu_ps(o + k, _mm512_fmadd_ps(sv, q, bv));
      }
    }
  }
}

// Decode (few rows of x) on 4- or 8-bit weights: each chunk of 16 weights is dequantized in
// registers (the values dequantize_rows_pow2 stores) and fed straight into the FMA sequence of
// linear_tile (chunks of 16 k in order, then hsum16), so the packed weights are read once and
// the result equals the panel path bit for bit. At most kRows rows of x.
template <int kBits>
void affine_cols_streaming(const LinearArgs& a, int64_t n_begin, int64_t n_end) {
  const AffineWeights& w = *a.quant;
  const int64_t K = a.K, gs = w.group_size, G = K / gs;
  const size_t row_bytes = size_t(K) * kBits / 8;
  float s[kMaxGroups], b[kMaxGroups];
  for (int64_t n = n_begin; n < n_end; ++n) {
    const auto* row = static_cast<const uint8_t*>(w.data) + size_t(n) * row_bytes;
    row_scales(w, n, G, s, b);
    for (int64_t m0 = 0; m0 < a.M; m0 += kRows) {
      const int mr = int(a.M - m0 < kRows ? a.M - m0 : kRows);
      __m512 acc[kRows] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                           _mm512_setzero_ps()};
      for (int64_t g = 0; g < G; ++g) {
        const __m512 sv = _mm512_set1_ps(s[g]), bv = _mm512_set1_ps(b[g]);
        for (int64_t k = g * gs; k < (g + 1) * gs; k += 16) {
          const __m512 q = kBits == 4 ? unpack4x16(row + k / 2) : unpack8x16(row + k);
          const __m512 wv = _mm512_fmadd_ps(sv, q, bv);
          for (int i = 0; i < mr; ++i) {
            acc[i] = _mm512_fmadd_ps(_mm512_loadu_ps(a.x + (m0 + i) * K + k), wv, acc[i]);
          }
        }
      }
      for (int i = 0; i < mr; ++i) {
        const float sum = hsum16(acc[i]);
        a.out[(m0 + i) * a.N + n] = a.bias ? sum + a.bias[n] : sum;
      }
    }
  }
}

}  // namespace

void dequantize_rows_avx512(const AffineWeights& w, int64_t K, int64_t n, int64_t count,
                            float* out) {
  if (w.bits == 4 && K / w.group_size <= kMaxGroups) {
    dequantize_rows_pow2<4>(w, K, n, count, out);
  } else if (w.bits == 8 && K / w.group_size <= kMaxGroups) {
    dequantize_rows_pow2<8>(w, K, n, count, out);
  } else {
    dequantize_rows_scalar(w, K, n, count, out);
  }
}

void linear_cols_affine_avx512(const LinearArgs& a, int64_t n_begin, int64_t n_end) {
  const AffineWeights& w = *a.quant;
  // Past kRows rows a column would be dequantized once per block of rows: the panel path
  // dequantizes it once for all of them.
  if (a.M <= kRows && a.K / w.group_size <= kMaxGroups && (w.bits == 4 || w.bits == 8)) {
    if (w.bits == 4)
      affine_cols_streaming<4>(a, n_begin, n_end);
    else
      affine_cols_streaming<8>(a, n_begin, n_end);
    return;
  }
  const int64_t rows = panel_rows(a.K, 4);
  auto* panel =
      static_cast<float*>(thread_scratch(Scratch::kPanel, size_t(rows * a.K) * sizeof(float)));
  linear_cols_blocked<F32Op, kRows, kCols>(a.x, a, n_begin, n_end, rows,
                                           [&](int64_t n, int64_t count) {
                                             dequantize_rows_avx512(*a.quant, a.K, n, count, panel);
                                             return static_cast<const float*>(panel);
                                           });
}

void linear_cols_avx512(const LinearArgs& a, int64_t n_begin, int64_t n_end) {
  switch (a.wt) {
    case DType::kF32: {
      // The blocked driver copies f32 panels too: the copy is 64-byte aligned (w from an mmap
      // of safetensors usually is not, and split loads cost ~25 %), for ~1/M of the work.
      const auto* w = static_cast<const float*>(a.w);
      if (a.M < kBlockedMinRows) {
        linear_cols<F32Op, kRows, kCols>(a.x, w, a, n_begin, n_end);
        return;
      }
      const int64_t rows = panel_rows(a.K, 4);
      auto* panel =
          static_cast<float*>(thread_scratch(Scratch::kPanel, size_t(rows * a.K) * sizeof(float)));
      linear_cols_blocked<F32Op, kRows, kCols>(
          a.x, a, n_begin, n_end, rows, [&](int64_t n, int64_t count) {
            std::memcpy(panel, w + n * a.K, size_t(count * a.K) * sizeof(float));
            return static_cast<const float*>(panel);
          });
      return;
    }
    case DType::kF16:
      cols_16bit<F16Op>(a, n_begin, n_end);
      return;
    case DType::kBF16:
      cols_16bit<Bf16Op>(a, n_begin, n_end);
      return;
    default:
      return;
  }
}

void linear_cols_avx512bf16(const LinearArgs& a, int64_t n_begin, int64_t n_end) {
  const auto* w = static_cast<const uint16_t*>(a.w);
  if (a.M < kBlockedMinRows) {
    linear_cols<Bf16DotOp, kRows, kCols>(a.x_bf16, w, a, n_begin, n_end);
    return;
  }
  linear_cols_blocked<Bf16DotOp, kRows, kCols>(a.x_bf16, a, n_begin, n_end, panel_rows(a.K, 2),
                                               [&](int64_t n, int64_t) { return w + n * a.K; });
}

void round_to_bf16_avx512bf16(const float* x, int64_t n, uint16_t* out) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m512bh h = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i));
    _mm512_storeu_si512(out + i, (__m512i)h);
  }
  for (; i + 16 <= n; i += 16) {
    __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(x + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), (__m256i)h);
  }
  if (i < n) {
    __mmask16 m = mask16(int(n - i));
    __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, x + i));
    _mm256_mask_storeu_epi16(out + i, m, (__m256i)h);
  }
}

}  // namespace mlxs::cpu::detail
