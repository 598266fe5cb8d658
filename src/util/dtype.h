// Element types of weights and activations, and scalar conversions between them.
// bf16 and f16 are stored as uint16_t bit patterns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace mlxs {

// kU32: packed quantized weights (backend.h, AffineQuant); kF8E4M3: FP8 e4m3 (OCP) weights.
enum class DType { kF32, kF16, kBF16, kI32, kI64, kU32, kF8E4M3 };

size_t dtype_size(DType t);
// safetensors spelling: "F32", "F16", "BF16", "I32", "I64", "U32", "F8_E4M3"
const char* dtype_name(DType t);
bool parse_dtype(std::string_view s, DType* out);

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest even, as PyTorch does; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
// OCP FP8 e4m3 ("fn": no infinities; 0x7f and 0xff are NaN), as torch.float8_e4m3fn.
float f8e4m3_to_f32(uint8_t v);

// Element i of a buffer of type t, as f32.
inline float load_as_f32(const void* data, DType t, size_t i) {
  switch (t) {
    case DType::kF32:
      return static_cast<const float*>(data)[i];
    case DType::kBF16:
      return bf16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case DType::kF16:
      return f16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case DType::kI32:
      return float(static_cast<const int32_t*>(data)[i]);
    case DType::kI64:
      return float(static_cast<const int64_t*>(data)[i]);
    case DType::kU32:
      return float(static_cast<const uint32_t*>(data)[i]);
    case DType::kF8E4M3:
      return f8e4m3_to_f32(static_cast<const uint8_t*>(data)[i]);
  }
  return 0.f;
}

void convert_to_f32(const void* src, DType t, size_t n, float* dst);

}  // namespace mlxs
