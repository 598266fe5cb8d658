#include "structured/number_grammar.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "structured/gbnf_expr.h"

namespace mlxs::structured {

namespace {

// Digits of non-negative integers in [lo, hi], both of the same length.
std::string digits_between(const std::string& lo, const std::string& hi) {
  size_t n = lo.size();
  if (n == 0) return "\"\"";
  if (lo == hi) return literal(lo);
  if (lo[0] == hi[0])
    return sequence({literal(lo.substr(0, 1)), digits_between(lo.substr(1), hi.substr(1))});
  std::string rest_any = n > 1 ? repeat("[0-9]", n - 1, n - 1) : "";
  auto digit_class = [](char a, char b) {
    return a == b ? literal(std::string(1, a)) : fmt::format("[{}-{}]", a, b);
  };
  if (lo.substr(1) == std::string(n - 1, '0') && hi.substr(1) == std::string(n - 1, '9')) {
    return sequence({digit_class(lo[0], hi[0]), rest_any});
  }
  std::vector<std::string> alts;
  alts.push_back(
      sequence({literal(lo.substr(0, 1)), digits_between(lo.substr(1), std::string(n - 1, '9'))}));
  if (hi[0] - lo[0] > 1) alts.push_back(sequence({digit_class(lo[0] + 1, hi[0] - 1), rest_any}));
  alts.push_back(
      sequence({literal(hi.substr(0, 1)), digits_between(std::string(n - 1, '0'), hi.substr(1))}));
  return alternatives(alts);
}

uint64_t pow10(size_t n) {
  uint64_t v = 1;
  while (n--) v *= 10;
  return v;
}

// JSON spellings of the integers in [lo, hi] (hi empty: unbounded), lo >= 0, no leading zeros.
std::string nonnegative_range(uint64_t lo, std::optional<uint64_t> hi) {
  std::vector<std::string> alts;
  size_t lo_len = std::to_string(lo).size();
  size_t hi_len = hi ? std::to_string(*hi).size() : lo_len;
  for (size_t len = lo_len; len <= hi_len; ++len) {
    uint64_t a = len == lo_len ? lo : pow10(len - 1);
    uint64_t b = hi && len == hi_len ? *hi : pow10(len) - 1;
    alts.push_back(digits_between(std::to_string(a), std::to_string(b)));
  }
  if (!hi && lo_len < kMaxIntegerDigits) {
    alts.push_back(sequence({"[1-9]", repeat("[0-9]", lo_len, kMaxIntegerDigits - 1)}));
  }
  return alternatives(alts);
}

// The bound's shortest decimal spelling; empty when it needs more than kMaxBoundFraction
// fraction digits (then the caller rounds it inward to an integer).
std::optional<Decimal> to_decimal(double d, bool inclusive) {
  std::string text = fmt::format("{:.{}f}", std::fabs(d), kMaxBoundFraction + 2);
  size_t dot = text.find('.');
  std::string ip = text.substr(0, dot), fp = text.substr(dot + 1);
  while (!fp.empty() && fp.back() == '0') fp.pop_back();
  if (fp.size() > kMaxBoundFraction) return std::nullopt;
  Decimal out;
  out.value = d;
  out.inclusive = inclusive;
  out.ip = std::stoull(ip);
  out.fp = fp;
  return out;
}

// Fraction digit strings R (R empty: no fraction) compared as decimals 0.R; `nonempty` the
// grammar of the non-empty ones, `empty_ok` whether no fraction qualifies; at most `cap`
// digits.
struct Fraction {
  std::optional<std::string> nonempty;
  bool empty_ok = false;
};

std::string digits_up_to(int64_t n) {
  return n > 0 ? repeat("[0-9]", 0, n) : "";
}
std::string digit_range(char a, char b) {
  return a == b ? literal(std::string(1, a)) : fmt::format("[{}-{}]", a, b);
}
Fraction from_alternatives(std::vector<std::string> alts, bool empty_ok) {
  Fraction f;
  f.empty_ok = empty_ok;
  if (!alts.empty()) f.nonempty = alternatives(alts);
  return f;
}

// Digits with a nonzero one among the first n (so above zero by at least 10^-n).
std::string nonzero_digits(int64_t n) {
  return sequence({repeat(R"("0")", 0, n - 1), "[1-9]", digits_up_to(n - 1)});
}

// R >= d (R > d when strict).
Fraction fraction_at_least(const std::string& d, bool strict, int64_t cap) {
  std::vector<std::string> alts;
  if (d.empty()) {
    if (cap >= 1) {
      alts.push_back(strict ? nonzero_digits(cap) : repeat("[0-9]", 1, cap));
    }
    return from_alternatives(alts, !strict);
  }
  for (size_t j = 0; j < d.size() && static_cast<int64_t>(j) < cap; ++j) {
    if (d[j] == '9') continue;
    alts.push_back(sequence({j ? literal(d.substr(0, j)) : "", digit_range(d[j] + 1, '9'),
                             digits_up_to(cap - static_cast<int64_t>(j) - 1)}));
  }
  int64_t room = cap - static_cast<int64_t>(d.size());
  if (!strict && room >= 0) alts.push_back(sequence({literal(d), digits_up_to(room)}));
  if (strict && room >= 1) alts.push_back(sequence({literal(d), nonzero_digits(room)}));
  return from_alternatives(alts, false);
}

// R <= d (R < d when strict).
Fraction fraction_at_most(const std::string& d, bool strict, int64_t cap) {
  std::vector<std::string> alts;
  if (d.empty()) {
    if (!strict && cap >= 1) alts.push_back(repeat(R"("0")", 1, cap));
    return from_alternatives(alts, !strict);
  }
  for (size_t j = 0; j < d.size() && static_cast<int64_t>(j) < cap; ++j) {
    std::string head = j ? literal(d.substr(0, j)) : "";
    int64_t rest = cap - static_cast<int64_t>(j) - 1;
    if (d[j] > '0')
      alts.push_back(sequence({head, digit_range('0', d[j] - 1), digits_up_to(rest)}));
    // d's first j digits then zeros only: below d (d has no trailing zeros).
    if (j > 0) alts.push_back(sequence({head, repeat(R"("0")", 0, rest + 1)}));
  }
  if (cap >= 1) alts.push_back(repeat(R"("0")", 1, cap));
  int64_t room = cap - static_cast<int64_t>(d.size());
  if (!strict && room >= 0) alts.push_back(sequence({literal(d), repeat(R"("0")", 0, room)}));
  return from_alternatives(alts, true);
}

// lo <= R <= hi (strict ends exclusive), lo <= hi as decimals.
Fraction fraction_between(const std::string& lo, bool lo_strict, const std::string& hi,
                          bool hi_strict, int64_t cap) {
  Fraction out;
  out.empty_ok = lo.empty() && !lo_strict && !(hi.empty() && hi_strict);
  if (cap <= 0) return out;
  if (lo.empty() && hi.empty()) {  // both 0: zeros only, when both ends are inclusive
    if (out.empty_ok) out.nonempty = repeat(R"("0")", 1, cap);
    return out;
  }
  char a = lo.empty() ? '0' : lo[0], b = hi.empty() ? '0' : hi[0];
  std::string lo_rest = lo.empty() ? "" : lo.substr(1), hi_rest = hi.empty() ? "" : hi.substr(1);
  auto with = [](char digit, const Fraction& rest) -> std::optional<std::string> {
    std::vector<std::string> alts;
    if (rest.empty_ok) alts.push_back(literal(std::string(1, digit)));
    if (rest.nonempty) alts.push_back(sequence({literal(std::string(1, digit)), *rest.nonempty}));
    if (alts.empty()) return std::nullopt;
    return alternatives(alts);
  };
  std::vector<std::string> alts;
  if (a == b) {
    if (auto e = with(a, fraction_between(lo_rest, lo_strict, hi_rest, hi_strict, cap - 1))) {
      alts.push_back(*e);
    }
  } else {
    if (auto e = with(a, fraction_at_least(lo_rest, lo_strict, cap - 1))) alts.push_back(*e);
    if (b - a > 1) alts.push_back(sequence({digit_range(a + 1, b - 1), digits_up_to(cap - 1)}));
    if (auto e = with(b, fraction_at_most(hi_rest, hi_strict, cap - 1))) alts.push_back(*e);
  }
  if (!alts.empty()) out.nonempty = alternatives(alts);
  return out;
}

// The integer part `ip` followed by the fractions of `f`.
void add_with_fraction(std::vector<std::string>& alts, uint64_t ip, const Fraction& f) {
  std::string integer = literal(std::to_string(ip));
  if (f.empty_ok) alts.push_back(integer);
  if (f.nonempty) alts.push_back(sequence({integer, R"(".")", *f.nonempty}));
}

// Magnitudes m (written without sign or exponent) with a <= m <= b, each end inclusive or
// not. At most 15 significant digits near a bound, so that the parsed double compares with the
// bound as the decimal does.
std::optional<std::string> magnitude(const Decimal& a, const std::optional<Decimal>& b) {
  size_t int_digits = std::to_string(b ? std::max(a.ip, b->ip) : a.ip).size();
  int64_t cap = std::max<int64_t>(1, 15 - static_cast<int64_t>(int_digits));
  std::vector<std::string> alts;
  if (b && a.ip == b->ip) {
    add_with_fraction(alts, a.ip, fraction_between(a.fp, !a.inclusive, b->fp, !b->inclusive, cap));
  } else {
    if (!b || a.ip + 1 < b->ip) {
      std::optional<uint64_t> top = b ? std::optional<uint64_t>(b->ip - 1) : std::nullopt;
      alts.push_back(sequence({nonnegative_range(a.ip + 1, top), R"(("." [0-9]{1,16})?)"}));
    }
    add_with_fraction(alts, a.ip, fraction_at_least(a.fp, !a.inclusive, cap));
    if (b) add_with_fraction(alts, b->ip, fraction_at_most(b->fp, !b->inclusive, cap));
  }
  if (alts.empty()) return std::nullopt;
  return alternatives(alts);
}

}  // namespace

std::string integer_range_gbnf(std::optional<int64_t> lo, std::optional<int64_t> hi) {
  std::vector<std::string> alts;
  if (!hi || *hi >= 0) {
    alts.push_back(nonnegative_range(lo ? std::max<int64_t>(*lo, 0) : 0,
                                     hi ? std::optional<uint64_t>(*hi) : std::nullopt));
  }
  if (!lo || *lo < 0) {
    uint64_t a = hi && *hi < 0 ? -*hi : 1;
    alts.push_back(sequence(
        {R"("-")", nonnegative_range(a, lo ? std::optional<uint64_t>(-*lo) : std::nullopt)}));
  }
  return alternatives(alts);
}

Decimal decimal_bound(double d, bool inclusive, bool lower) {
  std::optional<Decimal> dec = to_decimal(d, inclusive);
  if (dec) return *dec;
  dec = to_decimal(lower ? std::ceil(d) : std::floor(d), true);
  return *dec;
}

std::optional<std::string> number_range_gbnf(const std::optional<Decimal>& lo,
                                             const std::optional<Decimal>& hi) {
  std::vector<std::string> alts;
  // v >= 0: m = v.
  if (!hi || hi->value > 0 || (hi->value == 0 && hi->inclusive)) {
    Decimal a;  // 0, inclusive
    if (lo && lo->value >= 0) a = *lo;
    if (auto m = magnitude(a, hi)) alts.push_back(*m);
  }
  // v < 0: m = -v > 0.
  if (!lo || lo->value < 0) {
    Decimal a;
    a.inclusive = false;  // m > 0
    if (hi && hi->value < 0) a = *hi;
    if (auto m = magnitude(a, lo)) alts.push_back(sequence({R"("-")", *m}));
  }
  if (alts.empty()) return std::nullopt;
  return alternatives(alts);
}

}  // namespace mlxs::structured
