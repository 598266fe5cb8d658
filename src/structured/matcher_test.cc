#include <gtest/gtest.h>

#include <thread>

#include "structured/compiled_grammar.h"
#include "structured/grammar.h"

namespace mlxs::structured {
namespace {

// Tokens: the 256 single bytes (ids 0..255), then `extra`, then EOS and one special token.
struct TestVocab {
  std::shared_ptr<const TokenVocabulary> vocab;
  int32_t eos = -1, special = -1;
  std::vector<std::string> bytes;
};

TestVocab make_vocab(const std::vector<std::string>& extra = {}) {
  TestVocab v;
  for (int b = 0; b < 256; ++b) v.bytes.push_back(std::string(1, static_cast<char>(b)));
  for (const auto& s : extra) v.bytes.push_back(s);
  v.eos = static_cast<int32_t>(v.bytes.size());
  v.bytes.push_back("</s>");
  v.special = static_cast<int32_t>(v.bytes.size());
  v.bytes.push_back("<|special|>");
  std::vector<bool> special(v.bytes.size(), false);
  special[v.eos] = special[v.special] = true;
  v.vocab = TokenVocabulary::create(v.bytes, special, {v.eos});
  return v;
}

GrammarPtr grammar(std::string_view text) {
  auto g = compile_gbnf(text);
  EXPECT_TRUE(g.ok()) << g.status().to_string();
  return g.ok() ? *g : nullptr;
}

// Whether the whole of `text` is in the grammar's language.
bool matches(const GrammarPtr& g, std::string_view text) {
  static TestVocab v = make_vocab();
  auto m = Matcher::create(g, v.vocab);
  return m->accept_bytes(text) && m->can_end();
}
bool is_prefix(const GrammarPtr& g, std::string_view text) {
  static TestVocab v = make_vocab();
  return Matcher::create(g, v.vocab)->accept_bytes(text);
}

std::vector<uint32_t> mask_of(Matcher& m, const TestVocab& v) {
  std::vector<uint32_t> words((v.bytes.size() + 31) / 32 + 2, 0xFFFFFFFFu);
  m.fill_next_token_bitmask(words);
  return words;
}
bool allowed(const std::vector<uint32_t>& w, int32_t id) {
  return (w[id / 32] >> (id % 32)) & 1;
}

TEST(Matcher, AcceptsTheLanguageAndRejectsTheRest) {
  auto g = grammar(R"(root ::= "x" num ("," num)* | "empty"?
num ::= "-"? ([0-9] | [1-9] [0-9]{1,3}) )");
  for (const char* s : {"x0", "x-12", "x1,2,3", "x9999,-1", "", "empty"}) {
    EXPECT_TRUE(matches(g, s)) << s;
  }
  for (const char* s : {"x", "x01", "x12345", "x1,", "y", "emptyy", "x1 ,2"}) {
    EXPECT_FALSE(matches(g, s)) << s;
  }
  EXPECT_TRUE(is_prefix(g, "x1,"));
  EXPECT_FALSE(is_prefix(g, "x1,,"));
}

TEST(Matcher, RepetitionBoundsAndAnyCharacter) {
  auto g = grammar("root ::= [ab]{2,3} . \"!\"{0,2}");
  EXPECT_TRUE(matches(g, "abx"));
  EXPECT_TRUE(matches(g, "aba\xC3\xA9!!"));
  EXPECT_FALSE(matches(g, "a\xC3\xA9"));
  EXPECT_FALSE(matches(g, "ababx"));  // at most 3 of [ab], then one character, then "!"
  EXPECT_FALSE(matches(g, "abx!!!"));
  EXPECT_FALSE(matches(g, "ab\xC3"));  // a character cut in its middle
  EXPECT_TRUE(is_prefix(g, "ab\xC3"));
  EXPECT_FALSE(is_prefix(g, "ab\xC3\x28"));      // not a continuation byte
  EXPECT_FALSE(is_prefix(g, "ab\xED\xA0\x80"));  // a surrogate is not UTF-8
}

TEST(Matcher, MultiByteClassesMatchWholeCodePoints) {
  // Ranges across UTF-8 length boundaries, negation, a 4-byte range.
  auto g = grammar(
      "root ::= [a-z\u00e9-\u00fc\u4e00-\u9fff]+ [^a-z\\u0080-\\U0010FFFF] "
      "[\\U0001F600-\\U0001F64F]");
  EXPECT_TRUE(matches(g,
                      "a\xC3\xA9\xE4\xB8\x80\xE9\xBF\xBF"
                      "1\xF0\x9F\x98\x80"));
  EXPECT_TRUE(matches(g,
                      "\xC3\xBC"
                      "A\xF0\x9F\x99\x8F"));
  EXPECT_FALSE(matches(g,
                       "\xC3\xBD"
                       "A\xF0\x9F\x98\x80"));      // ý is past ü
  EXPECT_FALSE(matches(g, "aa\xF0\x9F\x98\x80"));  // 'a' is not in the negated class
  EXPECT_FALSE(matches(g,
                       "a\xC3\xA9"
                       "\xF0\x9F\x98\x80"));       // é is in the range excluded
  EXPECT_FALSE(matches(g, "a1\xF0\x9F\x99\x90"));  // U+1F650 is past U+1F64F
  EXPECT_TRUE(is_prefix(g, "a1\xF0\x9F\x99"));
}

TEST(Matcher, MaskFollowsTheGrammarAndTokensSpanRules) {
  TestVocab v = make_vocab({"ab", "abc", "bc", "c!", "\xC3", "\xA9!"});
  auto g = grammar("root ::= \"a\" b \"!\"\nb ::= \"b\" \"c\"? | \"\xC3\xA9\"");
  auto m = Matcher::create(g, v.vocab);
  auto w = mask_of(*m, v);
  EXPECT_TRUE(allowed(w, 'a'));
  EXPECT_TRUE(allowed(w, 256));   // "ab"
  EXPECT_TRUE(allowed(w, 257));   // "abc"
  EXPECT_FALSE(allowed(w, 258));  // "bc"
  EXPECT_FALSE(allowed(w, 'b'));
  EXPECT_FALSE(allowed(w, v.eos));
  EXPECT_FALSE(allowed(w, v.special));
  for (size_t i = (v.bytes.size() + 31) / 32; i < w.size(); ++i) EXPECT_EQ(w[i], 0u);
  ASSERT_TRUE(m->accept_token('a'));
  w = mask_of(*m, v);
  EXPECT_TRUE(allowed(w, 258));  // "bc"
  EXPECT_TRUE(allowed(w, 260));  // a lead byte of é
  EXPECT_FALSE(allowed(w, 261));
  ASSERT_TRUE(m->accept_token(260));
  w = mask_of(*m, v);
  EXPECT_TRUE(allowed(w, 261));  // "\xA9!" ends the character and the text
  EXPECT_FALSE(allowed(w, 0xA8));
  EXPECT_FALSE(m->accept_token('!'));  // refused, state unchanged
  ASSERT_TRUE(m->accept_token(261));
  EXPECT_TRUE(m->can_end());
  EXPECT_TRUE(m->is_complete());
}

TEST(Matcher, EosOnlyWhereTheGrammarCanEnd) {
  TestVocab v = make_vocab();
  auto m = Matcher::create(grammar("root ::= \"a\"+"), v.vocab);
  EXPECT_FALSE(allowed(mask_of(*m, v), v.eos));
  EXPECT_FALSE(m->accept_token(v.eos));
  EXPECT_FALSE(m->accept_token(v.special));
  ASSERT_TRUE(m->accept_token('a'));
  auto w = mask_of(*m, v);
  EXPECT_TRUE(allowed(w, v.eos));
  EXPECT_TRUE(allowed(w, 'a'));
  EXPECT_FALSE(allowed(w, v.special));
  EXPECT_FALSE(m->is_complete());
  ASSERT_TRUE(m->accept_token(v.eos));
  EXPECT_TRUE(m->is_terminated());
  EXPECT_FALSE(m->accept_token('a'));
  w = mask_of(*m, v);  // after the end: only EOS
  for (int32_t id = 0; id < static_cast<int32_t>(v.bytes.size()); ++id) {
    EXPECT_EQ(allowed(w, id), id == v.eos) << id;
  }
  // A special token is refused even where the grammar accepts its text.
  auto text = Matcher::create(grammar("root ::= \"<|special|>\" | \"<\" [a-z|<>]*"), v.vocab);
  EXPECT_FALSE(allowed(mask_of(*text, v), v.special));
  EXPECT_FALSE(text->accept_token(v.special));
  EXPECT_TRUE(text->accept_bytes("<|special|>"));
  // Complete: nothing but EOS.
  auto done = Matcher::create(grammar("root ::= \"ab\""), v.vocab);
  ASSERT_TRUE(done->accept_bytes("ab"));
  EXPECT_TRUE(done->is_complete());
  w = mask_of(*done, v);
  for (int32_t id = 0; id < static_cast<int32_t>(v.bytes.size()); ++id) {
    EXPECT_EQ(allowed(w, id), id == v.eos) << id;
  }
}

TEST(Matcher, RollbackAndCloneRestoreStates) {
  TestVocab v = make_vocab();
  auto m = Matcher::create(grammar("root ::= [0-9]{1,40} \";\""), v.vocab);
  EXPECT_GE(m->max_rollback_tokens(), 16);
  auto before = mask_of(*m, v);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(m->accept_token('0' + i % 10));
  auto after20 = mask_of(*m, v);
  auto copy = m->clone();
  m->rollback(20);
  EXPECT_EQ(mask_of(*m, v), before);
  EXPECT_FALSE(m->accept_token(';'));
  // The clone kept its own state and history.
  EXPECT_EQ(mask_of(*copy, v), after20);
  ASSERT_TRUE(copy->accept_token(';'));
  ASSERT_TRUE(copy->accept_token(v.eos));
  EXPECT_TRUE(copy->is_terminated());
  copy->rollback(2);
  EXPECT_FALSE(copy->is_terminated());
  EXPECT_EQ(mask_of(*copy, v), after20);
  // 40 digits then only ';'.
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(copy->accept_token('1'));
  EXPECT_FALSE(copy->accept_token('1'));
  EXPECT_TRUE(copy->accept_token(';'));
}

TEST(Matcher, NestingIsUnboundedAndRepetitionDoesNotGrowTheStack) {
  auto g = grammar("root ::= \"(\" root \")\" | \"x\"*");
  std::string deep = std::string(500, '(') + "xx" + std::string(500, ')');
  EXPECT_TRUE(matches(g, deep));
  EXPECT_FALSE(matches(g, deep + ")"));
  EXPECT_TRUE(matches(g, std::string(100000, 'x')));
}

TEST(Matcher, MatchersOfOneGrammarShareTheMaskCacheAcrossThreads) {
  TestVocab v = make_vocab({"12", "3,", ",4", "5]", "[6"});
  auto g = grammar("root ::= \"[\" [0-9]+ (\",\" [0-9]+)* \"]\"");
  const std::string text = "[12,3,45,6]";
  auto masks_along = [&] {
    std::vector<std::vector<uint32_t>> out;
    auto m = Matcher::create(g, v.vocab);
    for (char c : text) {
      out.push_back(mask_of(*m, v));
      EXPECT_TRUE(m->accept_bytes(std::string(1, c)));
    }
    return out;
  };
  std::vector<std::vector<uint32_t>> results[4];
  std::vector<std::thread> threads;
  for (auto& r : results) threads.emplace_back([&r, &masks_along] { r = masks_along(); });
  for (auto& t : threads) t.join();
  for (const auto& r : results) EXPECT_EQ(r, results[0]);
  EXPECT_TRUE(allowed(results[0][1], 256));   // "12" after "["
  EXPECT_FALSE(allowed(results[0][0], 256));  // not before it
}

// walk_trie takes a subtree of plain bytes whole when the state survives any plain bytes for the
// subtree's height (Pushdown::survives_plain): a bounded string must still refuse tokens longer
// than what is left of it (`zzzzz` after two characters of six), a class without some plain
// bytes refuses them (`C`), and `"` below a node keeps its subtree from being taken whole. Every
// token's bit is checked against feeding its bytes.
TEST(Matcher, PlainSubtreesAreTakenWholeOnlyWhereEveryPathSurvives) {
  TestVocab v =
      make_vocab({"ab", "abc", "abcd", "abcde", "abcdef", "abcdefg", "abcdefgh", "abCDEF", "ab\"",
                  "ab\",", "b cd", "b cde", "b cdef", "b c d e", "zzzz", "zzzzz"});
  for (const char* item :
       {R"(item ::= "\"" [^"\\]{0,6} "\"")", R"(item ::= "\"" [a-z ]{0,6} "\"")"}) {
    auto g = grammar(std::string("root ::= \"[\" item (\",\" item)* \"]\"\n") + item);
    for (std::string text :
         {"[\"", "[\"a", "[\"ab", "[\"abc", "[\"abcde", "[\"abcdef", "[\"x\",\"zz"}) {
      auto m = Matcher::create(g, v.vocab);
      ASSERT_TRUE(m->accept_bytes(text)) << text;
      std::vector<uint32_t> mask = mask_of(*m, v);
      for (int32_t id = 0; id < v.eos; ++id) {
        EXPECT_EQ(allowed(mask, id), is_prefix(g, text + v.bytes[id]))
            << item << ": after " << text << ", token " << v.bytes[id];
      }
    }
  }
}

}  // namespace
}  // namespace mlxs::structured
