// Regular expressions (the ECMAScript subset JSON Schema's `pattern` uses) to GBNF, and the GBNF
// spelling helpers the JSON Schema translator shares.
//
// Policy:
//  1. The dialect: literals; escapes \n \t \r \f \v \0 \/ \\ \xHH \uHHHH \u{H..} and any
//     punctuation escaped; \d \D \w \W \s \S (ECMAScript's sets: \s includes the Unicode
//     spaces); classes [..] [^..] with ranges (and [] / [^] as nothing / anything); `.` (any
//     character but \n \r U+2028 U+2029); groups ( ), (?: ), (?<name> ); alternation |;
//     quantifiers * + ? {m} {m,} {m,n}, each also lazy (`*?`: the same language). `{` that does
//     not start a quantifier is a literal, as in ECMAScript's web grammar.
//  2. Refused by name with the position: backreferences (\1, \k<..>), lookaround ((?= (?! (?<=
//     (?<!), word boundaries \b \B, Unicode property escapes \p \P, control escapes \cX, anchors
//     anywhere but the ends of the pattern (or of one of its top-level alternatives), and
//     patterns over the limits below (hostile input).
//  3. regex_to_gbnf() (grammar.h) matches the whole string: ^ and $ change nothing. JSON Schema's
//     `pattern` means "contains a match": translate_regex() with kSearch puts "any characters" on
//     each side that has no anchor.
//  4. Characters are Unicode code points; the grammar matches their UTF-8 bytes. In the JSON
//     string target, each character is written the way a JSON encoder writes it: printable ones
//     raw, `"` and `\` escaped, control characters as \n \t \r \b \f or \u00XX.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mlxs/status.h"

namespace mlxs::structured {

// Limits on a pattern (hostile input): its length in bytes, the nesting of groups, one bound of
// a quantifier ({m,n}: m and n), and the size of the pattern with every bounded repetition
// expanded (a{1000}{1000} is refused).
constexpr size_t kMaxRegexLength = 8192;
constexpr int kMaxRegexNesting = 32;  // the GBNF parser allows 64 levels of parentheses
constexpr int kMaxRegexRepeat = 1000;
constexpr int64_t kMaxRegexExpandedSize = 100'000;

// A set of Unicode scalar values as sorted, disjoint, inclusive ranges.
struct CodepointRange {
  uint32_t lo;
  uint32_t hi;
};
using CodepointSet = std::vector<CodepointRange>;

// GBNF spelling: a literal "..." matching exactly `utf8` (kInvalidParams if it is not UTF-8),
// and a class [...] matching one character of `set` (set must not be empty).
Result<std::string> gbnf_literal(std::string_view utf8);
std::string gbnf_class(const CodepointSet& set);
// A GBNF rule name made of what GBNF allows (letters, digits, '-'): other bytes become '-'.
std::string gbnf_rule_name(std::string_view text);

// What the produced expression matches: the characters themselves, or their spelling inside a
// JSON string (between the quotes, escaped as a JSON encoder escapes them).
enum class RegexTarget { kRaw, kJsonString };
// kFullMatch: the whole text matches (anchors are no-ops); kSearch: the text contains a match
// (JSON Schema's `pattern`).
enum class RegexMode { kFullMatch, kSearch };

struct RegexTranslation {
  std::string expression;  // a GBNF expression (no rule definitions), one sequence item
  // Bounds on the number of characters (code points) of a matching text; max_chars is empty
  // when unbounded.
  int64_t min_chars = 0;
  std::optional<int64_t> max_chars;
};

// Lengths in characters (JSON Schema's minLength/maxLength); max empty: unbounded.
struct LengthBounds {
  int64_t min = 0;
  std::optional<int64_t> max;
};

// kInvalidParams naming the position (a byte offset into the pattern) and what is wrong.
// `length`, when given, narrows the language to texts of that many characters: alternatives of
// fixed length are kept or dropped, and one whose only variable part is a repeated character
// class has that repetition narrowed; other shapes are refused.
Result<RegexTranslation> translate_regex(std::string_view pattern, RegexTarget target,
                                         RegexMode mode, const LengthBounds* length = nullptr);

// The expression matching one character of `set` in `target` (the JSON spelling for
// kJsonString).
std::string gbnf_char_expression(const CodepointSet& set, RegexTarget target);

}  // namespace mlxs::structured
