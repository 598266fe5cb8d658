#include "jinja/parser.h"

#include <charconv>
#include <cstdlib>
#include <initializer_list>

namespace mlxs::jinja {
namespace {

// Deepest nesting the parser accepts. Every recursive descent (a statement body, a
// sub-expression, a unary operator) and every link of an operator, filter, test or postfix chain
// takes one level, so the syntax tree is at most about 2 x kMaxNesting nodes tall: neither the
// parser, nor the interpreter's recursive walk, nor the tree's destructor can overflow the stack
// (5,000 nested parentheses or 100,000 chained filters used to crash the server at start).
// Real chat templates nest fewer than 20 levels.
constexpr int kMaxNesting = 200;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  Body parse_all() {
    Body body = parse_body({});
    if (cur().type != TokenType::kEof) fail("unexpected tag");
    return body;
  }

 private:
  // Restores the nesting level when the parse function that opened it returns.
  class Nesting {
   public:
    explicit Nesting(Parser& p) : p_(p), saved_(p.depth_) {}
    ~Nesting() { p_.depth_ = saved_; }
    Nesting(const Nesting&) = delete;
    Nesting& operator=(const Nesting&) = delete;
    // One level deeper; fails past kMaxNesting.
    void deeper() {
      if (++p_.depth_ > kMaxNesting) {
        p_.fail("template nests deeper than " + std::to_string(kMaxNesting) +
                " levels (blocks, parentheses, operator or filter chains)");
      }
    }

   private:
    Parser& p_;
    int saved_;
  };

  const Token& cur() const { return toks_[i_]; }
  const Token& peek(size_t k = 1) const { return toks_[std::min(i_ + k, toks_.size() - 1)]; }
  void advance() {
    if (i_ + 1 < toks_.size()) ++i_;
  }
  [[noreturn]] void fail(const std::string& msg) const { throw JinjaError(msg, cur().pos); }
  [[noreturn]] void fail_at(const std::string& msg, SourcePos pos) const {
    throw JinjaError(msg, pos);
  }

  bool is_op(std::string_view op) const {
    return cur().type == TokenType::kOperator && cur().value == op;
  }
  bool is_name(std::string_view n) const {
    return cur().type == TokenType::kName && cur().value == n;
  }
  bool skip_op(std::string_view op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(std::string_view n) {
    if (!is_name(n)) return false;
    advance();
    return true;
  }
  void expect_op(std::string_view op) {
    if (!skip_op(op)) fail("expected '" + std::string(op) + "', got " + describe(cur()));
  }
  std::string expect_name() {
    if (cur().type != TokenType::kName) fail("expected a name, got " + describe(cur()));
    std::string n = cur().value;
    advance();
    return n;
  }
  void expect_block_end() {
    if (cur().type != TokenType::kBlockEnd)
      fail("expected end of statement '%}', got " + describe(cur()));
    advance();
  }
  static std::string describe(const Token& t) {
    switch (t.type) {
      case TokenType::kEof:
        return "end of template";
      case TokenType::kBlockEnd:
        return "'%}'";
      case TokenType::kVarEnd:
        return "'}}'";
      case TokenType::kText:
        return "template text";
      case TokenType::kString:
        return "string literal";
      default:
        return "'" + t.value + "'";
    }
  }

  // ---- statements -------------------------------------------------------------------------

  // Parses until a `{% name %}` with name in `ends`; leaves cur() at that name.
  Body parse_body(std::initializer_list<std::string_view> ends) {
    Nesting nesting(*this);
    nesting.deeper();
    Body body;
    while (true) {
      const Token& t = cur();
      switch (t.type) {
        case TokenType::kEof:
          if (ends.size() > 0)
            fail("unexpected end of template, expected '" + std::string(*ends.begin()) + "'");
          return body;
        case TokenType::kText:
          body.push_back(std::make_unique<TextStmt>(t.pos, t.value));
          advance();
          break;
        case TokenType::kVarBegin: {
          SourcePos pos = t.pos;
          advance();
          ExprPtr e = parse_tuple(true);
          if (cur().type != TokenType::kVarEnd) fail("expected '}}', got " + describe(cur()));
          advance();
          body.push_back(std::make_unique<PrintStmt>(pos, std::move(e)));
          break;
        }
        case TokenType::kBlockBegin: {
          advance();
          if (cur().type != TokenType::kName)
            fail("expected a statement name, got " + describe(cur()));
          for (auto e : ends)
            if (cur().value == e) return body;
          body.push_back(parse_statement());
          break;
        }
        default:
          fail("unexpected " + describe(t));
      }
    }
  }

  void expect_end_tag(std::string_view name) {
    if (!skip_name(name)) fail("expected '" + std::string(name) + "'");
    expect_block_end();
  }

  StmtPtr parse_statement() {
    const Token& t = cur();
    SourcePos pos = t.pos;
    const std::string& n = t.value;
    if (n == "if") return parse_if();
    if (n == "for") return parse_for();
    if (n == "set") return parse_set();
    if (n == "macro") return parse_macro();
    if (n == "call") return parse_call_block();
    if (n == "filter") return parse_filter_block();
    if (n == "generation") {
      advance();
      expect_block_end();
      auto s = std::make_unique<ScopeStmt>(pos);
      s->body = parse_body({"endgeneration"});
      expect_end_tag("endgeneration");
      return s;
    }
    if (n == "break" || n == "continue") {
      if (loop_depth_ == 0) fail("'" + n + "' outside of a loop");
      StmtKind k = n == "break" ? StmtKind::kBreak : StmtKind::kContinue;
      advance();
      expect_block_end();
      return std::make_unique<SimpleStmt>(k, pos);
    }
    static const char* kSandboxed[] = {"include", "import", "from", "extends", "block"};
    for (const char* s : kSandboxed)
      if (n == s) fail("unsupported tag '" + n + "': templates cannot load other templates");
    fail("unknown or unsupported tag '" + n + "'");
  }

  StmtPtr parse_if() {
    auto s = std::make_unique<IfStmt>(cur().pos);
    advance();
    while (true) {
      ExprPtr cond = parse_tuple(false);
      expect_block_end();
      Body body = parse_body({"elif", "else", "endif"});
      s->branches.emplace_back(std::move(cond), std::move(body));
      if (skip_name("elif")) continue;
      if (skip_name("else")) {
        expect_block_end();
        s->otherwise = parse_body({"endif"});
      }
      expect_end_tag("endif");
      return s;
    }
  }

  void parse_targets(std::vector<std::string>& names, bool& unpack) {
    bool paren = skip_op("(");
    names.push_back(expect_name());
    while (skip_op(",")) {
      unpack = true;
      if (cur().type != TokenType::kName) break;
      names.push_back(expect_name());
    }
    if (paren) {
      unpack = true;
      expect_op(")");
    }
  }

  StmtPtr parse_for() {
    auto s = std::make_unique<ForStmt>(cur().pos);
    advance();
    parse_targets(s->targets, s->unpack);
    if (!skip_name("in")) fail("expected 'in' in for loop, got " + describe(cur()));
    s->iterable = parse_tuple(false);
    if (is_name("recursive")) fail("recursive for loops are not supported");
    if (skip_name("if")) s->filter = parse_expression(true);
    expect_block_end();
    ++loop_depth_;
    s->body = parse_body({"endfor", "else"});
    --loop_depth_;
    if (skip_name("else")) {
      expect_block_end();
      s->otherwise = parse_body({"endfor"});
    }
    expect_end_tag("endfor");
    return s;
  }

  StmtPtr parse_set() {
    SourcePos pos = cur().pos;
    advance();
    std::vector<std::string> names;
    bool unpack = false;
    std::string attr;
    if (cur().type == TokenType::kName && peek().type == TokenType::kOperator &&
        peek().value == ".") {
      names.push_back(expect_name());
      advance();
      attr = expect_name();
    } else {
      parse_targets(names, unpack);
    }
    if (skip_op("=")) {
      auto s = std::make_unique<SetStmt>(pos);
      s->targets = std::move(names);
      s->unpack = unpack;
      s->ns_attr = attr;
      s->value = parse_tuple(true);
      expect_block_end();
      return s;
    }
    if (unpack) fail("a block set assigns one name");
    auto s = std::make_unique<SetBlockStmt>(pos);
    s->target = names[0];
    s->ns_attr = attr;
    if (is_op("|")) s->filter = parse_filters(nullptr);
    expect_block_end();
    s->body = parse_body({"endset"});
    expect_end_tag("endset");
    return s;
  }

  std::vector<MacroParam> parse_params() {
    std::vector<MacroParam> params;
    expect_op("(");
    while (!is_op(")")) {
      if (!params.empty()) expect_op(",");
      if (is_op(")")) break;
      MacroParam p;
      p.name = expect_name();
      if (skip_op("=")) p.default_value = parse_expression(true);
      params.push_back(std::move(p));
    }
    expect_op(")");
    return params;
  }

  StmtPtr parse_macro() {
    auto s = std::make_unique<MacroStmt>(cur().pos);
    advance();
    s->name = expect_name();
    s->params = parse_params();
    expect_block_end();
    int saved = loop_depth_;
    loop_depth_ = 0;
    s->body = parse_body({"endmacro"});
    loop_depth_ = saved;
    expect_end_tag("endmacro");
    return s;
  }

  StmtPtr parse_call_block() {
    auto s = std::make_unique<CallBlockStmt>(cur().pos);
    advance();
    if (is_op("(")) s->caller_params = parse_params();
    s->call = parse_expression(true);
    if (s->call->kind != ExprKind::kCall)
      fail_at("expected a macro call in call block", s->call->pos);
    expect_block_end();
    s->body = parse_body({"endcall"});
    expect_end_tag("endcall");
    return s;
  }

  StmtPtr parse_filter_block() {
    auto s = std::make_unique<FilterBlockStmt>(cur().pos);
    advance();
    s->filter = parse_filter_chain(nullptr, /*first_inline=*/true);
    expect_block_end();
    s->body = parse_body({"endfilter"});
    expect_end_tag("endfilter");
    return s;
  }

  // ---- expressions ------------------------------------------------------------------------

  bool at_tuple_end() const {
    const Token& t = cur();
    return t.type == TokenType::kVarEnd || t.type == TokenType::kBlockEnd ||
           (t.type == TokenType::kOperator && t.value == ")") ||
           (t.type == TokenType::kName && t.value == "recursive");
  }

  ExprPtr parse_tuple(bool with_cond, bool explicit_parens = false) {
    SourcePos pos = cur().pos;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (at_tuple_end()) break;
      items.push_back(parse_expression(with_cond));
      if (is_op(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parens) fail("expected an expression, got " + describe(cur()));
    }
    auto t = std::make_unique<ListExpr>(pos, true);
    t->items = std::move(items);
    return t;
  }

  ExprPtr parse_expression(bool with_cond) {
    Nesting nesting(*this);
    nesting.deeper();
    return with_cond ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    Nesting nesting(*this);
    ExprPtr e = parse_or();
    while (is_name("if")) {
      nesting.deeper();
      auto c = std::make_unique<CondExpr>(cur().pos);
      advance();
      c->cond = parse_or();
      if (skip_name("else")) c->otherwise = parse_condexpr();
      c->then = std::move(e);
      e = std::move(c);
    }
    return e;
  }

  ExprPtr binary(std::string op, ExprPtr l, ExprPtr r, SourcePos pos) {
    return std::make_unique<BinaryExpr>(pos, std::move(op), std::move(l), std::move(r));
  }

  ExprPtr parse_or() {
    Nesting nesting(*this);
    ExprPtr e = parse_and();
    while (is_name("or")) {
      nesting.deeper();
      SourcePos pos = cur().pos;
      advance();
      e = binary("or", std::move(e), parse_and(), pos);
    }
    return e;
  }

  ExprPtr parse_and() {
    Nesting nesting(*this);
    ExprPtr e = parse_not();
    while (is_name("and")) {
      nesting.deeper();
      SourcePos pos = cur().pos;
      advance();
      e = binary("and", std::move(e), parse_not(), pos);
    }
    return e;
  }

  ExprPtr parse_not() {
    Nesting nesting(*this);
    if (is_name("not")) {
      nesting.deeper();
      SourcePos pos = cur().pos;
      advance();
      return std::make_unique<UnaryExpr>(pos, "not", parse_not());
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    SourcePos pos = cur().pos;
    ExprPtr first = parse_math1();
    std::unique_ptr<CompareExpr> cmp;
    while (true) {
      std::string op;
      if (cur().type == TokenType::kOperator &&
          (cur().value == "==" || cur().value == "!=" || cur().value == "<" ||
           cur().value == "<=" || cur().value == ">" || cur().value == ">=")) {
        op = cur().value;
        advance();
      } else if (is_name("in")) {
        op = "in";
        advance();
      } else if (is_name("not") && peek().type == TokenType::kName && peek().value == "in") {
        op = "notin";
        advance();
        advance();
      } else {
        break;
      }
      if (!cmp) cmp = std::make_unique<CompareExpr>(pos, std::move(first));
      cmp->rest.emplace_back(op, parse_math1());
    }
    if (cmp) return cmp;
    return first;
  }

  ExprPtr parse_math1() {
    Nesting nesting(*this);
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      nesting.deeper();
      std::string op = cur().value;
      SourcePos pos = cur().pos;
      advance();
      e = binary(op, std::move(e), parse_concat(), pos);
    }
    return e;
  }

  ExprPtr parse_concat() {
    Nesting nesting(*this);
    ExprPtr e = parse_math2();
    while (is_op("~")) {
      nesting.deeper();
      SourcePos pos = cur().pos;
      advance();
      e = binary("~", std::move(e), parse_math2(), pos);
    }
    return e;
  }

  ExprPtr parse_math2() {
    Nesting nesting(*this);
    ExprPtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      nesting.deeper();
      std::string op = cur().value;
      SourcePos pos = cur().pos;
      advance();
      e = binary(op, std::move(e), parse_pow(), pos);
    }
    return e;
  }

  ExprPtr parse_pow() {
    Nesting nesting(*this);
    ExprPtr e = parse_unary(true);
    while (is_op("**")) {
      nesting.deeper();
      SourcePos pos = cur().pos;
      advance();
      e = binary("**", std::move(e), parse_unary(true), pos);
    }
    return e;
  }

  ExprPtr parse_unary(bool with_filter) {
    Nesting nesting(*this);
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      nesting.deeper();
      std::string op = cur().value;
      SourcePos pos = cur().pos;
      advance();
      e = std::make_unique<UnaryExpr>(pos, op, parse_unary(false));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    SourcePos pos = t.pos;
    switch (t.type) {
      case TokenType::kName: {
        std::string n = t.value;
        advance();
        if (n == "true" || n == "True")
          return std::make_unique<LiteralExpr>(pos, Value::boolean(true));
        if (n == "false" || n == "False")
          return std::make_unique<LiteralExpr>(pos, Value::boolean(false));
        if (n == "none" || n == "None") return std::make_unique<LiteralExpr>(pos, Value::none());
        return std::make_unique<NameExpr>(pos, n);
      }
      case TokenType::kString: {
        std::string s;
        while (cur().type == TokenType::kString) {
          s += cur().value;
          advance();
        }
        return std::make_unique<LiteralExpr>(pos, Value::string(std::move(s)));
      }
      case TokenType::kInteger: {
        int64_t v = 0;
        auto r = std::from_chars(t.value.data(), t.value.data() + t.value.size(), v);
        if (r.ec != std::errc()) fail("integer literal out of range: " + t.value);
        advance();
        return std::make_unique<LiteralExpr>(pos, Value::integer(v));
      }
      case TokenType::kFloat: {
        double v = std::strtod(t.value.c_str(), nullptr);
        advance();
        return std::make_unique<LiteralExpr>(pos, Value::number(v));
      }
      case TokenType::kOperator:
        if (t.value == "(") {
          advance();
          ExprPtr e = parse_tuple(true, true);
          expect_op(")");
          return e;
        }
        if (t.value == "[") return parse_list();
        if (t.value == "{") return parse_dict();
        break;
      default:
        break;
    }
    fail("unexpected " + describe(t));
  }

  ExprPtr parse_list() {
    auto l = std::make_unique<ListExpr>(cur().pos, false);
    expect_op("[");
    while (!is_op("]")) {
      if (!l->items.empty()) expect_op(",");
      if (is_op("]")) break;
      l->items.push_back(parse_expression(true));
    }
    expect_op("]");
    return l;
  }

  ExprPtr parse_dict() {
    auto d = std::make_unique<DictExpr>(cur().pos);
    expect_op("{");
    while (!is_op("}")) {
      if (!d->entries.empty()) expect_op(",");
      if (is_op("}")) break;
      ExprPtr k = parse_expression(true);
      expect_op(":");
      ExprPtr v = parse_expression(true);
      d->entries.emplace_back(std::move(k), std::move(v));
    }
    expect_op("}");
    return d;
  }

  ExprPtr parse_postfix(ExprPtr e) {
    Nesting nesting(*this);
    while (true) {
      if (is_op(".") || is_op("[") || is_op("(")) nesting.deeper();
      if (is_op(".")) {
        SourcePos pos = cur().pos;
        advance();
        if (cur().type == TokenType::kName) {
          e = std::make_unique<GetAttrExpr>(pos, std::move(e), cur().value);
          advance();
        } else if (cur().type == TokenType::kInteger) {
          auto idx = std::make_unique<LiteralExpr>(cur().pos,
                                                   Value::integer(std::atoll(cur().value.c_str())));
          advance();
          e = std::make_unique<GetItemExpr>(pos, std::move(e), std::move(idx));
        } else {
          fail("expected an attribute name after '.'");
        }
      } else if (is_op("[")) {
        e = parse_subscript(std::move(e));
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr obj) {
    SourcePos pos = cur().pos;
    expect_op("[");
    ExprPtr start;
    if (!is_op(":")) {
      start = parse_expression(true);
      if (is_op("]")) {
        advance();
        return std::make_unique<GetItemExpr>(pos, std::move(obj), std::move(start));
      }
      if (is_op(",")) fail("tuple subscripts are not supported");
    }
    auto s = std::make_unique<SliceExpr>(pos, std::move(obj));
    s->start = std::move(start);
    expect_op(":");
    if (!is_op("]") && !is_op(":")) s->stop = parse_expression(true);
    if (skip_op(":")) {
      if (!is_op("]")) s->step = parse_expression(true);
    }
    expect_op("]");
    return s;
  }

  void parse_call_args(CallArgsExpr& args) {
    expect_op("(");
    bool first = true;
    while (!is_op(")")) {
      if (!first) expect_op(",");
      first = false;
      if (is_op(")")) break;
      if (is_op("*") || is_op("**")) fail("*args and **kwargs in calls are not supported");
      if (cur().type == TokenType::kName && peek().type == TokenType::kOperator &&
          peek().value == "=") {
        std::string key = cur().value;
        advance();
        advance();
        args.keywords.emplace_back(key, parse_expression(true));
      } else {
        if (!args.keywords.empty()) fail("positional argument after keyword argument");
        args.positional.push_back(parse_expression(true));
      }
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto c = std::make_unique<CallExpr>(cur().pos, std::move(callee));
    parse_call_args(c->args);
    return c;
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    Nesting nesting(*this);
    while (true) {
      if (is_op("|") || is_name("is") || is_op("(")) nesting.deeper();
      if (is_op("|")) {
        e = parse_filters(std::move(e));
      } else if (is_name("is")) {
        e = parse_test(std::move(e));
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  std::string dotted_name() {
    std::string n = expect_name();
    while (is_op(".") && peek().type == TokenType::kName) {
      advance();
      n.push_back('.');
      n += expect_name();
    }
    return n;
  }

  ExprPtr parse_filters(ExprPtr e) { return parse_filter_chain(std::move(e), false); }

  ExprPtr parse_filter_chain(ExprPtr e, bool first_inline) {
    Nesting nesting(*this);
    while (is_op("|") || first_inline) {
      nesting.deeper();
      if (!first_inline) advance();
      first_inline = false;
      SourcePos pos = cur().pos;
      auto f = std::make_unique<FilterExpr>(pos, std::move(e), dotted_name());
      if (is_op("(")) parse_call_args(f->args);
      e = std::move(f);
    }
    return e;
  }

  ExprPtr parse_test(ExprPtr e) {
    SourcePos pos = cur().pos;
    advance();  // is
    bool negated = skip_name("not");
    std::string name = dotted_name();
    auto t = std::make_unique<TestExpr>(pos, std::move(e), name, negated);
    const Token& c = cur();
    if (is_op("(")) {
      parse_call_args(t->args);
    } else if ((c.type == TokenType::kName || c.type == TokenType::kString ||
                c.type == TokenType::kInteger || c.type == TokenType::kFloat || is_op("[") ||
                is_op("{")) &&
               !(is_name("else") || is_name("or") || is_name("and"))) {
      if (is_name("is")) fail("you cannot chain multiple tests with is");
      t->args.positional.push_back(parse_postfix(parse_primary()));
    }
    return t;
  }

  std::vector<Token> toks_;
  size_t i_ = 0;
  int loop_depth_ = 0;
  int depth_ = 0;  // nesting level, see kMaxNesting
};

}  // namespace

Body parse_template(std::string_view source) {
  return Parser(tokenize(source)).parse_all();
}

}  // namespace mlxs::jinja
