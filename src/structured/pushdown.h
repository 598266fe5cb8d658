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

// The nodes of one matcher; append-only, so ids in old states stay valid.
class StackArena {
 public:
  int32_t intern(int32_t pos, int32_t parent);
  const StackNode& node(int32_t id) const { return nodes_[id]; }
  size_t size() const { return nodes_.size(); }

 private:
  void grow();
  std::vector<StackNode> nodes_;
  std::vector<uint64_t> keys_;  // open addressing; kEmpty marks a free slot
  std::vector<int32_t> values_;
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

class Pushdown {
 public:
  Pushdown(const Grammar& grammar, StackArena& arena) : grammar_(grammar), arena_(arena) {}

  // The stacks at the start of `root`.
  void start(StackSet& out);
  // `out` = the stacks of `in` after byte `b` (out must not alias in).
  void advance(const StackSet& in, uint8_t b, StackSet& out);
  // Whether `bytes` can follow `in` (the whole of them; ending exactly at the end is fine).
  bool accepts(const StackSet& in, std::string_view bytes);
  // A stack holding the top `depth` nodes of `top`, cut (kUnknown below) when deeper; its
  // positions top first in `positions`.
  int32_t truncate(int32_t top, int depth, std::vector<int32_t>& positions, bool* cut);
  // The tokens of `trie` that can follow `state` (accepted) and those for which it depends on
  // the stack below a kUnknown cut (uncertain), each in trie order.
  void walk_trie(const TokenTrie& trie, const StackSet& state, std::vector<int32_t>& accepted,
                 std::vector<int32_t>& uncertain);

 private:
  // Adds the stacks reached from (pos, parent) without consuming a byte.
  void expand(int32_t pos, int32_t parent, StackSet& out);
  bool visit(int32_t pos, int32_t parent);

  const Grammar& grammar_;
  StackArena& arena_;
  std::vector<std::pair<int32_t, int32_t>> work_;
  std::vector<uint64_t> visited_;  // (pos, parent) seen in this step: a small hash set
  std::vector<uint32_t> visited_stamp_;
  uint32_t stamp_ = 0;
  StackSet scratch_[2];
  std::vector<StackSet> levels_;  // walk_trie: the stacks after each byte of the current path
  std::vector<char> uncertain_at_;
};

}  // namespace mlxs::structured
