// linear(): run-time ISA dispatch, the column split across OpenMP threads, and the scalar
// (baseline x86-64) kernel. The vector kernels live in linear_avx2.cc / linear_avx512.cc.
#include "backend/cpu/linear.h"

#include <omp.h>

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

using ColsFn = void (*)(const LinearArgs&, int64_t, int64_t);

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
  thread_local Buffer buffers[3];
  Buffer& b = buffers[int(slot)];
  if (b.bytes < bytes) {
    std::free(b.data);
    b.bytes = (bytes + 63) / 64 * 64;
    b.data = std::aligned_alloc(64, b.bytes);
    MLXS_CHECK(b.data != nullptr);
  }
  return b.data;
}

}  // namespace detail

void linear(const float* x, int64_t M, int64_t K, const void* w, DType wt, int64_t N,
            const float* bias, float* out, Isa isa) {
  MLXS_CHECK(M > 0 && K > 0 && N > 0);
  MLXS_CHECK(wt == DType::kF32 || wt == DType::kBF16 || wt == DType::kF16);
  MLXS_CHECK(isa_supported(isa));
  LinearArgs a{x, nullptr, M, K, N, w, wt, bias, out};
  if (isa == Isa::kAvx512Bf16 && wt == DType::kBF16) a.x_bf16 = x_as_bf16(x, M * K);
  const ColsFn cols = pick_kernel(isa, wt);
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

}  // namespace mlxs::cpu
