#include "jinja/lexer.h"

#include <gtest/gtest.h>

namespace mlxs::jinja {
namespace {

// The text tokens only, concatenated with '|' between them.
std::string texts(std::string_view src) {
  std::string out;
  for (const Token& t : tokenize(src)) {
    if (t.type != TokenType::kText) continue;
    if (!out.empty()) out += "|";
    out += t.value;
  }
  return out;
}

TEST(JinjaLexer, TrimBlocksEatsOneNewlineAfterBlockTags) {
  EXPECT_EQ(texts("{% if x %}\nA\n{% endif %}\n\nB"), "A\n|\nB");
  EXPECT_EQ(texts("{{ x }}\nA"), "\nA");  // not after }}
  EXPECT_EQ(texts("{# c #}\nA"), "A");    // but after comments
  EXPECT_EQ(texts("{% if x +%}\nA{% endif %}"), "\nA");
}

TEST(JinjaLexer, LstripBlocksOnlyAtLineStart) {
  EXPECT_EQ(texts("a\n   {% if x %}b{% endif %}"), "a\n|b");
  EXPECT_EQ(texts("a  {% if x %}b{% endif %}"), "a  |b");  // not at line start
  EXPECT_EQ(texts("a\n  {{ x }}"), "a\n  ");               // not before {{
  EXPECT_EQ(texts("a\n  {%+ if x %}b{% endif %}"), "a\n  |b");
  EXPECT_EQ(texts("  {% if x %}b{% endif %}"), "b");  // start of template is a line start
}

TEST(JinjaLexer, MinusStripsAllWhitespace) {
  EXPECT_EQ(texts("a \n\t {%- if x -%} \n b{% endif %}"), "a|b");
  EXPECT_EQ(texts("a \n {{- x -}} \n b"), "a|b");
  EXPECT_EQ(texts("a \n {#- c -#} \n b"), "a|b");
}

TEST(JinjaLexer, NewlinesNormalizedAndTrailingNewlineDropped) {
  EXPECT_EQ(texts("a\r\nb\rc\n"), "a\nb\nc");
  EXPECT_EQ(texts("a\n\n"), "a\n");
}

TEST(JinjaLexer, RawBlocksAreText) {
  EXPECT_EQ(texts("{% raw %}{{ x }}{% endraw %}"), "{{ x }}");
  EXPECT_EQ(texts("{%- raw -%} a {%- endraw %}"), "a");
}

TEST(JinjaLexer, TokensInsideTags) {
  auto toks = tokenize("{{ a.b[0] // 2 ** -1.5e3 ~ 'x\\n' }}");
  std::vector<std::string> got;
  for (const Token& t : toks) got.push_back(t.value);
  std::vector<std::string> want = {"",  "a",  ".", "b",      "[", "0",   "]", "//",
                                   "2", "**", "-", "-1.5e3", "~", "x\n", "",  ""};
  want[11] = "1.5e3";
  EXPECT_EQ(got, want);
  EXPECT_EQ(toks[11].type, TokenType::kFloat);
  EXPECT_EQ(toks[13].type, TokenType::kString);
}

TEST(JinjaLexer, BracesInsideATagDoNotCloseIt) {
  auto toks = tokenize("{{ {'a': {'b': 1}} }}");
  EXPECT_EQ(toks[toks.size() - 2].type, TokenType::kVarEnd);
  EXPECT_EQ(toks.size(), 12u);  // {{ { a : { b : 1 } } }} eof
}

TEST(JinjaLexer, PositionsAreLineAndColumn) {
  auto toks = tokenize("ab\ncd {{ x }}\n  {% if y %}");
  // text, {{, x, }}, text, {%, if, y, %}, eof
  EXPECT_EQ(toks[2].value, "x");
  EXPECT_EQ(toks[2].pos.line, 2);
  EXPECT_EQ(toks[2].pos.column, 7);
  EXPECT_EQ(toks[6].value, "if");
  EXPECT_EQ(toks[6].pos.line, 3);
  EXPECT_EQ(toks[6].pos.column, 6);
}

TEST(JinjaLexer, MalformedInputFailsWithPosition) {
  for (const char* src :
       {"{{ x", "{% if", "{# never closed", "{{ 'abc }}", "{{ (1] }}", "{{ x $ y }}"}) {
    try {
      tokenize(src);
      ADD_FAILURE() << "no error for " << src;
    } catch (const JinjaError& e) {
      EXPECT_EQ(e.pos().line, 1) << src;
      EXPECT_GT(e.pos().column, 0) << src;
    }
  }
}

}  // namespace
}  // namespace mlxs::jinja
