// A compiled PCRE2 regular expression (UTF + UCP, JIT) with the match iteration that Hugging Face
// tokenizers gets from Oniguruma: leftmost matches, non-overlapping, an empty match advances by
// one character. Compiled once at load; find_all is thread-safe (per-thread match data).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "mlxs/status.h"

namespace mlxs::tok {

class Regex {
 public:
  // Compiles `pattern`; the error names the pattern and PCRE2's message with its offset.
  static Result<std::unique_ptr<Regex>> compile(const std::string& pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Calls on_match(start, end) (byte offsets into `text`, valid UTF-8) for every match in order.
  // Returns kTokenizerError if PCRE2 fails at run time: its match limit (catastrophic
  // backtracking on this text) or its heap limit.
  Status find_all(std::string_view text, const std::function<void(size_t, size_t)>& on_match) const;

  const std::string& pattern() const { return pattern_; }

 private:
  Regex() = default;
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code*
  bool jit_ = false;
};

// The `pattern` field of Split / Replace: {"String": literal} or {"Regex": pattern}.
class Pattern {
 public:
  // `where` names the component for the error ("pre_tokenizer Split").
  static Result<std::unique_ptr<Pattern>> from_json(const nlohmann::json& j,
                                                    const std::string& where);
  // Calls on_match(start, end) for every non-overlapping match, left to right.
  Status find_all(std::string_view text, const std::function<void(size_t, size_t)>& on_match) const;

 private:
  std::string literal_;
  std::unique_ptr<Regex> regex_;
};

}  // namespace mlxs::tok
