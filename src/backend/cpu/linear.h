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

}  // namespace mlxs::cpu
