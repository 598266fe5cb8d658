#include "jinja/lexer.h"

#include <cctype>

#include "jinja/text.h"

namespace mlxs::jinja {
namespace {

// Python's \s over ASCII plus the Unicode spaces of str.isspace(), on UTF-8 bytes.
size_t whitespace_len(std::string_view s, size_t i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' ||
      (c >= 0x1C && c <= 0x1F))
    return 1;
  if (c < 0x80) return 0;
  std::u32string cp = text::decode(s.substr(i, 4).substr(0, (c >= 0xF0) ? 4 : (c >= 0xE0) ? 3 : 2));
  if (!cp.empty() && text::is_space(cp[0])) return text::encode(cp.substr(0, 1)).size();
  return 0;
}

std::string rstrip_ws(std::string_view s) {
  return text::strip(s, /*left=*/false, /*right=*/true);
}

// Replaces \r\n and \r by \n and drops one trailing newline (keep_trailing_newline=False).
std::string normalize_source(std::string_view src) {
  std::string out;
  out.reserve(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    if (src[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < src.size() && src[i + 1] == '\n') ++i;
    } else {
      out.push_back(src[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

class Lexer {
 public:
  Lexer(std::string source, const LexerOptions& options)
      : src_(std::move(source)), options_(options) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) lex_root();
    tokens_.push_back({TokenType::kEof, "", position(pos_)});
    return std::move(tokens_);
  }

 private:
  // Line and column (in code points) of byte `at`. Positions are asked for in increasing order,
  // so the scan and the column count carry on from the last call: linear in the source, where
  // counting each line from its start was quadratic on a long line (100,000 filters on one line
  // took 25 s to tokenize).
  SourcePos position(size_t at) {
    if (at < line_start_) line_scan_ = line_start_ = 0, line_ = 1, column_ = 0;
    if (at < line_scan_) {  // behind the scan on its line: count that stretch again
      return {line_, static_cast<int>(text::length(
                         std::string_view(src_).substr(line_start_, at - line_start_))) +
                         1};
    }
    while (line_scan_ < at && line_scan_ < src_.size()) {
      const auto c = static_cast<unsigned char>(src_[line_scan_]);
      if (c == '\n') {
        ++line_;
        line_start_ = line_scan_ + 1;
        column_ = 0;
      } else if ((c & 0xC0) != 0x80) {
        ++column_;
      }
      ++line_scan_;
    }
    return {line_, column_ + 1};
  }

  [[noreturn]] void fail(const std::string& msg, size_t at) { throw JinjaError(msg, position(at)); }

  bool starts_with(size_t at, std::string_view s) const {
    return std::string_view(src_).substr(at, s.size()) == s;
  }

  // Finds the next "{{", "{%" or "{#" at or after `from`; npos if none.
  size_t find_tag(size_t from) const {
    while (true) {
      size_t at = src_.find('{', from);
      if (at == std::string::npos || at + 1 >= src_.size()) return std::string::npos;
      char c = src_[at + 1];
      if (c == '{' || c == '%' || c == '#') return at;
      from = at + 1;
    }
  }

  void emit_text(std::string text, size_t at) {
    if (!text.empty()) tokens_.push_back({TokenType::kText, std::move(text), position(at)});
  }

  // Is `{%[-+]? raw [-]?%}` at `at`? Sets `end` past it.
  bool match_raw_begin(size_t at, size_t& end) {
    size_t i = at + 2;
    if (i < src_.size() && (src_[i] == '-' || src_[i] == '+')) ++i;
    while (i < src_.size() && whitespace_len(src_, i)) i += whitespace_len(src_, i);
    if (!starts_with(i, "raw")) return false;
    i += 3;
    while (i < src_.size() && whitespace_len(src_, i)) i += whitespace_len(src_, i);
    if (starts_with(i, "-%}")) {
      i += 3;
      while (i < src_.size() && whitespace_len(src_, i)) i += whitespace_len(src_, i);
    } else if (starts_with(i, "%}")) {
      i += 2;
    } else {
      return false;
    }
    end = i;
    return true;
  }

  void lex_root() {
    size_t at = find_tag(pos_);
    if (at == std::string::npos) {
      emit_text(src_.substr(pos_), pos_);
      pos_ = src_.size();
      return;
    }
    char kind = src_[at + 1];
    char sign = at + 2 < src_.size() ? src_[at + 2] : '\0';
    if (sign != '-' && sign != '+') sign = '\0';
    std::string text = src_.substr(pos_, at - pos_);
    if (sign == '-') {
      text = rstrip_ws(text);
    } else if (sign != '+' && options_.lstrip_blocks && kind != '{') {
      size_t l_pos = text.rfind('\n');
      l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
      if (l_pos > 0 || line_starting_) {
        bool all_ws = l_pos < text.size();
        for (size_t i = l_pos; i < text.size() && all_ws;) {
          size_t n = whitespace_len(text, i);
          if (!n) all_ws = false;
          i += n ? n : 1;
        }
        if (all_ws) text.resize(l_pos);
      }
    }
    emit_text(std::move(text), pos_);
    size_t raw_end = 0;
    if (kind == '%' && match_raw_begin(at, raw_end)) return lex_raw(at, raw_end);
    pos_ = at + 2 + (sign ? 1 : 0);
    line_starting_ = false;
    if (kind == '#') return lex_comment(at);
    tokens_.push_back(
        {kind == '{' ? TokenType::kVarBegin : TokenType::kBlockBegin, "", position(at)});
    lex_tag(kind == '{');
  }

  void lex_comment(size_t begin) {
    size_t end = src_.find("#}", pos_);
    if (end == std::string::npos) fail("missing end of comment tag", begin);
    pos_ = end + 2;
    if (end > 0 && src_[end - 1] == '-' && end - 1 >= begin + 2) {
      skip_all_whitespace();
    } else if (!(end > 0 && src_[end - 1] == '+') && options_.trim_blocks && pos_ < src_.size() &&
               src_[pos_] == '\n') {
      ++pos_;
    }
    line_starting_ = src_[pos_ - 1] == '\n';
  }

  void lex_raw(size_t begin, size_t body_start) {
    size_t i = body_start;
    while (true) {
      size_t at = src_.find("{%", i);
      if (at == std::string::npos) fail("missing end of raw directive", begin);
      size_t j = at + 2;
      char sign = j < src_.size() ? src_[j] : '\0';
      if (sign == '-' || sign == '+') ++j;
      while (j < src_.size() && whitespace_len(src_, j)) j += whitespace_len(src_, j);
      if (!starts_with(j, "endraw")) {
        i = at + 2;
        continue;
      }
      j += 6;
      while (j < src_.size() && whitespace_len(src_, j)) j += whitespace_len(src_, j);
      bool strip_after = starts_with(j, "-%}");
      if (!strip_after && !starts_with(j, "%}") && !starts_with(j, "+%}")) {
        fail("malformed endraw tag", at);
      }
      std::string body = src_.substr(body_start, at - body_start);
      if (sign == '-') body = rstrip_ws(body);
      emit_text(std::move(body), body_start);
      pos_ = j + (strip_after || src_[j] == '+' ? 3 : 2);
      if (strip_after) {
        skip_all_whitespace();
      } else if (src_[j] != '+' && options_.trim_blocks && pos_ < src_.size() &&
                 src_[pos_] == '\n') {
        ++pos_;
      }
      line_starting_ = src_[pos_ - 1] == '\n';
      return;
    }
  }

  void skip_all_whitespace() {
    while (pos_ < src_.size()) {
      size_t n = whitespace_len(src_, pos_);
      if (!n) break;
      pos_ += n;
    }
  }

  // Tries to end the tag at pos_; returns true and emits the end token if it does.
  bool try_tag_end(bool is_var) {
    if (!brackets_.empty()) return false;
    if (is_var) {
      if (starts_with(pos_, "-}}")) {
        tokens_.push_back({TokenType::kVarEnd, "", position(pos_)});
        pos_ += 3;
        skip_all_whitespace();
      } else if (starts_with(pos_, "}}")) {
        tokens_.push_back({TokenType::kVarEnd, "", position(pos_)});
        pos_ += 2;
      } else {
        return false;
      }
    } else {
      if (starts_with(pos_, "-%}")) {
        tokens_.push_back({TokenType::kBlockEnd, "", position(pos_)});
        pos_ += 3;
        skip_all_whitespace();
      } else if (starts_with(pos_, "+%}")) {
        tokens_.push_back({TokenType::kBlockEnd, "", position(pos_)});
        pos_ += 3;
      } else if (starts_with(pos_, "%}")) {
        tokens_.push_back({TokenType::kBlockEnd, "", position(pos_)});
        pos_ += 2;
        if (options_.trim_blocks && pos_ < src_.size() && src_[pos_] == '\n') ++pos_;
      } else {
        return false;
      }
    }
    line_starting_ = src_[pos_ - 1] == '\n';
    return true;
  }

  void lex_tag(bool is_var) {
    size_t begin = pos_;
    while (true) {
      if (pos_ >= src_.size()) fail(is_var ? "unclosed '{{'" : "unclosed '{%'", begin);
      if (try_tag_end(is_var)) return;
      if (size_t n = whitespace_len(src_, pos_)) {
        pos_ += n;
        continue;
      }
      lex_token();
    }
  }

  void lex_token() {
    char c = src_[pos_];
    size_t start = pos_;
    if (std::isdigit(static_cast<unsigned char>(c))) return lex_number();
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      while (pos_ < src_.size() &&
             (std::isalnum(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_'))
        ++pos_;
      tokens_.push_back({TokenType::kName, src_.substr(start, pos_ - start), position(start)});
      return;
    }
    if (c == '\'' || c == '"') return lex_string();
    static const char* kOps2[] = {"//", "**", "==", "!=", ">=", "<="};
    for (const char* op : kOps2) {
      if (starts_with(pos_, op)) {
        tokens_.push_back({TokenType::kOperator, op, position(start)});
        pos_ += 2;
        return;
      }
    }
    if (std::string_view("+-/*%~[](){}><=.:|,;").find(c) == std::string_view::npos) {
      fail(std::string("unexpected character '") + c + "'", pos_);
    }
    if (c == '(' || c == '[' || c == '{')
      brackets_.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    if (c == ')' || c == ']' || c == '}') {
      if (brackets_.empty()) fail(std::string("unexpected '") + c + "'", pos_);
      if (brackets_.back() != c)
        fail(std::string("unexpected '") + c + "', expected '" + brackets_.back() + "'", pos_);
      brackets_.pop_back();
    }
    tokens_.push_back({TokenType::kOperator, std::string(1, c), position(start)});
    ++pos_;
  }

  void lex_number() {
    size_t start = pos_;
    auto digits = [&] {
      while (pos_ < src_.size() &&
             (std::isdigit(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_'))
        ++pos_;
    };
    digits();
    bool is_float = false;
    if (pos_ + 1 < src_.size() && src_[pos_] == '.' &&
        std::isdigit(static_cast<unsigned char>(src_[pos_ + 1]))) {
      is_float = true;
      ++pos_;
      digits();
    }
    if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      size_t save = pos_++;
      if (pos_ < src_.size() && (src_[pos_] == '+' || src_[pos_] == '-')) ++pos_;
      if (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) {
        is_float = true;
        digits();
      } else {
        pos_ = save;
      }
    }
    std::string lit;
    for (size_t i = start; i < pos_; ++i)
      if (src_[i] != '_') lit.push_back(src_[i]);
    tokens_.push_back({is_float ? TokenType::kFloat : TokenType::kInteger, lit, position(start)});
  }

  void lex_string() {
    size_t start = pos_;
    char quote = src_[pos_++];
    std::string out;
    while (true) {
      if (pos_ >= src_.size()) fail("unterminated string literal", start);
      char c = src_[pos_];
      if (c == quote) {
        ++pos_;
        break;
      }
      if (c != '\\') {
        out.push_back(c);
        ++pos_;
        continue;
      }
      if (pos_ + 1 >= src_.size()) fail("unterminated string literal", start);
      char e = src_[pos_ + 1];
      pos_ += 2;
      switch (e) {
        case '\n':
          break;  // line continuation
        case '\\':
          out.push_back('\\');
          break;
        case '\'':
          out.push_back('\'');
          break;
        case '"':
          out.push_back('"');
          break;
        case 'a':
          out.push_back('\a');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'v':
          out.push_back('\v');
          break;
        case 'x':
          out_hex(out, 2, start);
          break;
        case 'u':
          out_hex(out, 4, start);
          break;
        case 'U':
          out_hex(out, 8, start);
          break;
        case 'N':
          fail("\\N{...} escapes are not supported", start);
        default:
          if (e >= '0' && e <= '7') {
            int v = e - '0';
            for (int k = 0; k < 2 && pos_ < src_.size() && src_[pos_] >= '0' && src_[pos_] <= '7';
                 ++k)
              v = v * 8 + (src_[pos_++] - '0');
            text::append_utf8(out, static_cast<char32_t>(v));
          } else {
            out.push_back('\\');
            out.push_back(e);
          }
      }
    }
    tokens_.push_back({TokenType::kString, std::move(out), position(start)});
  }

  void out_hex(std::string& out, int n, size_t start) {
    if (pos_ + n > src_.size()) fail("truncated \\x/\\u escape", start);
    char32_t v = 0;
    for (int k = 0; k < n; ++k) {
      char h = src_[pos_++];
      if (!std::isxdigit(static_cast<unsigned char>(h))) fail("malformed \\x/\\u escape", start);
      v = v * 16 + static_cast<char32_t>(std::isdigit(static_cast<unsigned char>(h))
                                             ? h - '0'
                                             : (std::tolower(h) - 'a' + 10));
    }
    text::append_utf8(out, v);
  }

  std::string src_;
  LexerOptions options_;
  size_t pos_ = 0;
  bool line_starting_ = true;
  std::vector<char> brackets_;
  std::vector<Token> tokens_;
  // Incremental line/column computation (positions are requested in increasing order mostly).
  size_t line_scan_ = 0;
  size_t line_start_ = 0;
  int line_ = 1;
  int column_ = 0;  // code points from line_start_ to line_scan_
};

}  // namespace

std::vector<Token> tokenize(std::string_view source, const LexerOptions& options) {
  return Lexer(normalize_source(source), options).run();
}

}  // namespace mlxs::jinja
