// The regex translator alone: what it refuses (by name, with the position), its limits, and the
// shape of a few outputs. Behaviour against PCRE2 is in structured_behaviour_test.cc.
#include "structured/regex_to_gbnf.h"

#include <gtest/gtest.h>

#include "structured/grammar.h"

namespace mlxs::structured {
namespace {

std::string refusal(std::string_view pattern) {
  Result<std::string> r = regex_to_gbnf(pattern);
  if (r.ok()) return "accepted: " + *r;
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidParams);
  return r.status().message();
}

TEST(RegexToGbnf, RefusesWhatItDoesNotSupportByNameAndPosition) {
  EXPECT_EQ(refusal("a(b)\\1"),
            "regular expression at position 4: backreferences (\\1 ...) are "
            "not supported");
  EXPECT_EQ(refusal("(?<x>a)\\k<x>"),
            "regular expression at position 7: backreferences (\\k<name>) are not supported");
  EXPECT_EQ(refusal("ab(?=c)"), "regular expression at position 2: lookahead is not supported");
  EXPECT_EQ(refusal("(?!c)"), "regular expression at position 0: lookahead is not supported");
  EXPECT_EQ(refusal("(?<=a)b"), "regular expression at position 0: lookbehind is not supported");
  EXPECT_EQ(refusal("(?<!a)b"), "regular expression at position 0: lookbehind is not supported");
  EXPECT_EQ(refusal("\\bword"),
            "regular expression at position 0: word boundaries (\\b) are not supported");
  EXPECT_EQ(refusal("x\\B"),
            "regular expression at position 1: word boundaries (\\B) are not supported");
  EXPECT_EQ(refusal("\\p{L}"),
            "regular expression at position 0: Unicode property escapes (\\p, "
            "\\P) are not supported");
  EXPECT_EQ(refusal("a^b"),
            "regular expression at position 1: '^' is only supported at the start "
            "of the pattern (anchors inside are not)");
  EXPECT_EQ(refusal("a$b"),
            "regular expression at position 1: '$' is only supported at the end "
            "of the pattern (anchors inside are not)");
  EXPECT_EQ(refusal("(?i)a"),
            "regular expression at position 0: unsupported group syntax '(?' "
            "(only (?: and (?<name> are)");
  EXPECT_EQ(refusal("[[:alpha:]]"),
            "regular expression at position 1: POSIX classes ([:alpha:]) are not ECMAScript");
}

TEST(RegexToGbnf, RefusesMalformedPatternsWithThePosition) {
  EXPECT_EQ(refusal("*a"), "regular expression at position 0: nothing to repeat");
  EXPECT_EQ(refusal("a|+"), "regular expression at position 2: nothing to repeat");
  EXPECT_EQ(refusal("(ab"), "regular expression at position 0: unterminated group '('");
  EXPECT_EQ(refusal("ab)"), "regular expression at position 2: unmatched ')'");
  EXPECT_EQ(refusal("[abc"), "regular expression at position 0: unterminated character class '['");
  EXPECT_EQ(refusal("[z-a]"), "regular expression at position 1: a class range out of order");
  EXPECT_EQ(refusal("[\\d-z]"),
            "regular expression at position 1: a class range must join two "
            "characters");
  EXPECT_EQ(refusal("a{3,2}"), "regular expression at position 1: quantifier {m,n} with m > n");
  EXPECT_EQ(refusal("a**"),
            "regular expression at position 2: nothing to repeat (a quantifier "
            "after a quantifier; possessive quantifiers are not ECMAScript)");
  EXPECT_EQ(refusal("\\q"), "regular expression at position 0: unknown escape '\\q'");
  EXPECT_EQ(refusal("\\x4"), "regular expression at position 0: expected 2 hex digits");
  EXPECT_EQ(refusal("\\uD800"), "regular expression at position 0: a lone surrogate \\u escape");
  EXPECT_EQ(refusal("ab\\"), "regular expression at position 2: the pattern ends with a lone '\\'");
  EXPECT_EQ(refusal("a\xff"), "regular expression at position 1: not valid UTF-8");
  EXPECT_EQ(refusal("[]"), "regular expression matches nothing");
}

TEST(RegexToGbnf, LimitsHostileInput) {
  EXPECT_EQ(refusal("a{1001}"),
            "regular expression at position 1: a repetition bound over the limit 1000");
  EXPECT_EQ(refusal("((a{1000}){1000})"),
            "regular expression expands to more than 100000 elements (nested repetition bounds "
            "multiply)");
  EXPECT_EQ(refusal(std::string(100, '(') + "a" + std::string(100, ')')),
            "regular expression at position 32: groups nested deeper than 32");
  EXPECT_EQ(refusal(std::string(kMaxRegexLength + 1, 'a')),
            "regular expression of 8193 bytes is over the limit of 8192");
  // Many alternatives and a long literal stay within the limits.
  std::string many;
  for (int i = 0; i < 500; ++i) many += (i ? "|" : "") + std::to_string(i);
  EXPECT_TRUE(regex_to_gbnf(many).ok());
}

TEST(RegexToGbnf, OutputShape) {
  EXPECT_EQ(*regex_to_gbnf("ab"), "root ::= ([a] [b])\n");
  EXPECT_EQ(*regex_to_gbnf("^a+$", "r"), "r ::= ([a]+)\n");
  EXPECT_EQ(*regex_to_gbnf("[0-9]{2,4}|x"), "root ::= ([0-9]{2,4} | [x])\n");
  EXPECT_EQ(*regex_to_gbnf("a{2,}?"), "root ::= ([a]{2,})\n");  // lazy: same language
  EXPECT_EQ(*regex_to_gbnf("(ab|c)+d"), "root ::= (([a] [b] | [c])+ [d])\n");
}

TEST(RegexToGbnf, ClassesUseEscapesForEverythingButLettersAndDigits) {
  EXPECT_EQ(gbnf_class({{'-', '-'}, {'0', '9'}, {']', ']'}}), "[\\x2D0-9\\x5D]");
  EXPECT_EQ(gbnf_class({{0xE9, 0xE9}, {0x1F600, 0x1F64F}}), "[\\u00E9\\U0001F600-\\U0001F64F]");
  EXPECT_EQ(*gbnf_literal("a\"\\\n\xc3\xa9"), "\"a\\\"\\\\\\x0A\\u00E9\"");
}

TEST(RegexToGbnf, JsonStringTargetEscapesQuotesBackslashesAndControls) {
  Result<RegexTranslation> t =
      translate_regex("[\"\\\\\\n]", RegexTarget::kJsonString, RegexMode::kFullMatch);
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->expression, R"(("\\\"" | "\\\\" | "\\n"))");
}

TEST(RegexToGbnf, SearchModeAddsAnyCharactersOnUnanchoredSides) {
  Result<RegexTranslation> both = translate_regex("^ab$", RegexTarget::kRaw, RegexMode::kSearch);
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->min_chars, 2);
  EXPECT_EQ(both->max_chars, 2);
  Result<RegexTranslation> open = translate_regex("ab", RegexTarget::kRaw, RegexMode::kSearch);
  ASSERT_TRUE(open.ok());
  EXPECT_EQ(open->min_chars, 2);
  EXPECT_FALSE(open->max_chars.has_value());
  Result<RegexTranslation> left = translate_regex("^a{1,3}", RegexTarget::kRaw, RegexMode::kSearch);
  ASSERT_TRUE(left.ok());
  EXPECT_FALSE(left->max_chars.has_value());
}

TEST(RegexToGbnf, LengthBoundsOfAnchoredPatterns) {
  Result<RegexTranslation> t =
      translate_regex("^[A-Z]{3}(-\\d{2,4})?$", RegexTarget::kRaw, RegexMode::kSearch);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->min_chars, 3);
  EXPECT_EQ(t->max_chars, 8);
}

}  // namespace
}  // namespace mlxs::structured
