// Nesting depth of JSON text, measured before parsing. nlohmann::json parses iteratively but
// copies, compares and dumps values recursively, so a value nested 300,000 deep overflows the
// stack of whatever touches it next. Every JSON text that comes from outside the process (an HTTP
// body, a model folder's files) is checked against a depth limit before it is parsed.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace mlxs {

// Deepest nesting of arrays and objects in `text`, counting only brackets outside strings;
// stops scanning (and returns a value > max_depth) as soon as max_depth is exceeded. Does not
// validate the text: a malformed text is for the parser to reject.
int json_nesting_depth(std::string_view text, int max_depth);

// Default for the JSON files of a model folder (config.json, tokenizer.json, ...): real ones
// nest fewer than 10 levels.
inline constexpr int kMaxModelJsonDepth = 64;

// Parses the text of a model folder's JSON file: nullopt, with *why set ("nests deeper than 64
// levels" or "is not valid JSON"), when it nests deeper than kMaxModelJsonDepth or does not parse.
template <class Json = nlohmann::json>
std::optional<Json> parse_model_json(std::string_view text, std::string* why) {
  if (json_nesting_depth(text, kMaxModelJsonDepth) > kMaxModelJsonDepth) {
    *why = "nests deeper than " + std::to_string(kMaxModelJsonDepth) + " levels";
    return std::nullopt;
  }
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    *why = "is not valid JSON";
    return std::nullopt;
  }
  return j;
}

}  // namespace mlxs
