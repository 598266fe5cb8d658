// The Jinja interpreter: walks a parsed template (ast.h) over a context of Values and returns
// the rendered text. Sandboxed by construction: templates reach only the values and callables
// they are given (no file, network or Python object access), and every render is bounded in
// output size, loop iterations and call depth. Semantics follow Jinja 3.1 with Python 3 types,
// as Hugging Face transformers renders chat templates.
//
// Internal to the jinja module: errors are thrown as JinjaError; Template (template.h) is the
// boundary that turns them into Status values.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "jinja/ast.h"
#include "jinja/value.h"

namespace mlxs::jinja {

struct RenderLimits {
  size_t max_output_bytes = 32u << 20;  // 32 MiB of rendered text
  uint64_t max_iterations = 4'000'000;  // loop iterations + macro calls, all loops together
  int max_call_depth = 64;              // nested macro calls
  // Nested evaluation: expressions inside expressions, blocks inside blocks, across macro calls.
  // The parser bounds one template's nesting (parser.cc); this bounds what macro calls stack on
  // top of it, so a render never overflows the stack.
  int max_eval_depth = 1000;
  uint64_t max_value_bytes = 32u << 20;  // one string, or one list's items (AllocationBudget)
  uint64_t max_alloc_bytes = 1u << 30;   // all strings and lists the render builds together
};

// A variable scope. Loop iterations and macro calls open a child frame; `set` writes to the
// innermost frame, lookups walk outwards, ending in the globals.
struct Frame {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Frame> parent;

  const Value* lookup(const std::string& name) const;
};

class Interpreter {
 public:
  explicit Interpreter(RenderLimits limits = {}) : limits_(limits) {}

  // Renders `body` with `globals` as the outermost scope. Throws JinjaError.
  std::string render(const Body& body, std::shared_ptr<Frame> globals);

  // Evaluates a call of `callee` (builtins and macros alike).
  Value call(const Value& callee, const CallArgs& args);
  // Counts one unit of work against max_iterations (loops, macro calls, filters over lists).
  void count_iteration();

 private:
  enum class Flow { kNormal, kBreak, kContinue };
  class Nested;

  Flow exec_body(const Body& body, const std::shared_ptr<Frame>& frame, std::string& out);
  Flow exec(const Stmt& stmt, const std::shared_ptr<Frame>& frame, std::string& out);
  Flow exec_if(const IfStmt& s, const std::shared_ptr<Frame>& frame, std::string& out);
  void exec_for(const ForStmt& s, const std::shared_ptr<Frame>& frame, std::string& out);
  void exec_set(const SetStmt& s, const std::shared_ptr<Frame>& frame);
  void exec_set_block(const SetBlockStmt& s, const std::shared_ptr<Frame>& frame);
  void exec_call_block(const CallBlockStmt& s, const std::shared_ptr<Frame>& frame,
                       std::string& out);
  void assign(Frame& frame, const std::string& name, const std::string& ns_attr, Value value);
  Value make_macro(const std::string& name, const std::vector<MacroParam>* params, const Body* body,
                   std::shared_ptr<Frame> closure);
  void append(std::string& out, const std::string& text);

  Value eval(const Expr& e, Frame& frame);
  Value eval_inner(const Expr& e, Frame& frame);
  Value eval_binary(const BinaryExpr& e, Frame& frame);
  Value eval_compare(const CompareExpr& e, Frame& frame);
  Value eval_slice(const SliceExpr& e, Frame& frame);
  // Applies a filter chain; `input` replaces the null innermost operand ({% filter %} blocks).
  Value eval_filter(const FilterExpr& e, Frame& frame, const Value* input);
  CallArgs eval_args(const CallArgsExpr& a, Frame& frame);

  RenderLimits limits_;
  uint64_t num_iterations_ = 0;
  int call_depth_ = 0;
  int eval_depth_ = 0;
  size_t output_bytes_ = 0;
};

// Python binary operators on Values ("+", "-", "*", "/", "//", "%", "**"); throws JinjaError
// with Python's message for unsupported operand types.
Value arithmetic(const std::string& op, const Value& a, const Value& b);
// Python `item in container`.
bool contains(const Value& container, const Value& item);
// The items a for loop visits: list items, dict keys, string characters; undefined is empty.
std::vector<Value> iterate(const Value& v);

}  // namespace mlxs::jinja
