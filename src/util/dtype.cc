#include "util/dtype.h"

#include <cmath>

namespace mlxs {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::kF32:
      return 4;
    case DType::kF16:
      return 2;
    case DType::kBF16:
      return 2;
    case DType::kI32:
      return 4;
    case DType::kI64:
      return 8;
    case DType::kU32:
      return 4;
    case DType::kF8E4M3:
      return 1;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
    case DType::kI32:
      return "I32";
    case DType::kI64:
      return "I64";
    case DType::kU32:
      return "U32";
    case DType::kF8E4M3:
      return "F8_E4M3";
  }
  return "?";
}

bool parse_dtype(std::string_view s, DType* out) {
  if (s == "F32")
    *out = DType::kF32;
  else if (s == "F16")
    *out = DType::kF16;
  else if (s == "BF16")
    *out = DType::kBF16;
  else if (s == "I32")
    *out = DType::kI32;
  else if (s == "I64")
    *out = DType::kI64;
  else if (s == "U32")
    *out = DType::kU32;
  else if (s == "F8_E4M3")
    *out = DType::kF8E4M3;
  else
    return false;
  return true;
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t u;
  if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: renormalise
      int e = -1;
      do {
        mant <<= 1;
        ++e;
      } while ((mant & 0x400) == 0);
      u = sign | uint32_t(127 - 15 - e) << 23 | (mant & 0x3ff) << 13;
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | mant << 13;
  } else {
    u = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint16_t sign = uint16_t((u >> 16) & 0x8000);
  uint32_t absu = u & 0x7fffffffu;
  if (absu > 0x7f800000u) return sign | 0x7e00;   // NaN
  if (absu >= 0x477ff000u) return sign | 0x7c00;  // overflow to inf (rounded)
  if (absu < 0x38800000u) {                       // subnormal or zero in f16
    float a;
    std::memcpy(&a, &absu, 4);
    return sign | uint16_t(std::nearbyint(a * 16777216.0f));  // a / 2^-24, ties to even
  }
  uint32_t mant_round = absu + 0xfffu + ((absu >> 13) & 1u);
  return sign | uint16_t((mant_round - 0x38000000u) >> 13);
}

void convert_to_f32(const void* src, DType t, size_t n, float* dst) {
  for (size_t i = 0; i < n; ++i) dst[i] = load_as_f32(src, t, i);
}

float f8e4m3_to_f32(uint8_t v) {
  const float sign = (v & 0x80) ? -1.f : 1.f;
  const int exp = (v >> 3) & 0xf, mant = v & 0x7;
  if (exp == 0xf && mant == 0x7) return std::nanf("");
  if (exp == 0) return sign * std::ldexp(float(mant), -9);  // subnormal: mant / 8 * 2^-6
  return sign * std::ldexp(float(8 + mant), exp - 10);      // (1 + mant / 8) * 2^(exp - 7)
}

}  // namespace mlxs
