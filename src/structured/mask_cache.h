// Masks that depend only on the top of a stack, computed once per grammar and vocabulary.
//
// The mask of a matcher state is the union, over its stacks, of the tokens each stack accepts.
// For one stack, the answer for most tokens is decided by its top few nodes: a token either dies
// or is wholly consumed before the parse pops below them. So a stack is cut to its top
// MaskCache::kDepth nodes (kUnknown below) and the cut stack walks the whole token trie once;
// the result, keyed by the cut's positions, is:
//   accepted   tokens accepted whatever lies below (a bitmask),
//   uncertain  tokens that popped into the cut (e.g. `"}` closing a string and then an object):
//              checked against the real stack at each step, one by one.
// Stacks no deeper than kDepth are keyed whole and have no uncertain tokens. This is XGrammar's
// "context-independent tokens" idea applied to stack suffixes instead of rule positions.
//
// Entries are immutable once made and shared; the cache stops growing at kMaxBytes (later states
// are computed per call and not stored). Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace mlxs::structured {

struct MaskEntry {
  std::vector<uint32_t> accepted;  // bit id % 32 of word id / 32
  std::vector<int32_t> uncertain;
  size_t bytes() const { return accepted.size() * 4 + uncertain.size() * 4 + 64; }
};

class MaskCache {
 public:
  static constexpr int kDepth = 3;
  static constexpr size_t kMaxBytes = size_t{256} << 20;

  // The entry for a cut stack: its positions top first, and whether it was cut.
  static std::string key(const std::vector<int32_t>& positions, bool cut);
  std::shared_ptr<const MaskEntry> find(const std::string& key) const;
  void insert(const std::string& key, std::shared_ptr<const MaskEntry> entry);
  size_t num_entries() const;

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<const MaskEntry>> entries_;
  size_t bytes_ = 0;
};

}  // namespace mlxs::structured
