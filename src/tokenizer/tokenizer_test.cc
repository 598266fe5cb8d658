// Tokenizer tests: goldens from fixtures.md §1.2 (ids produced by @lenml/tokenizers, which agree
// with llama.cpp's goldens), round trips over the corpus, added tokens, byte fallback, invalid
// UTF-8, empty input, unsupported components, and small synthetic tokenizers for the
// single_word / lstrip / rstrip rules.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include "tokenizer/tokenizer_test_util.h"
#include "tokenizer/unicode.h"

namespace mlxs {
namespace {

using testing::corpus_dir;
using testing::corpus_files;
using testing::corpus_units;
using testing::fixture_names;
using testing::fixture_tokenizer;
using testing::read_all;
using Ids = std::vector<int32_t>;

#define REQUIRE_FIXTURE(var, name)                \
  const Tokenizer* var = fixture_tokenizer(name); \
  if (var == nullptr)                             \
  GTEST_SKIP() << "fixture tokenizer " << name << " missing: run scripts/fetch-fixtures.sh"

const char* kAscii = "Hello, world! The quick brown fox jumps over the lazy dog.";
const char* kEmoji =
    "I \u2764\uFE0F \U0001F999\U0001F680 \U0001F468\u200D\U0001F469\u200D\U0001F467";
const char* kCjk = "你好，世界！日本語のテキスト。한국어";
const char* kCode = "def f(x):\n    return x**2  # square\n\tif (a != b) { y += 1; }";
const char* kDigits = "1234567 3.14159";

TEST(TokenizerGolden, Llama3) {
  REQUIRE_FIXTURE(t, "llama3");
  EXPECT_EQ(testing::encode_ok(*t, kAscii, false),
            (Ids{9906, 11, 1917, 0, 578, 4062, 14198, 39935, 35308, 927, 279, 16053, 5679, 13}));
  EXPECT_EQ(testing::encode_ok(*t, kEmoji, false),
            (Ids{40, 71570, 31643, 11410, 99, 247, 9468, 248, 222, 62904, 101, 102470, 9468, 239,
                 102, 102470, 9468, 239, 100}));
  EXPECT_EQ(testing::encode_ok(*t, kCjk, false),
            (Ids{57668, 53901, 3922, 102616, 6447, 102433, 102158, 16144, 57933, 62903, 71634, 1811,
                 112699, 32179}));
  EXPECT_EQ(testing::encode_ok(*t, kCode, false),
            (Ids{755, 282, 2120, 997, 262, 471, 865, 334, 17,   220, 674, 9518, 198,
                 748, 320, 64,   976, 293, 8,   314, 379, 1447, 220, 16,  26,   335}));
  EXPECT_EQ(testing::encode_ok(*t, kDigits, false),
            (Ids{4513, 10961, 22, 220, 18, 13, 9335, 2946}));
  // llama3's post-processor is ByteLevel only: no BOS even with special tokens on.
  EXPECT_EQ(testing::encode_ok(*t, kDigits, true), testing::encode_ok(*t, kDigits, false));
}

TEST(TokenizerGolden, Llama3_1AddsBeginOfText) {
  REQUIRE_FIXTURE(t, "llama3_1");
  Ids ids = testing::encode_ok(*t, kAscii, true);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], 128000);
  EXPECT_EQ(Ids(ids.begin() + 1, ids.end()), testing::encode_ok(*t, kAscii, false));
  EXPECT_EQ(t->bos_id(), 128000);
  EXPECT_EQ(t->eos_ids(), Ids{128009});
}

TEST(TokenizerGolden, Qwen3) {
  REQUIRE_FIXTURE(t, "qwen3");
  EXPECT_EQ(testing::encode_ok(*t, kAscii, false),
            (Ids{9707, 11, 1879, 0, 576, 3974, 13876, 38835, 34208, 916, 279, 15678, 5562, 13}));
  EXPECT_EQ(testing::encode_ok(*t, kEmoji, false),
            (Ids{40, 70470, 30543, 11162, 99, 247, 145836, 61804, 101, 378, 235, 145233, 378, 235,
                 145665}));
  EXPECT_EQ(testing::encode_ok(*t, kCjk, false),
            (Ids{108386, 3837, 99489, 6313, 101059, 102819, 15767, 56833, 61803, 70534, 1773, 23573,
                 124785, 31079}));
  EXPECT_EQ(testing::encode_ok(*t, kCode, false),
            (Ids{750, 282, 2075, 982, 262, 470, 856, 334, 17,   220, 671, 9334, 198,
                 743, 320, 64,   961, 293, 8,   314, 379, 1421, 220, 16,  26,   335}));
  EXPECT_EQ(testing::encode_ok(*t, kDigits, false),
            (Ids{16, 17, 18, 19, 20, 21, 22, 220, 18, 13, 16, 19, 16, 20, 24}));
  EXPECT_EQ(t->bos_id(), -1);
  EXPECT_EQ(t->eos_ids(), Ids{151645});
  EXPECT_FALSE(t->add_bos_token());
}

TEST(TokenizerGolden, Gemma3) {
  REQUIRE_FIXTURE(t, "gemma3");
  Ids ascii{9259,  236764, 1902, 236888, 669,   3823, 8864,
            37423, 38167,  1024, 506,    31770, 4799, 236761};
  EXPECT_EQ(testing::encode_ok(*t, kAscii, false), ascii);
  ascii.insert(ascii.begin(), 2);
  EXPECT_EQ(testing::encode_ok(*t, kAscii, true), ascii);
  EXPECT_EQ(t->bos_id(), 2);
  EXPECT_EQ(t->eos_ids(), Ids{106});
}

TEST(TokenizerGolden, MistralByteFallback) {
  REQUIRE_FIXTURE(t, "llama2");
  Ids ascii{22557, 28725, 1526,  28808, 415, 2936,  9060, 285,
            1142,  461,   10575, 754,   272, 17898, 3914, 28723};
  EXPECT_EQ(testing::encode_ok(*t, kAscii, false), ascii);
  ascii.insert(ascii.begin(), 1);
  EXPECT_EQ(testing::encode_ok(*t, kAscii, true), ascii);
  // The llama emoji has no piece: it falls back to <0xF0><0x9F><0xA6><0x99> = ids 243,162,169,156.
  Ids emoji = testing::encode_ok(*t, kEmoji, false);
  Ids llama{243, 162, 169, 156};
  EXPECT_NE(std::search(emoji.begin(), emoji.end(), llama.begin(), llama.end()), emoji.end());
  EXPECT_EQ(t->decode(emoji), kEmoji);
  EXPECT_EQ(t->decode(Ids{1, 22557}), "<s> Hello");
  EXPECT_EQ(t->decode(Ids{1, 22557}, true), "Hello");
}

TEST(Tokenizer, EmptyText) {
  for (const auto& name : fixture_names()) {
    REQUIRE_FIXTURE(t, name);
    EXPECT_TRUE(testing::encode_ok(*t, "", false).empty()) << name;
    Ids with = testing::encode_ok(*t, "", true);
    bool adds_bos = name == "llama3_1" || name == "gemma3" || name == "llama2";
    EXPECT_EQ(with.size(), adds_bos ? 1u : 0u) << name;
    EXPECT_EQ(t->decode(Ids{}), "") << name;
  }
}

TEST(Tokenizer, InvalidUtf8BecomesReplacementCharacters) {
  for (const auto& name : fixture_names()) {
    REQUIRE_FIXTURE(t, name);
    // One U+FFFD per maximal invalid subsequence, as Rust's from_utf8_lossy.
    EXPECT_EQ(testing::encode_ok(*t, "a\xFF b", false),
              testing::encode_ok(*t, "a\xEF\xBF\xBD b", false))
        << name;
    EXPECT_EQ(testing::encode_ok(*t, "x\xE4\xBD", false),
              testing::encode_ok(*t, "x\xEF\xBF\xBD", false))
        << name;
    EXPECT_EQ(testing::encode_ok(*t, "\xC0\x80!", false),
              testing::encode_ok(*t, "\xEF\xBF\xBD\xEF\xBF\xBD!", false))
        << name;
    EXPECT_EQ(testing::encode_ok(*t, "\xED\xA0\x80",
                                 false),  // a UTF-8-encoded surrogate: 3 invalid bytes
              testing::encode_ok(*t, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", false))
        << name;
  }
}

TEST(Tokenizer, Utf8LossyMatchesRust) {
  EXPECT_EQ(tok::utf8_lossy("ok"), "ok");
  EXPECT_EQ(tok::utf8_lossy("\xF0\x9F\xA6"), "\xEF\xBF\xBD");  // truncated 4-byte: one
  EXPECT_EQ(tok::utf8_lossy("\xF0\x9F\xA6z"), "\xEF\xBF\xBDz");
  EXPECT_EQ(tok::utf8_lossy("\x80\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // lone continuations: each
  EXPECT_EQ(tok::utf8_lossy("\xF5\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(Tokenizer, AddedTokensMatchedBeforeTheModel) {
  REQUIRE_FIXTURE(t, "qwen3");
  Ids ids = testing::encode_ok(*t, "<|im_start|>user\nHello<|im_end|>\n<think>x</think>", false);
  ASSERT_GE(ids.size(), 6u);
  EXPECT_EQ(ids[0], 151644);
  EXPECT_NE(std::find(ids.begin(), ids.end(), 151645), ids.end());
  EXPECT_NE(std::find(ids.begin(), ids.end(), 151667), ids.end());  // <think>, not special
  EXPECT_TRUE(t->is_special(151644));
  EXPECT_FALSE(t->is_special(151667));
  EXPECT_EQ(t->decode(ids, true), "user\nHello\n<think>x</think>");
  EXPECT_EQ(t->decode(ids, false), "<|im_start|>user\nHello<|im_end|>\n<think>x</think>");
  // Look-alikes are plain text.
  Ids partial = testing::encode_ok(*t, "<|im_start", false);
  EXPECT_EQ(std::find(partial.begin(), partial.end(), 151644), partial.end());
  EXPECT_EQ(t->token_to_id("<|im_end|>"), 151645);
  EXPECT_EQ(t->id_to_token(151645), "<|im_end|>");
}

TEST(Tokenizer, Llama3PartialSpecialIsText) {
  REQUIRE_FIXTURE(t, "llama3");
  Ids ids = testing::encode_ok(*t, "<|eot", false);
  for (int32_t id : ids) EXPECT_LT(id, 128000);
  EXPECT_EQ(testing::encode_ok(*t, "<|eot_id|>", false), Ids{128009});
  EXPECT_EQ(t->vocab_size(), 128256u);
}

// decode(encode(x)) == x wherever the tokenizer is lossless for x: qwen3 NFC-normalizes; the
// SentencePiece ones turn a literal "▁" into a space; special-token look-alikes change spacing.
TEST(Tokenizer, RoundTripOverCorpus) {
  for (const auto& name : fixture_names()) {
    REQUIRE_FIXTURE(t, name);
    int checked = 0;
    for (const auto& file : corpus_files()) {
      if (file == "specials.txt") continue;
      auto units = corpus_units(read_all(corpus_dir() + "/" + file));
      for (size_t i = 0; i < units.size() && i < 3000; ++i) {
        const std::string& text = units[i];
        if (text.find("\xE2\x96\x81") != std::string::npos) continue;
        std::string expected =
            name == "qwen3" ? tok::normalize_unicode(text, tok::NormalForm::kNFC) : text;
        ASSERT_EQ(t->decode(testing::encode_ok(*t, text, false)), expected)
            << name << " " << file << " unit " << i;
        ++checked;
      }
    }
    EXPECT_GT(checked, 3000) << name;
  }
}

Result<std::unique_ptr<Tokenizer>> tiny(const std::string& extra_model, const std::string& added,
                                        const std::string& pre = "null") {
  std::string json =
      R"({"added_tokens": [)" + added + R"(], "normalizer": null, "pre_tokenizer": )" + pre +
      R"(, "post_processor": null, "decoder": null, "model": {"type": "BPE", )" + extra_model +
      R"("vocab": {"a": 0, "b": 1, " ": 2, "ab": 3, "<x>": 4, "<unk>": 5, "<0x63>": 6},
                       "merges": [["a", "b"]]}})";
  return Tokenizer::from_json(json);
}

TEST(Tokenizer, LstripRstripAndSingleWord) {
  auto t = tiny("", R"({"id": 4, "content": "<x>", "special": true, "lstrip": true, "rstrip": true,
                        "single_word": false, "normalized": false})");
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_EQ(testing::encode_ok(**t, "a  <x>  b", false), (Ids{0, 4, 1}));
  auto sw =
      tiny("", R"({"id": 3, "content": "ab", "special": false, "lstrip": false, "rstrip": false,
                         "single_word": true, "normalized": false})");
  ASSERT_TRUE(sw.ok()) << sw.status().to_string();
  EXPECT_EQ(testing::encode_ok(**sw, "ab a", false),
            (Ids{3, 2, 0}));  // a whole word: the added token
  EXPECT_EQ(testing::encode_ok(**sw, "bab", false),
            (Ids{1, 3}));  // inside a word: the model merges
}

TEST(Tokenizer, ByteFallbackAndFusedUnk) {
  auto t = tiny(R"("byte_fallback": true, "fuse_unk": true, "unk_token": "<unk>", )", "");
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_EQ(testing::encode_ok(**t, "abc", false), (Ids{3, 6}));  // 'c' -> <0x63>
  EXPECT_EQ(testing::encode_ok(**t, "adda", false),
            (Ids{0, 5, 0}));  // 'd' has no byte token: fused <unk>
}

// Regression: a regex that backtracks catastrophically on the input reaches PCRE2's match limit;
// that used to hit an MLXS_CHECK and abort the server, now it is the request's error.
TEST(Tokenizer, RegexMatchLimitIsAnErrorNotAnAbort) {
  auto t = tiny("", "", R"({"type": "Split", "pattern": {"Regex": "(a+)+$"}, "behavior": "Isolated",
                            "invert": false})");
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  auto ok = (*t)->encode("aab", false);
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  auto hostile = (*t)->encode(std::string(30, 'a') + "!", false);
  ASSERT_FALSE(hostile.ok());
  EXPECT_EQ(hostile.status().code(), ErrorCode::kTokenizerError);
  EXPECT_NE(hostile.status().message().find("match limit"), std::string::npos)
      << hostile.status().message();
}

// Regression (security audit): an added-token id of 2^31 - 1 sized the id table at 64 GiB, and
// ids were read with get<int32_t>(), which truncates.
TEST(Tokenizer, TokenIdsAreRangeChecked) {
  for (const char* id : {"2147483647", "4294967296", "-1", "4194304"}) {
    auto added =
        tiny("", std::string(R"({"id": )") + id + R"(, "content": "<y>", "special": true})");
    ASSERT_FALSE(added.ok()) << id;
    EXPECT_NE(added.status().message().find("added_tokens"), std::string::npos);
  }
  auto vocab = Tokenizer::from_json(
      R"({"model": {"type": "BPE", "vocab": {"a": 2147483647}, "merges": []}})");
  ASSERT_FALSE(vocab.ok());
  EXPECT_NE(vocab.status().message().find("vocab id of 'a'"), std::string::npos);
}

TEST(Tokenizer, UnsupportedComponentsAreNamed) {
  auto unigram = Tokenizer::from_json(R"({"model": {"type": "Unigram", "vocab": []}})");
  ASSERT_FALSE(unigram.ok());
  EXPECT_EQ(unigram.status().code(), ErrorCode::kTokenizerError);
  EXPECT_NE(unigram.status().message().find("Unigram"), std::string::npos);
  auto bert = tiny("", "", R"({"type": "BertPreTokenizer"})");
  ASSERT_FALSE(bert.ok());
  EXPECT_NE(bert.status().message().find("BertPreTokenizer"), std::string::npos);
  auto missing = Tokenizer::load("/nonexistent/dir");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/dir/tokenizer.json"), std::string::npos);
}

TEST(Tokenizer, ChatTemplateFromConfig) {
  REQUIRE_FIXTURE(t, "qwen3");
  EXPECT_NE(t->chat_template().find("<|im_start|>"), std::string::npos);
  auto listed = Tokenizer::from_json(
      R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})",
      R"({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]})");
  ASSERT_TRUE(listed.ok()) << listed.status().to_string();
  EXPECT_EQ((*listed)->chat_template(), "D");
  EXPECT_EQ((*listed)->chat_templates().at("tool_use"), "T");
}

// token_bytes: the raw bytes a token adds mid-text, for grammar masks.
TEST(Tokenizer, TokenBytesAreRawMidTextBytes) {
  REQUIRE_FIXTURE(llama3, "llama3");
  EXPECT_EQ(llama3->token_bytes(llama3->token_to_id("\xC4\xA0hello")), " hello");
  // "Ã" is GPT-2's character for byte 0xC3: a lone lead byte, not repaired to U+FFFD.
  EXPECT_EQ(llama3->token_bytes(llama3->token_to_id("\xC3\x83")), "\xC3");
  int32_t bos = llama3->token_to_id("<|begin_of_text|>");
  EXPECT_EQ(llama3->token_bytes(bos), "<|begin_of_text|>");
  EXPECT_EQ(llama3->token_bytes(-1), "");
  REQUIRE_FIXTURE(llama2, "llama2");  // metaspace with byte fallback
  EXPECT_EQ(llama2->token_bytes(llama2->token_to_id("\xE2\x96\x81help")), " help");
  EXPECT_EQ(llama2->token_bytes(llama2->token_to_id("<0x0A>")), "\n");
  EXPECT_EQ(llama2->token_bytes(llama2->token_to_id("<0xC3>")), "\xC3");
  // decode() still repairs and strips as HF does.
  int32_t c3 = llama2->token_to_id("<0xC3>");
  EXPECT_EQ(llama2->decode(std::vector<int32_t>{c3}), "\xEF\xBF\xBD");
}

}  // namespace
}  // namespace mlxs
