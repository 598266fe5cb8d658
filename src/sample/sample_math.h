// The arithmetic of sampling that the host sampler (sampler.cc) and the CUDA kernels
// (backend/cuda/sample.cu) share, written once so both compute the same bits:
//   - the per-token noise of the Gumbel-max draw, from an integer hash of (seed, step, token);
//   - the 64-bit total-order key of a logit (value descending, then id ascending);
//   - the penalised logit, the temperature-scaled logit and its fixed-point softmax weight;
//   - the top-p target mass.
// Every function is integer arithmetic or one IEEE-rounded double operation at a time (device
// code uses the _rn intrinsics so nvcc cannot fuse a multiply and an add, which the host
// build, baseline x86-64, never does either). The only steps that may differ between host and
// device are the library `log` and `exp` in double (CUDA's are within 1 ulp, glibc's within
// ~0.52 ulp); a 1-ulp difference changes a token only when two candidates' scores tie within
// ~1e-16, or when a top-p running mass lands within 1 fixed-point unit (2^-40) of its target.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define MLXS_HD __host__ __device__ __forceinline__
#else
#define MLXS_HD inline
#endif

namespace mlxs::sample_math {

// Weights are fixed-point with this many fraction bits: a weight is in [0, 1], so a row of
// V < 2^23 tokens sums below 2^63 and integer sums are exact and order-independent.
constexpr int kWeightBits = 40;

MLXS_HD double dmul(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
MLXS_HD double dadd(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
MLXS_HD float fmul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
MLXS_HD float fadd(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

MLXS_HD uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// 64 random bits from (seed, step, token): a counter-based hash, integer ops only.
MLXS_HD uint64_t hash3(uint64_t seed, uint64_t step, uint32_t token) {
  uint64_t x = splitmix64(seed ^ (step * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull));
  return splitmix64(x ^ (uint64_t(token) * 0xd1b54a32d192ed03ull));
}

// Uniform in the open interval (0, 1) from the top 52 bits of `bits`: (k + 1/2) / 2^52, exact
// in double (so u <= 1 - 2^-53 and the Gumbel noise below stays under 36.8).
MLXS_HD double open_unit(uint64_t bits) {
  return dmul(double(bits >> 12) + 0.5, 1.0 / 4503599627370496.0);
}

// Standard Gumbel noise -log(-log(u)) of token `token` at (seed, step).
MLXS_HD double gumbel(uint64_t seed, uint64_t step, uint32_t token) {
  return -log(-log(open_unit(hash3(seed, step, token))));
}

// Maps float bits to an unsigned integer of the same order (-0 and +0 map alike).
MLXS_HD uint32_t orderable(float v) {
  if (v == 0.0f) v = 0.0f;
  uint32_t u;
#if defined(__CUDA_ARCH__)
  u = __float_as_uint(v);
#else
  std::memcpy(&u, &v, 4);
#endif
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// The total order of candidates as one integer: a larger key is a larger logit, or an equal
// logit with a lower id. Keys of distinct tokens differ.
MLXS_HD uint64_t order_key(float z, uint32_t token) {
  return (uint64_t(orderable(z)) << 32) | uint64_t(0xffffffffu - token);
}
MLXS_HD uint32_t token_of_key(uint64_t key) {
  return 0xffffffffu - uint32_t(key);
}

// A logit after the penalties: repetition (HF/CTRL: divide a positive logit, multiply a
// negative one) when `seen`, then minus presence + frequency * count when count > 0.
MLXS_HD float penalised(float v, bool seen, int count, float repetition, float presence,
                        float frequency) {
  if (seen && repetition != 1.0f) v = v > 0 ? v / repetition : fmul(v, repetition);
  if (count > 0 && (presence != 0.0f || frequency != 0.0f)) {
    v = v - fadd(presence, fmul(frequency, float(count)));
  }
  return v;
}

// (z - top) / T as the sampler computes it: in double, with inv_t = 1 / T.
MLXS_HD double scaled_logit(float z, float top, double inv_t) {
  return dmul(double(z) - double(top), inv_t);
}

// The Gumbel-max score of a candidate: scaled logit plus its noise.
MLXS_HD double draw_score(double scaled, uint64_t seed, uint64_t step, uint32_t token) {
  return dadd(scaled, gumbel(seed, step, token));
}

// exp(scaled) in fixed point (kWeightBits fraction bits, truncated); scaled <= 0.
MLXS_HD uint64_t fixed_weight(double scaled) {
  return uint64_t(dmul(exp(scaled), double(uint64_t(1) << kWeightBits)));
}

// The running mass a top-p prefix must reach: ceil(top_p * total), at least 1.
MLXS_HD uint64_t top_p_target(uint64_t total, float top_p) {
  const double t = ceil(dmul(double(top_p), double(total)));
  const uint64_t u = t < 1.0 ? 1 : uint64_t(t);
  return u > total ? total : u;
}

}  // namespace mlxs::sample_math
