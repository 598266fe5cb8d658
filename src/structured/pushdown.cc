#include "structured/pushdown.h"

namespace mlxs::structured {

namespace {

constexpr uint64_t kEmpty = ~uint64_t{0};

uint64_t key_of(int32_t pos, int32_t parent) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(pos)) << 32) | static_cast<uint32_t>(parent);
}

size_t hash_of(uint64_t key) {
  key ^= key >> 29;
  key *= 0xbf58476d1ce4e5b9ULL;
  key ^= key >> 32;
  return static_cast<size_t>(key);
}

}  // namespace

int32_t StackArena::intern(int32_t pos, int32_t parent) {
  if ((nodes_.size() + 1) * 2 > keys_.size()) grow();
  uint64_t key = key_of(pos, parent);
  size_t mask = keys_.size() - 1;
  for (size_t i = hash_of(key) & mask;; i = (i + 1) & mask) {
    if (keys_[i] == key) return values_[i];
    if (keys_[i] == kEmpty) {
      keys_[i] = key;
      values_[i] = static_cast<int32_t>(nodes_.size());
      nodes_.push_back({pos, parent});
      return values_[i];
    }
  }
}

void StackArena::grow() {
  size_t capacity = std::max<size_t>(64, keys_.size() * 2);
  keys_.assign(capacity, kEmpty);
  values_.assign(capacity, 0);
  size_t mask = capacity - 1;
  for (size_t id = 0; id < nodes_.size(); ++id) {
    uint64_t key = key_of(nodes_[id].pos, nodes_[id].parent);
    size_t i = hash_of(key) & mask;
    while (keys_[i] != kEmpty) i = (i + 1) & mask;
    keys_[i] = key;
    values_[i] = static_cast<int32_t>(id);
  }
}

bool Pushdown::visit(int32_t pos, int32_t parent) {
  if (visited_.empty()) {
    visited_.assign(256, 0);
    visited_stamp_.assign(256, 0);
  }
  uint64_t key = key_of(pos, parent);
  size_t mask = visited_.size() - 1;
  size_t used = 0;
  for (size_t i = hash_of(key) & mask;; i = (i + 1) & mask, ++used) {
    if (visited_stamp_[i] != stamp_) {
      if (used * 2 > visited_.size()) {  // long probe: grow, keeping this step's entries
        std::vector<uint64_t> keys;
        for (size_t j = 0; j < visited_.size(); ++j) {
          if (visited_stamp_[j] == stamp_) keys.push_back(visited_[j]);
        }
        visited_.assign(visited_.size() * 2, 0);
        visited_stamp_.assign(visited_.size(), 0);
        size_t m = visited_.size() - 1;
        for (uint64_t k : keys) {
          size_t j = hash_of(k) & m;
          while (visited_stamp_[j] == stamp_) j = (j + 1) & m;
          visited_[j] = k;
          visited_stamp_[j] = stamp_;
        }
        return visit(pos, parent);
      }
      visited_[i] = key;
      visited_stamp_[i] = stamp_;
      return true;
    }
    if (visited_[i] == key) return false;
  }
}

void Pushdown::expand(int32_t pos, int32_t parent, StackSet& out) {
  work_.emplace_back(pos, parent);
  while (!work_.empty()) {
    auto [p, par] = work_.back();
    work_.pop_back();
    if (!visit(p, par)) continue;
    int32_t e = grammar_.element(p);
    if (Grammar::is_bytes(e)) {
      out.stacks.push_back(arena_.intern(p, par));
    } else if (e == Grammar::kEnd) {
      if (par == kBottom) {
        out.can_end = true;
      } else if (par == kUnknown) {
        out.needs_context = true;
      } else {
        StackNode n = arena_.node(par);
        work_.emplace_back(n.pos, n.parent);
      }
    } else {
      int32_t ret = grammar_.element(p + 1) == Grammar::kEnd ? par : arena_.intern(p + 1, par);
      const auto& alts = grammar_.alternatives(Grammar::rule_of(e));
      for (auto it = alts.rbegin(); it != alts.rend(); ++it) work_.emplace_back(*it, ret);
    }
  }
}

void Pushdown::start(StackSet& out) {
  out.clear();
  if (++stamp_ == 0) stamp_ = 1, visited_stamp_.assign(visited_stamp_.size(), 0);
  for (int32_t alt : grammar_.alternatives(grammar_.root())) expand(alt, kBottom, out);
}

void Pushdown::advance(const StackSet& in, uint8_t b, StackSet& out) {
  out.clear();
  if (++stamp_ == 0) stamp_ = 1, visited_stamp_.assign(visited_stamp_.size(), 0);
  for (int32_t id : in.stacks) {
    StackNode n = arena_.node(id);
    if (grammar_.byte_set(grammar_.element(n.pos)).has(b)) expand(n.pos + 1, n.parent, out);
  }
}

bool Pushdown::accepts(const StackSet& in, std::string_view bytes) {
  if (bytes.empty()) return true;
  const StackSet* cur = &in;
  for (size_t i = 0; i < bytes.size(); ++i) {
    StackSet& next = scratch_[i & 1];
    advance(*cur, static_cast<uint8_t>(bytes[i]), next);
    if (!next.alive()) return i + 1 == bytes.size() && next.can_end;
    cur = &next;
  }
  return true;
}

int32_t Pushdown::truncate(int32_t top, int depth, std::vector<int32_t>& positions, bool* cut) {
  positions.clear();
  int32_t id = top;
  while (id >= 0 && static_cast<int>(positions.size()) < depth) {
    positions.push_back(arena_.node(id).pos);
    id = arena_.node(id).parent;
  }
  *cut = id >= 0;
  if (!*cut) return top;
  int32_t parent = kUnknown;
  for (auto it = positions.rbegin(); it != positions.rend(); ++it) {
    parent = arena_.intern(*it, parent);
  }
  return parent;
}

void Pushdown::walk_trie(const TokenTrie& trie, const StackSet& state,
                         std::vector<int32_t>& accepted, std::vector<int32_t>& uncertain) {
  if (levels_.empty()) levels_.resize(16);
  levels_[0] = state;
  uncertain_at_.assign(levels_.size(), 0);
  size_t n = trie.num_nodes();
  for (size_t i = 0; i < n;) {
    size_t d = trie.depth[i];
    if (d >= levels_.size()) {
      levels_.resize(d * 2);
      uncertain_at_.resize(d * 2, 0);
    }
    StackSet& cur = levels_[d];
    advance(levels_[d - 1], trie.byte[i], cur);
    bool uncertain_before = uncertain_at_[d - 1];
    uncertain_at_[d] = uncertain_before || cur.needs_context;
    bool ends_here = cur.alive() || cur.can_end || cur.needs_context;
    for (uint32_t t = trie.first_token[i]; t < trie.first_token[i + 1]; ++t) {
      if (ends_here) {
        accepted.push_back(trie.token_ids[t]);
      } else if (uncertain_before) {
        uncertain.push_back(trie.token_ids[t]);
      }
    }
    if (cur.alive()) {
      ++i;
      continue;
    }
    uint32_t end = trie.subtree_end[i];
    if (uncertain_at_[d]) {
      for (uint32_t t = trie.first_token[i + 1]; t < trie.first_token[end]; ++t) {
        uncertain.push_back(trie.token_ids[t]);
      }
    }
    i = end;
  }
}

}  // namespace mlxs::structured
