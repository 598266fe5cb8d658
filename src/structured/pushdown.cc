#include "structured/pushdown.h"

#include <algorithm>

namespace mlxs::structured {

namespace {

constexpr uint64_t kEmpty = ~uint64_t{0};
// The memo of step() is dropped when it grows past this (its sets stay valid).
constexpr size_t kMaxTransitions = size_t{1} << 22;
constexpr uint8_t kAlive = 1, kCanEnd = 2, kNeedsContext = 4;
// Sets with a dense row of transitions (1 KiB each, so at most 4 MiB per matcher).
constexpr size_t kMaxDenseSets = 4096;
// walk_trie tries survives_plain() on subtrees of at least this many nodes.
constexpr uint32_t kMinPlainSubtree = 4;
// survives_plain()'s memo is dropped when it grows past this (a few MB at most per matcher).
constexpr size_t kMaxPlainMemo = size_t{1} << 16;

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

int32_t IdMap::find(uint64_t key) const {
  if (keys_.empty()) return -1;
  size_t mask = keys_.size() - 1;
  for (size_t i = hash_of(key) & mask;; i = (i + 1) & mask) {
    if (keys_[i] == key) return values_[i];
    if (keys_[i] == kEmpty) return -1;
  }
}

void IdMap::insert(uint64_t key, int32_t value) {
  if ((size_ + 1) * 2 > keys_.size()) grow();
  size_t mask = keys_.size() - 1;
  size_t i = hash_of(key) & mask;
  while (keys_[i] != kEmpty && keys_[i] != key) i = (i + 1) & mask;
  if (keys_[i] == kEmpty) ++size_;
  keys_[i] = key;
  values_[i] = value;
}

void IdMap::clear() {
  keys_.clear();
  values_.clear();
  size_ = 0;
}

void IdMap::grow() {
  std::vector<uint64_t> old_keys = std::move(keys_);
  std::vector<int32_t> old_values = std::move(values_);
  size_t capacity = std::max<size_t>(64, old_keys.size() * 2);
  keys_.assign(capacity, kEmpty);
  values_.assign(capacity, 0);
  size_ = 0;
  for (size_t i = 0; i < old_keys.size(); ++i) {
    if (old_keys[i] != kEmpty) insert(old_keys[i], old_values[i]);
  }
}

int32_t StackArena::intern(int32_t pos, int32_t parent) {
  uint64_t key = key_of(pos, parent);
  int32_t id = index_.find(key);
  if (id >= 0) return id;
  id = static_cast<int32_t>(nodes_.size());
  nodes_.push_back({pos, parent});
  index_.insert(key, id);
  return id;
}

int32_t Pushdown::intern_set(StackSet s) {
  std::sort(s.stacks.begin(), s.stacks.end());
  std::string key(reinterpret_cast<const char*>(s.stacks.data()), s.stacks.size() * 4);
  key += static_cast<char>(s.can_end | (s.needs_context << 1));
  auto [it, inserted] = set_index_.emplace(std::move(key), static_cast<int32_t>(sets_.size()));
  if (inserted) {
    set_flags_.push_back(static_cast<uint8_t>((s.alive() ? kAlive : 0) | (s.can_end ? kCanEnd : 0) |
                                              (s.needs_context ? kNeedsContext : 0)));
    sets_.push_back(std::move(s));
  }
  return it->second;
}

int32_t Pushdown::step(int32_t set, uint8_t b) {
  size_t slot = static_cast<size_t>(set) * 256 + b;
  bool dense = static_cast<size_t>(set) < kMaxDenseSets;
  uint64_t key = (static_cast<uint64_t>(set) << 8) | b;
  if (dense) {
    if (slot < dense_.size() && dense_[slot] >= 0) return dense_[slot];
    if (slot >= dense_.size()) dense_.resize((static_cast<size_t>(set) + 1) * 256, -1);
  } else {
    int32_t next = transitions_.find(key);
    if (next >= 0) return next;
    if (transitions_.size() > kMaxTransitions) transitions_.clear();
  }
  StackSet out;
  advance(sets_[set], b, out);
  int32_t next = intern_set(std::move(out));
  if (dense) {
    dense_[slot] = next;
  } else {
    transitions_.insert(key, next);
  }
  return next;
}

bool Pushdown::survives_plain(int32_t set, int height) {
  if (height <= 0) return true;
  uint64_t key = (static_cast<uint64_t>(set) << 8) | static_cast<uint64_t>(height);
  int32_t known = plain_memo_.find(key);
  if (known >= 0) return known == 1;
  bool ok = true;
  int32_t last = -1;  // most plain bytes lead to one set: check it once
  for (int b = 0x20; b <= 0x7E && ok; ++b) {
    if (!is_plain_byte(static_cast<uint8_t>(b))) continue;
    int32_t n = next(set, static_cast<uint8_t>(b));
    if (n == last) continue;
    ok = (set_flags_[n] & (kAlive | kNeedsContext)) == kAlive && survives_plain(n, height - 1);
    last = n;
  }
  if (plain_memo_.size() > kMaxPlainMemo) plain_memo_.clear();
  plain_memo_.insert(key, ok ? 1 : 0);
  return ok;
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
    int32_t e = grammar_->element(p);
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
      int32_t ret = grammar_->element(p + 1) == Grammar::kEnd ? par : arena_.intern(p + 1, par);
      const auto& alts = grammar_->alternatives(Grammar::rule_of(e));
      for (auto it = alts.rbegin(); it != alts.rend(); ++it) work_.emplace_back(*it, ret);
    }
  }
}

void Pushdown::start(StackSet& out) {
  out.clear();
  if (++stamp_ == 0) stamp_ = 1, visited_stamp_.assign(visited_stamp_.size(), 0);
  for (int32_t alt : grammar_->alternatives(grammar_->root())) expand(alt, kBottom, out);
}

void Pushdown::advance(const StackSet& in, uint8_t b, StackSet& out) {
  out.clear();
  if (++stamp_ == 0) stamp_ = 1, visited_stamp_.assign(visited_stamp_.size(), 0);
  for (int32_t id : in.stacks) {
    StackNode n = arena_.node(id);
    if (grammar_->byte_set(grammar_->element(n.pos)).has(b)) expand(n.pos + 1, n.parent, out);
  }
}

bool Pushdown::accepts(const StackSet& in, std::string_view bytes) {
  if (bytes.empty()) return true;
  int32_t id = intern_set(in);
  for (size_t i = 0; i < bytes.size(); ++i) {
    id = step(id, static_cast<uint8_t>(bytes[i]));
    if (!sets_[id].alive()) return i + 1 == bytes.size() && sets_[id].can_end;
  }
  return true;
}

int32_t Pushdown::truncate(int32_t top, int depth, int max_token_bytes,
                           std::vector<int32_t>& positions, bool* cut) {
  positions.clear();
  int32_t id = top;
  while (id >= 0 && static_cast<int>(positions.size()) < depth) {
    positions.push_back(grammar_->mask_position(arena_.node(id).pos, max_token_bytes));
    id = arena_.node(id).parent;
  }
  *cut = id >= 0;
  int32_t parent = *cut ? kUnknown : kBottom;
  for (auto it = positions.rbegin(); it != positions.rend(); ++it) {
    parent = arena_.intern(*it, parent);
  }
  return parent;
}

void Pushdown::walk_trie(const TokenTrie& trie, const StackSet& state, uint32_t begin, uint32_t end,
                         std::span<uint32_t> words, std::vector<uint32_t>* context_nodes) {
  if (begin >= end) return;
  size_t base = trie.depth[begin] - 1;
  if (levels_.size() <= base + 1) levels_.resize(base + 16);
  if (uncertain_at_.size() < levels_.size()) uncertain_at_.resize(levels_.size(), 0);
  levels_[base] = intern_set(state);
  uncertain_at_[base] = 0;
  // The trie's arrays and the memo's dense rows read directly: this loop visits most of the
  // trie's nodes on a cold mask.
  const uint8_t* bytes = trie.byte.data();
  const uint16_t* depths = trie.depth.data();
  const uint32_t* subtree_end = trie.subtree_end.data();
  const uint32_t* first_token = trie.first_token.data();
  const int32_t* token_ids = trie.token_ids.data();
  const uint8_t* plain_height = trie.plain_height.data();
  int32_t* levels = levels_.data();
  char* uncertain_at = uncertain_at_.data();
  for (uint32_t i = begin; i < end;) {
    size_t d = depths[i];
    if (d >= levels_.size()) {
      levels_.resize(d * 2);
      uncertain_at_.resize(d * 2, 0);
      levels = levels_.data();
      uncertain_at = uncertain_at_.data();
    }
    int32_t id = next(levels[d - 1], bytes[i]);
    levels[d] = id;
    uint8_t flags = set_flags_[id];
    if (flags & kNeedsContext) {
      if (!uncertain_at[d - 1] && context_nodes != nullptr) context_nodes->push_back(i);
      uncertain_at[d] = 1;
    } else {
      uncertain_at[d] = uncertain_at[d - 1];
    }
    // A plain subtree (most of a vocabulary's ASCII words) that the set survives whole: its
    // tokens at once, without a step per node.
    uint32_t last = i + 1;
    if ((flags & (kAlive | kNeedsContext)) == kAlive && subtree_end[i] - i >= kMinPlainSubtree &&
        plain_height[i] > 0 && survives_plain(id, plain_height[i])) {
      last = subtree_end[i];
    }
    if (flags != 0) {  // alive, or the token may end here
      for (uint32_t t = first_token[i]; t < first_token[last]; ++t) {
        int32_t token = token_ids[t];
        words[token / 32] |= 1u << (token % 32);
      }
    }
    if (last != i + 1) {
      i = last;
    } else {
      i = (flags & kAlive) ? i + 1 : subtree_end[i];
    }
  }
}

}  // namespace mlxs::structured
