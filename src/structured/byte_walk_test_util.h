// Test helpers for the translators' behavioural tests: a vocabulary of the 256 single bytes plus
// EOS, whole-text matching, and random generation by walking a Matcher's mask.
#pragma once

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "structured/grammar.h"

namespace mlxs::structured::testing {

// Ids 0..255 are the bytes, 256 is EOS.
inline constexpr int32_t kByteEos = 256;

inline std::shared_ptr<const TokenVocabulary> byte_vocab() {
  static const std::shared_ptr<const TokenVocabulary> vocab = [] {
    std::vector<std::string> bytes;
    for (int b = 0; b < 256; ++b) bytes.push_back(std::string(1, static_cast<char>(b)));
    bytes.push_back("</s>");
    std::vector<bool> special(bytes.size(), false);
    special[kByteEos] = true;
    return TokenVocabulary::create(bytes, special, {kByteEos});
  }();
  return vocab;
}

// The whole text is in the grammar's language.
inline bool matches(const GrammarPtr& g, std::string_view text) {
  auto m = Matcher::create(g, byte_vocab());
  return m->accept_bytes(text) && m->can_end();
}

// The text is a prefix of some text of the language.
inline bool is_prefix(const GrammarPtr& g, std::string_view text) {
  return Matcher::create(g, byte_vocab())->accept_bytes(text);
}

struct Walk {
  std::string text;
  bool finished = false;  // ended by EOS (else it hit max_bytes)
};

// Draws allowed bytes at random until EOS. Past `soft_bytes` it mostly prefers what closes
// things (EOS, brackets, quotes, digits, literals) so that recursive grammars end; the mask must
// never be empty and every drawn byte must be accepted.
inline Walk random_walk(const GrammarPtr& g, uint32_t seed, size_t soft_bytes = 48,
                        size_t max_bytes = 20000) {
  std::mt19937 rng(seed);
  auto m = Matcher::create(g, byte_vocab());
  std::vector<uint32_t> words((257 + 31) / 32);
  Walk w;
  auto rank = [](int32_t id) {
    if (id == kByteEos) return 0;
    if (id == '}' || id == ']') return 1;
    if (id == '"') return 2;
    if (id >= '0' && id <= '9') return 3;
    if (id >= 'a' && id <= 'z') return 4;
    if (id == '{' || id == '[' || id == ',' || id == '\\') return 9;
    return 5;
  };
  while (w.text.size() < max_bytes) {
    m->fill_next_token_bitmask(words);
    std::vector<int32_t> allowed;
    for (int32_t id = 0; id <= kByteEos; ++id) {
      if ((words[id / 32] >> (id % 32)) & 1) allowed.push_back(id);
    }
    EXPECT_FALSE(allowed.empty()) << "empty mask after " << w.text;
    if (allowed.empty()) return w;
    bool eos_allowed = allowed.back() == kByteEos;
    EXPECT_EQ(eos_allowed, m->can_end()) << w.text;
    int32_t pick;
    if (eos_allowed && (w.text.size() > soft_bytes || rng() % 4 == 0)) {
      pick = kByteEos;
    } else if (w.text.size() > soft_bytes && rng() % 4 != 0) {
      int best = 100;
      std::vector<int32_t> candidates;
      for (int32_t id : allowed) {
        int r = rank(id);
        if (r < best) candidates.clear(), best = r;
        if (r == best) candidates.push_back(id);
      }
      pick = candidates[rng() % candidates.size()];
    } else {
      pick = allowed[rng() % allowed.size()];
      if (pick == kByteEos && allowed.size() > 1) pick = allowed[rng() % (allowed.size() - 1)];
    }
    EXPECT_TRUE(m->accept_token(pick)) << "a masked-in token was refused after " << w.text;
    if (pick == kByteEos) {
      w.finished = true;
      return w;
    }
    w.text += static_cast<char>(pick);
  }
  return w;
}

}  // namespace mlxs::structured::testing
