// Masks that depend only on the tops of a state's stacks, computed once per grammar and
// vocabulary.
//
// For most tokens, whether a stack accepts them is decided by its top few nodes: the token
// either dies or is wholly consumed before the parse pops below them. So each stack of a state
// is cut to its top MaskCache::kDepth nodes (kUnknown below), and the cut stacks walk the whole
// token trie once. The result, keyed by the cut stacks' positions, is:
//   accepted       tokens accepted whatever lies below (a bitmask),
//   context nodes  the trie nodes where a path popped into a cut (e.g. `"` closing a string
//                  inside an object): at each step the real stacks are advanced over the node's
//                  bytes and walk the node's subtree (usually small, and quickly pruned).
// Stacks no deeper than kDepth are keyed whole and give no context nodes. This is XGrammar's
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
  std::vector<uint32_t> accepted;          // bit id % 32 of word id / 32
  std::vector<uint32_t> context_nodes;     // trie nodes
  std::vector<std::string> context_bytes;  // the bytes from the trie's root to each
  size_t bytes() const {
    size_t n = accepted.size() * 4 + context_nodes.size() * 36 + 64;
    for (const auto& b : context_bytes) n += b.size();
    return n;
  }
};

class MaskCache {
 public:
  static constexpr int kDepth = 5;
  static constexpr size_t kMaxBytes = size_t{256} << 20;

  // The key of one cut stack: its positions top first, and whether it was cut.
  static std::string key(const std::vector<int32_t>& positions, bool cut);
  // The entry of a state: the cut depth and the keys of its stacks, sorted.
  static std::string state_key(int cut_depth, const std::vector<const std::string*>& sorted_keys);
  std::shared_ptr<const MaskEntry> find(const std::string& key) const;
  void insert(const std::string& key, std::shared_ptr<const MaskEntry> entry);
  size_t num_entries() const;

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<const MaskEntry>> entries_;
  size_t bytes_ = 0;
};

}  // namespace mlxs::structured
