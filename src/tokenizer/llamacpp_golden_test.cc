// A second, independent reference: llama.cpp's own tokenizer goldens for the Llama 3 (llama-bpe)
// and Qwen2 vocabularies, which the npm fixtures llama3 / qwen3 share.
#include <gtest/gtest.h>

#include <sstream>

#include "tokenizer/tokenizer_test_util.h"

namespace mlxs {
namespace {

std::vector<std::string> split(const std::string& text, const std::string& sep) {
  std::vector<std::string> out;
  size_t start = 0, pos;
  while ((pos = text.find(sep, start)) != std::string::npos) {
    out.push_back(text.substr(start, pos - start));
    start = pos + sep.size();
  }
  out.push_back(text.substr(start));
  return out;
}

void check_goldens(const std::string& vocab, const std::string& fixture) {
  const Tokenizer* t = testing::fixture_tokenizer(fixture);
  if (t == nullptr) GTEST_SKIP() << "fixture tokenizers missing: run scripts/fetch-fixtures.sh";
  std::string dir =
      std::string(MLXS_SOURCE_DIR) + "/tests/fixtures/tokenizer/llamacpp/ggml-vocab-" + vocab;
  auto inputs = split(testing::read_all(dir + ".gguf.inp"), "\n__ggml_vocab_test__\n");
  auto outputs = split(testing::read_all(dir + ".gguf.out"), "\n");
  ASSERT_GT(inputs.size(), 40u);
  size_t checked = 0;
  for (size_t i = 0; i + 1 < inputs.size() && i < outputs.size(); ++i) {
    std::vector<int32_t> expected;
    std::istringstream ss(outputs[i]);
    for (int32_t id; ss >> id;) expected.push_back(id);
    EXPECT_EQ(testing::encode_ok(*t, inputs[i], false), expected)
        << vocab << " string " << i << ": '" << inputs[i] << "'";
    ++checked;
  }
  EXPECT_GT(checked, 40u);
}

TEST(TokenizerLlamaCpp, Llama3MatchesLlamaBpeGoldens) {
  check_goldens("llama-bpe", "llama3");
}
TEST(TokenizerLlamaCpp, Qwen3MatchesQwen2Goldens) {
  check_goldens("qwen2", "qwen3");
}

}  // namespace
}  // namespace mlxs
