// Private to linear.cc and its ISA files: the per-ISA entry points. Each computes the columns
// [n_begin, n_end) of every row of out, in the order documented in linear.h.
#pragma once

#include <cstdint>

#include "util/dtype.h"

namespace mlxs::cpu::detail {

struct LinearArgs {
  const float* x = nullptr;          // [M, K] f32
  const uint16_t* x_bf16 = nullptr;  // [M, K] x rounded to bf16 (kAvx512Bf16 with bf16 w only)
  int64_t M = 0, K = 0, N = 0;
  const void* w = nullptr;  // [N, K] of wt
  DType wt = DType::kF32;
  const float* bias = nullptr;  // [N] or null
  float* out = nullptr;         // [M, N]
};

// Per-thread scratch, 64-byte aligned (every zmm load from it stays inside one cache line),
// valid until the same thread asks for the same slot again. Defined in linear.cc (baseline ISA:
// no non-template inline code is shared with the ISA files, so the linker cannot mix ISAs).
enum class Scratch { kXBf16, kPanel, kSaved };
void* thread_scratch(Scratch slot, size_t bytes);

void linear_cols_avx2(const LinearArgs& a, int64_t n_begin, int64_t n_end);
// f32 / f16 weights, and bf16 weights converted to f32 (exact).
void linear_cols_avx512(const LinearArgs& a, int64_t n_begin, int64_t n_end);
// bf16 weights with vdpbf16ps; needs a.x_bf16.
void linear_cols_avx512bf16(const LinearArgs& a, int64_t n_begin, int64_t n_end);
// out[i] = bf16(x[i]), round to nearest even (vcvtne2ps2bf16).
void round_to_bf16_avx512bf16(const float* x, int64_t n, uint16_t* out);

}  // namespace mlxs::cpu::detail
