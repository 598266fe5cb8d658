// ggml's quantized block types, repacked at load into the affine layout every backend reads
// (backend/backend.h, AffineQuant: w = scale[g] * q + bias[g], q unsigned `bits`-bit values in a
// little-endian bit stream per row). The repack is exact: every GGUF type below is an affine
// map of unsigned integers per group, so no value is re-quantized.
//
//   type  block (bytes)                              -> bits, group, scale, bias
//   Q8_0  f16 d, i8 q[32] (34): w = d*q              -> 8, 32, d, -128 d (q + 128 stored)
//   Q4_0  f16 d, nibbles[16] (18): w = d*(q-8)       -> 4, 32, d, -8 d
//   Q4_1  f16 d, f16 m, nibbles[16] (20): d*q + m    -> 4, 32, d, m
//   Q5_0  f16 d, qh[4], nibbles[16] (22): d*(q-16)   -> 5, 32, d, -16 d
//   Q5_1  f16 d, f16 m, qh[4], nibbles (24): d*q + m -> 5, 32, d, m
//   Q4_K  super-block of 256 (144): f16 d, f16 dmin, 12 bytes of 6-bit scales sc and mins m,
//         8 sub-blocks of 32: w = d*sc*q - dmin*m  -> 4, 32, d*sc, -dmin*m
//   Q5_K  as Q4_K plus qh[32], a fifth bit (176)    -> 5, 32, d*sc, -dmin*m
//   Q6_K  super-block of 256 (210): ql[128], qh[64], i8 sc[16], f16 d; 16 sub-blocks of 16:
//         w = d*sc*(q-32)                           -> 6, 16, d*sc, -32 d*sc
//   Q3_K  256 (110): hmask[32], qs[64], 12 bytes of 6-bit scales, f16 d; 16 sub-blocks of 16:
//         w = d*(sc-32)*(q-4), q = 2 low bits + a high bit -> 3, 16, d*(sc-32), -4 d*(sc-32)
//   Q2_K  256 (84): 4-bit scale|min pairs[16], qs[64], f16 d, f16 dmin:
//         w = d*sc*q - dmin*m                       -> 2, 16, d*sc, -dmin*m
//
// Element order inside a block (which nibble or bit plane holds value i) follows ggml-quants.c's
// dequantize_row_*; the tests check each type against a dequantizer written from those
// definitions. Scales and biases are f16 when every one of them is exactly an f16 (the _0 and
// _1 types almost always), else f32 (products like d*sc need up to 19 significant bits): no
// rounding either way. Products d*sc and -32 d*sc are exact in f32.
#pragma once

#include <cstdint>
#include <vector>

#include "model/gguf.h"
#include "util/dtype.h"

namespace mlxs {

// One matrix [rows, cols] in the affine layout, on the host.
struct RepackedMatrix {
  int bits = 0;
  int group_size = 0;
  DType scale_dtype = DType::kF32;
  int64_t rows = 0, cols = 0;
  std::vector<uint32_t> packed;  // [rows, cols * bits / 32]
  std::vector<uint8_t> scales;   // [rows, cols / group_size] of scale_dtype
  std::vector<uint8_t> biases;   // same

  int64_t words_per_row() const { return cols * bits / 32; }
  int64_t groups_per_row() const { return cols / group_size; }
};

// True for the block types repack_gguf_rows() takes.
bool gguf_type_repackable(uint32_t type);
// Repacks `rows` rows of `cols` values stored as ggml `type` blocks at `data`
// (rows * cols / block_values blocks). `type` must be repackable; cols a multiple of its block.
RepackedMatrix repack_gguf_rows(uint32_t type, const uint8_t* data, int64_t rows, int64_t cols);

// The same values with `bits` >= m.bits per value, groups of `group_size` (dividing
// m.group_size) and scales of `scale_dtype` (f32, or m's own type): exact, for fusing matrices
// of different block types (Q4_K_M stores some attn_v as Q6_K next to Q4_K attn_q and attn_k).
void widen_affine(RepackedMatrix& m, int bits, int group_size, DType scale_dtype);
// Reorders the rows of `m`: row r of the result is row order[r] of `m`.
void permute_affine_rows(RepackedMatrix& m, const std::vector<int64_t>& order);

// Writers (the GGUF writer's quantizers): one row of `n` values (a multiple of the block) into
// blocks at `out` (n / block_values * block_bytes bytes). Simple round-to-nearest choices of the
// scales, not llama.cpp's searched ones; the blocks are valid for any reader.
void quantize_row_q8_0(const float* x, int64_t n, uint8_t* out);
void quantize_row_q4_0(const float* x, int64_t n, uint8_t* out);
void quantize_row_q5_0(const float* x, int64_t n, uint8_t* out);
void quantize_row_q4_k(const float* x, int64_t n, uint8_t* out);
void quantize_row_q6_k(const float* x, int64_t n, uint8_t* out);

}  // namespace mlxs
