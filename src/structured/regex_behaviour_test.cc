// compile_regex() against PCRE2 (UTF mode) on many strings: whole matches agree, and so do
// prefixes (PCRE2_PARTIAL_HARD: "a prefix of some match"). The strings are random ones over the
// pattern's own characters plus a few others, and random walks through the grammar (which must
// all be PCRE2 matches). The patterns keep to the part of ECMAScript whose meaning PCRE2 shares
// without flags (\s, \d, \w ASCII-only inputs; no \r, which ECMAScript's `.` excludes and
// PCRE2's does not).
#include <gtest/gtest.h>
#include <pcre2.h>

#include <random>

#include "structured/byte_walk_test_util.h"
#include "structured/grammar.h"

namespace mlxs::structured {
namespace {

using testing::is_prefix;
using testing::matches;
using testing::random_walk;

class Pcre2 {
 public:
  explicit Pcre2(const std::string& pattern) {
    int err = 0;
    PCRE2_SIZE offset = 0;
    std::string anchored = "(?:" + pattern + ")\\z";
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(anchored.data()), anchored.size(),
                          PCRE2_ANCHORED | PCRE2_UTF | PCRE2_ALT_BSUX, &err, &offset, nullptr);
    EXPECT_NE(code_, nullptr) << pattern << ": PCRE2 error " << err << " at " << offset;
    data_ = pcre2_match_data_create(1, nullptr);
  }
  ~Pcre2() {
    pcre2_match_data_free(data_);
    pcre2_code_free(code_);
  }
  bool full(std::string_view s) const { return run(s, 0); }
  bool partial(std::string_view s) const { return run(s, PCRE2_PARTIAL_HARD); }

 private:
  bool run(std::string_view s, uint32_t options) const {
    int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), 0, options, data_,
                         nullptr);
    return rc >= 0 || rc == PCRE2_ERROR_PARTIAL;
  }
  pcre2_code* code_ = nullptr;
  pcre2_match_data* data_ = nullptr;
};

// The code point boundaries of a UTF-8 text.
std::vector<size_t> boundaries(const std::string& s) {
  std::vector<size_t> out;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || (static_cast<uint8_t>(s[i]) & 0xC0) != 0x80) out.push_back(i);
  }
  return out;
}

// ECMAScript's \s for PCRE2, whose \s (without PCRE2_UCP) is ASCII only.
std::string for_pcre2(const std::string& pattern) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern.compare(i, 2, "\\s") == 0) {
      out +=
          "\\t\\n\\x0B\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
          "\\ufeff";
      ++i;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

void expect_agreement(const std::string& pattern, const std::vector<std::string>& alphabet,
                      uint32_t seed, const std::string& pcre_pattern) {
  SCOPED_TRACE("pattern " + pattern);
  Result<GrammarPtr> g = compile_regex(pattern);
  ASSERT_TRUE(g.ok()) << g.status().to_string() << "\n" << regex_to_gbnf(pattern).value();
  Pcre2 pcre(for_pcre2(pcre_pattern.empty() ? pattern : pcre_pattern));
  std::mt19937 rng(seed);
  std::vector<std::string> samples = {""};
  for (int i = 0; i < 300; ++i) {
    std::string s;
    int len = static_cast<int>(rng() % 9);
    for (int j = 0; j < len; ++j) s += alphabet[rng() % alphabet.size()];
    samples.push_back(s);
  }
  int positives = 0;
  for (uint32_t i = 0; i < 40; ++i) {
    testing::Walk w = random_walk(*g, seed * 100 + i, 24, 400);
    if (!w.finished) continue;
    EXPECT_TRUE(pcre.full(w.text)) << "generated '" << w.text << "' is not a PCRE2 match";
    samples.push_back(w.text);
  }
  for (const std::string& s : samples) {
    bool full = pcre.full(s);
    positives += full;
    EXPECT_EQ(matches(*g, s), full) << "'" << s << "'";
    for (size_t cut : boundaries(s)) {
      if (cut == 0) continue;  // PCRE2 reports no partial match of an empty subject
      std::string prefix = s.substr(0, cut);
      EXPECT_EQ(is_prefix(*g, prefix), pcre.partial(prefix)) << "prefix '" << prefix << "'";
    }
  }
  EXPECT_GT(positives, 0) << "no sample matched: the comparison says little";
}

TEST(RegexBehaviour, AgreesWithPcre2OnWholeMatchesAndPrefixes) {
  const std::vector<std::string> ascii = {"a", "b", "c", "x", "y", "z", "0", "1", "9",
                                          "-", "@", ".", " ", "_", "+", ",", "A", "Z"};
  struct Case {
    std::string pattern;
    std::vector<std::string> extra;
    std::string pcre;  // PCRE2's spelling, where it differs
  };
  const std::vector<Case> cases = {
      {"abc", {}},
      {"a|bc|", {}},
      {"[a-c]+x?", {}},
      {"(ab)*c{2,3}", {}},
      {"\\d{3}-\\d{2,4}", {}},
      {"[^0-9]+", {"\xc3\xa9", "\n"}},
      {"\\w+@\\w+\\.com", {"com"}},
      {"(?:x|yz){1,3}", {}},
      {"colou?r", {"colo", "r", "u"}},
      {"a.c", {"\xe2\x82\xac", "\n"}},
      {"[\\s,]+", {"\t", "\n", "\xc2\xa0", "\xe3\x80\x80"}},  // \s only inside a class
      {"\\S\\D\\W", {}},
      {"[\\u00e9-\\u00ff]+\\u0041", {"\xc3\xa9", "\xc3\xbf", "\xc3\xa0"}},
      {"\\x41\\u0042\\n", {"\n", "B"}},
      {"a{2}b{0,}c{1,}", {}},
      {"[-a]+[a-]*", {}},
      {"(a|b)*?c", {}},
      {"^(\\+|-)?\\d+(\\.\\d+)?$", {}},
      {"[\\]\\[]+\\.\\*\\?", {"[", "]", "*", "?"}},
      {"\xc3\xa9+\xc3\xbc", {"\xc3\xa9", "\xc3\xbc"}},
      {"[^a]{2}", {"\xc3\xa9", "\xf0\x9f\x98\x80"}},
      {"(?<year>\\d{4})-(?<m>0[1-9]|1[0-2])", {"2", "0"}},
      {"[A-Z][a-z]*( [A-Z][a-z]*)*", {"Ab", " "}},
      {"(((a)))|((b)c)", {}},
      {"\\uD83D\\uDE00|\\u{1F601}",
       {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x81"},
       "\xf0\x9f\x98\x80|\xf0\x9f\x98\x81"},
      {"x{0}y", {}},
      {"[\\d\\-]{1,5}", {}},
  };
  uint32_t seed = 1;
  for (const Case& c : cases) {
    std::vector<std::string> alphabet = ascii;
    alphabet.insert(alphabet.end(), c.extra.begin(), c.extra.end());
    expect_agreement(c.pattern, alphabet, seed++, c.pcre);
  }
}

TEST(RegexBehaviour, CompileRegexRefusesUnsupportedSyntax) {
  Result<GrammarPtr> g = compile_regex("(a)\\1");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), ErrorCode::kInvalidParams);
  EXPECT_NE(g.status().message().find("backreferences"), std::string::npos);
}

}  // namespace
}  // namespace mlxs::structured
