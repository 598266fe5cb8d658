#include "structured/gbnf_parser.h"

#include <gtest/gtest.h>

#include <random>

#include "structured/compiled_grammar.h"
#include "structured/grammar.h"

namespace mlxs::structured {
namespace {

std::string parse_error(std::string_view text) {
  auto g = compile_gbnf(text);
  EXPECT_FALSE(g.ok()) << text;
  if (g.ok()) return "";
  EXPECT_EQ(g.status().code(), ErrorCode::kInvalidParams);
  return g.status().message();
}

TEST(GbnfParser, ParsesRulesLiteralsClassesAndRepetitions) {
  auto g = parse_gbnf(R"(# a comment
root ::= greeting ( " " name )* "!"   # trailing comment
greeting ::= "hi" | "h\x65llo" | "\u00e9t\u00E9"
name ::= [A-Z] [a-z\-]{1,8} [^ \n]? .
)");
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  ASSERT_EQ(g->rules.size(), 3u);
  EXPECT_EQ(g->rules[g->root].name, "root");
  EXPECT_EQ(g->rules[1].name, "greeting");
  EXPECT_EQ(g->rules[1].line, 3);
  EXPECT_EQ(g->rules[1].body.children.size(), 3u);
  // "\u00e9t\u00E9": three code points.
  const GbnfExpr& literal = g->rules[1].body.children[2].children[0];
  ASSERT_EQ(literal.children.size(), 3u);
  EXPECT_EQ(literal.children[0].ranges[0].first, 0xE9u);
  const GbnfExpr& repeat = g->rules[2].body.children[0].children[1];
  EXPECT_EQ(repeat.kind, GbnfExpr::Kind::kRepeat);
  EXPECT_EQ(repeat.min_count, 1);
  EXPECT_EQ(repeat.max_count, 8);
}

TEST(GbnfParser, AlternativesContinueOnLinesStartingWithBar) {
  auto g = parse_gbnf("root ::= \"a\"\n  | \"b\"\n  # comment\n  | \"c\"\nx ::= \"d\"\n");
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_EQ(g->rules[0].body.children.size(), 3u);
  EXPECT_EQ(g->rules.size(), 2u);
}

TEST(GbnfParser, ErrorsNameLineColumnAndWhatWasExpected) {
  EXPECT_EQ(parse_error("root ::= \"abc"),
            "GBNF line 1:14: expected '\"' closing the literal, got end of input");
  EXPECT_EQ(parse_error("root ::= [a-z"),
            "GBNF line 1:14: expected ']' closing the character class, got end of input");
  EXPECT_EQ(parse_error("root ::= \"a\"\nfoo = \"b\""),
            "GBNF line 2:5: expected '::=' after the rule name 'foo', got '='");
  EXPECT_EQ(parse_error("root ::= (\"a\" | \"b\""),
            "GBNF line 1:20: expected ')' or '|', got end of input");
  EXPECT_EQ(parse_error("root ::= \"a\" )"),
            "GBNF line 1:14: expected a newline after the rule, got ')'");
  EXPECT_EQ(parse_error("root ::= \"\\q\""),
            "GBNF line 1:12: expected an escape (\\n \\r \\t \\\\ \\\" \\[ \\] \\xHH \\uHHHH "
            "\\UHHHHHHHH), got 'q'");
  EXPECT_EQ(parse_error("root ::= \"a\"{3,2}"),
            "GBNF line 1:16: expected n >= m in {m,n}, got '2'");
  EXPECT_EQ(parse_error("root ::= [z-a]"),
            "GBNF line 1:12: expected a range whose end is not below its start, got '-'");
  EXPECT_EQ(parse_error("root ::= \"\\x4\""), "GBNF line 1:14: expected 2 hex digits, got '\"'");
}

TEST(GbnfParser, UndefinedRulesMissingRootAndDuplicates) {
  EXPECT_EQ(parse_error("root ::= item+\n"),
            "GBNF line 1:10: expected a defined rule, 'item' is never defined, got 'i'");
  EXPECT_EQ(parse_error("start ::= \"a\"\n"), "GBNF grammar has no 'root' rule (the start rule)");
  EXPECT_EQ(parse_error("root ::= \"a\"\nroot ::= \"b\"\n"),
            "GBNF line 2:1: expected a new rule name, 'root' is defined twice, got 'r'");
}

TEST(GbnfParser, LeftRecursionIsRefusedByName) {
  std::string e = parse_error("root ::= expr\nexpr ::= expr \"+\" term | term\nterm ::= [0-9]\n");
  EXPECT_NE(e.find("GBNF rule 'expr' is left-recursive"), std::string::npos) << e;
  // Indirect, through a nullable prefix.
  e = parse_error("root ::= a\na ::= ws b \"x\"\nb ::= a | \"y\"\nws ::= \" \"*\n");
  EXPECT_NE(e.find("left-recursive"), std::string::npos) << e;
  // Right recursion and nullable loops are fine.
  EXPECT_TRUE(compile_gbnf("root ::= \"a\" root | \"b\"\n").ok());
  EXPECT_TRUE(compile_gbnf("root ::= ( \"a\"? )* \"b\"\n").ok());
}

TEST(GbnfParser, HostileInputIsBounded) {
  std::string deep = "root ::= " + std::string(100, '(') + "\"a\"" + std::string(100, ')');
  EXPECT_NE(parse_error(deep).find("at most 64 nested parentheses"), std::string::npos);
  EXPECT_NE(parse_error("root ::= \"a\"" + std::string(1000, '*'))
                .find("at most 64 repetition operators in a row"),
            std::string::npos);
  EXPECT_NE(parse_error("root ::= \"a\"{0,100000}").find("a repetition count of at most 10000"),
            std::string::npos);
  // Nested repetitions share their unit (linear size); many large ones pass the element limit.
  EXPECT_TRUE(compile_gbnf("root ::= ((\"ab\"{0,10000}){0,10000}){0,10000}").ok());
  std::string many = "root ::=";
  for (int i = 0; i < 40; ++i) many += " \"a\"{0,10000}";
  std::string e = parse_error(many);
  EXPECT_NE(e.find("GBNF rule 'root': the grammar expands to more than 1048576 elements"),
            std::string::npos)
      << e;
  EXPECT_NE(parse_error("root ::= [^\\x00-\\U0010FFFF]").find("matches no text"),
            std::string::npos);
}

// Random texts built from GBNF fragments (fixed seed): each compiles or fails with
// kInvalidParams; a grammar that compiles takes random bytes through a matcher, whose masks and
// end flags stay consistent. Under the sanitizers this is a small fuzzer.
TEST(GbnfParser, RandomFragmentGrammarsCompileOrFailCleanly) {
  const char* fragments[] = {"root",
                             " ::= ",
                             "a",
                             "b",
                             " ",
                             "\n",
                             "\"x\"",
                             "\"\\u00e9\"",
                             "[a-c]",
                             "[^\"]",
                             "[\\x00-\\U0010FFFF]",
                             ".",
                             "(",
                             ")",
                             "|",
                             "*",
                             "+",
                             "?",
                             "{2}",
                             "{1,3}",
                             "{0,}",
                             "# c\n",
                             "\"",
                             "[",
                             "]",
                             "\\",
                             "{",
                             "}"};
  std::vector<std::string> bytes;
  for (int b = 0; b < 256; ++b) bytes.push_back(std::string(1, static_cast<char>(b)));
  auto vocab = TokenVocabulary::create(bytes, std::vector<bool>(256, false), {});
  std::mt19937 rng(7);
  int compiled = 0;
  for (int i = 0; i < 6000; ++i) {
    std::string text = i % 2 ? "root ::= " : "";
    int n = 1 + static_cast<int>(rng() % 12);
    for (int k = 0; k < n; ++k) text += fragments[rng() % std::size(fragments)];
    if (i % 3 == 0) text += "\na ::= \"y\" a | b\nb ::= [0-9]*\n";
    auto g = compile_gbnf(text);
    if (!g.ok()) {
      EXPECT_EQ(g.status().code(), ErrorCode::kInvalidParams) << text;
      EXPECT_FALSE(g.status().message().empty());
      continue;
    }
    ++compiled;
    auto m = Matcher::create(*g, vocab);
    std::vector<uint32_t> mask(8);
    for (int step = 0; step < 8; ++step) {
      m->fill_next_token_bitmask(mask);
      std::vector<int32_t> allowed;
      for (int32_t id = 0; id < 256; ++id) {
        if ((mask[id / 32] >> (id % 32)) & 1) allowed.push_back(id);
      }
      if (allowed.empty()) {  // no EOS in this vocabulary: only when complete
        EXPECT_TRUE(m->can_end()) << text;
        break;
      }
      ASSERT_TRUE(m->accept_token(allowed[rng() % allowed.size()])) << text;
    }
  }
  EXPECT_GT(compiled, 150);
}

}  // namespace
}  // namespace mlxs::structured
