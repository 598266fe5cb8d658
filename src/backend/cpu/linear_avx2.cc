// AVX2 kernels of linear(): 8 f32 lanes, FMA; f16 weights through vcvtph2ps (F16C), bf16 through
// a 16-bit shift (exact). Tile: 3 rows x 4 columns = 12 ymm accumulators + 3 x + 1 w (of 16).
// AVX2 has no 16-bit masked load, so tails go through a zero-padded copy.
#include <immintrin.h>

#include <cstring>

#include "backend/cpu/linear_kernels.h"
#include "backend/cpu/linear_tile.h"

namespace mlxs::cpu::detail {
namespace {

constexpr int kRows = 3;
constexpr int kCols = 4;

// The halving tree of linear.h for 8 lanes: lane i + lane i+4, then +2, +1.
inline float hsum8(__m256 v) {
  __m128 b = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  b = _mm_add_ps(b, _mm_movehl_ps(b, b));
  b = _mm_add_ss(b, _mm_movehdup_ps(b));
  return _mm_cvtss_f32(b);
}

// The first r (< 8) elements of p, zero-padded to 8.
template <class T>
inline void copy_tail(const T* p, int r, T (&buf)[8]) {
  std::memset(buf, 0, sizeof(buf));
  std::memcpy(buf, p, size_t(r) * sizeof(T));
}

struct F32Acc {
  using XT = float;
  using XV = __m256;
  using WV = __m256;
  using Acc = __m256;
  static constexpr int64_t kStep = 8;
  static __m256 zero() { return _mm256_setzero_ps(); }
  static __m256 load_x(const float* p) { return _mm256_loadu_ps(p); }
  static __m256 load_x_tail(const float* p, int r) {
    float buf[8];
    copy_tail(p, r, buf);
    return _mm256_loadu_ps(buf);
  }
  static __m256 fma(__m256 acc, __m256 x, __m256 w) { return _mm256_fmadd_ps(x, w, acc); }
  static float hsum(__m256 v) { return hsum8(v); }
};

struct F32Op : F32Acc {
  using WT = float;
  static __m256 load_w(const float* p) { return _mm256_loadu_ps(p); }
  static __m256 load_w_tail(const float* p, int r) { return load_x_tail(p, r); }
};

struct F16Op : F32Acc {
  using WT = uint16_t;
  static __m256 load_w(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static __m256 load_w_tail(const uint16_t* p, int r) {
    uint16_t buf[8];
    copy_tail(p, r, buf);
    return load_w(buf);
  }
};

struct Bf16Op : F32Acc {
  using WT = uint16_t;
  static __m256 load_w(const uint16_t* p) {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static __m256 load_w_tail(const uint16_t* p, int r) {
    uint16_t buf[8];
    copy_tail(p, r, buf);
    return load_w(buf);
  }
};

// 8 packed 4-bit values (4 bytes; value 2i in the low nibble of byte i) as f32.
inline __m256 unpack4x8(const uint8_t* p) {
  uint32_t word;
  std::memcpy(&word, p, 4);
  const __m128i b = _mm_cvtsi32_si128(int(word));
  const __m128i nib = _mm_set1_epi8(0x0f);
  const __m128i lo = _mm_and_si128(b, nib), hi = _mm_and_si128(_mm_srli_epi16(b, 4), nib);
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi)));
}

// 8 packed 8-bit values as f32.
inline __m256 unpack8x8(const uint8_t* p) {
  return _mm256_cvtepi32_ps(
      _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

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
      const __m256 sv = _mm256_set1_ps(s[g]), bv = _mm256_set1_ps(b[g]);
      for (int64_t k = g * gs; k < (g + 1) * gs; k += 8) {
        const __m256 q = kBits == 4 ? unpack4x8(row + k / 2) : unpack8x8(row + k);
        _mm256_storeu_ps(o + k, _mm256_fmadd_ps(sv, q, bv));
      }
    }
  }
}

// Decode (at most kRows rows of x) on 4- or 8-bit weights: each chunk of 8 weights dequantized
// in registers (the values dequantize_rows_pow2 stores) and fed straight into linear_tile's FMA
// sequence (chunks of 8 k in order, then hsum8): the panel path's bits, weights read once.
template <int kBits>
void affine_cols_streaming(const LinearArgs& a, int64_t n_begin, int64_t n_end) {
  const AffineWeights& w = *a.quant;
  const int64_t K = a.K, gs = w.group_size, G = K / gs;
  const size_t row_bytes = size_t(K) * kBits / 8;
  const int mr = int(a.M);
  float s[kMaxGroups], b[kMaxGroups];
  for (int64_t n = n_begin; n < n_end; ++n) {
    const auto* row = static_cast<const uint8_t*>(w.data) + size_t(n) * row_bytes;
    row_scales(w, n, G, s, b);
    __m256 acc[kRows] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t g = 0; g < G; ++g) {
      const __m256 sv = _mm256_set1_ps(s[g]), bv = _mm256_set1_ps(b[g]);
      for (int64_t k = g * gs; k < (g + 1) * gs; k += 8) {
        const __m256 q = kBits == 4 ? unpack4x8(row + k / 2) : unpack8x8(row + k);
        const __m256 wv = _mm256_fmadd_ps(sv, q, bv);
        for (int i = 0; i < mr; ++i) {
          acc[i] = _mm256_fmadd_ps(_mm256_loadu_ps(a.x + i * K + k), wv, acc[i]);
        }
      }
    }
    for (int i = 0; i < mr; ++i) {
      const float sum = hsum8(acc[i]);
      a.out[i * a.N + n] = a.bias ? sum + a.bias[n] : sum;
    }
  }
}

// Weight rows per dequantized panel (f32, <= kPanelBytes, whole tiles).
int64_t panel_rows(int64_t K) {
  int64_t rows = kPanelBytes / (K * 4) / kCols * kCols;
  return rows < kCols ? kCols : rows;
}

}  // namespace

void dequantize_rows_avx2(const AffineWeights& w, int64_t K, int64_t n, int64_t count, float* out) {
  if (w.bits == 4 && K / w.group_size <= kMaxGroups) {
    dequantize_rows_pow2<4>(w, K, n, count, out);
  } else if (w.bits == 8 && K / w.group_size <= kMaxGroups) {
    dequantize_rows_pow2<8>(w, K, n, count, out);
  } else {
    dequantize_rows_scalar(w, K, n, count, out);
  }
}

void linear_cols_affine_avx2(const LinearArgs& a, int64_t n_begin, int64_t n_end) {
  const AffineWeights& w = *a.quant;
  if (a.M <= kRows && a.K / w.group_size <= kMaxGroups && (w.bits == 4 || w.bits == 8)) {
    if (w.bits == 4)
      affine_cols_streaming<4>(a, n_begin, n_end);
    else
      affine_cols_streaming<8>(a, n_begin, n_end);
    return;
  }
  const int64_t rows = panel_rows(a.K);
  auto* panel =
      static_cast<float*>(thread_scratch(Scratch::kPanel, size_t(rows * a.K) * sizeof(float)));
  linear_cols_blocked<F32Op, kRows, kCols>(a.x, a, n_begin, n_end, rows,
                                           [&](int64_t n, int64_t count) {
                                             dequantize_rows_avx2(*a.quant, a.K, n, count, panel);
                                             return static_cast<const float*>(panel);
                                           });
}

void linear_cols_avx2(const LinearArgs& a, int64_t n_begin, int64_t n_end) {
  switch (a.wt) {
    case DType::kF32:
      linear_cols<F32Op, kRows, kCols>(a.x, static_cast<const float*>(a.w), a, n_begin, n_end);
      return;
    case DType::kF16:
      linear_cols<F16Op, kRows, kCols>(a.x, static_cast<const uint16_t*>(a.w), a, n_begin, n_end);
      return;
    case DType::kBF16:
      linear_cols<Bf16Op, kRows, kCols>(a.x, static_cast<const uint16_t*>(a.w), a, n_begin, n_end);
      return;
    default:
      return;
  }
}

}  // namespace mlxs::cpu::detail
