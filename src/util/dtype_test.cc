#include "util/dtype.h"

#include <gtest/gtest.h>

#include <cmath>

namespace mlxs {

TEST(DType, Bf16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_FLOAT_EQ(bf16_to_f32(f32_to_bf16(3.140625f)), 3.140625f);
  // 1 + 2^-8 is halfway between two bf16 values: ties to even -> 1.0.
  EXPECT_EQ(f32_to_bf16(1.00390625f), 0x3f80);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(DType, F16RoundTripsEveryFiniteValue) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    uint16_t v = uint16_t(h);
    if ((v & 0x7c00) == 0x7c00) continue;  // inf / NaN
    EXPECT_EQ(f32_to_f16(f16_to_f32(v)), v) << std::hex << h;
  }
  EXPECT_FLOAT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_FLOAT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
}

}  // namespace mlxs
