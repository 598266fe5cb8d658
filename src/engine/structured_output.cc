#include "engine/structured_output.h"

#include <algorithm>
#include <vector>

namespace mlxs {
namespace {

// The field of `s` that is set and its text (exactly one is: the options schema checks it).
std::pair<const char*, const std::string*> source_of(const StructuredOutput& s) {
  if (!s.regex.empty()) return {"regex", &s.regex};
  if (!s.grammar.empty()) return {"grammar", &s.grammar};
  return {"schema", &s.schema.text};
}

class GrammarConstraint : public TokenConstraint {
 public:
  GrammarConstraint(std::unique_ptr<structured::Matcher> matcher, size_t vocab_size)
      : matcher_(std::move(matcher)), words_(bitmask_words(vocab_size)) {}

  // The matcher writes the tokenizer's words; a model with fewer rows than its tokenizer has
  // tokens (never seen, but not excluded by the loader) gets the words it has.
  void fill_allowed(std::span<uint32_t> words) override {
    if (words.size() >= words_) {
      matcher_->fill_next_token_bitmask(words);
      return;
    }
    scratch_.assign(words_, 0u);
    matcher_->fill_next_token_bitmask(scratch_);
    std::copy_n(scratch_.begin(), words.size(), words.begin());
  }
  bool accept(int32_t token) override { return matcher_->accept_token(token); }
  bool is_complete() const override { return matcher_->is_complete() || matcher_->is_terminated(); }

 private:
  std::unique_ptr<structured::Matcher> matcher_;
  const size_t words_;
  std::vector<uint32_t> scratch_;
};

}  // namespace

structured::JsonSchemaOptions json_schema_options(const StructuredConfig& config) {
  structured::JsonSchemaOptions o;
  o.any_whitespace = config.json_any_whitespace;
  o.max_whitespace = config.json_max_whitespace;
  return o;
}

GrammarCache::GrammarCache(size_t capacity, structured::JsonSchemaOptions json_options)
    : capacity_(capacity), json_options_(std::move(json_options)) {}

Result<structured::GrammarPtr> GrammarCache::compile(const StructuredOutput& s) const {
  const char* field = source_of(s).first;
  Result<structured::GrammarPtr> g =
      !s.regex.empty()     ? structured::compile_regex(s.regex)
      : !s.grammar.empty() ? structured::compile_gbnf(s.grammar)
                           : structured::compile_json_schema(s.schema.text, json_options_);
  if (g.ok()) return g;
  return error(ErrorCode::kInvalidParams, std::string("Validation error on field 'structured.") +
                                              field + "': " + g.status().message());
}

Result<structured::GrammarPtr> GrammarCache::get(const StructuredOutput& s) {
  if (s.schema.text.size() && s.format == StructuredFormat::kYaml) {
    return error(ErrorCode::kInvalidParams,
                 "Validation error on field 'structured.format': yaml output is not available "
                 "in this build; use json");
  }
  const auto [field, text] = source_of(s);
  std::string key = std::string(field) + '\0' + *text;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = by_key_.find(key); it != by_key_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      ++stats_.hits;
      return it->second->second;
    }
    ++stats_.misses;
  }
  MLXS_ASSIGN_OR_RETURN(structured::GrammarPtr g, compile(s));  // unlocked: may take a while
  std::lock_guard<std::mutex> lock(mu_);
  if (capacity_ == 0 || by_key_.count(key)) return g;  // another thread compiled it meanwhile
  lru_.emplace_front(key, g);
  by_key_[std::move(key)] = lru_.begin();
  if (lru_.size() > capacity_) {
    by_key_.erase(lru_.back().first);
    lru_.pop_back();
  }
  return g;
}

GrammarCache::Stats GrammarCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

std::unique_ptr<TokenConstraint> make_grammar_constraint(
    structured::GrammarPtr grammar, std::shared_ptr<const structured::TokenVocabulary> vocab) {
  const size_t n = vocab->size();
  return std::make_unique<GrammarConstraint>(
      structured::Matcher::create(std::move(grammar), std::move(vocab)), n);
}

}  // namespace mlxs
