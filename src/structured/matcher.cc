// The Matcher of grammar.h: a Pushdown's set of stacks per accepted token (the last
// kMaxRollback + 1 kept for rollback), and masks from the grammar's MaskCache.
//
// Mask of a state (fill_next_token_bitmask):
//  1. for each stack: the cached entry of its top MaskCache::kDepth nodes (a trie walk on a miss),
//     OR-ed into the mask, then each of the entry's uncertain tokens checked on the real stack;
//  2. the EOS ids where the state can end; special tokens are never in the trie;
//  3. when nothing is allowed (a vocabulary without the bytes the grammar wants next, or after
//     the end), the EOS ids, so that a sequence stops instead of drawing from an empty mask.
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
  MatcherImpl(GrammarPtr grammar, std::shared_ptr<const TokenVocabulary> vocab)
      : grammar_(std::move(grammar)),
        vocab_(std::move(vocab)),
        impl_(static_cast<const VocabularyImpl&>(*vocab_)),
        cache_(grammar_->mask_cache(vocab_)),
        pushdown_(*grammar_, arena_) {}

  void start() {
    history_.emplace_back();
    pushdown_.start(history_.back().state);
  }

  void fill_next_token_bitmask(std::span<uint32_t> words) override {
    std::fill(words.begin(), words.end(), 0u);
    const Snapshot& now = history_.back();
    size_t num_words = std::min(words.size(), impl_.num_words());
    if (!now.terminated) {
      for (int32_t top : now.state.stacks) add_stack_mask(top, words.first(num_words));
    }
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
    return advance(vocab_->bytes_of(id));
  }

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
    auto m = std::make_unique<MatcherImpl>(grammar_, vocab_);
    m->arena_ = arena_;
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
    StackSet cur = now.state, next;
    for (char c : bytes) {
      pushdown_.advance(cur, static_cast<uint8_t>(c), next);
      if (!next.alive() && !next.can_end) return false;
      std::swap(cur, next);
    }
    std::sort(cur.stacks.begin(), cur.stacks.end());
    push(Snapshot{std::move(cur), false});
    return true;
  }

  void add_stack_mask(int32_t top, std::span<uint32_t> words) {
    bool cut = false;
    int32_t cut_top = pushdown_.truncate(top, MaskCache::kDepth, positions_, &cut);
    std::string key = MaskCache::key(positions_, cut);
    std::shared_ptr<const MaskEntry> entry = cache_->find(key);
    if (entry == nullptr) {
      entry = compute_entry(cut_top);
      cache_->insert(key, entry);
    }
    for (size_t w = 0; w < words.size(); ++w) words[w] |= entry->accepted[w];
    if (entry->uncertain.empty()) return;
    StackSet single;
    single.stacks.push_back(top);
    for (int32_t id : entry->uncertain) {
      uint32_t bit = 1u << (id % 32);
      if ((words[id / 32] & bit) == 0 && pushdown_.accepts(single, vocab_->bytes_of(id))) {
        words[id / 32] |= bit;
      }
    }
  }

  std::shared_ptr<const MaskEntry> compute_entry(int32_t cut_top) {
    StackSet single;
    single.stacks.push_back(cut_top);
    accepted_.clear();
    auto entry = std::make_shared<MaskEntry>();
    entry->accepted.assign(impl_.num_words(), 0);
    pushdown_.walk_trie(impl_.trie(), single, accepted_, entry->uncertain);
    for (int32_t id : accepted_) entry->accepted[id / 32] |= 1u << (id % 32);
    return entry;
  }

  GrammarPtr grammar_;
  std::shared_ptr<const TokenVocabulary> vocab_;
  const VocabularyImpl& impl_;
  std::shared_ptr<MaskCache> cache_;
  StackArena arena_;
  Pushdown pushdown_;
  std::deque<Snapshot> history_;  // back(): now
  std::vector<int32_t> positions_, accepted_;
};

}  // namespace

std::unique_ptr<Matcher> Matcher::create(GrammarPtr grammar,
                                         std::shared_ptr<const TokenVocabulary> vocab) {
  auto m = std::make_unique<MatcherImpl>(std::move(grammar), std::move(vocab));
  m->start();
  return m;
}

}  // namespace mlxs::structured
