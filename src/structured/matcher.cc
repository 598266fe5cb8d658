// The Matcher of grammar.h: a Pushdown's set of stacks per accepted token (the last
// kMaxRollback + 1 kept for rollback), and masks from the grammar's MaskCache.
//
// Mask of a state (fill_next_token_bitmask):
//  1. the cached entry of the state (its stacks cut to their top cut_depth nodes; one
//     trie walk on a miss) copied into the mask, then the subtrees of the entry's context nodes
//     walked from the real stacks;
//  2. the EOS ids where the state can end; special tokens are never in the trie;
//  3. when nothing is allowed (a vocabulary without the bytes the grammar wants next, or after
//     the end), the EOS ids, so that a sequence stops instead of drawing from an empty mask.
#include "structured/matcher.h"

#include <algorithm>
#include <cstring>
#include <deque>

#include "structured/mask_cache.h"
#include "structured/pushdown.h"

namespace mlxs::structured {

namespace {

constexpr int kMaxRollback = 32;

class MatcherImpl : public Matcher {
 public:
  MatcherImpl(GrammarPtr grammar, std::shared_ptr<const TokenVocabulary> vocab, int cut_depth)
      : cut_depth_(cut_depth),
        grammar_(std::move(grammar)),
        vocab_(std::move(vocab)),
        impl_(static_cast<const VocabularyImpl&>(*vocab_)),
        cache_(grammar_->mask_cache(vocab_)),
        pushdown_(grammar_.get()) {}

  void start() {
    history_.emplace_back();
    pushdown_.start(history_.back().state);
  }

  void fill_next_token_bitmask(std::span<uint32_t> words) override {
    std::fill(words.begin(), words.end(), 0u);
    const Snapshot& now = history_.back();
    size_t num_words = std::min(words.size(), impl_.num_words());
    if (!now.terminated && now.state.alive()) add_state_mask(now.state, words.first(num_words));
    bool any = std::any_of(words.begin(), words.end(), [](uint32_t w) { return w != 0; });
    if (now.state.can_end || !any) {
      for (int32_t id : vocab_->eos_ids()) words[id / 32] |= 1u << (id % 32);
    }
  }

  bool accept_token(int32_t id) override {
    if (id < 0 || static_cast<size_t>(id) >= vocab_->size()) return false;
    const Snapshot& now = history_.back();
    if (now.terminated) return false;
    auto eos = vocab_->eos_ids();
    if (std::find(eos.begin(), eos.end(), id) != eos.end()) {
      if (!now.state.can_end) return false;
      Snapshot end{now.state, true};
      push(std::move(end));
      return true;
    }
    if (impl_.is_special(id)) return false;
    return advance(vocab_->bytes_of(id));
  }

  // Counts as one token for rollback (when `bytes` is not empty).
  bool accept_bytes(std::string_view bytes) override { return advance(bytes); }

  void rollback(int num_tokens) override {
    num_tokens = std::clamp(num_tokens, 0, static_cast<int>(history_.size()) - 1);
    history_.resize(history_.size() - num_tokens);
  }
  int max_rollback_tokens() const override { return kMaxRollback; }

  bool can_end() const override { return history_.back().state.can_end; }
  bool is_complete() const override {
    return history_.back().terminated ||
           (history_.back().state.can_end && !history_.back().state.alive());
  }
  bool is_terminated() const override { return history_.back().terminated; }

  std::unique_ptr<Matcher> clone() const override {
    auto m = std::make_unique<MatcherImpl>(grammar_, vocab_, cut_depth_);
    m->pushdown_ = pushdown_;
    m->history_ = history_;
    return m;
  }

 private:
  struct Snapshot {
    StackSet state;
    bool terminated = false;
  };

  void push(Snapshot s) {
    history_.push_back(std::move(s));
    if (history_.size() > kMaxRollback + 1) history_.pop_front();
  }

  bool advance(std::string_view bytes) {
    const Snapshot& now = history_.back();
    if (now.terminated || bytes.empty()) return bytes.empty() && !now.terminated;
    int32_t id = pushdown_.intern_set(now.state);
    for (char c : bytes) {
      id = pushdown_.step(id, static_cast<uint8_t>(c));
      if (!pushdown_.set(id).alive() && !pushdown_.set(id).can_end) return false;
    }
    push(Snapshot{pushdown_.set(id), false});
    return true;
  }

  void add_state_mask(const StackSet& state, std::span<uint32_t> words) {
    size_t n = state.stacks.size();
    keys_.resize(n);
    cut_.clear();
    for (size_t i = 0; i < n; ++i) {
      bool cut = false;
      cut_.stacks.push_back(pushdown_.truncate(state.stacks[i], cut_depth_, impl_.max_token_bytes(),
                                               positions_, &cut));
      keys_[i] = MaskCache::key(positions_, cut);
    }
    sorted_keys_.clear();
    for (const auto& k : keys_) sorted_keys_.push_back(&k);
    std::sort(sorted_keys_.begin(), sorted_keys_.end(),
              [](const std::string* a, const std::string* b) { return *a < *b; });
    std::string key = MaskCache::state_key(cut_depth_, sorted_keys_);
    std::shared_ptr<const MaskEntry> entry = cache_->find(key);
    if (entry == nullptr) {
      entry = compute_entry(cut_);
      cache_->insert(key, entry);
    }
    std::copy(entry->accepted.begin(), entry->accepted.begin() + words.size(), words.begin());
    const TokenTrie& trie = impl_.trie();
    for (size_t c = 0; c < entry->context_nodes.size(); ++c) {
      uint32_t node = entry->context_nodes[c];
      if (!advance_over(state, entry->context_bytes[c], context_state_)) continue;
      pushdown_.walk_trie(trie, context_state_, node + 1, trie.subtree_end[node], words, nullptr);
    }
  }

  // `out` = `from` after `bytes`; false when no stack survives.
  bool advance_over(const StackSet& from, std::string_view bytes, StackSet& out) {
    int32_t id = pushdown_.intern_set(from);
    for (char c : bytes) {
      id = pushdown_.step(id, static_cast<uint8_t>(c));
      if (!pushdown_.set(id).alive()) return false;
    }
    out = pushdown_.set(id);
    return true;
  }

  // The entry of the cut stacks `cut`: one walk of the whole trie.
  std::shared_ptr<const MaskEntry> compute_entry(const StackSet& cut) {
    const TokenTrie& trie = impl_.trie();
    auto entry = std::make_shared<MaskEntry>();
    entry->accepted.assign(impl_.num_words(), 0);
    pushdown_.walk_trie(trie, cut, 0, static_cast<uint32_t>(trie.num_nodes()), entry->accepted,
                        &entry->context_nodes);
    for (uint32_t node : entry->context_nodes) entry->context_bytes.push_back(path_to(node));
    return entry;
  }

  // The bytes from the trie's root to `node`: the last node above it at each depth.
  std::string path_to(uint32_t node) const {
    const TokenTrie& trie = impl_.trie();
    std::string path(trie.depth[node], '\0');
    size_t want = trie.depth[node];
    for (int64_t i = node; i >= 0 && want > 0; --i) {
      if (trie.depth[i] == want) path[--want] = static_cast<char>(trie.byte[i]);
    }
    return path;
  }

  int cut_depth_;
  GrammarPtr grammar_;
  std::shared_ptr<const TokenVocabulary> vocab_;
  const VocabularyImpl& impl_;
  std::shared_ptr<MaskCache> cache_;
  Pushdown pushdown_;
  std::deque<Snapshot> history_;  // back(): now
  // Scratch of add_state_mask: by stack of the state, its key; the cut stacks.
  std::vector<std::string> keys_;
  std::vector<const std::string*> sorted_keys_;
  StackSet cut_;
  std::vector<int32_t> positions_;
  StackSet context_state_;
};

}  // namespace

std::unique_ptr<Matcher> create_matcher(GrammarPtr grammar,
                                        std::shared_ptr<const TokenVocabulary> vocab,
                                        int cut_depth) {
  auto m =
      std::make_unique<MatcherImpl>(std::move(grammar), std::move(vocab), std::max(1, cut_depth));
  m->start();
  return m;
}

std::unique_ptr<Matcher> Matcher::create(GrammarPtr grammar,
                                         std::shared_ptr<const TokenVocabulary> vocab) {
  return create_matcher(std::move(grammar), std::move(vocab), MaskCache::kDepth);
}

}  // namespace mlxs::structured
