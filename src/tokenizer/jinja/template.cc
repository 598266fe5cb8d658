#include "tokenizer/jinja/template.h"

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/parser.h"

namespace mlxs::jinja {
namespace {

// Jinja rejects unknown filters and tests when it compiles a template; so do we.
void check_names(const Expr* e);

void check_args(const CallArgsExpr& a) {
  for (const ExprPtr& x : a.positional) check_names(x.get());
  for (const auto& [_, x] : a.keywords) check_names(x.get());
}

void check_names(const Expr* e) {
  if (!e) return;
  switch (e->kind) {
    case ExprKind::kList:
      for (const ExprPtr& x : static_cast<const ListExpr*>(e)->items) check_names(x.get());
      break;
    case ExprKind::kDict:
      for (const auto& [k, v] : static_cast<const DictExpr*>(e)->entries) {
        check_names(k.get());
        check_names(v.get());
      }
      break;
    case ExprKind::kGetAttr: check_names(static_cast<const GetAttrExpr*>(e)->object.get()); break;
    case ExprKind::kGetItem: {
      auto* g = static_cast<const GetItemExpr*>(e);
      check_names(g->object.get());
      check_names(g->index.get());
      break;
    }
    case ExprKind::kSlice: {
      auto* s = static_cast<const SliceExpr*>(e);
      for (const Expr* x : {s->object.get(), s->start.get(), s->stop.get(), s->step.get()}) check_names(x);
      break;
    }
    case ExprKind::kCall: {
      auto* c = static_cast<const CallExpr*>(e);
      check_names(c->callee.get());
      check_args(c->args);
      break;
    }
    case ExprKind::kFilter: {
      auto* f = static_cast<const FilterExpr*>(e);
      if (!has_filter(f->name)) throw JinjaError("no filter named '" + f->name + "'", f->pos);
      check_names(f->operand.get());
      check_args(f->args);
      break;
    }
    case ExprKind::kTest: {
      auto* t = static_cast<const TestExpr*>(e);
      if (!has_test(t->name)) throw JinjaError("no test named '" + t->name + "'", t->pos);
      check_names(t->operand.get());
      check_args(t->args);
      break;
    }
    case ExprKind::kUnary: check_names(static_cast<const UnaryExpr*>(e)->operand.get()); break;
    case ExprKind::kBinary: {
      auto* b = static_cast<const BinaryExpr*>(e);
      check_names(b->left.get());
      check_names(b->right.get());
      break;
    }
    case ExprKind::kCompare: {
      auto* c = static_cast<const CompareExpr*>(e);
      check_names(c->first.get());
      for (const auto& [_, x] : c->rest) check_names(x.get());
      break;
    }
    case ExprKind::kCond: {
      auto* c = static_cast<const CondExpr*>(e);
      for (const Expr* x : {c->cond.get(), c->then.get(), c->otherwise.get()}) check_names(x);
      break;
    }
    default: break;
  }
}

void check_body(const Body& body);

void check_params(const std::vector<MacroParam>& params) {
  for (const MacroParam& p : params) check_names(p.default_value.get());
}

void check_stmt(const Stmt& s) {
  switch (s.kind) {
    case StmtKind::kPrint: check_names(static_cast<const PrintStmt&>(s).expr.get()); break;
    case StmtKind::kIf: {
      const auto& i = static_cast<const IfStmt&>(s);
      for (const auto& [c, b] : i.branches) {
        check_names(c.get());
        check_body(b);
      }
      check_body(i.otherwise);
      break;
    }
    case StmtKind::kFor: {
      const auto& f = static_cast<const ForStmt&>(s);
      check_names(f.iterable.get());
      check_names(f.filter.get());
      check_body(f.body);
      check_body(f.otherwise);
      break;
    }
    case StmtKind::kSet: check_names(static_cast<const SetStmt&>(s).value.get()); break;
    case StmtKind::kSetBlock: {
      const auto& b = static_cast<const SetBlockStmt&>(s);
      check_names(b.filter.get());
      check_body(b.body);
      break;
    }
    case StmtKind::kMacro: {
      const auto& m = static_cast<const MacroStmt&>(s);
      check_params(m.params);
      check_body(m.body);
      break;
    }
    case StmtKind::kCallBlock: {
      const auto& c = static_cast<const CallBlockStmt&>(s);
      check_params(c.caller_params);
      check_names(c.call.get());
      check_body(c.body);
      break;
    }
    case StmtKind::kFilterBlock: {
      const auto& f = static_cast<const FilterBlockStmt&>(s);
      check_names(f.filter.get());
      check_body(f.body);
      break;
    }
    case StmtKind::kScope: check_body(static_cast<const ScopeStmt&>(s).body); break;
    default: break;
  }
}

void check_body(const Body& body) {
  for (const StmtPtr& s : body) check_stmt(*s);
}

}  // namespace

std::string format_error(const JinjaError& e) {
  if (e.pos().line == 0) return e.what();
  return "line " + std::to_string(e.pos().line) + ", column " + std::to_string(e.pos().column) + ": " + e.what();
}

Result<Template> Template::parse(std::string_view source) {
  try {
    auto body = std::make_shared<Body>(parse_template(source));
    check_body(*body);
    return Template(std::move(body));
  } catch (const JinjaError& e) {
    return error(ErrorCode::kParseError, "template syntax error: " + format_error(e));
  }
}

Result<std::string> Template::render(const std::unordered_map<std::string, Value>& globals,
                                     const RenderLimits& limits) const {
  auto builtins = std::make_shared<Frame>();
  install_builtin_globals(*builtins);
  auto scope = std::make_shared<Frame>();
  scope->parent = builtins;
  scope->vars = globals;
  try {
    Interpreter in(limits);
    return in.render(*body_, scope);
  } catch (const JinjaError& e) {
    return error(ErrorCode::kInvalidRequest, "template render error: " + format_error(e));
  }
}

}  // namespace mlxs::jinja
