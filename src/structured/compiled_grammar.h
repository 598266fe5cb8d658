// The compiled, byte-level form of a grammar (the Grammar of grammar.h): every rule is a list of
// alternatives, every alternative a sequence of elements, every element either a set of bytes
// (one byte of the output) or a reference to a rule. Code points and classes of code points are
// lowered to their UTF-8 byte sequences, repetitions to helper rules (x* -> r ::= x r | ε, which
// the matcher runs as a loop: a reference in tail position pushes nothing).
//
// Layout: one flat array `elements`; a position is an index into it. Each alternative is a run of
// elements closed by kEnd. Immutable after compile; shared between threads.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "structured/gbnf_parser.h"
#include "structured/grammar.h"

namespace mlxs::structured {

class MaskCache;

// 256 bits: byte b is in the set when bit b is 1.
struct ByteSet {
  std::array<uint64_t, 4> bits{};
  bool has(uint8_t b) const { return (bits[b >> 6] >> (b & 63)) & 1; }
  void add(uint8_t b) { bits[b >> 6] |= uint64_t{1} << (b & 63); }
  void add_range(uint8_t lo, uint8_t hi) {
    for (int b = lo; b <= hi; ++b) add(static_cast<uint8_t>(b));
  }
  bool operator<(const ByteSet& o) const { return bits < o.bits; }
  bool operator==(const ByteSet& o) const { return bits == o.bits; }
};

struct GrammarLimits {
  GbnfLimits gbnf;
  size_t max_elements = 1 << 20;  // the lowered size (repetitions expanded)
};

class Grammar {
 public:
  static constexpr int32_t kEnd = -1;  // closes an alternative
  // An element e >= 0 is the byte set byte_sets[e]; e <= -2 refers to rule -(e + 2).
  static bool is_bytes(int32_t e) { return e >= 0; }
  static bool is_rule(int32_t e) { return e <= -2; }
  static int32_t rule_of(int32_t e) { return -(e + 2); }
  static int32_t rule_element(int32_t rule) { return -(rule + 2); }

  // Lowers a parsed grammar; kInvalidParams for left recursion (named) or a grammar too large.
  static Result<GrammarPtr> compile(const GbnfGrammar& parsed, const GrammarLimits& limits = {});

  const std::vector<int32_t>& elements() const { return elements_; }
  int32_t element(int32_t pos) const { return elements_[pos]; }
  const ByteSet& byte_set(int32_t e) const { return byte_sets_[e]; }
  // Start positions of the alternatives of `rule`.
  const std::vector<int32_t>& alternatives(int32_t rule) const { return alternatives_[rule]; }
  int32_t root() const { return root_; }
  size_t num_rules() const { return alternatives_.size(); }
  const std::string& rule_name(int32_t rule) const { return rule_names_[rule]; }

  // A position with the same mask as `pos` for every token of at most `max_token_bytes` bytes:
  // inside the helper chain of a bounded repetition x{m,n} ("up to k more x"), the k-th link
  // and the (max_token_bytes + 1)-th accept the same tokens when k is larger (x consumes at
  // least a byte per copy, or nothing at all), so long bounds ([^"]{0,2000}) share cache entries.
  int32_t mask_position(int32_t pos, int max_token_bytes) const;

  // The cache of masks for this grammar over `vocab`, shared by every matcher of the pair and
  // filled as they go (mask_cache.h); created on first use. Thread-safe.
  std::shared_ptr<MaskCache> mask_cache(const std::shared_ptr<const TokenVocabulary>& vocab) const;

 private:
  friend class GrammarBuilder;
  mutable std::mutex caches_mutex_;
  mutable std::vector<std::pair<std::weak_ptr<const TokenVocabulary>, std::shared_ptr<MaskCache>>>
      caches_;
  std::vector<int32_t> elements_;
  std::vector<ByteSet> byte_sets_;
  std::vector<std::vector<int32_t>> alternatives_;
  std::vector<std::string> rule_names_;  // helper rules: "name/2" after the rule they come from
  std::vector<int32_t> position_rule_;   // by position: its rule
  // By rule: k for the k-th link of a repetition chain (0 otherwise), and the chain's first link
  // (links are consecutive rules: link k is chain_first_ + k - 1).
  std::vector<int32_t> chain_index_, chain_first_;
  int32_t root_ = 0;
};

}  // namespace mlxs::structured
