// MLX's affine quantization on the host: the writer of `mlx-serving quantize --format mlx`, the
// loader's widening of matrices it does not keep packed, and the tests' reference. The layout is
// backend.h's AffineQuant: per group of `group_size` values along a row,
//   w = scale * q + bias,  q an unsigned `bits`-bit integer,
// each row of q a little-endian bit stream (value k at bits [k * bits, (k + 1) * bits)).
#pragma once

#include <cstdint>
#include <vector>

#include "util/dtype.h"

namespace mlxs {

// One row of K values quantized as MLX's affine quantize does (mlx/backend/cpu/quantized.cpp,
// fast::Quantize), in f32: per group, with n = 2^bits - 1,
//   lo, hi = min, max;  s = max((hi - lo) / n, 1e-7), negated unless |lo| > |hi|;
//   edge = |lo| > |hi| ? lo : hi;  q0 = rint(edge / s);
//   if q0 != 0: s = edge / q0, b = edge   else: b = 0;
//   q = clamp(rint((w - b) / s), 0, n).
// (The edge, the larger magnitude, is then exactly representable; a constant group gets q = 0,
// b = its value.) scales / biases get the f32 s and b; the caller rounds them to the stored
// dtype as MLX does (q stays as computed from the f32 values). packed: K * bits / 8 bytes.
void quantize_affine_row(const float* w, int64_t K, int bits, int group_size, uint8_t* packed,
                         float* scales, float* biases);

// Rows [0, rows) of packed affine weights [rows, K] with scales / biases of `scale_dtype`,
// dequantized to f32 exactly as the backends define it (cpu/linear.h: fma(s, q, b)).
void dequantize_affine_rows(const void* packed, int bits, int group_size, DType scale_dtype,
                            const void* scales, const void* biases, int64_t rows, int64_t K,
                            float* out);

// Values of f32 `v` stored as `dt` (kF32, kF16, kBF16; round to nearest even), as bytes.
std::vector<uint8_t> store_as(const std::vector<float>& v, DType dt);

}  // namespace mlxs
