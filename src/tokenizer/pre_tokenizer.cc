#include "tokenizer/pre_tokenizer.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>

#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace mlxs::tok {

namespace {

using json = nlohmann::json;
using Span = std::pair<size_t, size_t>;

// How a split treats the delimiters it finds (HF SplitDelimiterBehavior).
enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// A list of (span, is_match) covering the whole text, as HF's Pattern::find_matches returns.
using Matches = std::vector<std::pair<Span, bool>>;

Matches cover(size_t size, const std::vector<Span>& found) {
  Matches out;
  if (size == 0) {
    out.push_back({{0, 0}, false});
    return out;
  }
  size_t prev = 0;
  for (auto [s, e] : found) {
    if (prev != s) out.push_back({{prev, s}, false});
    out.push_back({{s, e}, true});
    prev = e;
  }
  if (prev != size) out.push_back({{prev, size}, false});
  return out;
}

// HF NormalizedString::split: returns the spans to keep, in order (may include empty spans).
std::vector<Span> apply_behavior(Matches matches, Behavior behavior, bool invert) {
  if (invert) {
    for (auto& m : matches) m.second = !m.second;
  }
  std::vector<std::pair<Span, bool>> acc;  // (span, remove)
  bool previous_match = false;
  switch (behavior) {
    case Behavior::kIsolated:
      for (auto& m : matches) acc.push_back({m.first, false});
      break;
    case Behavior::kRemoved:
      acc = matches;
      break;
    case Behavior::kContiguous:
      for (auto& [span, is_match] : matches) {
        if (is_match == previous_match && !acc.empty()) {
          acc.back().first.second = span.second;
        } else {
          acc.push_back({span, false});
        }
        previous_match = is_match;
      }
      break;
    case Behavior::kMergedWithPrevious:
      for (auto& [span, is_match] : matches) {
        if (is_match && !previous_match && !acc.empty()) {
          acc.back().first.second = span.second;
        } else {
          acc.push_back({span, false});
        }
        previous_match = is_match;
      }
      break;
    case Behavior::kMergedWithNext:
      for (auto it = matches.rbegin(); it != matches.rend(); ++it) {
        auto& [span, is_match] = *it;
        if (is_match && !previous_match && !acc.empty()) {
          acc.back().first.first = span.first;
        } else {
          acc.push_back({span, false});
        }
        previous_match = is_match;
      }
      std::reverse(acc.begin(), acc.end());
      break;
  }
  std::vector<Span> keep;
  keep.reserve(acc.size());
  for (auto& [span, remove] : acc) {
    if (!remove) keep.push_back(span);
  }
  return keep;
}

// Applies `fn(piece) -> spans of piece.text` to every unresolved piece and rebuilds the list.
template <class Fn>
Status split_pieces(std::vector<Piece>& pieces, Fn&& fn) {
  std::vector<Piece> out;
  out.reserve(pieces.size() * 4);
  for (auto& piece : pieces) {
    if (piece.added_id >= 0) {
      out.push_back(std::move(piece));
      continue;
    }
    std::vector<Span> spans;
    MLXS_RETURN_IF_ERROR(fn(piece, spans));
    for (auto [s, e] : spans) {
      if (e <= s) continue;
      out.push_back({piece.text.substr(s, e - s), -1, piece.at_origin && s == 0});
    }
  }
  pieces = std::move(out);
  return {};
}

Result<Behavior> parse_behavior(const json& j, const std::string& where) {
  std::string b = j.is_string() ? j.get<std::string>() : "";
  if (b == "Removed") return Behavior::kRemoved;
  if (b == "Isolated") return Behavior::kIsolated;
  if (b == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::kMergedWithNext;
  if (b == "Contiguous") return Behavior::kContiguous;
  return error(ErrorCode::kTokenizerError, where + ": unknown behavior " + j.dump());
}

class Split : public PreTokenizer {
 public:
  Split(std::unique_ptr<Pattern> pattern, Behavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  Status pre_tokenize(std::vector<Piece>& pieces) const override {
    return split_pieces(pieces, [&](const Piece& p, std::vector<Span>& spans) -> Status {
      std::vector<Span> found;
      MLXS_RETURN_IF_ERROR(pattern_->find_all(p.text, [&](size_t s, size_t e) {
        found.push_back({s, e});
      }));
      spans = apply_behavior(cover(p.text.size(), found), behavior_, invert_);
      return {};
    });
  }

 private:
  std::unique_ptr<Pattern> pattern_;
  Behavior behavior_;
  bool invert_;
};

// A split on a per-character predicate (Digits, WhitespaceSplit, Punctuation).
template <class Pred>
class CharSplit : public PreTokenizer {
 public:
  CharSplit(Pred pred, Behavior behavior, bool each_char)
      : pred_(pred), behavior_(behavior), each_char_(each_char) {}
  Status pre_tokenize(std::vector<Piece>& pieces) const override {
    return split_pieces(pieces, [&](const Piece& p, std::vector<Span>& spans) -> Status {
      std::vector<Span> found;
      for (size_t i = 0; i < p.text.size();) {
        int len;
        uint32_t cp = decode_utf8(p.text, i, &len);
        if (pred_(cp)) {
          if (!each_char_ && !found.empty() && found.back().second == i) {
            found.back().second = i + len;
          } else {
            found.push_back({i, i + len});
          }
        }
        i += len;
      }
      spans = apply_behavior(cover(p.text.size(), found), behavior_, false);
      return {};
    });
  }

 private:
  Pred pred_;
  Behavior behavior_;
  bool each_char_;
};

template <class Pred>
std::unique_ptr<PreTokenizer> char_split(Pred pred, Behavior behavior, bool each_char) {
  return std::make_unique<CharSplit<Pred>>(pred, behavior, each_char);
}

constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Maps every byte to GPT-2's printable characters, after an optional space prefix and regex split.
class ByteLevel : public PreTokenizer {
 public:
  ByteLevel(bool add_prefix_space, std::unique_ptr<Regex> regex)
      : add_prefix_space_(add_prefix_space), regex_(std::move(regex)) {}
  Status pre_tokenize(std::vector<Piece>& pieces) const override {
    if (add_prefix_space_) {
      for (auto& p : pieces) {
        if (p.added_id < 0 && !p.text.empty() && p.text[0] != ' ') p.text.insert(0, 1, ' ');
      }
    }
    if (regex_) {
      MLXS_RETURN_IF_ERROR(
          split_pieces(pieces, [&](const Piece& p, std::vector<Span>& spans) -> Status {
            std::vector<Span> found;
            MLXS_RETURN_IF_ERROR(regex_->find_all(p.text, [&](size_t s, size_t e) {
              found.push_back({s, e});
            }));
            spans = apply_behavior(cover(p.text.size(), found), Behavior::kIsolated, false);
            return {};
          }));
    }
    for (auto& p : pieces) {
      if (p.added_id >= 0) continue;
      std::string mapped;
      mapped.reserve(p.text.size() * 2);
      for (char c : p.text) mapped += byte_to_char(static_cast<uint8_t>(c));
      p.text = std::move(mapped);
    }
    return {};
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;
};

enum class PrependScheme { kAlways, kFirst, kNever };

// Replaces spaces by the replacement character, prepends one per the scheme, and splits before
// every replacement character (MergedWithNext) when `split`.
class Metaspace : public PreTokenizer {
 public:
  Metaspace(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}
  Status pre_tokenize(std::vector<Piece>& pieces) const override {
    for (auto& p : pieces) {
      if (p.added_id >= 0) continue;
      std::string out;
      for (char c : p.text) {
        if (c == ' ') {
          out += replacement_;
        } else {
          out += c;
        }
      }
      bool starts = out.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts && (scheme_ == PrependScheme::kAlways ||
                      (scheme_ == PrependScheme::kFirst && p.at_origin))) {
        out.insert(0, replacement_);
      }
      p.text = std::move(out);
    }
    if (!split_) return {};
    return split_pieces(pieces, [&](const Piece& p, std::vector<Span>& spans) -> Status {
      std::vector<Span> found;
      for (size_t pos = 0; (pos = p.text.find(replacement_, pos)) != std::string::npos;
           pos += replacement_.size()) {
        found.push_back({pos, pos + replacement_.size()});
      }
      spans = apply_behavior(cover(p.text.size(), found), Behavior::kMergedWithNext, false);
      return {};
    });
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts)
      : parts_(std::move(parts)) {}
  Status pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& p : parts_) MLXS_RETURN_IF_ERROR(p->pre_tokenize(pieces));
    return {};
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

Result<PrependScheme> parse_prepend_scheme(const json& j, const std::string& where) {
  PrependScheme scheme = PrependScheme::kAlways;
  if (j.contains("prepend_scheme") && j["prepend_scheme"].is_string()) {
    std::string s = j["prepend_scheme"];
    if (s == "always") {
      scheme = PrependScheme::kAlways;
    } else if (s == "first") {
      scheme = PrependScheme::kFirst;
    } else if (s == "never") {
      scheme = PrependScheme::kNever;
    } else {
      return error(ErrorCode::kTokenizerError, where + ": unknown prepend_scheme '" + s + "'");
    }
  }
  // The legacy field: add_prefix_space false means "never" (HF rejects a contradicting scheme).
  if (j.contains("add_prefix_space") && j["add_prefix_space"].is_boolean() &&
      !j["add_prefix_space"].get<bool>()) {
    scheme = PrependScheme::kNever;
  }
  return scheme;
}

Result<std::unique_ptr<PreTokenizer>> make_metaspace(const json& j) {
  std::string replacement = j.value("replacement", std::string("\xE2\x96\x81"));
  MLXS_ASSIGN_OR_RETURN(auto scheme, parse_prepend_scheme(j, "pre_tokenizer Metaspace"));
  return std::unique_ptr<PreTokenizer>(new Metaspace(replacement, scheme, j.value("split", true)));
}

}  // namespace

Result<std::unique_ptr<PreTokenizer>> make_pre_tokenizer(const json& j) {
  if (j.is_null()) return std::unique_ptr<PreTokenizer>();
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    return error(ErrorCode::kTokenizerError,
                 "pre_tokenizer must be an object with a type, got " + j.dump().substr(0, 200));
  }
  std::string type = j["type"];
  if (type == "Split") {
    MLXS_ASSIGN_OR_RETURN(auto pattern,
                          Pattern::from_json(j.value("pattern", json()), "pre_tokenizer Split"));
    MLXS_ASSIGN_OR_RETURN(auto behavior,
                          parse_behavior(j.value("behavior", json()), "pre_tokenizer Split"));
    return std::unique_ptr<PreTokenizer>(
        new Split(std::move(pattern), behavior, j.value("invert", false)));
  }
  if (type == "ByteLevel") {
    std::unique_ptr<Regex> regex;
    if (j.value("use_regex", true)) {
      MLXS_ASSIGN_OR_RETURN(regex, Regex::compile(kGpt2Pattern));
    }
    return std::unique_ptr<PreTokenizer>(
        new ByteLevel(j.value("add_prefix_space", true), std::move(regex)));
  }
  if (type == "Metaspace") return make_metaspace(j);
  if (type == "Digits") {
    bool individual = j.value("individual_digits", false);
    return char_split([](uint32_t cp) { return is_numeric(cp); },
                      individual ? Behavior::kIsolated : Behavior::kContiguous, individual);
  }
  if (type == "WhitespaceSplit") {
    return char_split([](uint32_t cp) { return is_whitespace(cp); }, Behavior::kRemoved, false);
  }
  if (type == "Punctuation") {
    MLXS_ASSIGN_OR_RETURN(auto behavior, parse_behavior(j.value("behavior", json("Isolated")),
                                                        "pre_tokenizer Punctuation"));
    return char_split([](uint32_t cp) { return is_punctuation(cp); }, behavior, true);
  }
  if (type == "Whitespace") {
    json pattern = {{"Regex", R"(\w+|[^\w\s]+)"}};
    MLXS_ASSIGN_OR_RETURN(auto p, Pattern::from_json(pattern, "pre_tokenizer Whitespace"));
    return std::unique_ptr<PreTokenizer>(new Split(std::move(p), Behavior::kRemoved, true));
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (const auto& sub : j.value("pretokenizers", json::array())) {
      MLXS_ASSIGN_OR_RETURN(auto part, make_pre_tokenizer(sub));
      if (part) parts.push_back(std::move(part));
    }
    return std::unique_ptr<PreTokenizer>(new SequencePreTokenizer(std::move(parts)));
  }
  return error(ErrorCode::kTokenizerError,
               "pre_tokenizer type '" + type + "' is not supported by this tokenizer");
}

}  // namespace mlxs::tok
