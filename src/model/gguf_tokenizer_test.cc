// The tokenizer of a GGUF file: written from a fixture's tokenizer.json by the converter
// (write_gguf_tokenizer), read back from the metadata alone, it gives token for token the ids
// of the Hugging Face tokenizer on the tokenizer tests' corpus, and the same bos, eos,
// add_bos_token and chat template. Bad metadata fails naming the key.
#include "model/gguf_tokenizer.h"

#include <gtest/gtest.h>

#include "model/gguf_convert.h"
#include "model/gguf_writer.h"
#include "tokenizer/tokenizer_test_util.h"

namespace mlxs {
namespace {

struct Parsed {
  std::string bytes;
  std::unique_ptr<GgufFile> file;
};

Parsed parse(const GgufWriter& w) {
  Parsed p;
  p.bytes = w.serialize();
  auto f =
      GgufFile::parse(reinterpret_cast<const uint8_t*>(p.bytes.data()), p.bytes.size(), "t.gguf");
  EXPECT_TRUE(f.ok()) << f.status().to_string();
  if (f.ok()) p.file = std::move(*f);
  return p;
}

class GgufTokenizerTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GgufTokenizerTest, MatchesTheHuggingFaceTokenizerOnTheCorpus) {
  const std::string name = GetParam();
  const Tokenizer* hf = testing::fixture_tokenizer(name);
  ASSERT_NE(hf, nullptr) << "fixture tokenizer " << name
                         << " missing: run scripts/fetch-fixtures.sh";
  GgufWriter w;
  Status s = write_gguf_tokenizer(testing::fixture_dir(name), {}, w);
  ASSERT_TRUE(s.ok()) << s.to_string();
  Parsed p = parse(w);
  ASSERT_TRUE(p.file);
  auto tok = gguf_tokenizer(*p.file);
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  const Tokenizer& g = **tok;
  EXPECT_EQ(g.bos_id(), hf->bos_id());
  EXPECT_EQ(g.add_bos_token(), hf->add_bos_token());
  ASSERT_FALSE(g.eos_ids().empty());
  EXPECT_EQ(g.eos_ids()[0], hf->eos_ids()[0]);
  EXPECT_EQ(g.chat_template(), hf->chat_template());
  EXPECT_EQ(g.vocab_size(), hf->vocab_size());
  size_t units = 0, mismatches = 0;
  for (const auto& file : testing::corpus_files()) {
    const std::string text = testing::read_all(testing::corpus_dir() + "/" + file);
    for (const std::string& unit : testing::corpus_units(text)) {
      ++units;
      for (bool specials : {true, false}) {
        const auto want = testing::encode_ok(*hf, unit, specials);
        const auto got = testing::encode_ok(g, unit, specials);
        if (got != want && ++mismatches <= 3) {
          ADD_FAILURE() << name << " " << file << ": ids differ for \"" << unit.substr(0, 80)
                        << "\"";
        }
        if (specials && got == want) EXPECT_EQ(g.decode(got), hf->decode(want));
      }
    }
  }
  EXPECT_EQ(mismatches, 0u) << "of " << units << " units";
  EXPECT_GT(units, 10u);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GgufTokenizerTest,
                         ::testing::Values("llama3", "llama3_1", "qwen3", "llama2"));

TEST(GgufTokenizer, RefusesBadMetadataNamingTheKey) {
  auto expect = [](const GgufWriter& w, const char* needle) {
    Parsed p = parse(w);
    ASSERT_TRUE(p.file);
    auto t = gguf_tokenizer(*p.file);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().code(), ErrorCode::kTokenizerError);
    EXPECT_NE(t.status().message().find(needle), std::string::npos) << t.status().message();
  };
  GgufWriter none;
  expect(none, "'tokenizer.ggml.model': missing");
  GgufWriter model;
  model.set_string("tokenizer.ggml.model", "bert");
  model.set_strings("tokenizer.ggml.tokens", {"a"});
  expect(model, "'tokenizer.ggml.model': 'bert' is not supported");
  GgufWriter pre;
  pre.set_string("tokenizer.ggml.model", "gpt2");
  pre.set_string("tokenizer.ggml.pre", "deepseek-llm");
  pre.set_strings("tokenizer.ggml.tokens", {"a"});
  pre.set_strings("tokenizer.ggml.merges", {});
  expect(pre, "'tokenizer.ggml.pre': pre-tokenizer 'deepseek-llm' is not supported");
  GgufWriter types;
  types.set_string("tokenizer.ggml.model", "llama");
  types.set_strings("tokenizer.ggml.tokens", {"a", "b"});
  types.set_i32s("tokenizer.ggml.token_type", {1});
  expect(types, "'tokenizer.ggml.token_type': 1 entries for 2 tokens");
  GgufWriter bos;
  bos.set_string("tokenizer.ggml.model", "llama");
  bos.set_strings("tokenizer.ggml.tokens", {"a", "b"});
  bos.set_u32("tokenizer.ggml.bos_token_id", 2);
  expect(bos, "'tokenizer.ggml.bos_token_id': id 2 is outside the 2 tokens");
}

}  // namespace
}  // namespace mlxs
