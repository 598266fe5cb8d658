#include "util/constant_time.h"

#include <gtest/gtest.h>

namespace mlxs {
namespace {

TEST(ConstantTime, EqualOnlyForTheSameBytes) {
  EXPECT_TRUE(constant_time_equal("sk-secret", "sk-secret"));
  EXPECT_FALSE(constant_time_equal("sk-secreT", "sk-secret"));
  EXPECT_FALSE(constant_time_equal("sk-secret-and-more", "sk-secret"));
  EXPECT_FALSE(constant_time_equal("sk-se", "sk-secret"));
  EXPECT_FALSE(constant_time_equal("", "sk-secret"));
  EXPECT_FALSE(constant_time_equal("x", ""));
  EXPECT_TRUE(constant_time_equal("", ""));
  // A given key that is the secret repeated (the cycling) is still a mismatch by length.
  EXPECT_FALSE(constant_time_equal("abab", "ab"));
}

}  // namespace
}  // namespace mlxs
