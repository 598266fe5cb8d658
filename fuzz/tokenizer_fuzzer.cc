// Fuzzes a model folder's tokenizer files and the text they encode. Input: tokenizer.json, NUL,
// the text, NUL, tokenizer_config.json (the last two parts optional). A tokenizer that loads must
// encode the text without crashing, decode the ids with and without special tokens, and stream
// them through the Detokenizer with its contract intact (fuzz/detokenizer_check.h).
// The text's bytes also serve as arbitrary token ids (unknown ones are skipped).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/detokenizer_check.h"
#include "fuzz/fuzz_util.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto [tokenizer_json, rest] = mlxs::fuzz::split_at_nul(
      data, size, "Hello, world! It's 2026 - \xC3\xA9t\xC3\xA9 <s> \n\n x");
  std::string_view text = rest, config;
  if (size_t nul = rest.find('\0'); nul != std::string_view::npos) {
    text = rest.substr(0, nul);
    config = rest.substr(nul + 1);
  }
  auto t = mlxs::Tokenizer::from_json(tokenizer_json, config);
  if (!t.ok()) return 0;
  const mlxs::Tokenizer& tok = **t;
  for (bool special : {false, true}) {
    auto ids = tok.encode(text, special);
    if (!ids.ok()) continue;
    for (int32_t id : *ids) {
      if (id < 0 || size_t(id) >= tok.vocab_size()) std::abort();
      (void)tok.id_to_token(id);
    }
    mlxs::fuzz::check_detokenizer(tok, *ids, false);
    mlxs::fuzz::check_detokenizer(tok, *ids, true);
  }
  std::vector<int32_t> raw(text.size() / 4);
  if (!raw.empty()) std::memcpy(raw.data(), text.data(), raw.size() * 4);
  for (int32_t& id : raw) id = int32_t(uint32_t(id) % (tok.vocab_size() + 16));
  mlxs::fuzz::check_detokenizer(tok, raw, false);
  mlxs::fuzz::check_detokenizer(tok, raw, true);
  (void)tok.token_to_id(text);
  return 0;
}
