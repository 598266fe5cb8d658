// Numeric bounds, property-style (fixed seeds): random bounds (integers and decimals, inclusive
// or exclusive, one or both sides) and random numbers; the grammar accepts a number exactly when
// it lies within the bounds. Numbers are written as the grammar writes them (no exponent, no
// leading zeros, no negative zero), so the two must agree on every one.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "structured/byte_walk_test_util.h"
#include "structured/grammar.h"

namespace mlxs::structured {
namespace {

using testing::matches;

std::string random_decimal(std::mt19937& rng, int max_fraction_digits) {
  int ip = static_cast<int>(rng() % 40);
  std::string s = (rng() % 2 ? "-" : "") + std::to_string(ip);
  int frac = static_cast<int>(rng() % (max_fraction_digits + 1));
  if (frac > 0) {
    s += '.';
    for (int i = 0; i < frac; ++i) s += static_cast<char>('0' + rng() % 10);
  }
  if (std::stod(s) == 0) return "0";
  return s;
}

TEST(JsonSchemaNumbers, DecimalBoundsAgreeWithComparisons) {
  std::mt19937 rng(11);
  for (int schema_i = 0; schema_i < 60; ++schema_i) {
    bool integer = schema_i % 4 == 3;
    std::string lo = random_decimal(rng, 3), hi = random_decimal(rng, 3);
    if (std::stod(lo) > std::stod(hi)) std::swap(lo, hi);
    bool lo_excl = rng() % 2, hi_excl = rng() % 2;
    int sides = static_cast<int>(rng() % 3);  // 0: both, 1: lower only, 2: upper only
    std::string schema = integer ? R"({"type":"integer")" : R"({"type":"number")";
    if (sides != 2)
      schema += fmt::format(R"(,"{}":{})", lo_excl ? "exclusiveMinimum" : "minimum", lo);
    if (sides != 1)
      schema += fmt::format(R"(,"{}":{})", hi_excl ? "exclusiveMaximum" : "maximum", hi);
    schema += "}";
    SCOPED_TRACE(schema);
    double a = std::stod(lo), b = std::stod(hi);
    bool empty = sides == 0 && (a > b || (a == b && (lo_excl || hi_excl)));
    if (integer && sides == 0) {
      double first = lo_excl ? std::floor(a) + 1 : std::ceil(a);
      double last = hi_excl ? std::ceil(b) - 1 : std::floor(b);
      empty = first > last;
    }
    Result<GrammarPtr> g = compile_json_schema(schema);
    if (empty) {
      EXPECT_FALSE(g.ok());
      continue;
    }
    ASSERT_TRUE(g.ok()) << g.status().to_string() << "\n" << json_schema_to_gbnf(schema).value();
    std::vector<std::string> samples = {lo, hi};
    for (int i = 0; i < 150; ++i) samples.push_back(random_decimal(rng, integer ? 0 : 5));
    for (const std::string& x : samples) {
      double v = std::stod(x);
      bool in =
          (sides == 2 || (lo_excl ? v > a : v >= a)) && (sides == 1 || (hi_excl ? v < b : v <= b));
      bool representable = !integer || x.find('.') == std::string::npos;
      EXPECT_EQ(matches(*g, x), in && representable) << x;
    }
  }
}

}  // namespace
}  // namespace mlxs::structured
