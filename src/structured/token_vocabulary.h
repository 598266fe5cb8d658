// The TokenVocabulary of grammar.h and its token trie. The trie holds every token that may be
// drawn under a grammar (special tokens and tokens of no bytes excluded), its nodes numbered in
// depth-first preorder over the tokens' bytes sorted: node i's subtree is the range
// [i, subtree_end[i]), so a walk skips a dead subtree in one step.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "structured/grammar.h"

namespace mlxs::structured {

constexpr bool is_plain_byte(uint8_t b) {
  return b >= 0x20 && b <= 0x7E && b != '"' && b != '\\';
}

struct TokenTrie {
  std::vector<uint8_t> byte;          // the byte that leads into node i
  std::vector<uint16_t> depth;        // bytes from the root to node i (1 for the root's children)
  std::vector<uint32_t> subtree_end;  // one past the last node under i
  std::vector<uint32_t> first_token;  // tokens of node i: token_ids[first_token[i] ..
  std::vector<int32_t> token_ids;     //   first_token[i + 1]), whose bytes end at node i
  // The height of i's subtree (the most bytes below i) when every byte below i is plain (ASCII
  // 0x20..0x7E but `"` and `\`: what a JSON string takes byte by byte), capped at 255; 0 when
  // some byte below i is not plain or nothing lies below. Pushdown::walk_trie takes such a
  // subtree whole when its set survives any plain bytes for that long.
  std::vector<uint8_t> plain_height;
  size_t num_nodes() const { return byte.size(); }
};

class VocabularyImpl : public TokenVocabulary {
 public:
  VocabularyImpl(std::vector<std::string> token_bytes, std::vector<bool> special,
                 std::vector<int32_t> eos_ids);

  size_t size() const override { return bytes_.size(); }
  const std::string& bytes_of(int32_t id) const override { return bytes_[id]; }
  std::span<const int32_t> eos_ids() const override { return eos_ids_; }

  // Special tokens other than EOS: never allowed, never accepted.
  bool is_special(int32_t id) const { return special_[id]; }
  const TokenTrie& trie() const { return trie_; }
  size_t num_words() const { return (bytes_.size() + 31) / 32; }
  int max_token_bytes() const { return max_token_bytes_; }  // over the tokens in the trie

 private:
  std::vector<std::string> bytes_;
  std::vector<bool> special_;
  std::vector<int32_t> eos_ids_;
  TokenTrie trie_;
  int max_token_bytes_ = 0;
};

}  // namespace mlxs::structured
