#include "tokenizer/added_vocab.h"

#include <algorithm>

#include "tokenizer/unicode.h"

namespace mlxs::tok {

void TokenMatcher::add(std::string_view pattern, int32_t value) {
  if (pattern.empty()) return;
  int32_t node = 0;
  for (char ch : pattern) {
    auto byte = static_cast<uint8_t>(ch);
    auto& children = nodes_[node].children;
    auto it = std::lower_bound(children.begin(), children.end(), std::make_pair(byte, int32_t{-1}));
    if (it != children.end() && it->first == byte) {
      node = it->second;
    } else {
      auto child = static_cast<int32_t>(nodes_.size());
      children.insert(it, {byte, child});
      nodes_.push_back(Node{});
      node = child;
    }
  }
  if (nodes_[node].value < 0) nodes_[node].value = value;  // the first of duplicates wins
  first_[static_cast<uint8_t>(pattern[0])] = true;
}

int32_t TokenMatcher::longest_at(std::string_view text, size_t pos, size_t* end) const {
  int32_t node = 0, found = -1;
  for (size_t i = pos; i < text.size(); ++i) {
    auto byte = static_cast<uint8_t>(text[i]);
    const auto& children = nodes_[node].children;
    auto it = std::lower_bound(children.begin(), children.end(), std::make_pair(byte, int32_t{-1}));
    if (it == children.end() || it->first != byte) break;
    node = it->second;
    if (nodes_[node].value >= 0) {
      found = nodes_[node].value;
      *end = i + 1;
    }
  }
  return found;
}

AddedVocab::AddedVocab(std::vector<AddedToken> tokens,
                       const std::vector<std::string>& normalized_contents)
    : tokens_(std::move(tokens)) {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    if (tokens_[i].normalized) {
      normalized_matcher_.add(normalized_contents[i], static_cast<int32_t>(i));
    } else {
      raw_matcher_.add(tokens_[i].content, static_cast<int32_t>(i));
    }
  }
}

void AddedVocab::split(std::vector<Piece>& pieces, bool normalized) const {
  const TokenMatcher& matcher = normalized ? normalized_matcher_ : raw_matcher_;
  if (matcher.empty()) return;
  std::vector<Piece> out;
  out.reserve(pieces.size());
  for (auto& piece : pieces) {
    if (piece.added_id >= 0) {
      out.push_back(std::move(piece));
    } else {
      split_one(piece, matcher, out);
    }
  }
  pieces = std::move(out);
}

namespace {

// The code point that ends at byte `end` (exclusive) of valid UTF-8 `s`.
uint32_t char_before(std::string_view s, size_t end) {
  size_t k = end - 1;
  while (k > 0 && (static_cast<uint8_t>(s[k]) & 0xC0) == 0x80) --k;
  int len;
  return decode_utf8(s, k, &len);
}

// Start of the run of whitespace that ends at `end`.
size_t space_run_start(std::string_view s, size_t end) {
  while (end > 0) {
    size_t k = end - 1;
    while (k > 0 && (static_cast<uint8_t>(s[k]) & 0xC0) == 0x80) --k;
    int len;
    if (!is_whitespace(decode_utf8(s, k, &len))) break;
    end = k;
  }
  return end;
}

// End of the run of whitespace that starts at `start`.
size_t space_run_end(std::string_view s, size_t start) {
  while (start < s.size()) {
    int len;
    if (!is_whitespace(decode_utf8(s, start, &len))) break;
    start += len;
  }
  return start;
}

}  // namespace

// HF AddedVocabulary::find_matches + split_with_indices for one piece.
void AddedVocab::split_one(Piece& piece, const TokenMatcher& matcher,
                           std::vector<Piece>& out) const {
  std::string_view s = piece.text;
  size_t start_offset = 0;
  auto emit = [&](size_t b, size_t e, int32_t id) {
    if (e <= b) return;
    out.push_back({std::string(s.substr(b, e - b)), id, piece.at_origin && b == 0});
  };
  size_t first_out = out.size();
  for (size_t pos = 0; pos < s.size();) {
    size_t end = 0;
    int32_t index =
        matcher.may_start(static_cast<uint8_t>(s[pos])) ? matcher.longest_at(s, pos, &end) : -1;
    if (index < 0) {
      ++pos;
      continue;
    }
    const AddedToken& token = tokens_[index];
    size_t start = pos, stop = end;
    pos = end;
    if (token.single_word) {
      int len;
      bool start_space = start == 0 || !is_word_char(char_before(s, start));
      bool stop_space = stop == s.size() || !is_word_char(decode_utf8(s, stop, &len));
      if (!start_space || !stop_space) continue;
    }
    if (token.lstrip) start = std::max(space_run_start(s, start), start_offset);
    if (token.rstrip) stop = space_run_end(s, stop);
    if (start_offset < start) emit(start_offset, start, -1);
    emit(start, stop, token.id);
    start_offset = stop;
  }
  if (out.size() == first_out) {  // no match: keep the piece as it is
    out.push_back(std::move(piece));
    return;
  }
  if (start_offset < s.size()) emit(start_offset, s.size(), -1);
}

}  // namespace mlxs::tok
