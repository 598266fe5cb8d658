#include "util/json_depth.h"

#include <gtest/gtest.h>

#include <string>

namespace mlxs {
namespace {

TEST(JsonDepthTest, CountsArraysAndObjects) {
  EXPECT_EQ(json_nesting_depth("1", 8), 0);
  EXPECT_EQ(json_nesting_depth("[]", 8), 1);
  EXPECT_EQ(json_nesting_depth(R"({"a": [1, {"b": []}], "c": {}})", 8), 4);
}

TEST(JsonDepthTest, IgnoresBracketsInsideStrings) {
  EXPECT_EQ(json_nesting_depth(R"(["[[[[", "\"[[[", "\\"])", 8), 1);
  EXPECT_EQ(json_nesting_depth(R"({"k\"{{": "}}]]"})", 8), 1);
}

TEST(JsonDepthTest, StopsAtTheLimitOnHugeNesting) {
  std::string deep(300000, '[');
  EXPECT_GT(json_nesting_depth(deep, 128), 128);
  EXPECT_EQ(json_nesting_depth(std::string(128, '[') + std::string(128, ']'), 128), 128);
}

}  // namespace
}  // namespace mlxs
