#include "model/affine_quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace mlxs {

void quantize_affine_row(const float* w, int64_t K, int bits, int group_size, uint8_t* packed,
                         float* scales, float* biases) {
  const float n_bins = float((1 << bits) - 1);
  std::memset(packed, 0, size_t(K) * size_t(bits) / 8);
  for (int64_t g = 0; g < K / group_size; ++g) {
    const float* x = w + g * group_size;
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    for (int i = 0; i < group_size; ++i) {
      lo = std::min(lo, x[i]);
      hi = std::max(hi, x[i]);
    }
    const bool lo_edge = std::fabs(lo) > std::fabs(hi);
    float s = std::max((hi - lo) / n_bins, 1e-7f);
    if (!lo_edge) s = -s;
    const float edge = lo_edge ? lo : hi;
    const float q0 = std::rint(edge / s);
    float b = 0;
    if (q0 != 0) {
      s = edge / q0;
      b = edge;
    }
    for (int i = 0; i < group_size; ++i) {
      const float q = std::min(std::max(std::rint((x[i] - b) / s), 0.0f), n_bins);
      const uint64_t bit = uint64_t(g * group_size + i) * uint64_t(bits);
      const uint32_t v = uint32_t(q) << (bit % 8);
      packed[bit / 8] |= uint8_t(v);
      if (bit % 8 + uint64_t(bits) > 8) packed[bit / 8 + 1] |= uint8_t(v >> 8);
    }
    scales[g] = s;
    biases[g] = b;
  }
}

void dequantize_affine_rows(const void* packed, int bits, int group_size, DType scale_dtype,
                            const void* scales, const void* biases, int64_t rows, int64_t K,
                            float* out) {
  const int64_t G = K / group_size;
  const auto* bytes = static_cast<const uint8_t*>(packed);
  const uint32_t mask = (1u << bits) - 1u;
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* row = bytes + size_t(r) * size_t(K) * size_t(bits) / 8;
    for (int64_t k = 0; k < K; ++k) {
      const uint64_t bit = uint64_t(k) * uint64_t(bits);
      uint32_t v = row[bit / 8];
      if (bit % 8 + uint64_t(bits) > 8) v |= uint32_t(row[bit / 8 + 1]) << 8;
      const size_t g = size_t(r * G + k / group_size);
      out[r * K + k] = std::fma(load_as_f32(scales, scale_dtype, g), float((v >> (bit % 8)) & mask),
                                load_as_f32(biases, scale_dtype, g));
    }
  }
}

std::vector<uint8_t> store_as(const std::vector<float>& v, DType dt) {
  std::vector<uint8_t> out(v.size() * dtype_size(dt));
  if (dt == DType::kF32) {
    std::memcpy(out.data(), v.data(), out.size());
    return out;
  }
  auto* h = reinterpret_cast<uint16_t*>(out.data());
  for (size_t i = 0; i < v.size(); ++i) {
    h[i] = dt == DType::kBF16 ? f32_to_bf16(v[i]) : f32_to_f16(v[i]);
  }
  return out;
}

}  // namespace mlxs
