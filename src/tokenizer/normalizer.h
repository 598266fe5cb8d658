// Normalizers of tokenizer.json ("normalizer" field): NFC, NFD, NFKC, NFKD, Lowercase, Prepend,
// Replace, Strip, StripAccents, Sequence. Each maps valid UTF-8 to valid UTF-8; immutable after
// load and thread-safe. Offsets are not tracked (encode() returns ids only).
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "mlxs/status.h"

namespace mlxs::tok {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual std::string normalize(std::string text) const = 0;
};

// Builds the normalizer described by `j`; null JSON gives nullptr (no normalization). An unknown
// or unsupported type is a TokenizerError naming it.
Result<std::unique_ptr<Normalizer>> make_normalizer(const nlohmann::json& j);

}  // namespace mlxs::tok
