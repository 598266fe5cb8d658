// Fuzzes the text that real tokenizers encode: the shipped model's tokenizer and the reference
// tokenizers of scripts/fetch-fixtures.sh (Llama 2's SentencePiece BPE, Llama 3 / 3.1, Qwen 3,
// Gemma 3), whose pre-tokenizer regexes, normalizers and added tokens see hostile prompts. Input:
// one byte choosing the tokenizer, then the text. Encoding must succeed or fail with an error
// (PCRE2's match limit), ids must be in the vocabulary, and the Detokenizer must keep its contract
// (fuzz/detokenizer_check.h).
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "fuzz/detokenizer_check.h"
#include "tokenizer/tokenizer.h"

namespace {

std::vector<std::unique_ptr<mlxs::Tokenizer>>& tokenizers() {
  static auto* all = [] {
    auto* v = new std::vector<std::unique_ptr<mlxs::Tokenizer>>;
    const std::string root = MLXS_SOURCE_DIR;
    auto t = mlxs::Tokenizer::load(root + "/models/default");
    if (!t.ok()) std::abort();
    v->push_back(std::move(*t));
    // scripts/fetch-fixtures.sh's pinned tokenizers; without them, the shipped one only.
    for (const char* name : {"llama2", "llama3", "llama3_1", "qwen3", "gemma3"}) {
      std::string dir = root + "/.fixtures/tokenizers/" + name;
      if (!std::ifstream(dir + "/tokenizer.json").good()) continue;
      auto r = mlxs::Tokenizer::load(dir);
      if (!r.ok()) std::abort();
      v->push_back(std::move(*r));
    }
    return v;
  }();
  return *all;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)tokenizers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  auto& all = tokenizers();
  const mlxs::Tokenizer& tok = *all[data[0] % all.size()];
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  auto ids = tok.encode(text, (data[0] & 0x80) != 0);
  if (!ids.ok()) return 0;
  for (int32_t id : *ids) {
    if (id < 0 || size_t(id) >= tok.vocab_size()) std::abort();
  }
  mlxs::fuzz::check_detokenizer(tok, *ids, false);
  mlxs::fuzz::check_detokenizer(tok, *ids, true);
  return 0;
}
