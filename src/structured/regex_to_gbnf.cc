#include "structured/regex_to_gbnf.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "structured/grammar.h"

namespace mlxs::structured {

namespace {

constexpr uint32_t kMaxCodepoint = 0x10FFFF;

// One UTF-8 character of `s` at `pos` (advanced past it); empty on malformed UTF-8, overlong
// forms and surrogates.
std::optional<uint32_t> next_codepoint(std::string_view s, size_t& pos) {
  auto byte = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  uint8_t b0 = byte(pos);
  int len = b0 < 0x80 ? 1 : (b0 >> 5) == 6 ? 2 : (b0 >> 4) == 14 ? 3 : (b0 >> 3) == 30 ? 4 : 0;
  if (len == 0 || pos + len > s.size()) return std::nullopt;
  uint32_t cp = len == 1 ? b0 : len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  for (int i = 1; i < len; ++i) {
    if ((byte(pos + i) & 0xC0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (byte(pos + i) & 0x3F);
  }
  static constexpr uint32_t kMinOfLength[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMinOfLength[len] || cp > kMaxCodepoint || (cp >= 0xD800 && cp <= 0xDFFF)) {
    return std::nullopt;
  }
  pos += len;
  return cp;
}

// Sorts, merges and removes the surrogates (no UTF-8 text holds one).
CodepointSet normalize(CodepointSet set) {
  CodepointSet split;
  for (CodepointRange r : set) {
    if (r.lo > r.hi) continue;
    if (r.lo < 0xD800 && r.hi > 0xDFFF) {
      split.push_back({r.lo, 0xD7FF});
      split.push_back({0xE000, r.hi});
    } else if (r.hi < 0xD800 || r.lo > 0xDFFF) {
      split.push_back(r);
    } else if (r.lo < 0xD800) {
      split.push_back({r.lo, 0xD7FF});
    } else if (r.hi > 0xDFFF) {
      split.push_back({0xE000, r.hi});
    }
  }
  std::sort(split.begin(), split.end(),
            [](CodepointRange a, CodepointRange b) { return a.lo < b.lo; });
  CodepointSet out;
  for (CodepointRange r : split) {
    if (!out.empty() && r.lo <= out.back().hi + 1) {
      out.back().hi = std::max(out.back().hi, r.hi);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

CodepointSet complement(const CodepointSet& set) {
  CodepointSet out;
  uint32_t next = 0;
  for (CodepointRange r : normalize(set)) {
    if (r.lo > next) out.push_back({next, r.lo - 1});
    next = r.hi + 1;
  }
  if (next <= kMaxCodepoint) out.push_back({next, kMaxCodepoint});
  return normalize(out);
}

CodepointSet set_union(CodepointSet a, const CodepointSet& b) {
  a.insert(a.end(), b.begin(), b.end());
  return normalize(std::move(a));
}

CodepointSet intersect(const CodepointSet& a, const CodepointSet& b) {
  return complement(set_union(complement(a), complement(b)));
}

bool contains(const CodepointSet& set, uint32_t cp) {
  for (CodepointRange r : set) {
    if (cp >= r.lo && cp <= r.hi) return true;
  }
  return false;
}

const CodepointSet kDigit = {{'0', '9'}};
const CodepointSet kWord = normalize({{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}});
// ECMAScript's WhiteSpace and LineTerminator.
const CodepointSet kSpace = normalize({{'\t', '\r'},
                                       {' ', ' '},
                                       {0xA0, 0xA0},
                                       {0x1680, 0x1680},
                                       {0x2000, 0x200A},
                                       {0x2028, 0x2029},
                                       {0x202F, 0x202F},
                                       {0x205F, 0x205F},
                                       {0x3000, 0x3000},
                                       {0xFEFF, 0xFEFF}});
const CodepointSet kDot = complement({{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}});
const CodepointSet kAny = complement({});

std::string escape_codepoint(uint32_t cp) {
  if (cp < 0x80) return fmt::format("\\x{:02X}", cp);
  if (cp <= 0xFFFF) return fmt::format("\\u{:04X}", cp);
  return fmt::format("\\U{:08X}", cp);
}

bool is_ascii_alnum(uint32_t cp) {
  return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
}

std::string class_char(uint32_t cp) {
  return is_ascii_alnum(cp) ? std::string(1, static_cast<char>(cp)) : escape_codepoint(cp);
}

std::string literal_char(uint32_t cp) {
  if (cp == '"') return "\\\"";
  if (cp == '\\') return "\\\\";
  if (cp >= 0x20 && cp < 0x7F) return std::string(1, static_cast<char>(cp));
  return escape_codepoint(cp);
}

// The regular expression's syntax tree.
struct Node {
  enum class Kind { kChars, kSeq, kAlt, kRepeat };
  Kind kind = Kind::kSeq;  // an empty kSeq matches the empty string
  CodepointSet chars;      // kChars: one character of this set (empty: matches nothing)
  std::vector<Node> kids;
  int min = 0;   // kRepeat
  int max = -1;  // kRepeat: -1 = unbounded
};

Node chars_node(CodepointSet set) {
  Node n;
  n.kind = Node::Kind::kChars;
  n.chars = normalize(std::move(set));
  return n;
}

// One top-level alternative and its anchors.
struct Branch {
  Node node;
  bool anchored_start = false;
  bool anchored_end = false;
};

class Parser {
 public:
  explicit Parser(std::string_view pattern) : p_(pattern) {}

  Result<std::vector<Branch>> parse() {
    std::vector<Branch> branches;
    while (true) {
      Branch b;
      if (peek('^')) {
        ++pos_;
        b.anchored_start = true;
      }
      Result<Node> seq = parse_seq(/*top=*/true);
      if (!seq.ok()) return seq.status();
      b.node = std::move(*seq);
      if (peek('$')) {
        ++pos_;
        b.anchored_end = true;
      }
      branches.push_back(std::move(b));
      if (at_end()) break;
      if (peek('|')) {
        ++pos_;
        continue;
      }
      if (peek(')')) return fail("unmatched ')'");
      if (peek('$')) return fail("'$' is only supported at the end of the pattern");
      return fail("unexpected character");
    }
    return branches;
  }

 private:
  bool at_end() const { return pos_ >= p_.size(); }
  bool peek(char c) const { return pos_ < p_.size() && p_[pos_] == c; }
  bool peek_str(std::string_view s) const { return p_.substr(pos_, s.size()) == s; }

  Status fail(std::string_view what) const { return fail_at(pos_, what); }
  Status fail_at(size_t pos, std::string_view what) const {
    return error(ErrorCode::kInvalidParams,
                 fmt::format("regular expression at position {}: {}", pos, what));
  }

  // A top-level sequence ends before '$' when the '$' ends the pattern or its alternative.
  bool at_top_level_end_anchor() const {
    return peek('$') && (pos_ + 1 == p_.size() || p_[pos_ + 1] == '|');
  }

  Result<Node> parse_alt() {
    Node alt;
    alt.kind = Node::Kind::kAlt;
    while (true) {
      Result<Node> seq = parse_seq(/*top=*/false);
      if (!seq.ok()) return seq.status();
      alt.kids.push_back(std::move(*seq));
      if (!peek('|')) break;
      ++pos_;
    }
    if (alt.kids.size() == 1) return std::move(alt.kids[0]);
    return alt;
  }

  Result<Node> parse_seq(bool top) {
    Node seq;
    while (!at_end() && !peek('|') && !peek(')')) {
      if (top && at_top_level_end_anchor()) break;
      Result<Node> atom = parse_atom();
      if (!atom.ok()) return atom.status();
      Result<Node> quantified = parse_quantifier(std::move(*atom));
      if (!quantified.ok()) return quantified.status();
      seq.kids.push_back(std::move(*quantified));
    }
    if (seq.kids.size() == 1) return std::move(seq.kids[0]);
    return seq;
  }

  // {m}, {m,} or {m,n} at pos_: true and the bounds when it is one.
  bool read_braces(int64_t& min, int64_t& max, size_t& end) const {
    size_t i = pos_ + 1;
    auto number = [&](int64_t& out) {
      size_t begin = i;
      out = 0;
      while (i < p_.size() && p_[i] >= '0' && p_[i] <= '9') {
        out = std::min<int64_t>(out * 10 + (p_[i] - '0'), int64_t{1} << 40);
        ++i;
      }
      return i > begin;
    };
    if (!number(min)) return false;
    max = min;
    if (i < p_.size() && p_[i] == ',') {
      ++i;
      if (!number(max)) max = -1;
    }
    if (i >= p_.size() || p_[i] != '}') return false;
    end = i + 1;
    return true;
  }

  Result<Node> parse_quantifier(Node atom) {
    int64_t min = 0, max = -1;
    size_t qpos = pos_;
    if (peek('*')) {
      ++pos_;
    } else if (peek('+')) {
      min = 1;
      ++pos_;
    } else if (peek('?')) {
      max = 1;
      ++pos_;
    } else if (size_t end = 0; peek('{') && read_braces(min, max, end)) {
      pos_ = end;
    } else {
      return atom;
    }
    if (max >= 0 && min > max) return fail_at(qpos, "quantifier {m,n} with m > n");
    if (min > kMaxRegexRepeat || max > kMaxRegexRepeat) {
      return fail_at(qpos, fmt::format("a repetition bound over the limit {}", kMaxRegexRepeat));
    }
    if (peek('?')) ++pos_;  // lazy: the same language
    if (peek('*') || peek('+') || peek('?') || (peek('{') && [&] {
          int64_t a, b;
          size_t e;
          return read_braces(a, b, e);
        }())) {
      return fail(
          "nothing to repeat (a quantifier after a quantifier; possessive quantifiers are "
          "not ECMAScript)");
    }
    Node rep;
    rep.kind = Node::Kind::kRepeat;
    rep.min = static_cast<int>(min);
    rep.max = static_cast<int>(max);
    rep.kids.push_back(std::move(atom));
    return rep;
  }

  Result<Node> parse_atom() {
    char c = p_[pos_];
    switch (c) {
      case '(':
        return parse_group();
      case '[':
        return parse_class();
      case '.':
        ++pos_;
        return chars_node(kDot);
      case '\\':
        return parse_escape();
      case '*':
      case '+':
      case '?':
        return fail("nothing to repeat");
      case '^':
        return fail("'^' is only supported at the start of the pattern (anchors inside are not)");
      case '$':
        return fail("'$' is only supported at the end of the pattern (anchors inside are not)");
      case '{': {
        int64_t a, b;
        size_t e;
        if (read_braces(a, b, e)) return fail("nothing to repeat");
        break;
      }
      default:
        break;
    }
    Result<uint32_t> cp = literal_codepoint();
    if (!cp.ok()) return cp.status();
    return chars_node({{*cp, *cp}});
  }

  Result<uint32_t> literal_codepoint() {
    size_t at = pos_;
    std::optional<uint32_t> cp = next_codepoint(p_, pos_);
    if (!cp) return fail_at(at, "not valid UTF-8");
    return *cp;
  }

  Result<Node> parse_group() {
    size_t open = pos_;
    ++pos_;
    if (peek_str("?=") || peek_str("?!")) return fail_at(open, "lookahead is not supported");
    if (peek_str("?<=") || peek_str("?<!")) return fail_at(open, "lookbehind is not supported");
    if (peek_str("?:")) {
      pos_ += 2;
    } else if (peek_str("?<")) {
      size_t close = p_.find('>', pos_);
      if (close == std::string_view::npos) return fail_at(open, "unterminated group name");
      pos_ = close + 1;
    } else if (peek('?')) {
      return fail_at(open, "unsupported group syntax '(?' (only (?: and (?<name> are)");
    }
    if (++depth_ > kMaxRegexNesting) {
      return fail_at(open, fmt::format("groups nested deeper than {}", kMaxRegexNesting));
    }
    Result<Node> inner = parse_alt();
    if (!inner.ok()) return inner.status();
    --depth_;
    if (!peek(')')) return fail_at(open, "unterminated group '('");
    ++pos_;
    return inner;
  }

  // An escape outside or inside a class: a set (\d ...) or one character.
  Result<CodepointSet> escape_set(bool in_class) {
    size_t at = pos_;
    ++pos_;  // the backslash
    if (at_end()) return fail_at(at, "the pattern ends with a lone '\\'");
    char c = p_[pos_++];
    auto one = [](uint32_t cp) { return CodepointSet{{cp, cp}}; };
    switch (c) {
      case 'd':
        return kDigit;
      case 'D':
        return complement(kDigit);
      case 'w':
        return kWord;
      case 'W':
        return complement(kWord);
      case 's':
        return kSpace;
      case 'S':
        return complement(kSpace);
      case 'n':
        return one('\n');
      case 't':
        return one('\t');
      case 'r':
        return one('\r');
      case 'f':
        return one('\f');
      case 'v':
        return one('\v');
      case 'b':
        if (in_class) return one('\b');
        return fail_at(at, "word boundaries (\\b) are not supported");
      case 'B':
        return fail_at(at, "word boundaries (\\B) are not supported");
      case '0':
        if (!at_end() && p_[pos_] >= '0' && p_[pos_] <= '9') {
          return fail_at(at, "octal escapes are not supported");
        }
        return one(0);
      case 'k':
        return fail_at(at, "backreferences (\\k<name>) are not supported");
      case 'p':
      case 'P':
        return fail_at(at, "Unicode property escapes (\\p, \\P) are not supported");
      case 'c':
        return fail_at(at, "control escapes (\\cX) are not supported");
      case 'x': {
        Result<uint32_t> v = hex_digits(2, at);
        if (!v.ok()) return v.status();
        return one(*v);
      }
      case 'u': {
        Result<uint32_t> v = unicode_escape(at);
        if (!v.ok()) return v.status();
        return one(*v);
      }
      default:
        break;
    }
    if (c >= '1' && c <= '9') return fail_at(at, "backreferences (\\1 ...) are not supported");
    auto uc = static_cast<unsigned char>(c);
    if (uc < 0x80 && !is_ascii_alnum(uc) && uc != '_') return one(uc);
    if (in_class && c == '-') return one('-');
    return fail_at(at, fmt::format("unknown escape '\\{}'", c));
  }

  Result<uint32_t> hex_digits(int count, size_t at) {
    uint32_t v = 0;
    for (int i = 0; i < count; ++i) {
      if (at_end() || !std::isxdigit(static_cast<unsigned char>(p_[pos_]))) {
        return fail_at(at, fmt::format("expected {} hex digits", count));
      }
      char h = p_[pos_++];
      v = v * 16 + (h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
    }
    return v;
  }

  // \uHHHH (a surrogate pair \uD83D\uDE00 is one character) or \u{H...}.
  Result<uint32_t> unicode_escape(size_t at) {
    if (peek('{')) {
      size_t close = p_.find('}', pos_);
      if (close == std::string_view::npos || close == pos_ + 1 || close > pos_ + 7) {
        return fail_at(at, "malformed \\u{...} escape");
      }
      ++pos_;
      Result<uint32_t> v = hex_digits(static_cast<int>(close - pos_), at);
      if (!v.ok()) return v.status();
      ++pos_;
      if (*v > kMaxCodepoint) return fail_at(at, "\\u{...} beyond U+10FFFF");
      return *v;
    }
    Result<uint32_t> v = hex_digits(4, at);
    if (!v.ok()) return v.status();
    if (*v >= 0xD800 && *v <= 0xDBFF && peek_str("\\u")) {
      size_t save = pos_;
      pos_ += 2;
      Result<uint32_t> low = hex_digits(4, at);
      if (low.ok() && *low >= 0xDC00 && *low <= 0xDFFF) {
        return 0x10000 + ((*v - 0xD800) << 10) + (*low - 0xDC00);
      }
      pos_ = save;
    }
    if (*v >= 0xD800 && *v <= 0xDFFF) return fail_at(at, "a lone surrogate \\u escape");
    return *v;
  }

  Result<Node> parse_escape() {
    Result<CodepointSet> set = escape_set(/*in_class=*/false);
    if (!set.ok()) return set.status();
    return chars_node(std::move(*set));
  }

  Result<Node> parse_class() {
    size_t open = pos_;
    ++pos_;
    bool negate = false;
    if (peek('^')) {
      negate = true;
      ++pos_;
    }
    CodepointSet set;
    while (true) {
      if (at_end()) return fail_at(open, "unterminated character class '['");
      if (peek(']')) {
        ++pos_;
        break;
      }
      size_t item_at = pos_;
      Result<CodepointSet> lo = class_atom();
      if (!lo.ok()) return lo.status();
      if (peek('-') && pos_ + 1 < p_.size() && p_[pos_ + 1] != ']') {
        ++pos_;
        Result<CodepointSet> hi = class_atom();
        if (!hi.ok()) return hi.status();
        if (lo->size() != 1 || lo->front().lo != lo->front().hi || hi->size() != 1 ||
            hi->front().lo != hi->front().hi) {
          return fail_at(item_at, "a class range must join two characters");
        }
        if (lo->front().lo > hi->front().lo) return fail_at(item_at, "a class range out of order");
        set.push_back({lo->front().lo, hi->front().lo});
      } else {
        set.insert(set.end(), lo->begin(), lo->end());
      }
    }
    set = normalize(std::move(set));
    return chars_node(negate ? complement(set) : set);
  }

  Result<CodepointSet> class_atom() {
    if (peek('\\')) return escape_set(/*in_class=*/true);
    if (peek_str("[:") || peek_str("[=") || peek_str("[.")) {
      return fail("POSIX classes ([:alpha:]) are not ECMAScript");
    }
    Result<uint32_t> cp = literal_codepoint();
    if (!cp.ok()) return cp.status();
    return CodepointSet{{*cp, *cp}};
  }

  std::string_view p_;
  size_t pos_ = 0;
  int depth_ = 0;
};

int64_t saturating_mul(int64_t a, int64_t b) {
  if (a == 0 || b == 0) return 0;
  return a > kMaxRegexExpandedSize * 16 / b ? kMaxRegexExpandedSize * 16 : a * b;
}

// The size with bounded repetitions expanded, saturating well above the limit.
int64_t expanded_size(const Node& n) {
  switch (n.kind) {
    case Node::Kind::kChars:
      return 1;
    case Node::Kind::kRepeat:
      return saturating_mul(expanded_size(n.kids[0]), std::max(1, std::max(n.min, n.max)));
    default: {
      int64_t total = 0;
      for (const Node& k : n.kids)
        total = std::min(total + expanded_size(k), kMaxRegexExpandedSize * 16);
      return total;
    }
  }
}

struct Lengths {
  int64_t min = 0;
  std::optional<int64_t> max = 0;
};

// Returns empty when the node matches nothing.
std::optional<Lengths> lengths(const Node& n) {
  switch (n.kind) {
    case Node::Kind::kChars:
      if (n.chars.empty()) return std::nullopt;
      return Lengths{1, 1};
    case Node::Kind::kSeq: {
      Lengths total;
      for (const Node& k : n.kids) {
        std::optional<Lengths> l = lengths(k);
        if (!l) return std::nullopt;
        total.min += l->min;
        total.max =
            total.max && l->max ? std::optional<int64_t>(*total.max + *l->max) : std::nullopt;
      }
      return total;
    }
    case Node::Kind::kAlt: {
      std::optional<Lengths> out;
      for (const Node& k : n.kids) {
        std::optional<Lengths> l = lengths(k);
        if (!l) continue;
        if (!out) {
          out = l;
          continue;
        }
        out->min = std::min(out->min, l->min);
        out->max = out->max && l->max ? std::optional<int64_t>(std::max(*out->max, *l->max))
                                      : std::nullopt;
      }
      return out;
    }
    case Node::Kind::kRepeat: {
      std::optional<Lengths> l = lengths(n.kids[0]);
      if (!l) return n.min == 0 ? std::optional<Lengths>(Lengths{}) : std::nullopt;
      Lengths out;
      out.min = l->min * n.min;
      if (l->max && *l->max == 0) {
        out.max = 0;
      } else if (n.max >= 0 && l->max) {
        out.max = *l->max * n.max;
      } else {
        out.max = std::nullopt;
      }
      return out;
    }
  }
  return std::nullopt;
}

std::string quantifier(int min, int max) {
  if (min == 0 && max < 0) return "*";
  if (min == 1 && max < 0) return "+";
  if (min == 0 && max == 1) return "?";
  if (max < 0) return fmt::format("{{{},}}", min);
  if (min == max) return fmt::format("{{{}}}", min);
  return fmt::format("{{{},{}}}", min, max);
}

// A GBNF expression and how tightly it binds: an alternation needs parentheses inside a
// sequence, and anything but an atom needs them under a quantifier.
struct Emitted {
  enum Level { kAlternation, kSequence, kAtom };
  std::string text;
  Level level = kAtom;
};

std::string parenthesized(const Emitted& e, Emitted::Level at_least) {
  return e.level >= at_least ? e.text : "(" + e.text + ")";
}

// The GBNF expression of `n`; empty when it matches nothing.
std::optional<Emitted> emit(const Node& n, RegexTarget target) {
  switch (n.kind) {
    case Node::Kind::kChars:
      if (n.chars.empty()) return std::nullopt;
      return Emitted{gbnf_char_expression(n.chars, target), Emitted::kAtom};
    case Node::Kind::kSeq: {
      if (n.kids.empty()) return Emitted{"\"\"", Emitted::kAtom};
      if (n.kids.size() == 1) return emit(n.kids[0], target);
      std::string out;
      for (const Node& k : n.kids) {
        std::optional<Emitted> e = emit(k, target);
        if (!e) return std::nullopt;
        if (!out.empty()) out += ' ';
        out += parenthesized(*e, Emitted::kSequence);
      }
      return Emitted{out, Emitted::kSequence};
    }
    case Node::Kind::kAlt: {
      std::vector<Emitted> alts;
      for (const Node& k : n.kids) {
        if (std::optional<Emitted> e = emit(k, target)) alts.push_back(std::move(*e));
      }
      if (alts.empty()) return std::nullopt;
      if (alts.size() == 1) return alts[0];
      std::string out;
      for (size_t i = 0; i < alts.size(); ++i) out += (i ? " | " : "") + alts[i].text;
      return Emitted{out, Emitted::kAlternation};
    }
    case Node::Kind::kRepeat: {
      const Emitted empty{"\"\"", Emitted::kAtom};
      if (n.max == 0) return empty;
      std::optional<Emitted> e = emit(n.kids[0], target);
      if (!e) return n.min == 0 ? std::optional<Emitted>(empty) : std::nullopt;
      if (n.min == 1 && n.max == 1) return e;
      // A quantified expression is quantified again only inside parentheses.
      return Emitted{parenthesized(*e, Emitted::kAtom) + quantifier(n.min, n.max),
                     Emitted::kSequence};
    }
  }
  return std::nullopt;
}

}  // namespace

Result<std::string> gbnf_literal(std::string_view utf8) {
  std::string out = "\"";
  size_t pos = 0;
  while (pos < utf8.size()) {
    size_t at = pos;
    std::optional<uint32_t> cp = next_codepoint(utf8, pos);
    if (!cp) {
      return error(ErrorCode::kInvalidParams, fmt::format("invalid UTF-8 at byte {}", at));
    }
    out += literal_char(*cp);
  }
  return out + "\"";
}

std::string gbnf_class(const CodepointSet& set) {
  std::string out = "[";
  for (CodepointRange r : set) {
    out += class_char(r.lo);
    if (r.hi != r.lo) {
      if (r.hi != r.lo + 1) out += '-';
      out += class_char(r.hi);
    }
  }
  return out + "]";
}

std::string gbnf_rule_name(std::string_view text) {
  std::string out;
  for (char c : text) out += is_ascii_alnum(static_cast<unsigned char>(c)) || c == '-' ? c : '-';
  return out;
}

std::string gbnf_char_expression(const CodepointSet& set, RegexTarget target) {
  if (target == RegexTarget::kRaw) return gbnf_class(set);
  // JSON: printable characters raw; `"`, `\` and the control characters escaped.
  const CodepointSet specials = normalize({{0, 0x1F}, {'"', '"'}, {'\\', '\\'}});
  std::vector<std::string> parts;
  CodepointSet plain = intersect(set, complement(specials));
  if (!plain.empty()) parts.push_back(gbnf_class(plain));
  if (contains(set, '"')) parts.push_back(R"("\\\"")");
  if (contains(set, '\\')) parts.push_back(R"("\\\\")");
  CodepointSet controls = intersect(set, {{0, 0x1F}});
  if (controls.size() == 1 && controls[0].lo == 0 && controls[0].hi == 0x1F) {
    parts.push_back(R"("\\" ([bfnrt] | "u00" [01] [0-9a-fA-F]))");
  } else {
    for (CodepointRange r : controls) {
      for (uint32_t c = r.lo; c <= r.hi; ++c) {
        switch (c) {
          case '\b':
            parts.push_back(R"("\\b")");
            break;
          case '\f':
            parts.push_back(R"("\\f")");
            break;
          case '\n':
            parts.push_back(R"("\\n")");
            break;
          case '\r':
            parts.push_back(R"("\\r")");
            break;
          case '\t':
            parts.push_back(R"("\\t")");
            break;
          default:
            parts.push_back(fmt::format(R"("\\u00{:02x}")", c));
        }
      }
    }
  }
  if (parts.size() == 1) return parts[0];
  std::string out = "(";
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? " | " : "") + parts[i];
  return out + ")";
}

namespace {

// Narrows each alternative of `top` to lengths in [min, max]: an alternative of fixed length is
// kept or dropped; one whose only variable part is a repetition of single characters gets that
// repetition's bounds narrowed (^[a-z]+$ with maxLength 20 becomes [a-z]{1,20}). Anything else
// is refused.
Status fit_length(Node& top, const LengthBounds& bounds) {
  std::vector<Node> kept;
  for (Node& branch : top.kids) {
    std::optional<Lengths> l = lengths(branch);
    if (!l) continue;
    if (l->min >= bounds.min && l->max && (!bounds.max || *l->max <= *bounds.max)) {
      kept.push_back(std::move(branch));
      continue;
    }
    if (l->max && *l->max == l->min) continue;  // fixed length, outside the bounds
    std::vector<Node*> parts;                   // the branch's sequence, nested sequences flattened
    std::vector<Node*> todo = {&branch};
    while (!todo.empty()) {
      Node* n = todo.back();
      todo.pop_back();
      if (n->kind != Node::Kind::kSeq) {
        parts.push_back(n);
        continue;
      }
      for (auto it = n->kids.rbegin(); it != n->kids.rend(); ++it) todo.push_back(&*it);
    }
    Node* variable = nullptr;
    int64_t fixed = 0;
    for (Node* part : parts) {
      std::optional<Lengths> pl = lengths(*part);
      if (pl && pl->max && *pl->max == pl->min) {
        fixed += pl->min;
        continue;
      }
      std::optional<Lengths> unit =
          part->kind == Node::Kind::kRepeat ? lengths(part->kids[0]) : std::nullopt;
      bool alternation = part->kind == Node::Kind::kAlt;
      if (variable || ((!unit || unit->min != 1 || unit->max != 1) && !alternation)) {
        return error(ErrorCode::kInvalidParams,
                     "length bounds together with this pattern are not supported (supported: "
                     "anchored patterns whose only variable part is one repeated character "
                     "class or an alternation of such, like ^[a-z]+$ or ^#([0-9a-f]{3}|x+)$)");
      }
      variable = part;
    }
    if (variable->kind == Node::Kind::kAlt) {  // ^(a|b+)$: narrow each alternative
      LengthBounds inner{std::max<int64_t>(0, bounds.min - fixed),
                         bounds.max ? std::optional<int64_t>(*bounds.max - fixed) : std::nullopt};
      if (inner.max && *inner.max < 0) continue;
      Status st = fit_length(*variable, inner);
      if (st.ok()) kept.push_back(std::move(branch));
      if (!st.ok() && st.message().rfind("no match", 0) != 0) return st;
      continue;
    }
    int64_t lo = std::max<int64_t>(variable->min, bounds.min - fixed);
    std::optional<int64_t> hi;
    if (variable->max >= 0) hi = variable->max;
    if (bounds.max) hi = hi ? std::min(*hi, *bounds.max - fixed) : *bounds.max - fixed;
    if (hi && lo > *hi) continue;
    variable->min = static_cast<int>(lo);
    variable->max = hi ? static_cast<int>(*hi) : -1;
    kept.push_back(std::move(branch));
  }
  if (kept.empty()) {
    return error(ErrorCode::kInvalidParams,
                 "no match of the pattern has a length within the bounds");
  }
  top.kids = std::move(kept);
  return Status();
}

}  // namespace

Result<RegexTranslation> translate_regex(std::string_view pattern, RegexTarget target,
                                         RegexMode mode, const LengthBounds* length) {
  if (pattern.size() > kMaxRegexLength) {
    return error(ErrorCode::kInvalidParams,
                 fmt::format("regular expression of {} bytes is over the limit of {}",
                             pattern.size(), kMaxRegexLength));
  }
  Result<std::vector<Branch>> branches = Parser(pattern).parse();
  if (!branches.ok()) return branches.status();
  Node top;
  top.kind = Node::Kind::kAlt;
  for (Branch& b : *branches) {
    if (mode == RegexMode::kFullMatch) {
      top.kids.push_back(std::move(b.node));
      continue;
    }
    Node any_run;  // "any characters" on an unanchored side
    any_run.kind = Node::Kind::kRepeat;
    any_run.kids.push_back(chars_node(kAny));
    Node seq;
    if (!b.anchored_start) seq.kids.push_back(any_run);
    seq.kids.push_back(std::move(b.node));
    if (!b.anchored_end) seq.kids.push_back(any_run);
    top.kids.push_back(std::move(seq));
  }
  if (expanded_size(top) > kMaxRegexExpandedSize) {
    return error(ErrorCode::kInvalidParams,
                 fmt::format("regular expression expands to more than {} elements (nested "
                             "repetition bounds multiply)",
                             kMaxRegexExpandedSize));
  }
  if (length) {
    if (Status st = fit_length(top, *length); !st.ok()) return st;
  }
  std::optional<Lengths> lens = lengths(top);
  std::optional<Emitted> expr = emit(top, target);
  if (!lens || !expr) {
    return error(ErrorCode::kInvalidParams, "regular expression matches nothing");
  }
  RegexTranslation out;
  out.expression = parenthesized(*expr, Emitted::kAtom);
  out.min_chars = lens->min;
  out.max_chars = lens->max;
  return out;
}

Result<std::string> regex_to_gbnf(std::string_view pattern, std::string_view root_rule,
                                  std::string_view rule_prefix) {
  if (root_rule.empty() || gbnf_rule_name(root_rule) != root_rule) {
    return error(
        ErrorCode::kInvalidParams,
        fmt::format("root_rule '{}' is not a GBNF rule name (letters, digits, '-')", root_rule));
  }
  Result<RegexTranslation> t = translate_regex(pattern, RegexTarget::kRaw, RegexMode::kFullMatch);
  if (!t.ok()) return t.status();
  return fmt::format("{} ::= {}\n", root_rule, t->expression);
}

}  // namespace mlxs::structured
