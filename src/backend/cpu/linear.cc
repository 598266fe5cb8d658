// linear(): run-time ISA dispatch, the column split across OpenMP threads, and the scalar
// (baseline x86-64) kernel. The vector kernels live in linear_avx2.cc / linear_avx512.cc.
#include "backend/cpu/linear.h"

#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <vector>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/linear_kernels.h"
#include "util/check.h"

namespace mlxs::cpu {
namespace {

using detail::LinearArgs;

// Below this many multiply-adds a call runs on the calling thread (an OpenMP fork costs ~ a few
// microseconds, about 50k FMAs of this kernel per thread).
constexpr int64_t kMinWorkPerThread = int64_t(1) << 17;
// Thread column ranges start at multiples of this (a multiple of every kernel's tile width).
constexpr int64_t kColumnAlign = 48;

// Scalar kernel: 8 partial sums (sum j takes k = j mod 8), then the halving tree of linear.h.
float dot_scalar(const float* x, const float* w, int64_t K) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t k = 0;
  for (; k + 8 <= K; k += 8)
    for (int j = 0; j < 8; ++j) acc[j] = acc[j] + x[k + j] * w[k + j];
  for (int j = 0; k + j < K; ++j) acc[j] = acc[j] + x[k + j] * w[k + j];
  for (int j = 0; j < 4; ++j) acc[j] += acc[j + 4];
  for (int j = 0; j < 2; ++j) acc[j] += acc[j + 2];
  return acc[0] + acc[1];
}

void linear_cols_scalar(const LinearArgs& a, int64_t n_begin, int64_t n_end) {
  std::vector<float> w_row(size_t(a.K));
  for (int64_t n = n_begin; n < n_end; ++n) {
    convert_to_f32(static_cast<const char*>(a.w) + size_t(n * a.K) * dtype_size(a.wt), a.wt,
                   size_t(a.K), w_row.data());
    for (int64_t m = 0; m < a.M; ++m) {
      float s = dot_scalar(a.x + m * a.K, w_row.data(), a.K);
      a.out[m * a.N + n] = a.bias ? s + a.bias[n] : s;
    }
  }
}

// q[k] of a packed row: bits [k * bits, (k + 1) * bits) of its little-endian bit stream.
inline uint32_t unpack(const uint8_t* row, int64_t k, int bits) {
  const int64_t bit = k * bits;
  const uint8_t* p = row + (bit >> 3);
  const int shift = int(bit & 7);
  uint32_t v = p[0];
  if (shift + bits > 8) v |= uint32_t(p[1]) << 8;
  return (v >> shift) & ((1u << bits) - 1u);
}

// Dequantizes one weight row, then the scalar kernel: the same bits as linear_cols_scalar on
// the f32 weights dequantize_affine() gives.
void linear_cols_affine_scalar(const LinearArgs& a, int64_t n_begin, int64_t n_end) {
  std::vector<float> w_row(size_t(a.K));
  for (int64_t n = n_begin; n < n_end; ++n) {
    detail::dequantize_rows_scalar(*a.quant, a.K, n, 1, w_row.data());
    for (int64_t m = 0; m < a.M; ++m) {
      float s = dot_scalar(a.x + m * a.K, w_row.data(), a.K);
      a.out[m * a.N + n] = a.bias ? s + a.bias[n] : s;
    }
  }
}

using ColsFn = void (*)(const LinearArgs&, int64_t, int64_t);

ColsFn pick_affine_kernel(Isa isa) {
  switch (isa) {
    case Isa::kAvx512Bf16:
    case Isa::kAvx512:
      return detail::linear_cols_affine_avx512;
    case Isa::kAvx2:
      return detail::linear_cols_affine_avx2;
    case Isa::kScalar:
      return linear_cols_affine_scalar;
  }
  return linear_cols_affine_scalar;
}

ColsFn pick_kernel(Isa isa, DType wt) {
  switch (isa) {
    case Isa::kAvx512Bf16:
      return wt == DType::kBF16 ? detail::linear_cols_avx512bf16 : detail::linear_cols_avx512;
    case Isa::kAvx512:
      return detail::linear_cols_avx512;
    case Isa::kAvx2:
      return detail::linear_cols_avx2;
    case Isa::kScalar:
      return linear_cols_scalar;
  }
  return linear_cols_scalar;
}

// x rounded to bf16 for the vdpbf16ps kernel, in a per-calling-thread buffer (reused across
// calls, so decode steps do not allocate).
const uint16_t* x_as_bf16(const float* x, int64_t n) {
  auto* buf =
      static_cast<uint16_t*>(detail::thread_scratch(detail::Scratch::kXBf16, size_t(n) * 2));
  detail::round_to_bf16_avx512bf16(x, n, buf);
  return buf;
}

// Runs `cols` over the columns of `a`, split across threads (see linear()).
void run_columns(const LinearArgs& a, ColsFn cols);

int threads_for(int64_t M, int64_t K, int64_t N) {
  int64_t work = M * K * N;
  int64_t by_work = work / kMinWorkPerThread;
  int64_t by_cols = (N + kColumnAlign - 1) / kColumnAlign;
  int64_t t = num_threads();
  if (by_work < t) t = by_work;
  if (by_cols < t) t = by_cols;
  return t < 1 ? 1 : int(t);
}

}  // namespace

namespace detail {

void* thread_scratch(Scratch slot, size_t bytes) {
  struct Buffer {
    void* data = nullptr;
    size_t bytes = 0;
    ~Buffer() { std::free(data); }
  };
  thread_local Buffer buffers[kNumScratch];
  Buffer& b = buffers[int(slot)];
  if (b.bytes < bytes) {
    std::free(b.data);
    b.bytes = (bytes + 63) / 64 * 64;
    b.data = std::aligned_alloc(64, b.bytes);
    MLXS_CHECK(b.data != nullptr);
  }
  return b.data;
}

void row_scales(const AffineWeights& w, int64_t n, int64_t G, float* scales, float* biases) {
  convert_to_f32(static_cast<const char*>(w.scales) + size_t(n * G) * dtype_size(w.scale_dtype),
                 w.scale_dtype, size_t(G), scales);
  convert_to_f32(static_cast<const char*>(w.biases) + size_t(n * G) * dtype_size(w.scale_dtype),
                 w.scale_dtype, size_t(G), biases);
}

void dequantize_rows_scalar(const AffineWeights& w, int64_t K, int64_t n, int64_t count,
                            float* out) {
  const int64_t gs = w.group_size, G = K / gs;
  const size_t row_bytes = size_t(K) * size_t(w.bits) / 8;
  std::vector<float> s(static_cast<size_t>(G)), b(static_cast<size_t>(G));
  for (int64_t r = 0; r < count; ++r) {
    const auto* row = static_cast<const uint8_t*>(w.data) + size_t(n + r) * row_bytes;
    row_scales(w, n + r, G, s.data(), b.data());
    float* o = out + r * K;
    for (int64_t k = 0; k < K; ++k) {
      o[k] = std::fma(s[size_t(k / gs)], float(unpack(row, k, w.bits)), b[size_t(k / gs)]);
    }
  }
}

}  // namespace detail

void linear(const float* x, int64_t M, int64_t K, const void* w, DType wt, int64_t N,
            const float* bias, float* out, Isa isa) {
  MLXS_CHECK(M > 0 && K > 0 && N > 0);
  MLXS_CHECK(wt == DType::kF32 || wt == DType::kBF16 || wt == DType::kF16);
  MLXS_CHECK(isa_supported(isa));
  LinearArgs a{x, nullptr, M, K, N, w, wt, bias, out};
  if (isa == Isa::kAvx512Bf16 && wt == DType::kBF16) a.x_bf16 = x_as_bf16(x, M * K);
  run_columns(a, pick_kernel(isa, wt));
}

bool affine_supported(int bits, int group_size) {
  const bool bits_ok = bits == 2 || bits == 3 || bits == 4 || bits == 5 || bits == 6 || bits == 8;
  return bits_ok && (group_size == 16 || group_size == 32 || group_size == 64 || group_size == 128);
}

void dequantize_affine(const AffineWeights& w, int64_t K, int64_t n, int64_t count, float* out,
                       Isa isa) {
  MLXS_CHECK(affine_supported(w.bits, w.group_size) && K % w.group_size == 0);
  MLXS_CHECK(isa_supported(isa));
  switch (isa) {
    case Isa::kAvx512Bf16:
    case Isa::kAvx512:
      detail::dequantize_rows_avx512(w, K, n, count, out);
      return;
    case Isa::kAvx2:
      detail::dequantize_rows_avx2(w, K, n, count, out);
      return;
    case Isa::kScalar:
      detail::dequantize_rows_scalar(w, K, n, count, out);
      return;
  }
}

void linear_affine(const float* x, int64_t M, int64_t K, const AffineWeights& w, int64_t N,
                   const float* bias, float* out, Isa isa) {
  MLXS_CHECK(M > 0 && K > 0 && N > 0);
  MLXS_CHECK(affine_supported(w.bits, w.group_size) && K % w.group_size == 0);
  MLXS_CHECK(isa_supported(isa));
  LinearArgs a{x, nullptr, M, K, N, w.data, DType::kU32, bias, out, &w};
  run_columns(a, pick_affine_kernel(isa));
}

namespace {

void run_columns(const LinearArgs& a, ColsFn cols) {
  const int64_t M = a.M, K = a.K, N = a.N;
  const int nt = threads_for(M, K, N);
  if (nt == 1) {
    cols(a, 0, N);
    return;
  }
  // Thread t gets one contiguous column range, so it streams its own part of w exactly once.
  const int64_t per = (N / kColumnAlign + nt - 1) / nt * kColumnAlign;
#pragma omp parallel for num_threads(nt) schedule(static, 1)
  for (int t = 0; t < nt; ++t) {
    const int64_t n_begin = t * per;
    const int64_t n_end = t == nt - 1 ? N : (n_begin + per < N ? n_begin + per : N);
    if (n_begin < n_end) cols(a, n_begin, n_end);
  }
}

}  // namespace

}  // namespace mlxs::cpu
