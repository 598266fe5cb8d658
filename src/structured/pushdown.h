// The matcher's runtime: a set of parse stacks over a compiled Grammar, advanced byte by byte.
//
// A stack is a chain of nodes (position, parent) interned in a StackArena, so equal stacks are
// one node id and a set of stacks is a small vector of ids. The top node's position is always a
// byte-set element; the nodes below hold return positions. A reference in the last place of an
// alternative pushes nothing (a tail call), so repetition (x* = s ::= x s | ε) runs in constant
// stack depth. Left recursion, which would grow a stack without consuming bytes, is refused at
// compile time; loops through nullable rules are cut by visiting each (position, parent) once
// per step.
//
// Below the bottom node lies either kBottom (the end of `root`: the text may end here) or
// kUnknown (a stack cut short to compute the context-independent part of a mask: popping into
// it means the answer depends on what was cut).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "structured/compiled_grammar.h"
#include "structured/token_vocabulary.h"

namespace mlxs::structured {

constexpr int32_t kBottom = -1;
constexpr int32_t kUnknown = -2;

struct StackNode {
  int32_t pos;
  int32_t parent;  // a node id, kBottom or kUnknown
};

// uint64 -> int32, open addressing (the hot lookups of the walk).
class IdMap {
 public:
  // The value of `key`, or -1.
  int32_t find(uint64_t key) const;
  void insert(uint64_t key, int32_t value);
  size_t size() const { return size_; }
  void clear();

 private:
  void grow();
  std::vector<uint64_t> keys_;  // kEmpty marks a free slot
  std::vector<int32_t> values_;
  size_t size_ = 0;
};

// The nodes of one matcher; append-only, so ids in old states stay valid.
class StackArena {
 public:
  int32_t intern(int32_t pos, int32_t parent);
  const StackNode& node(int32_t id) const { return nodes_[id]; }
  size_t size() const { return nodes_.size(); }

 private:
  std::vector<StackNode> nodes_;
  IdMap index_;
};

struct StackSet {
  std::vector<int32_t> stacks;  // node ids of the stack tops, each once
  bool can_end = false;         // a path popped past kBottom: the text may end here
  bool needs_context = false;   // a path popped into kUnknown
  bool alive() const { return !stacks.empty(); }
  void clear() {
    stacks.clear();
    can_end = needs_context = false;
  }
};

// Besides advancing sets of stacks, a Pushdown interns the sets it meets and memoizes
// step(set, byte) -> set: a DFA over stack sets, built lazily, so that the trie walks (which
// meet the same few sets at every node) cost one lookup per trie node. Copyable (clone()).
class Pushdown {
 public:
  explicit Pushdown(const Grammar* grammar) : grammar_(grammar) {}

  // The id of a set equal to `s` (its stacks sorted).
  int32_t intern_set(StackSet s);
  const StackSet& set(int32_t id) const { return sets_[id]; }
  // The set after byte `b`, memoized.
  int32_t step(int32_t set, uint8_t b);

  // The stacks at the start of `root`.
  void start(StackSet& out);
  // `out` = the stacks of `in` after byte `b` (out must not alias in).
  void advance(const StackSet& in, uint8_t b, StackSet& out);
  // Whether `bytes` can follow `in` (the whole of them; ending exactly at the end is fine).
  bool accepts(const StackSet& in, std::string_view bytes);
  // The top `depth` nodes of stack `top`, positions mapped by Grammar::mask_position, rebuilt
  // as a new stack: cut (kUnknown below) when `top` is deeper, else whole (kBottom below). Its
  // positions, top first, in `positions`.
  int32_t truncate(int32_t top, int depth, int max_token_bytes, std::vector<int32_t>& positions,
                   bool* cut);
  // Walks the trie nodes [begin, end), a whole subtree or the whole trie (0, num_nodes), from
  // `state`, the stacks after the bytes above `begin`: sets in `words` (bit id % 32 of word
  // id / 32) the tokens that can follow, and appends to `context_nodes` (when given) each node
  // where a path first popped into kUnknown (the tokens under it depend on the cut part; the
  // tokens at it are accepted).
  void walk_trie(const TokenTrie& trie, const StackSet& state, uint32_t begin, uint32_t end,
                 std::span<uint32_t> words, std::vector<uint32_t>* context_nodes);

 private:
  // The set after byte `b`: the dense row's entry when known, else step().
  int32_t next(int32_t set, uint8_t b) {
    size_t slot = static_cast<size_t>(set) * 256 + b;
    int32_t id = slot < dense_.size() ? dense_[slot] : -1;
    return id >= 0 ? id : step(set, b);
  }
  // Whether every string of 1 to `height` plain bytes (TokenTrie::plain_height) leads from
  // `set` to live sets that never popped into kUnknown: then every token of a plain subtree of
  // that height is accepted and has no context nodes. Memoized.
  bool survives_plain(int32_t set, int height);
  // Adds the stacks reached from (pos, parent) without consuming a byte.
  void expand(int32_t pos, int32_t parent, StackSet& out);
  bool visit(int32_t pos, int32_t parent);

  const Grammar* grammar_;
  StackArena arena_;
  std::vector<StackSet> sets_;
  std::vector<uint8_t> set_flags_;                      // by set: kAlive | kCanEnd | kNeedsContext
  std::unordered_map<std::string, int32_t> set_index_;  // by stacks and flags
  // step()'s memo: for each of the first kMaxDenseSets sets a row of 256 next sets (-1: not yet
  // known), rows end to end (set s at s * 256), grown as sets are met; a hash map for the rest.
  std::vector<int32_t> dense_;
  IdMap transitions_;  // (set << 8 | byte) -> set
  IdMap plain_memo_;   // survives_plain(): (set << 8 | height) -> 0 or 1
  std::vector<std::pair<int32_t, int32_t>> work_;
  std::vector<uint64_t> visited_;  // (pos, parent) seen in this step: a small hash set
  std::vector<uint32_t> visited_stamp_;
  uint32_t stamp_ = 0;
  std::vector<int32_t> levels_;     // walk_trie: the set after each byte of the current path
  std::vector<char> uncertain_at_;  // a path popped into kUnknown at or above this depth
};

}  // namespace mlxs::structured
