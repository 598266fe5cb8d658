// The syntax tree of a Jinja template: expressions and statements, each with its source
// position. Built by the parser (parser.h), walked by the interpreter (interpreter.h); immutable
// after parsing, so one parsed template may be rendered by several threads at once.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "jinja/error.h"
#include "jinja/value.h"

namespace mlxs::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class ExprKind {
  kLiteral,
  kName,
  kList,
  kDict,
  kGetAttr,
  kGetItem,
  kSlice,
  kCall,
  kFilter,
  kTest,
  kUnary,
  kBinary,
  kCompare,
  kCond,
};

struct Expr {
  Expr(ExprKind k, SourcePos p) : kind(k), pos(p) {}
  virtual ~Expr() = default;
  ExprKind kind;
  SourcePos pos;
};

struct LiteralExpr : Expr {
  LiteralExpr(SourcePos p, Value v) : Expr(ExprKind::kLiteral, p), value(std::move(v)) {}
  Value value;
};

struct NameExpr : Expr {
  NameExpr(SourcePos p, std::string n) : Expr(ExprKind::kName, p), name(std::move(n)) {}
  std::string name;
};

struct ListExpr : Expr {  // [a, b] or (a, b)
  ListExpr(SourcePos p, bool t) : Expr(ExprKind::kList, p), is_tuple(t) {}
  std::vector<ExprPtr> items;
  bool is_tuple;
};

struct DictExpr : Expr {
  explicit DictExpr(SourcePos p) : Expr(ExprKind::kDict, p) {}
  std::vector<std::pair<ExprPtr, ExprPtr>> entries;
};

struct GetAttrExpr : Expr {  // obj.name
  GetAttrExpr(SourcePos p, ExprPtr o, std::string n)
      : Expr(ExprKind::kGetAttr, p), object(std::move(o)), name(std::move(n)) {}
  ExprPtr object;
  std::string name;
};

struct GetItemExpr : Expr {  // obj[index]
  GetItemExpr(SourcePos p, ExprPtr o, ExprPtr i)
      : Expr(ExprKind::kGetItem, p), object(std::move(o)), index(std::move(i)) {}
  ExprPtr object, index;
};

struct SliceExpr : Expr {  // obj[start:stop:step]; absent parts are null
  SliceExpr(SourcePos p, ExprPtr o) : Expr(ExprKind::kSlice, p), object(std::move(o)) {}
  ExprPtr object, start, stop, step;
};

struct CallArgsExpr {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keywords;
};

struct CallExpr : Expr {
  CallExpr(SourcePos p, ExprPtr c) : Expr(ExprKind::kCall, p), callee(std::move(c)) {}
  ExprPtr callee;
  CallArgsExpr args;
};

struct FilterExpr : Expr {  // operand|name(args); operand is null inside {% filter %}
  FilterExpr(SourcePos p, ExprPtr o, std::string n)
      : Expr(ExprKind::kFilter, p), operand(std::move(o)), name(std::move(n)) {}
  ExprPtr operand;
  std::string name;
  CallArgsExpr args;
};

struct TestExpr : Expr {  // operand is [not] name(args)
  TestExpr(SourcePos p, ExprPtr o, std::string n, bool neg)
      : Expr(ExprKind::kTest, p), operand(std::move(o)), name(std::move(n)), negated(neg) {}
  ExprPtr operand;
  std::string name;
  bool negated;
  CallArgsExpr args;
};

struct UnaryExpr : Expr {  // op: "not", "-", "+"
  UnaryExpr(SourcePos p, std::string o, ExprPtr e)
      : Expr(ExprKind::kUnary, p), op(std::move(o)), operand(std::move(e)) {}
  std::string op;
  ExprPtr operand;
};

struct BinaryExpr : Expr {  // op: "or", "and", "+", "-", "*", "/", "//", "%", "**", "~"
  BinaryExpr(SourcePos p, std::string o, ExprPtr l, ExprPtr r)
      : Expr(ExprKind::kBinary, p), op(std::move(o)), left(std::move(l)), right(std::move(r)) {}
  std::string op;
  ExprPtr left, right;
};

struct CompareExpr : Expr {  // first op1 e1 op2 e2 ...; ops: == != < <= > >= in notin
  CompareExpr(SourcePos p, ExprPtr f) : Expr(ExprKind::kCompare, p), first(std::move(f)) {}
  ExprPtr first;
  std::vector<std::pair<std::string, ExprPtr>> rest;
};

struct CondExpr : Expr {  // then if cond else otherwise (otherwise may be null: undefined)
  CondExpr(SourcePos p) : Expr(ExprKind::kCond, p) {}
  ExprPtr cond, then, otherwise;
};

enum class StmtKind {
  kText,
  kPrint,
  kIf,
  kFor,
  kSet,
  kSetBlock,
  kMacro,
  kCallBlock,
  kFilterBlock,
  kBreak,
  kContinue,
  kScope,
};

struct Stmt {
  Stmt(StmtKind k, SourcePos p) : kind(k), pos(p) {}
  virtual ~Stmt() = default;
  StmtKind kind;
  SourcePos pos;
};

struct TextStmt : Stmt {
  TextStmt(SourcePos p, std::string t) : Stmt(StmtKind::kText, p), text(std::move(t)) {}
  std::string text;
};

struct PrintStmt : Stmt {
  PrintStmt(SourcePos p, ExprPtr e) : Stmt(StmtKind::kPrint, p), expr(std::move(e)) {}
  ExprPtr expr;
};

struct IfStmt : Stmt {
  explicit IfStmt(SourcePos p) : Stmt(StmtKind::kIf, p) {}
  std::vector<std::pair<ExprPtr, Body>> branches;  // if, elif...
  Body otherwise;
};

struct ForStmt : Stmt {
  explicit ForStmt(SourcePos p) : Stmt(StmtKind::kFor, p) {}
  std::vector<std::string> targets;  // one name, or several to unpack
  bool unpack = false;
  ExprPtr iterable, filter;
  Body body, otherwise;
};

// {% set x = e %}, {% set a, b = e %}, {% set ns.attr = e %}
struct SetStmt : Stmt {
  explicit SetStmt(SourcePos p) : Stmt(StmtKind::kSet, p) {}
  std::vector<std::string> targets;
  bool unpack = false;
  std::string ns_attr;  // non-empty: targets[0] is the namespace, this the attribute
  ExprPtr value;
};

struct SetBlockStmt : Stmt {  // {% set x %}body{% endset %}, optional |filters on the body
  explicit SetBlockStmt(SourcePos p) : Stmt(StmtKind::kSetBlock, p) {}
  std::string target;
  std::string ns_attr;
  ExprPtr filter;  // FilterExpr chain whose innermost operand is null, or null
  Body body;
};

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // may be null
};

struct MacroStmt : Stmt {
  explicit MacroStmt(SourcePos p) : Stmt(StmtKind::kMacro, p) {}
  std::string name;
  std::vector<MacroParam> params;
  Body body;
};

struct CallBlockStmt : Stmt {  // {% call(params) macro(args) %}body{% endcall %}
  explicit CallBlockStmt(SourcePos p) : Stmt(StmtKind::kCallBlock, p) {}
  std::vector<MacroParam> caller_params;
  ExprPtr call;  // a CallExpr
  Body body;
};

struct FilterBlockStmt : Stmt {
  explicit FilterBlockStmt(SourcePos p) : Stmt(StmtKind::kFilterBlock, p) {}
  ExprPtr filter;  // FilterExpr chain whose innermost operand is null
  Body body;
};

struct ScopeStmt : Stmt {  // a body rendered in place: transformers' {% generation %}
  explicit ScopeStmt(SourcePos p) : Stmt(StmtKind::kScope, p) {}
  Body body;
};

struct SimpleStmt : Stmt {  // break, continue
  SimpleStmt(StmtKind k, SourcePos p) : Stmt(k, p) {}
};

}  // namespace mlxs::jinja
