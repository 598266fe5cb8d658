// The mask against independent matchers on the decoded text: PCRE2 (byte mode, hand-written
// patterns equivalent to each grammar, PCRE2_PARTIAL_HARD for "a prefix of some match") and
// nlohmann::json's SAX parser (a text whose only error is at its end is a valid prefix). Random
// walks over real vocabularies draw allowed tokens step by step (fixed seeds); at every step each
// token (a random sample for large vocabularies) must be in the mask exactly when the checker
// accepts prefix + token bytes, and EOS exactly when the prefix is a whole match.
#include <gtest/gtest.h>
#include <pcre2.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "structured/example_grammars.h"
#include "structured/grammar.h"
#include "structured/mask_cache.h"
#include "structured/matcher.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_test_util.h"

namespace mlxs::structured {
namespace {

// Whether `text` is a prefix of a match (partial) or a whole match (complete).
struct Checker {
  std::function<bool(std::string_view)> prefix, complete;
};

class Pcre2Checker {
 public:
  explicit Pcre2Checker(const std::string& pattern) {
    int err = 0;
    PCRE2_SIZE offset = 0;
    std::string anchored = "(?:" + pattern + ")\\z";
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(anchored.data()), anchored.size(),
                          PCRE2_ANCHORED | PCRE2_DOTALL, &err, &offset, nullptr);
    EXPECT_NE(code_, nullptr) << "pattern " << pattern << " error " << err << " at " << offset;
    data_ = pcre2_match_data_create(1, nullptr);
  }
  ~Pcre2Checker() {
    pcre2_match_data_free(data_);
    pcre2_code_free(code_);
  }
  bool run(std::string_view text, uint32_t options) const {
    int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0, options,
                         data_, nullptr);
    EXPECT_TRUE(rc >= 0 || rc == PCRE2_ERROR_PARTIAL || rc == PCRE2_ERROR_NOMATCH) << rc;
    return rc >= 0 || rc == PCRE2_ERROR_PARTIAL;
  }
  Checker checker() const {
    return {[this](std::string_view t) { return run(t, PCRE2_PARTIAL_HARD); },
            [this](std::string_view t) { return run(t, 0); }};
  }

 private:
  pcre2_code* code_ = nullptr;
  pcre2_match_data* data_ = nullptr;
};

// nlohmann's SAX parse. Its lexer reads a whole token before the parser checks that the token
// may come there, so an error at the end of the text (an unfinished string, number or literal)
// proves nothing: the checker finishes the last token with each of kFinishes and wants a text
// that parses or stops with "unexpected end of input" (the parser asked for a next token).
struct JsonSax : nlohmann::json_sax<nlohmann::json> {
  std::string error;
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    error = e.what();
    return false;
  }
};

const char* const kFinishes[] = {
    "", "\"", "0", "\"\"", "0\"", "00\"", "000\"", "0000\"", "\\udc00\"", "udc00\"", "dc00\"",
    "c00\"", "rue", "ue", "e", "alse", "lse", "se", "ull", "ll", "l",
    // the rest of a UTF-8 character cut inside a string
    "\x80\"", "\x80\x80\"", "\x80\x80\x80\"", "\xA0\x80\"", "\x90\x80\x80\""};

Checker json_checker() {
  auto parse = [](const std::string& t, bool want_complete) {
    JsonSax sax;
    if (nlohmann::json::sax_parse(t, &sax)) return true;
    return !want_complete && sax.error.find("unexpected end of input") != std::string::npos;
  };
  // nlohmann reads a NUL byte as the end of the input; raw NUL is never valid JSON.
  return {[parse](std::string_view t) {
            if (t.find('\0') != std::string_view::npos) return false;
            for (const char* finish : kFinishes) {
              if (parse(std::string(t) + finish, false)) return true;
            }
            return false;
          },
          [parse](std::string_view t) { return parse(std::string(t), true); }};
}

// Valid UTF-8 multi-byte characters, written out by hand (RFC 3629 table 3.1).
const std::string kUtf8Multi =
    "(?:[\\xC2-\\xDF][\\x80-\\xBF]|\\xE0[\\xA0-\\xBF][\\x80-\\xBF]|[\\xE1-\\xEC\\xEE\\xEF][\\x80-"
    "\\xBF]{2}|\\xED[\\x80-\\x9F][\\x80-\\xBF]|\\xF0[\\x90-\\xBF][\\x80-\\xBF]{2}|[\\xF1-\\xF3]["
    "\\x80-\\xBF]{3}|\\xF4[\\x80-\\x8F][\\x80-\\xBF]{2})";

// The tokenizers' special flags, by vocabulary (filled by vocabulary()).
std::map<const TokenVocabulary*, std::vector<bool>>& special_flags() {
  static std::map<const TokenVocabulary*, std::vector<bool>> flags;
  return flags;
}
bool is_special(const TokenVocabulary* vocab, int32_t id) {
  return special_flags()[vocab][id];
}

struct Walk {
  int steps;
  int max_checked;  // tokens checked per step (all when the vocabulary is smaller)
  // The mask cache's cut depth: 1 makes every stack deeper than one node go through the
  // context-node path, which the default depth reaches only in deep nesting.
  int cut_depth = MaskCache::kDepth;
};

// Random walks from `seed`: at each step every checked token's mask bit must equal the checker.
void check_walks(const GrammarPtr& grammar, const std::shared_ptr<const TokenVocabulary>& vocab,
                 const Checker& checker, uint32_t seed, int num_walks, Walk walk) {
  std::mt19937 rng(seed);
  size_t n = vocab->size();
  std::vector<uint32_t> mask((n + 31) / 32);
  auto is_eos = [&](int32_t id) {
    for (int32_t e : vocab->eos_ids()) {
      if (e == id) return true;
    }
    return false;
  };
  for (int w = 0; w < num_walks; ++w) {
    auto matcher = create_matcher(grammar, vocab, walk.cut_depth);
    std::string text;
    for (int step = 0; step < walk.steps && !matcher->is_complete(); ++step) {
      matcher->fill_next_token_bitmask(mask);
      auto bit = [&](int32_t id) { return (mask[id / 32] >> (id % 32)) & 1; };
      std::vector<int32_t> allowed;
      for (int32_t id = 0; id < static_cast<int32_t>(n); ++id) {
        if (bit(id) && !is_eos(id)) allowed.push_back(id);
      }
      std::vector<int32_t> checked;
      if (static_cast<int>(n) <= walk.max_checked) {
        for (int32_t id = 0; id < static_cast<int32_t>(n); ++id) checked.push_back(id);
      } else {
        std::uniform_int_distribution<int32_t> any(0, static_cast<int32_t>(n) - 1);
        for (int i = 0; i < walk.max_checked / 2; ++i) checked.push_back(any(rng));
        for (int i = 0; i < walk.max_checked / 2 && !allowed.empty(); ++i) {
          checked.push_back(allowed[rng() % allowed.size()]);
        }
      }
      for (int32_t id : checked) {
        if (is_eos(id)) continue;
        const std::string& b = vocab->bytes_of(id);
        bool expect = !b.empty() && checker.prefix(text + b);
        if (is_special(vocab.get(), id)) {  // never allowed, whatever their text
          ASSERT_EQ(bit(id), 0u) << "special token " << id;
          continue;
        }
        ASSERT_EQ(bit(id) != 0, expect)
            << "seed " << seed << " walk " << w << " step " << step << " token " << id << " '" << b
            << "' after '" << text << "'";
      }
      bool can_end = checker.complete(text);
      for (int32_t e : vocab->eos_ids())
        ASSERT_EQ(bit(e) != 0, can_end) << "after '" << text << "'";
      ASSERT_EQ(matcher->can_end(), can_end) << text;
      if (allowed.empty()) break;
      // Half the draws among short tokens, so that walks reach the grammar's structure.
      std::vector<int32_t> short_ones;
      for (int32_t id : allowed) {
        if (vocab->bytes_of(id).size() <= 2) short_ones.push_back(id);
      }
      const auto& pool = (rng() % 2 == 0 && !short_ones.empty()) ? short_ones : allowed;
      int32_t next = pool[rng() % pool.size()];
      ASSERT_TRUE(matcher->accept_token(next));
      text += vocab->bytes_of(next);
    }
  }
}

struct Pair {
  const char* name;
  std::string gbnf, pcre;
};

std::vector<Pair> regular_pairs() {
  std::string utf8 = kUtf8Multi;
  return {
      {"key_values",
       "root ::= \"{\" pair (\", \" pair)* \"}\"\npair ::= \"\\\"\" [a-z_]{1,8} \"\\\": \" "
       "[0-9]{1,3}\n",
       R"(\{"[a-z_]{1,8}": [0-9]{1,3}(?:, "[a-z_]{1,8}": [0-9]{1,3})*\})"},
      {"escaped_string", "root ::= \"\\\"\" ( [^\"\\\\] | \"\\\\\" [\"\\\\nt] )* \"\\\"\"\n",
       "\"(?:[\\x00-\\x21\\x23-\\x5B\\x5D-\\x7F]|" + utf8 + "|\\\\[\"\\\\nt])*\""},
      {"bounded_alternation", "root ::= ( \"ab\" | \"a\" | \"b\" ){2,4} \"c\"? \" done\"\n",
       "(?:ab|a|b){2,4}c? done"},
      // Greek, CJK and emoji classes, "é" literal, `.` (any character, newline included).
      {"utf8_classes",
       "root ::= ( [\\u03b1-\\u03c9]+ | [\\u4e00-\\u9fff]{1,3} | \"\\u00e9\"+ | "
       "[\\U0001F600-\\U0001F64F] | [0-9]+ ) ( \" \" ( [\\u03b1-\\u03c9]+ | . ) )*\n",
       "(?:(?:\\xCE[\\xB1-\\xBF]|\\xCF[\\x80-\\x89])+|(?:\\xE4[\\xB8-\\xBF][\\x80-\\xBF]|[\\xE5-"
       "\\xE9]"
       "[\\x80-\\xBF]{2}){1,3}|(?:\\xC3\\xA9)+|\\xF0\\x9F\\x98[\\x80-\\xBF]|\\xF0\\x9F\\x99[\\x80-"
       "\\x8F]|[0-9]+)(?: (?:(?:\\xCE[\\xB1-\\xBF]|\\xCF[\\x80-\\x89])+|[\\x00-\\x7F]|" +
           utf8 + "))*"},
      // Longer than the default vocabulary's longest token: links of the repetition chain share
      // mask cache entries (Grammar::mask_position).
      {"long_bounded", "root ::= \"<\" [^<>]{2,60} \">\"\n",
       "<(?:[\\x00-\\x3B\\x3D\\x3F-\\x7F]|" + utf8 + "){2,60}>"},
      {"negated_multibyte", "root ::= [^a-z\\u00e0-\\u00ff]{1,6} \";\"\n",
       "(?:[\\x00-\\x3A\\x3C-\\x60\\x7B-\\x7F]|;|\\xC3[\\x80-\\x9F]|(?!\\xC3[\\xA0-\\xBF])" + utf8 +
           "){1,6};"},
  };
}

std::shared_ptr<const TokenVocabulary> vocabulary(const std::string& name) {
  static std::map<std::string, std::shared_ptr<const TokenVocabulary>> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second;
  const Tokenizer* t = nullptr;
  if (name == "default") {
    static auto tok = Tokenizer::load(std::string(MLXS_SOURCE_DIR) + "/models/tokenizer");
    if (tok.ok()) t = tok->get();
  } else {
    t = testing::fixture_tokenizer(name);
  }
  if (t == nullptr) return cache[name] = nullptr;
  auto v = TokenVocabulary::from_tokenizer(*t);
  std::vector<bool>& special = special_flags()[v.get()];
  for (size_t id = 0; id < v->size(); ++id)
    special.push_back(t->is_special(static_cast<int32_t>(id)));
  return cache[name] = v;
}

GrammarPtr compiled(const std::string& gbnf) {
  auto g = compile_gbnf(gbnf);
  EXPECT_TRUE(g.ok()) << g.status().to_string();
  return g.ok() ? *g : nullptr;
}

TEST(MaskAgreement, RegularGrammarsAgainstPcre2DefaultTokenizer) {
  auto vocab = vocabulary("default");
  ASSERT_NE(vocab, nullptr);
  for (const auto& pair : regular_pairs()) {
    SCOPED_TRACE(pair.name);
    Pcre2Checker pcre(pair.pcre);
    check_walks(compiled(pair.gbnf), vocab, pcre.checker(), 1, 1, {20, 1 << 20});
    check_walks(compiled(pair.gbnf), vocab, pcre.checker(), 11, 1, {20, 1 << 20, 1});
  }
}

TEST(MaskAgreement, RegularGrammarsAgainstPcre2Llama3AndQwen3) {
  int seed_shift = 0;
  for (const char* name : {"llama3", "qwen3"}) {
    auto vocab = vocabulary(name);
    if (vocab == nullptr) GTEST_SKIP() << name << " fixture missing: run scripts/fetch-fixtures.sh";
    for (const auto& pair : regular_pairs()) {
      SCOPED_TRACE(std::string(name) + " " + pair.name);
      Pcre2Checker pcre(pair.pcre);
      check_walks(compiled(pair.gbnf), vocab, pcre.checker(), 2, 1,
                  {15, 1500, 1 + (seed_shift++ % 2)});
    }
  }
}

TEST(MaskAgreement, ArithmeticAgainstRecursivePcre2) {
  Pcre2Checker pcre(
      R"((?<e>(?<t>(?<f>[0-9]+|\( ?(?&e) ?\)|-(?&f))(?: ?[*/] ?(?&f))*)(?: ?[-+] ?(?&t))*))");
  for (const char* name : {"default", "llama3"}) {
    auto vocab = vocabulary(name);
    if (vocab == nullptr) continue;
    SCOPED_TRACE(name);
    check_walks(compiled(examples::kArithmetic), vocab, pcre.checker(), 3, 1, {25, 2000});
    check_walks(compiled(examples::kArithmetic), vocab, pcre.checker(), 13, 1, {25, 2000, 1});
  }
}

TEST(MaskAgreement, JsonAgainstNlohmannSax) {
  for (const char* name : {"default", "llama3", "qwen3"}) {
    auto vocab = vocabulary(name);
    if (vocab == nullptr) continue;
    SCOPED_TRACE(name);
    check_walks(compiled(examples::kJson), vocab, json_checker(), 4, 1, {20, 600});
    check_walks(compiled(examples::kJson), vocab, json_checker(), 14, 1, {20, 600, 2});
  }
}

TEST(MaskAgreement, CheckersThemselvesAgreeOnHandPickedTexts) {
  // The independent checkers are trusted by the walks: pin their verdicts on known texts.
  Checker json = json_checker();
  EXPECT_TRUE(json.prefix("{\"a\": [1, -"));
  EXPECT_TRUE(json.prefix("\"\\uD83D"));
  EXPECT_TRUE(json.prefix("[\"\xE4\xB8"));
  EXPECT_FALSE(json.prefix("[\"\xE4\x28"));
  EXPECT_FALSE(json.prefix("[1]]"));
  EXPECT_FALSE(json.prefix("[-77\"With"));  // a string cannot follow a number
  EXPECT_TRUE(json.prefix("[tr"));
  EXPECT_TRUE(json.prefix("{\"a\\"));
  EXPECT_FALSE(json.prefix("{\"a\\x"));
  EXPECT_FALSE(json.complete("[1"));
  EXPECT_TRUE(json.complete(" 12 "));
  EXPECT_FALSE(json.prefix(std::string("[\0", 2)));
  Pcre2Checker pcre(regular_pairs()[3].pcre);
  EXPECT_TRUE(pcre.checker().prefix("\xCE"));
  EXPECT_FALSE(pcre.checker().prefix("\xCE\x80"));
  EXPECT_TRUE(pcre.checker().complete("12 \xF0\x9F\x98\x80"));
  EXPECT_FALSE(pcre.checker().complete("12 \xF0\x9F\x98"));
}

}  // namespace
}  // namespace mlxs::structured
