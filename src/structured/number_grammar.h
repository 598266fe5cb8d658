// GBNF for numbers within bounds, written as JSON writes them (no leading zeros, no exponent):
// integers by digit ranges, decimals by digit ranges for the integer part and a digit-by-digit
// comparison of the fraction with the bound's decimal spelling.
//
// Contracts:
//  1. Exact: a number is matched iff it lies within the bounds, for every spelling the grammar
//     produces (tested against comparisons in json_schema_number_test.cc).
//  2. Every output parses as an int64 (integers: at most 18 digits) or a finite double; near a
//     bound, the digits that decide the comparison come within 15 significant digits, so the
//     parsed double compares with the bound as the decimal does.
//  3. A decimal bound with more than kMaxBoundFraction fraction digits is rounded inward to an
//     integer (a narrower range).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace mlxs::structured {

constexpr size_t kMaxIntegerDigits = 18;
constexpr size_t kMaxBoundFraction = 9;

// Integers in [lo, hi] (either side may be open); lo <= hi.
std::string integer_range_gbnf(std::optional<int64_t> lo, std::optional<int64_t> hi);

// A bound of a `number`: |value| = ip.fp exactly (fp without trailing zeros).
struct Decimal {
  double value = 0;
  bool inclusive = true;
  uint64_t ip = 0;
  std::string fp;
};

// `d` as a lower (or upper) bound: exact, or rounded inward to an integer past
// kMaxBoundFraction fraction digits. |d| <= 1e15.
Decimal decimal_bound(double d, bool inclusive, bool lower);

// Numbers v with lo <= v <= hi (each side open when absent, exclusive per `inclusive`); empty
// when none exists.
std::optional<std::string> number_range_gbnf(const std::optional<Decimal>& lo,
                                             const std::optional<Decimal>& hi);

}  // namespace mlxs::structured
