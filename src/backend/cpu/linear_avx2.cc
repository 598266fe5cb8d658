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

}  // namespace

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
