// Pre-tokenizers of tokenizer.json ("pre_tokenizer" field): Split, ByteLevel, Metaspace, Digits,
// Whitespace, WhitespaceSplit, Punctuation, Sequence. A pre-tokenizer cuts each piece of text into
// smaller pieces ("words") that the model encodes independently. Immutable after load and
// thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "mlxs/status.h"

namespace mlxs::tok {

// A piece of the text being encoded. `added_id` >= 0 marks an added token already resolved (it
// passes through every stage untouched). `at_origin` is true for the piece that starts at offset
// 0 of the original text (Metaspace's prepend_scheme "first" needs it).
struct Piece {
  std::string text;
  int32_t added_id = -1;
  bool at_origin = false;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces every unresolved piece of `pieces` by its sub-pieces, in order; empty pieces vanish.
  virtual Status pre_tokenize(std::vector<Piece>& pieces) const = 0;
};

// Builds the pre-tokenizer described by `j`; null JSON gives nullptr. Unknown types are a
// TokenizerError naming the type.
Result<std::unique_ptr<PreTokenizer>> make_pre_tokenizer(const nlohmann::json& j);

}  // namespace mlxs::tok
