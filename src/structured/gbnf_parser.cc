#include "structured/gbnf_parser.h"

#include <fmt/format.h>

#include <map>

namespace mlxs::structured {

namespace {

constexpr uint32_t kMaxCodePoint = 0x10FFFF;

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A recursive-descent parser over the text; positions are reported as line:column (1-based,
// columns in bytes).
class Parser {
 public:
  Parser(std::string_view text, const GbnfLimits& limits) : text_(text), limits_(limits) {}

  Result<GbnfGrammar> parse() {
    if (text_.size() > limits_.max_text_bytes) {
      return error(ErrorCode::kInvalidParams,
                   fmt::format("GBNF grammar is {} bytes, more than the limit of {}", text_.size(),
                               limits_.max_text_bytes));
    }
    skip_space(/*newlines=*/true);
    while (pos_ < text_.size()) {
      MLXS_RETURN_IF_ERROR(parse_rule());
      skip_space(true);
    }
    return finish();
  }

 private:
  Status fail(std::string_view expected) const { return fail_at(pos_, expected); }
  Status fail_at(size_t at, std::string_view expected) const {
    auto [line, column] = line_column(at);
    std::string got =
        at >= text_.size()
            ? "end of input"
            : fmt::format("'{}'", text_.substr(at, 1) == "\n" ? std::string("\\n")
                                                              : std::string(text_.substr(at, 1)));
    return error(ErrorCode::kInvalidParams,
                 fmt::format("GBNF line {}:{}: expected {}, got {}", line, column, expected, got));
  }
  std::pair<int, int> line_column(size_t at) const {
    int line = 1, column = 1;
    for (size_t i = 0; i < at && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    return {line, column};
  }

  char peek(size_t ahead = 0) const {
    return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0';
  }
  bool at_end() const { return pos_ >= text_.size(); }

  // Skips blanks and comments; newlines too when `newlines`.
  void skip_space(bool newlines) {
    while (!at_end()) {
      char c = peek();
      if (c == '#') {
        while (!at_end() && peek() != '\n') ++pos_;
      } else if (c == ' ' || c == '\t' || (c == '\r' && peek(1) == '\n' && !newlines)) {
        ++pos_;
      } else if (newlines && (c == '\n' || c == '\r')) {
        ++pos_;
      } else {
        break;
      }
    }
  }
  // At a newline followed (after blanks and comment lines) by `|`: a continued top-level rule.
  bool continues_on_next_line() const {
    size_t p = pos_;
    while (p < text_.size()) {
      char c = text_[p];
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
        ++p;
      } else if (c == '#') {
        while (p < text_.size() && text_[p] != '\n') ++p;
      } else {
        return c == '|';
      }
    }
    return false;
  }

  std::string parse_name() {
    size_t start = pos_;
    while (!at_end() && is_name_char(peek())) ++pos_;
    return std::string(text_.substr(start, pos_ - start));
  }

  int rule_index(const std::string& name, size_t at) {
    auto it = index_.find(name);
    if (it != index_.end()) return it->second;
    int id = static_cast<int>(rules_.size());
    GbnfRule rule;
    rule.name = name;
    rules_.push_back(std::move(rule));
    first_use_.push_back(at);
    defined_.push_back(false);
    index_.emplace(name, id);
    return id;
  }

  Status parse_rule() {
    size_t start = pos_;
    std::string name = parse_name();
    if (name.empty()) return fail("a rule name ([A-Za-z0-9_-]+)");
    skip_space(false);
    if (text_.substr(pos_, 3) != "::=") return fail("'::=' after the rule name '" + name + "'");
    pos_ += 3;
    skip_space(true);
    int id = rule_index(name, start);
    if (defined_[id]) return fail_at(start, "a new rule name, '" + name + "' is defined twice");
    if (static_cast<int>(rules_.size()) > limits_.max_rules) {
      return fail_at(start, fmt::format("at most {} rules", limits_.max_rules));
    }
    defined_[id] = true;
    auto [line, column] = line_column(start);
    rules_[id].line = line;
    rules_[id].column = column;
    GbnfExpr body;
    MLXS_RETURN_IF_ERROR(parse_alternation(body, /*depth=*/0));
    rules_[id].body = std::move(body);
    skip_space(false);
    if (!at_end() && peek() != '\n' && peek() != '\r') return fail("a newline after the rule");
    return {};
  }

  // alternation := sequence ('|' sequence)*; inside parentheses (depth > 0) newlines are blanks.
  Status parse_alternation(GbnfExpr& out, int depth) {
    out.kind = GbnfExpr::Kind::kAlternation;
    while (true) {
      GbnfExpr seq;
      MLXS_RETURN_IF_ERROR(parse_sequence(seq, depth));
      out.children.push_back(std::move(seq));
      skip_space(depth > 0);
      if (depth == 0 && (peek() == '\n' || peek() == '\r') && continues_on_next_line()) {
        skip_space(true);
      }
      if (peek() != '|') return {};
      ++pos_;
      skip_space(true);
    }
  }

  Status parse_sequence(GbnfExpr& out, int depth) {
    out.kind = GbnfExpr::Kind::kSequence;
    while (true) {
      skip_space(depth > 0);
      char c = peek();
      GbnfExpr item;
      if (c == '"') {
        MLXS_RETURN_IF_ERROR(parse_literal(item));
      } else if (c == '[') {
        MLXS_RETURN_IF_ERROR(parse_class(item));
      } else if (c == '.') {
        ++pos_;
        item.kind = GbnfExpr::Kind::kChars;
        item.ranges = {{0, kMaxCodePoint}};
      } else if (c == '(') {
        if (depth + 1 > limits_.max_nesting) {
          return fail(fmt::format("at most {} nested parentheses", limits_.max_nesting));
        }
        ++pos_;
        skip_space(true);
        MLXS_RETURN_IF_ERROR(parse_alternation(item, depth + 1));
        skip_space(true);
        if (peek() != ')') return fail("')' or '|'");
        ++pos_;
      } else if (is_name_char(c)) {
        size_t at = pos_;
        std::string name = parse_name();
        size_t after = pos_;
        skip_space(false);
        if (text_.substr(pos_, 3) == "::=") {  // the next rule starts: this sequence is over
          pos_ = at;
          return {};
        }
        pos_ = after;
        item.kind = GbnfExpr::Kind::kRule;
        item.rule = rule_index(name, at);
      } else {
        return {};  // '|', ')', newline, end: the caller decides
      }
      MLXS_RETURN_IF_ERROR(parse_repetitions(item));
      out.children.push_back(std::move(item));
    }
  }

  Status parse_repetitions(GbnfExpr& item) {
    for (int count = 0;; ++count) {
      if (count > limits_.max_nesting) {
        return fail(fmt::format("at most {} repetition operators in a row", limits_.max_nesting));
      }
      char c = peek();
      int min_count = 0, max_count = 0;
      if (c == '*') {
        min_count = 0, max_count = -1;
        ++pos_;
      } else if (c == '+') {
        min_count = 1, max_count = -1;
        ++pos_;
      } else if (c == '?') {
        min_count = 0, max_count = 1;
        ++pos_;
      } else if (c == '{') {
        ++pos_;
        MLXS_RETURN_IF_ERROR(parse_bounds(min_count, max_count));
      } else {
        return {};
      }
      GbnfExpr repeat;
      repeat.kind = GbnfExpr::Kind::kRepeat;
      repeat.min_count = min_count;
      repeat.max_count = max_count;
      repeat.children.push_back(std::move(item));
      item = std::move(repeat);
    }
  }

  Result<int> parse_count() {
    size_t start = pos_;
    long long v = 0;
    while (peek() >= '0' && peek() <= '9') {
      v = v * 10 + (peek() - '0');
      if (v > limits_.max_repetition) {
        return fail_at(start,
                       fmt::format("a repetition count of at most {}", limits_.max_repetition));
      }
      ++pos_;
    }
    if (pos_ == start) return fail("a number in {m,n}");
    return static_cast<int>(v);
  }

  Status parse_bounds(int& min_count, int& max_count) {
    skip_space(false);
    MLXS_ASSIGN_OR_RETURN(min_count, parse_count());
    skip_space(false);
    if (peek() == '}') {
      ++pos_;
      max_count = min_count;
      return {};
    }
    if (peek() != ',') return fail("',' or '}' in {m,n}");
    ++pos_;
    skip_space(false);
    if (peek() == '}') {
      ++pos_;
      max_count = -1;
      return {};
    }
    size_t at = pos_;
    MLXS_ASSIGN_OR_RETURN(max_count, parse_count());
    skip_space(false);
    if (peek() != '}') return fail("'}' closing {m,n}");
    ++pos_;
    if (max_count < min_count) return fail_at(at, "n >= m in {m,n}");
    return {};
  }

  // One code point of a literal or class at pos_, escapes decoded.
  Result<uint32_t> parse_char() {
    if (at_end()) return fail("a character");
    unsigned char c = static_cast<unsigned char>(peek());
    if (c == '\\') {
      char e = peek(1);
      pos_ += 2;
      switch (e) {
        case 'n':
          return uint32_t{'\n'};
        case 'r':
          return uint32_t{'\r'};
        case 't':
          return uint32_t{'\t'};
        case '\\':
        case '"':
        case '[':
        case ']':
        case '-':
        case '/':
        case '^':
          return static_cast<uint32_t>(e);
        case 'x':
          return parse_hex(2);
        case 'u':
          return parse_hex(4);
        case 'U':
          return parse_hex(8);
        default:
          pos_ -= 1;
          return fail("an escape (\\n \\r \\t \\\\ \\\" \\[ \\] \\xHH \\uHHHH \\UHHHHHHHH)");
      }
    }
    if (c < 0x80) {
      ++pos_;
      return uint32_t{c};
    }
    int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    if (len == 0 || (c >= 0xF5) || pos_ + len > text_.size()) return fail("valid UTF-8");
    uint32_t cp = c & (0x7F >> len);
    for (int i = 1; i < len; ++i) {
      unsigned char cc = static_cast<unsigned char>(text_[pos_ + i]);
      if ((cc & 0xC0) != 0x80) return fail("valid UTF-8");
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > kMaxCodePoint || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return fail("valid UTF-8");
    }
    pos_ += len;
    return cp;
  }

  Result<uint32_t> parse_hex(int digits) {
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      int h = hex_value(peek());
      if (h < 0) return fail(fmt::format("{} hex digits", digits));
      v = v * 16 + h;
      ++pos_;
    }
    if (v > kMaxCodePoint) return fail("a code point of at most U+10FFFF");
    return v;
  }

  Status parse_literal(GbnfExpr& out) {
    ++pos_;  // "
    out.kind = GbnfExpr::Kind::kSequence;
    while (peek() != '"') {
      if (at_end() || peek() == '\n') return fail("'\"' closing the literal");
      MLXS_ASSIGN_OR_RETURN(uint32_t cp, parse_char());
      GbnfExpr ch;
      ch.kind = GbnfExpr::Kind::kChars;
      ch.ranges = {{cp, cp}};
      out.children.push_back(std::move(ch));
    }
    ++pos_;
    return {};
  }

  Status parse_class(GbnfExpr& out) {
    ++pos_;  // [
    out.kind = GbnfExpr::Kind::kChars;
    if (peek() == '^') {
      out.negated = true;
      ++pos_;
    }
    while (peek() != ']') {
      if (at_end() || peek() == '\n') return fail("']' closing the character class");
      MLXS_ASSIGN_OR_RETURN(uint32_t lo, parse_char());
      uint32_t hi = lo;
      if (peek() == '-' && peek(1) != ']' && peek(1) != '\0') {
        size_t at = pos_;
        ++pos_;
        MLXS_ASSIGN_OR_RETURN(hi, parse_char());
        if (hi < lo) return fail_at(at, "a range whose end is not below its start");
      }
      out.ranges.emplace_back(lo, hi);
    }
    ++pos_;
    return {};
  }

  Result<GbnfGrammar> finish() {
    for (size_t i = 0; i < rules_.size(); ++i) {
      if (!defined_[i]) {
        return fail_at(first_use_[i], "a defined rule, '" + rules_[i].name + "' is never defined");
      }
    }
    auto it = index_.find("root");
    if (it == index_.end()) {
      return error(ErrorCode::kInvalidParams, "GBNF grammar has no 'root' rule (the start rule)");
    }
    GbnfGrammar g;
    g.rules = std::move(rules_);
    g.root = it->second;
    return g;
  }

  std::string_view text_;
  const GbnfLimits& limits_;
  size_t pos_ = 0;
  std::vector<GbnfRule> rules_;
  std::vector<size_t> first_use_;
  std::vector<bool> defined_;
  std::map<std::string, int, std::less<>> index_;
};

}  // namespace

Result<GbnfGrammar> parse_gbnf(std::string_view text, const GbnfLimits& limits) {
  return Parser(text, limits).parse();
}

}  // namespace mlxs::structured
