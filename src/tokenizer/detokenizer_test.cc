// Detokenizer invariants on every fixture tokenizer and every corpus unit: each delta is valid
// UTF-8, and the deltas plus finish() concatenate to decode(all ids), with and without special
// tokens skipped.
#include "tokenizer/detokenizer.h"

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

// Streams `ids` and checks the contract; returns the concatenation.
void check_stream(const Tokenizer& t, const std::vector<int32_t>& ids, bool skip,
                  const std::string& where) {
  Detokenizer detok(t, skip);
  std::string streamed;
  for (int32_t id : ids) {
    std::string delta = detok.add(id);
    ASSERT_EQ(tok::valid_utf8_prefix(delta), delta.size()) << where << ": delta is not valid UTF-8";
    streamed += delta;
  }
  streamed += detok.finish();
  ASSERT_EQ(streamed, t.decode(ids, skip)) << where;
}

TEST(Detokenizer, ConcatenationEqualsDecodeOnCorpus) {
  for (const auto& name : fixture_names()) {
    const Tokenizer* t = fixture_tokenizer(name);
    if (t == nullptr) GTEST_SKIP() << "fixture tokenizers missing: run scripts/fetch-fixtures.sh";
    for (const auto& file : corpus_files()) {
      auto units = corpus_units(read_all(corpus_dir() + "/" + file));
      for (size_t i = 0; i < units.size() && i < 300; ++i) {
        auto ids = testing::encode_ok(*t, units[i], true);
        std::string where = name + " " + file + " unit " + std::to_string(i);
        check_stream(*t, ids, false, where);
        check_stream(*t, ids, true, where + " (skip special)");
      }
    }
  }
}

TEST(Detokenizer, NeverEmitsHalfACharacter) {
  const Tokenizer* t = fixture_tokenizer("llama2");
  if (t == nullptr) GTEST_SKIP() << "fixture tokenizers missing: run scripts/fetch-fixtures.sh";
  // <0xF0><0x9F><0xA6><0x99> = U+1F999: nothing until the fourth byte.
  Detokenizer detok(*t);
  EXPECT_EQ(detok.add(22557), "Hello");  // "▁Hello": the leading space is stripped at the start
  EXPECT_EQ(detok.add(243), "");
  EXPECT_EQ(detok.add(162), "");
  EXPECT_EQ(detok.add(169), "");
  EXPECT_EQ(detok.add(156), "\U0001F999");
  EXPECT_EQ(detok.add(22557), " Hello");  // later, the same token keeps its space
  EXPECT_EQ(detok.finish(), "");
}

TEST(Detokenizer, IncompleteTailFlushedAsReplacement) {
  const Tokenizer* t = fixture_tokenizer("llama3");
  if (t == nullptr) GTEST_SKIP() << "fixture tokenizers missing: run scripts/fetch-fixtures.sh";
  auto ids = testing::encode_ok(*t, "\U0001F999", false);  // several byte-level tokens
  ASSERT_GT(ids.size(), 1u);
  Detokenizer detok(*t);
  EXPECT_EQ(detok.add(ids[0]), "");
  EXPECT_EQ(detok.finish(), t->decode(std::vector<int32_t>{ids[0]}));
}

TEST(Detokenizer, SkippedSpecialAtStartKeepsStripRule) {
  const Tokenizer* t = fixture_tokenizer("llama2");
  if (t == nullptr) GTEST_SKIP() << "fixture tokenizers missing: run scripts/fetch-fixtures.sh";
  auto ids = testing::encode_ok(*t, "Hello world, and more", true);  // <s> first
  check_stream(*t, ids, true, "skip <s>");
  check_stream(*t, ids, false, "keep <s>");
}

// Found by fuzz/tokenizer_fuzzer: "~" (byte token <0x7E>) streams at once, then <0x97> makes
// the byte group invalid and decode() turns both bytes into U+FFFD. The stream used to stop
// there: every later delta and finish() were empty, so "aa" was lost.
TEST(Detokenizer, TextAfterAnInvalidByteGroupIsNotLost) {
  auto t = Tokenizer::from_json(R"({"added_tokens": [], "normalizer": null, "pre_tokenizer": null,
      "post_processor": null,
      "decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Fuse"}]},
      "model": {"type": "BPE", "byte_fallback": true,
                "vocab": {"<0x7E>": 0, "<0x97>": 1, "a": 2}, "merges": []}})");
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  const std::vector<int32_t> ids = {0, 1, 2, 2};
  ASSERT_EQ((*t)->decode(ids),
            "\xEF\xBF\xBD\xEF\xBF\xBD"
            "aa");
  Detokenizer detok(**t);
  std::string streamed;
  for (int32_t id : ids) {
    std::string delta = detok.add(id);
    EXPECT_EQ(tok::valid_utf8_prefix(delta), delta.size());
    streamed += delta;
  }
  streamed += detok.finish();
  // "~" was sent before <0x97> came; the stream goes on after as many bytes of the new text.
  EXPECT_EQ(streamed,
            "~\xEF\xBF\xBD"
            "aa");
}

}  // namespace
}  // namespace mlxs
