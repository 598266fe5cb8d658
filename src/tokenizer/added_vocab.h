// Added tokens of tokenizer.json ("added_tokens"): they are cut out of the text before the model
// runs, with Hugging Face's rules: leftmost-longest match, `single_word`, `lstrip`, `rstrip`;
// tokens with `normalized: false` are matched on the raw text, the others on the normalized text.
// Immutable after construction; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/pre_tokenizer.h"

namespace mlxs::tok {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
};

// A set of literal strings matched leftmost-longest (a byte trie; first-byte filter for speed).
class TokenMatcher {
 public:
  void add(std::string_view pattern, int32_t value);
  bool empty() const { return nodes_.size() <= 1; }
  // Longest pattern starting at text[pos]: sets *end and returns its value, or -1.
  int32_t longest_at(std::string_view text, size_t pos, size_t* end) const;
  bool may_start(uint8_t byte) const { return first_[byte]; }

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;  // sorted by byte
    int32_t value = -1;
  };
  std::vector<Node> nodes_{Node{}};
  bool first_[256] = {};
};

class AddedVocab {
 public:
  // `tokens` with their final ids; `normalized_contents[i]` is tokens[i].content after the
  // tokenizer's normalizer (used when tokens[i].normalized).
  AddedVocab(std::vector<AddedToken> tokens, const std::vector<std::string>& normalized_contents);

  // Cuts the matches of the raw (normalized == false) or of the normalized tokens out of every
  // unresolved piece; matched pieces get their added_id.
  void split(std::vector<Piece>& pieces, bool normalized) const;

  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  void split_one(Piece& piece, const TokenMatcher& matcher, std::vector<Piece>& out) const;

  std::vector<AddedToken> tokens_;
  TokenMatcher raw_matcher_;  // values index tokens_
  TokenMatcher normalized_matcher_;
};

}  // namespace mlxs::tok
