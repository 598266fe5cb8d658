#include "structured/compiled_grammar.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "tokenizer/unicode.h"

namespace mlxs::structured {

namespace {

constexpr uint32_t kMaxCodePoint = 0x10FFFF;

using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;
using Alternative = std::vector<int32_t>;

int utf8_length(uint32_t cp) {
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

std::string utf8_encode(uint32_t cp) {
  std::string s;
  tok::append_utf8(cp, s);
  return s;
}

// Sorted, merged, negated if asked, without surrogates.
Ranges normalize(Ranges ranges, bool negated) {
  std::sort(ranges.begin(), ranges.end());
  Ranges merged;
  for (auto r : ranges) {
    if (!merged.empty() && r.first <= merged.back().second + 1) {
      merged.back().second = std::max(merged.back().second, r.second);
    } else {
      merged.push_back(r);
    }
  }
  if (negated) {
    Ranges complement;
    uint32_t next = 0;
    for (auto r : merged) {
      if (r.first > next) complement.emplace_back(next, r.first - 1);
      next = r.second + 1;
    }
    if (next <= kMaxCodePoint) complement.emplace_back(next, kMaxCodePoint);
    merged = std::move(complement);
  }
  Ranges out;
  for (auto r : merged) {  // cut out U+D800..U+DFFF, which UTF-8 cannot encode
    if (r.second < 0xD800 || r.first > 0xDFFF) {
      out.push_back(r);
      continue;
    }
    if (r.first < 0xD800) out.emplace_back(r.first, 0xD7FF);
    if (r.second > 0xDFFF) out.emplace_back(0xE000, r.second);
  }
  return out;
}

// The byte-range sequences that encode exactly the code points lo..hi (same UTF-8 length).
void split_same_length(uint32_t lo, uint32_t hi,
                       std::vector<std::vector<std::pair<uint8_t, uint8_t>>>& out) {
  int n = utf8_length(lo);
  for (int i = 1; i < n; ++i) {
    uint32_t m = (1u << (6 * i)) - 1;
    if ((lo & ~m) != (hi & ~m)) {
      if ((lo & m) != 0) {
        split_same_length(lo, lo | m, out);
        split_same_length((lo | m) + 1, hi, out);
        return;
      }
      if ((hi & m) != m) {
        split_same_length(lo, (hi & ~m) - 1, out);
        split_same_length(hi & ~m, hi, out);
        return;
      }
    }
  }
  std::string a = utf8_encode(lo), b = utf8_encode(hi);
  std::vector<std::pair<uint8_t, uint8_t>> seq;
  for (int i = 0; i < n; ++i) {
    seq.emplace_back(static_cast<uint8_t>(a[i]), static_cast<uint8_t>(b[i]));
  }
  out.push_back(std::move(seq));
}

std::vector<std::vector<std::pair<uint8_t, uint8_t>>> utf8_sequences(const Ranges& ranges) {
  static constexpr uint32_t kBounds[] = {0, 0x80, 0x800, 0x10000, kMaxCodePoint + 1};
  std::vector<std::vector<std::pair<uint8_t, uint8_t>>> out;
  for (auto [lo, hi] : ranges) {
    for (int k = 0; k < 4; ++k) {
      uint32_t a = std::max(lo, kBounds[k]), b = std::min(hi, kBounds[k + 1] - 1);
      if (a <= b) split_same_length(a, b, out);
    }
  }
  return out;
}

}  // namespace

// Lowers the parsed rules; user rule i keeps index i, helper rules follow.
class GrammarBuilder {
 public:
  GrammarBuilder(const GbnfGrammar& parsed, const GrammarLimits& limits)
      : parsed_(parsed), limits_(limits) {}

  Result<GrammarPtr> build() {
    for (const auto& rule : parsed_.rules) add_rule(rule.name);
    for (size_t i = 0; i < parsed_.rules.size(); ++i) {
      MLXS_ASSIGN_OR_RETURN(rules_[i], lower_alternation(parsed_.rules[i].body, i));
    }
    MLXS_RETURN_IF_ERROR(prune_unproductive());
    MLXS_RETURN_IF_ERROR(check_left_recursion());
    auto g = std::make_shared<Grammar>();
    for (size_t r = 0; r < rules_.size(); ++r) {
      std::vector<int32_t> starts;
      for (auto& alt : rules_[r]) {
        starts.push_back(static_cast<int32_t>(g->elements_.size()));
        g->elements_.insert(g->elements_.end(), alt.begin(), alt.end());
        g->elements_.push_back(Grammar::kEnd);
        g->position_rule_.resize(g->elements_.size(), static_cast<int32_t>(r));
      }
      g->alternatives_.push_back(std::move(starts));
    }
    chain_index_.resize(rules_.size(), 0);
    chain_first_.resize(rules_.size(), -1);
    g->chain_index_ = std::move(chain_index_);
    g->chain_first_ = std::move(chain_first_);
    g->byte_sets_ = std::move(byte_sets_);
    g->rule_names_ = std::move(names_);
    g->root_ = parsed_.root;
    return GrammarPtr(std::move(g));
  }

 private:
  int32_t add_rule(std::string name) {
    rules_.emplace_back();
    names_.push_back(std::move(name));
    owner_.push_back(owner_.size() < parsed_.rules.size() ? static_cast<int32_t>(owner_.size())
                                                          : current_owner_);
    return static_cast<int32_t>(rules_.size() - 1);
  }
  int32_t helper_rule() {
    return add_rule(fmt::format("{}/{}", parsed_.rules[current_owner_].name, rules_.size()));
  }

  int32_t byte_set(const ByteSet& set) {
    auto [it, inserted] = byte_set_ids_.emplace(set, static_cast<int32_t>(byte_sets_.size()));
    if (inserted) byte_sets_.push_back(set);
    return it->second;
  }

  Status count(size_t n) {
    num_elements_ += n;
    if (num_elements_ > limits_.max_elements) {
      return error(ErrorCode::kInvalidParams,
                   fmt::format("GBNF rule '{}': the grammar expands to more than {} elements "
                               "(repetition counts too large)",
                               parsed_.rules[current_owner_].name, limits_.max_elements));
    }
    return {};
  }

  Result<std::vector<Alternative>> lower_alternation(const GbnfExpr& e, size_t owner) {
    current_owner_ = static_cast<int32_t>(owner);
    std::vector<Alternative> alts;
    for (const auto& seq : e.children) {
      Alternative alt;
      MLXS_RETURN_IF_ERROR(lower(seq, alt));
      alts.push_back(std::move(alt));
    }
    return alts;
  }

  // Appends the elements matching `e` to `out`.
  Status lower(const GbnfExpr& e, Alternative& out) {
    switch (e.kind) {
      case GbnfExpr::Kind::kChars:
        return lower_chars(e, out);
      case GbnfExpr::Kind::kRule:
        out.push_back(Grammar::rule_element(e.rule));
        return count(1);
      case GbnfExpr::Kind::kSequence:
        for (const auto& c : e.children) MLXS_RETURN_IF_ERROR(lower(c, out));
        return {};
      case GbnfExpr::Kind::kAlternation: {
        if (e.children.size() == 1) return lower(e.children[0], out);
        int32_t saved_owner = current_owner_;
        int32_t r = helper_rule();
        MLXS_ASSIGN_OR_RETURN(auto alts, lower_alternation(e, saved_owner));
        rules_[r] = std::move(alts);
        out.push_back(Grammar::rule_element(r));
        return count(1);
      }
      case GbnfExpr::Kind::kRepeat:
        return lower_repeat(e, out);
    }
    return {};
  }

  Status lower_chars(const GbnfExpr& e, Alternative& out) {
    Ranges ranges = normalize(e.ranges, e.negated);
    if (ranges.size() == 1 && ranges[0].first == ranges[0].second) {  // one code point
      for (char c : utf8_encode(ranges[0].first)) {
        ByteSet s;
        s.add(static_cast<uint8_t>(c));
        out.push_back(byte_set(s));
      }
      return count(utf8_length(ranges[0].first));
    }
    auto key = std::make_pair(ranges, false);
    auto it = class_rules_.find(key);
    if (it != class_rules_.end()) {
      out.push_back(it->second);
      return count(1);
    }
    // One alternative per byte-range sequence; all one-byte sequences share one byte set.
    ByteSet ascii;
    bool has_ascii = false;
    std::vector<Alternative> alts;
    for (const auto& seq : utf8_sequences(ranges)) {
      if (seq.size() == 1) {
        ascii.add_range(seq[0].first, seq[0].second);
        has_ascii = true;
        continue;
      }
      Alternative alt;
      for (auto [lo, hi] : seq) {
        ByteSet s;
        s.add_range(lo, hi);
        alt.push_back(byte_set(s));
      }
      MLXS_RETURN_IF_ERROR(count(alt.size()));
      alts.push_back(std::move(alt));
    }
    if (has_ascii && alts.empty()) {  // a class of one-byte characters: one element
      int32_t element = byte_set(ascii);
      class_rules_.emplace(key, element);
      out.push_back(element);
      return count(1);
    }
    if (has_ascii) alts.insert(alts.begin(), Alternative{byte_set(ascii)});
    int32_t r = helper_rule();
    rules_[r] = std::move(alts);  // empty when the class is empty: the rule matches nothing
    class_rules_.emplace(key, Grammar::rule_element(r));
    out.push_back(Grammar::rule_element(r));
    return count(1);
  }

  // x{m,n}: m copies of x, then a helper chain for the optional rest (x* -> s ::= x s | ε).
  Status lower_repeat(const GbnfExpr& e, Alternative& out) {
    Alternative unit;
    MLXS_RETURN_IF_ERROR(lower(e.children[0], unit));
    if (unit.size() != 1) {
      int32_t r = helper_rule();
      rules_[r] = {std::move(unit)};
      unit = {Grammar::rule_element(r)};
    }
    int32_t x = unit[0];
    MLXS_RETURN_IF_ERROR(count(static_cast<size_t>(e.min_count)));
    out.insert(out.end(), static_cast<size_t>(e.min_count), x);
    if (e.max_count < 0) {
      int32_t s = helper_rule();
      rules_[s] = {{x, Grammar::rule_element(s)}, {}};
      out.push_back(Grammar::rule_element(s));
      return count(3);
    }
    int32_t tail = -1;  // the rule for "up to k more"
    int32_t first = static_cast<int32_t>(rules_.size());
    for (int k = 1; k <= e.max_count - e.min_count; ++k) {
      int32_t o = helper_rule();
      chain_index_.resize(rules_.size(), 0);
      chain_first_.resize(rules_.size(), -1);
      chain_index_[o] = k;
      chain_first_[o] = first;
      rules_[o] = tail < 0 ? std::vector<Alternative>{{x}, {}}
                           : std::vector<Alternative>{{x, Grammar::rule_element(tail)}, {}};
      tail = o;
      MLXS_RETURN_IF_ERROR(count(3));
    }
    if (tail >= 0) out.push_back(Grammar::rule_element(tail));
    return {};
  }

  bool element_in(int32_t e, const std::vector<bool>& rule_set) const {
    return Grammar::is_rule(e) && rule_set[Grammar::rule_of(e)];
  }
  bool empty_set(int32_t e) const { return Grammar::is_bytes(e) && byte_sets_[e] == ByteSet{}; }

  // Drops the alternatives that can never match (they use a rule that derives no string), so
  // that every stack the matcher builds can still complete; refuses a root that matches nothing.
  Status prune_unproductive() {
    std::vector<bool> productive(rules_.size(), false);
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t r = 0; r < rules_.size(); ++r) {
        if (productive[r]) continue;
        for (const auto& alt : rules_[r]) {
          bool ok = std::all_of(alt.begin(), alt.end(), [&](int32_t e) {
            return Grammar::is_bytes(e) ? !empty_set(e) : productive[Grammar::rule_of(e)];
          });
          if (ok) {
            productive[r] = changed = true;
            break;
          }
        }
      }
    }
    if (!productive[parsed_.root]) {
      return error(ErrorCode::kInvalidParams,
                   "GBNF rule 'root' matches no text (every alternative needs a rule that never "
                   "ends, or an empty character class)");
    }
    for (auto& alts : rules_) {
      std::erase_if(alts, [&](const Alternative& alt) {
        return std::any_of(alt.begin(), alt.end(), [&](int32_t e) {
          return Grammar::is_bytes(e) ? empty_set(e) : !productive[Grammar::rule_of(e)];
        });
      });
    }
    return {};
  }

  // A rule that reaches itself before consuming a byte, through a reference that is not the last
  // of its alternative (a ::= a "x"), would grow the matcher's stack forever: refused by name.
  // Right recursion and loops through tail references (x* as s ::= x s) are fine.
  Status check_left_recursion() {
    size_t n = rules_.size();
    std::vector<bool> nullable(n, false);
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t r = 0; r < n; ++r) {
        if (nullable[r]) continue;
        for (const auto& alt : rules_[r]) {
          if (std::all_of(alt.begin(), alt.end(),
                          [&](int32_t e) { return element_in(e, nullable); })) {
            nullable[r] = changed = true;
            break;
          }
        }
      }
    }
    // edges[r]: (s, tail) for each rule s that r may call before consuming a byte.
    std::vector<std::vector<std::pair<int32_t, bool>>> edges(n);
    for (size_t r = 0; r < n; ++r) {
      for (const auto& alt : rules_[r]) {
        for (size_t i = 0; i < alt.size(); ++i) {
          if (!Grammar::is_rule(alt[i])) break;
          edges[r].emplace_back(Grammar::rule_of(alt[i]), i + 1 == alt.size());
          if (!nullable[Grammar::rule_of(alt[i])]) break;
        }
      }
    }
    std::vector<int32_t> component = strongly_connected_components(edges);
    for (size_t r = 0; r < n; ++r) {
      for (auto [s, tail] : edges[r]) {
        if (!tail && component[r] == component[s]) {
          return error(ErrorCode::kInvalidParams,
                       fmt::format("GBNF rule '{}' is left-recursive (it reaches '{}' before "
                                   "matching any text); rewrite it with repetition, e.g. "
                                   "a ::= b (\"op\" b)*",
                                   parsed_.rules[owner_[r]].name, parsed_.rules[owner_[s]].name));
        }
      }
    }
    return {};
  }

  // Tarjan's algorithm without recursion (a grammar may have 10^5 helper rules).
  static std::vector<int32_t> strongly_connected_components(
      const std::vector<std::vector<std::pair<int32_t, bool>>>& edges) {
    size_t n = edges.size();
    std::vector<int32_t> index(n, -1), low(n, 0), component(n, -1), stack;
    std::vector<bool> on_stack(n, false);
    int32_t next_index = 0, next_component = 0;
    std::vector<std::pair<int32_t, size_t>> frames;  // (rule, next edge)
    for (size_t start = 0; start < n; ++start) {
      if (index[start] >= 0) continue;
      frames.emplace_back(static_cast<int32_t>(start), 0);
      while (!frames.empty()) {
        auto& [v, edge] = frames.back();
        if (edge == 0 && index[v] < 0) {
          index[v] = low[v] = next_index++;
          stack.push_back(v);
          on_stack[v] = true;
        }
        if (edge < edges[v].size()) {
          int32_t w = edges[v][edge++].first;
          if (index[w] < 0) {
            frames.emplace_back(w, 0);
          } else if (on_stack[w]) {
            low[v] = std::min(low[v], index[w]);
          }
          continue;
        }
        if (low[v] == index[v]) {
          int32_t w;
          do {
            w = stack.back();
            stack.pop_back();
            on_stack[w] = false;
            component[w] = next_component;
          } while (w != v);
          ++next_component;
        }
        int32_t done = v;
        frames.pop_back();
        if (!frames.empty()) {
          int32_t parent = frames.back().first;
          low[parent] = std::min(low[parent], low[done]);
        }
      }
    }
    return component;
  }

  const GbnfGrammar& parsed_;
  const GrammarLimits& limits_;
  std::vector<std::vector<Alternative>> rules_;
  std::vector<std::string> names_;
  std::vector<int32_t> owner_;                      // the user rule a helper rule was made for
  std::vector<int32_t> chain_index_, chain_first_;  // see Grammar
  int32_t current_owner_ = 0;
  std::vector<ByteSet> byte_sets_;
  std::map<ByteSet, int32_t> byte_set_ids_;
  std::map<std::pair<Ranges, bool>, int32_t> class_rules_;
  size_t num_elements_ = 0;
};

int32_t Grammar::mask_position(int32_t pos, int max_token_bytes) const {
  int32_t r = position_rule_[pos];
  int32_t k = chain_index_[r];
  int32_t cap = std::max(2, max_token_bytes + 1);  // links 2.. share one layout
  if (k <= cap) return pos;
  int32_t same = chain_first_[r] + cap - 1;
  return alternatives_[same][0] + (pos - alternatives_[r][0]);
}

Result<GrammarPtr> Grammar::compile(const GbnfGrammar& parsed, const GrammarLimits& limits) {
  return GrammarBuilder(parsed, limits).build();
}

Result<GrammarPtr> compile_gbnf(std::string_view text) {
  GrammarLimits limits;
  MLXS_ASSIGN_OR_RETURN(auto parsed, parse_gbnf(text, limits.gbnf));
  return Grammar::compile(parsed, limits);
}

}  // namespace mlxs::structured
