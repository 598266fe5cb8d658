// Decoders of tokenizer.json ("decoder" field): ByteLevel, Replace, ByteFallback, Fuse, Strip,
// Metaspace, Sequence. A decoder turns the token strings of an id sequence into text; each stage
// maps a list of strings to a list of strings (HF's decode_chain) and the result is concatenated.
// Immutable after load; thread-safe.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "mlxs/status.h"

namespace mlxs::tok {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
  // The same chain for tokens in the middle of a text, keeping raw bytes: no lossy UTF-8 repair
  // (a token may end inside a character), no leading space dropped or stripped. Grammar masks
  // need the exact bytes each token adds.
  virtual void raw_chain(std::vector<std::string>& tokens) const { decode_chain(tokens); }
};

// Builds the decoder described by `j`; null JSON gives nullptr (tokens joined by spaces, as HF).
// Unknown types are a TokenizerError naming the type.
Result<std::unique_ptr<Decoder>> make_decoder(const nlohmann::json& j);

}  // namespace mlxs::tok
