// Dense matrix kernel of the CPU backend: out = x @ w^T (+ bias), the Hugging Face nn.Linear
// layout. Shapes: M = rows of x (tokens), K = input features, N = output features.
//
// Batch invariance (the engine relies on it: a request produces the same tokens alone or in a
// batch): out[m][n] is a function of x[m][:], w[n][:] and bias[n] only, computed in one fixed
// order that depends on nothing else (not M, not m's place in a tile, not the thread count, not
// which microkernel ran). For ISA family `isa` with L lanes (scalar: 8, AVX2: 8,
// AVX-512: 16) the order is:
//   acc[j] = 0 for j < L;  for each chunk c of L consecutive k (the last one zero-padded):
//   acc[j] = fma(x[m][cL + j], w[n][cL + j], acc[j])   (scalar: mul then add, no fma);
//   s = halving tree (acc[j] += acc[j + L/2], then L/4, ..., 1); out = s + bias[n].
// With bf16 weights on kAvx512Bf16, x[m] is first rounded to bf16 (nearest even) and each chunk
// is 32 k: acc[j] += x[2j] w[2j] + x[2j+1] w[2j+1] (vdpbf16ps), then the same tree.
// Results differ between ISA families, never between calls on one family.
//
// Numerics against an f64 reference, as err = |out - ref| / sum_k |x_k w_k| (the dot product's
// own error scale): f32/f16 weights and bf16 weights without AVX512_BF16: <= ~1e-7 (f32
// accumulation of exact products); bf16 weights with vdpbf16ps: <= 2^-9 ~ 2e-3 from rounding x
// to bf16 (typically ~2e-4 relative to |ref|'s RMS). linear_test.cc checks these bounds.
#pragma once

#include <cstdint>

#include "backend/cpu/cpu_features.h"
#include "util/dtype.h"

namespace mlxs::cpu {

// out[M, N] = x[M, K] @ w[N, K]^T (+ bias[N] if non-null). x, out, bias: f32, row-major, dense;
// w: row-major [N, K] of dtype wt (kF32, kBF16 or kF16; 16-bit types as uint16_t bit patterns).
// isa: the kernel family (cpu_features.h); one this CPU lacks is a bug. No alignment required.
// Every element of out is written; out must not alias x, w or bias. Multithreaded with OpenMP
// (num_threads() from cpu_features.h); thread-safe for calls with distinct outputs. Other dtypes,
// or M, K, N < 1, are a bug (MLXS_CHECK).
void linear(const float* x, int64_t M, int64_t K, const void* w, DType wt, int64_t N,
            const float* bias, float* out, Isa isa);

// Affine-quantized weights [N, K] (backend.h's AffineQuant, MLX's layout): row n of `data` is a
// little-endian bit stream of K unsigned `bits`-bit values q[n, k], K * bits / 8 bytes; scales
// and biases are [N, K / group_size] of scale_dtype (kF32, kF16 or kBF16). Element (n, k) is
//   w[n, k] = fma(s, float(q[n, k]), b)   (one f32 rounding)
// with s, b the f32 values of scales / biases [n, k / group_size]. For f16 / bf16 scales the
// product s * q is exact in f32 (<= 11 + 8 significant bits), so this is also s * q + b.
struct AffineWeights {
  const void* data = nullptr;
  int bits = 0;
  int group_size = 0;
  DType scale_dtype = DType::kF16;
  const void* scales = nullptr;
  const void* biases = nullptr;
};

// The bit widths and group sizes the CPU kernels take: bits 2, 3, 4, 5, 6, 8; group sizes 16,
// 32, 64, 128 (GGUF's Q6_K repacks to groups of 16, Q4_K / Q5_K to 32).
bool affine_supported(int bits, int group_size);

// Rows [n, n + count) of w (K columns) dequantized into out [count, K] f32 (the reference
// definition above; vectorised on `isa`, same bits on every family).
void dequantize_affine(const AffineWeights& w, int64_t K, int64_t n, int64_t count, float* out,
                       Isa isa);

// out[M, N] = x[M, K] @ w^T (+ bias): bitwise what linear() gives on `isa` with the f32 weights
// dequantize_affine() produces (same order of operations, so batch invariant), without
// materialising them: each thread dequantizes a panel of weight rows at a time into L2 and runs
// the f32 tile kernels on it, so the packed weights are read from memory once per call.
// K must be a multiple of w.group_size; affine_supported(w.bits, w.group_size).
void linear_affine(const float* x, int64_t M, int64_t K, const AffineWeights& w, int64_t N,
                   const float* bias, float* out, Isa isa);

}  // namespace mlxs::cpu
