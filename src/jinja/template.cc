#include "jinja/template.h"

#include "jinja/builtins.h"
#include "jinja/parser.h"

namespace mlxs::jinja {
namespace {

// Jinja rejects unknown filters and tests when it compiles a template; so do we.
void check_names(const Expr* e, bool soft);

void check_args(const CallArgsExpr& a, bool soft) {
  for (const ExprPtr& x : a.positional) check_names(x.get(), soft);
  for (const auto& [_, x] : a.keywords) check_names(x.get(), soft);
}

void check_names(const Expr* e, bool soft) {
  if (!e) return;
  switch (e->kind) {
    case ExprKind::kList:
      for (const ExprPtr& x : static_cast<const ListExpr*>(e)->items) check_names(x.get(), soft);
      break;
    case ExprKind::kDict:
      for (const auto& [k, v] : static_cast<const DictExpr*>(e)->entries) {
        check_names(k.get(), soft);
        check_names(v.get(), soft);
      }
      break;
    case ExprKind::kGetAttr:
      check_names(static_cast<const GetAttrExpr*>(e)->object.get(), soft);
      break;
    case ExprKind::kGetItem: {
      auto* g = static_cast<const GetItemExpr*>(e);
      check_names(g->object.get(), soft);
      check_names(g->index.get(), soft);
      break;
    }
    case ExprKind::kSlice: {
      auto* s = static_cast<const SliceExpr*>(e);
      for (const Expr* x : {s->object.get(), s->start.get(), s->stop.get(), s->step.get()})
        check_names(x, soft);
      break;
    }
    case ExprKind::kCall: {
      auto* c = static_cast<const CallExpr*>(e);
      check_names(c->callee.get(), soft);
      check_args(c->args, soft);
      break;
    }
    case ExprKind::kFilter: {
      auto* f = static_cast<const FilterExpr*>(e);
      if (!soft && !has_filter(f->name))
        throw JinjaError("no filter named '" + f->name + "'", f->pos);
      check_names(f->operand.get(), soft);
      check_args(f->args, soft);
      break;
    }
    case ExprKind::kTest: {
      auto* t = static_cast<const TestExpr*>(e);
      if (!soft && !has_test(t->name)) throw JinjaError("no test named '" + t->name + "'", t->pos);
      check_names(t->operand.get(), soft);
      check_args(t->args, soft);
      break;
    }
    case ExprKind::kUnary:
      check_names(static_cast<const UnaryExpr*>(e)->operand.get(), soft);
      break;
    case ExprKind::kBinary: {
      auto* b = static_cast<const BinaryExpr*>(e);
      check_names(b->left.get(), soft);
      check_names(b->right.get(), soft);
      break;
    }
    case ExprKind::kCompare: {
      auto* c = static_cast<const CompareExpr*>(e);
      check_names(c->first.get(), soft);
      for (const auto& [_, x] : c->rest) check_names(x.get(), soft);
      break;
    }
    case ExprKind::kCond: {
      auto* c = static_cast<const CondExpr*>(e);
      // Like Jinja's soft frames: a filter or test inside an inline if is checked when it runs.
      for (const Expr* x : {c->cond.get(), c->then.get(), c->otherwise.get()}) check_names(x, true);
      break;
    }
    default:
      break;
  }
}

void check_body(const Body& body, bool soft);

void check_params(const std::vector<MacroParam>& params) {
  for (const MacroParam& p : params) check_names(p.default_value.get(), false);
}

// `soft`: inside an {% if %}, where Jinja defers the unknown-filter error to run time.
void check_stmt(const Stmt& s, bool soft) {
  switch (s.kind) {
    case StmtKind::kPrint:
      check_names(static_cast<const PrintStmt&>(s).expr.get(), soft);
      break;
    case StmtKind::kIf: {
      const auto& i = static_cast<const IfStmt&>(s);
      for (const auto& [c, b] : i.branches) {
        check_names(c.get(), true);
        check_body(b, true);
      }
      check_body(i.otherwise, true);
      break;
    }
    case StmtKind::kFor: {
      const auto& f = static_cast<const ForStmt&>(s);
      check_names(f.iterable.get(), soft);
      check_names(f.filter.get(), false);
      check_body(f.body, false);
      check_body(f.otherwise, soft);
      break;
    }
    case StmtKind::kSet:
      check_names(static_cast<const SetStmt&>(s).value.get(), soft);
      break;
    case StmtKind::kSetBlock: {
      const auto& b = static_cast<const SetBlockStmt&>(s);
      check_names(b.filter.get(), soft);
      check_body(b.body, false);
      break;
    }
    case StmtKind::kMacro: {
      const auto& m = static_cast<const MacroStmt&>(s);
      check_params(m.params);
      check_body(m.body, false);
      break;
    }
    case StmtKind::kCallBlock: {
      const auto& c = static_cast<const CallBlockStmt&>(s);
      check_params(c.caller_params);
      check_names(c.call.get(), soft);
      check_body(c.body, false);
      break;
    }
    case StmtKind::kFilterBlock: {
      const auto& f = static_cast<const FilterBlockStmt&>(s);
      check_names(f.filter.get(), soft);
      check_body(f.body, false);
      break;
    }
    case StmtKind::kScope:
      check_body(static_cast<const ScopeStmt&>(s).body, false);
      break;
    default:
      break;
  }
}

void check_body(const Body& body, bool soft) {
  for (const StmtPtr& s : body) check_stmt(*s, soft);
}

}  // namespace

std::string format_error(const JinjaError& e) {
  if (e.pos().line == 0) return e.what();
  return "line " + std::to_string(e.pos().line) + ", column " + std::to_string(e.pos().column) +
         ": " + e.what();
}

Result<Template> Template::parse(std::string_view source) {
  if (source.size() > kMaxTemplateBytes) {
    return error(ErrorCode::kParseError,
                 "template syntax error: the template is " + std::to_string(source.size()) +
                     " bytes, more than the limit of " + std::to_string(kMaxTemplateBytes));
  }
  try {
    auto body = std::make_shared<Body>(parse_template(source));
    check_body(*body, false);
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
  } catch (const std::bad_alloc&) {
    return error(ErrorCode::kInvalidRequest, "template render error: out of memory");
  } catch (const std::length_error& e) {
    return error(ErrorCode::kInvalidRequest, std::string("template render error: ") + e.what());
  }
}

}  // namespace mlxs::jinja
