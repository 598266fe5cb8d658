// Private to linear.cc and its ISA files: the per-ISA entry points. Each computes the columns
// [n_begin, n_end) of every row of out, in the order documented in linear.h.
#pragma once

#include <cstdint>

#include "backend/cpu/linear.h"
#include "util/dtype.h"

namespace mlxs::cpu::detail {

struct LinearArgs {
  const float* x = nullptr;          // [M, K] f32
  const uint16_t* x_bf16 = nullptr;  // [M, K] x rounded to bf16 (kAvx512Bf16 with bf16 w only)
  int64_t M = 0, K = 0, N = 0;
  const void* w = nullptr;  // [N, K] of wt
  DType wt = DType::kF32;
  const float* bias = nullptr;           // [N] or null
  float* out = nullptr;                  // [M, N]
  const AffineWeights* quant = nullptr;  // wt == kU32: w holds packed values, dequantized by this
};

// Per-thread scratch, 64-byte aligned (every zmm load from it stays inside one cache line),
// valid until the same thread asks for the same slot again. Defined in linear.cc (baseline ISA:
// no non-template inline code is shared with the ISA files, so the linker cannot mix ISAs).
enum class Scratch { kXBf16, kPanel, kSaved };
inline constexpr int kNumScratch = 3;
void* thread_scratch(Scratch slot, size_t bytes);

// Groups per row the vector dequantizers keep on the stack (K / group_size; more go the scalar
// way: K = 65536 in groups of 16).
inline constexpr int64_t kMaxGroups = 4096;
// The f32 scales and biases of row n's G groups (baseline code, so ISA files share no inline
// conversion with it).
void row_scales(const AffineWeights& w, int64_t n, int64_t G, float* scales, float* biases);
// Rows [n, n + count) of affine-quantized weights [N, K], dequantized into out [count, K] f32 as
// linear.h's dequantize_affine() defines. One per ISA file; the results are the same bits.
void dequantize_rows_scalar(const AffineWeights& w, int64_t K, int64_t n, int64_t count,
                            float* out);
void dequantize_rows_avx2(const AffineWeights& w, int64_t K, int64_t n, int64_t count, float* out);
void dequantize_rows_avx512(const AffineWeights& w, int64_t K, int64_t n, int64_t count,
                            float* out);

void linear_cols_avx2(const LinearArgs& a, int64_t n_begin, int64_t n_end);
// Affine-quantized weights (a.quant): panels of rows dequantized to f32, then the f32 kernels.
void linear_cols_affine_avx2(const LinearArgs& a, int64_t n_begin, int64_t n_end);
void linear_cols_affine_avx512(const LinearArgs& a, int64_t n_begin, int64_t n_end);
// f32 / f16 weights, and bf16 weights converted to f32 (exact).
void linear_cols_avx512(const LinearArgs& a, int64_t n_begin, int64_t n_end);
// bf16 weights with vdpbf16ps; needs a.x_bf16.
void linear_cols_avx512bf16(const LinearArgs& a, int64_t n_begin, int64_t n_end);
// out[i] = bf16(x[i]), round to nearest even (vcvtne2ps2bf16).
void round_to_bf16_avx512bf16(const float* x, int64_t n, uint16_t* out);

}  // namespace mlxs::cpu::detail
