#include "jinja/interpreter.h"

#include <cmath>
#include <limits>

#include "jinja/builtins.h"
#include "jinja/text.h"

namespace mlxs::jinja {

const Value* Frame::lookup(const std::string& name) const {
  for (const Frame* f = this; f; f = f->parent.get()) {
    auto it = f->vars.find(name);
    if (it != f->vars.end()) return &it->second;
  }
  return nullptr;
}

namespace {

[[noreturn]] void undefined_error(const Value& v) {
  throw JinjaError(v.undefined_hint().empty() ? "value is undefined"
                                              : "'" + v.undefined_hint() + "' is undefined");
}

[[noreturn]] void operand_error(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  if (op == "+" && a.is_string()) {
    throw JinjaError("can only concatenate str (not \"" + b.type_name() + "\") to str");
  }
  throw JinjaError("unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" +
                   b.type_name() + "'");
}

bool is_int_like(const Value& v) {
  return v.is_int() || v.is_bool();
}

void check_overflow(bool overflow) {
  if (overflow) throw JinjaError("integer overflow (Python's big integers are not supported)");
}

Value repeat(const Value& seq, int64_t n) {
  if (n <= 0) return seq.is_string() ? Value::string("") : Value::list({}, seq.list_data().kind);
  if (seq.is_string()) {
    if (seq.as_string().empty()) return Value::string("");
    check_value_size(repeated_size(seq.as_string().size(), uint64_t(n)));
    std::string out;
    for (int64_t i = 0; i < n; ++i) out += seq.as_string();
    return Value::string(std::move(out));
  }
  if (seq.items().empty()) return Value::list({}, seq.list_data().kind);
  check_value_size(repeated_size(seq.items().size() * sizeof(Value), uint64_t(n)));
  std::vector<Value> out;
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq.items().begin(), seq.items().end());
  return Value::list(std::move(out), seq.list_data().kind);
}

}  // namespace

Value arithmetic(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  bool nums = a.is_number() && b.is_number();
  bool ints = is_int_like(a) && is_int_like(b);
  if (op == "+") {
    if (ints) {
      int64_t r;
      check_overflow(__builtin_add_overflow(a.as_int(), b.as_int(), &r));
      return Value::integer(r);
    }
    if (nums) return Value::number(a.as_double() + b.as_double());
    if (a.is_string() && b.is_string()) {
      if (!a.is_safe() && !b.is_safe()) return Value::string(a.as_string() + b.as_string());
      return Value::safe_string((a.is_safe() ? a.as_string() : html_escape(a.as_string())) +
                                (b.is_safe() ? b.as_string() : html_escape(b.as_string())));
    }
    if (a.is_list() && b.is_list() &&
        (a.list_data().kind == ListKind::kTuple) == (b.list_data().kind == ListKind::kTuple) &&
        a.list_data().kind != ListKind::kGenerator && b.list_data().kind != ListKind::kGenerator) {
      std::vector<Value> out = a.items();
      out.insert(out.end(), b.items().begin(), b.items().end());
      return Value::list(std::move(out), a.list_data().kind);
    }
  } else if (op == "-") {
    if (ints) {
      int64_t r;
      check_overflow(__builtin_sub_overflow(a.as_int(), b.as_int(), &r));
      return Value::integer(r);
    }
    if (nums) return Value::number(a.as_double() - b.as_double());
  } else if (op == "*") {
    if (ints) {
      int64_t r;
      check_overflow(__builtin_mul_overflow(a.as_int(), b.as_int(), &r));
      return Value::integer(r);
    }
    if (nums) return Value::number(a.as_double() * b.as_double());
    if ((a.is_string() || a.is_list()) && is_int_like(b)) return repeat(a, b.as_int());
    if ((b.is_string() || b.is_list()) && is_int_like(a)) return repeat(b, a.as_int());
  } else if (op == "/") {
    if (nums) {
      if (b.as_double() == 0) throw JinjaError("division by zero");
      return Value::number(a.as_double() / b.as_double());
    }
  } else if (op == "//" || op == "%") {
    if (ints) {
      int64_t x = a.as_int(), y = b.as_int();
      if (y == 0) throw JinjaError("integer division or modulo by zero");
      int64_t q = x / y, r = x % y;
      if (r != 0 && ((r < 0) != (y < 0))) {
        --q;
        r += y;
      }
      return Value::integer(op == "//" ? q : r);
    }
    if (nums) {
      double x = a.as_double(), y = b.as_double();
      if (y == 0) throw JinjaError("float division or modulo by zero");
      double m = std::fmod(x, y);
      if (m != 0 && ((m < 0) != (y < 0))) m += y;
      return Value::number(op == "//" ? std::floor((x - m) / y) : m);
    }
    if (op == "%" && a.is_string())
      throw JinjaError("printf-style '%' string formatting is not supported");
  } else if (op == "**") {
    if (ints && b.as_int() >= 0) {
      int64_t r = 1, base = a.as_int();
      for (int64_t i = 0; i < b.as_int(); ++i) check_overflow(__builtin_mul_overflow(r, base, &r));
      return Value::integer(r);
    }
    if (nums) return Value::number(std::pow(a.as_double(), b.as_double()));
  }
  operand_error(op, a, b);
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Kind::kString:
      if (!item.is_string()) {
        throw JinjaError("'in <string>' requires string as left operand, not " + item.type_name());
      }
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Kind::kList:
      for (const Value& v : iterate(container))
        if (values_equal(v, item)) return true;
      return false;
    case Kind::kDict:
      return container.dict_data().find(dict_key(item)) != nullptr;
    case Kind::kUndefined:
      return false;
    default:
      throw JinjaError("argument of type '" + container.type_name() + "' is not iterable");
  }
}

std::vector<Value> iterate(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined:
      return {};
    case Kind::kList: {
      ListData& d = v.list_data();
      if (d.kind == ListKind::kGenerator) {
        if (d.consumed) return {};
        d.consumed = true;
      }
      return d.items;
    }
    case Kind::kDict: {
      if (v.is_namespace()) break;
      std::vector<Value> keys;
      for (const auto& [k, _] : v.dict_data().entries) keys.push_back(key_value(k));
      return keys;
    }
    case Kind::kString: {
      std::vector<Value> chars;
      for (char32_t cp : text::decode(v.as_string()))
        chars.push_back(Value::string(text::encode(std::u32string(1, cp))));
      return chars;
    }
    default:
      break;
  }
  throw JinjaError("'" + v.type_name() + "' object is not iterable");
}

// ---- statements ---------------------------------------------------------------------------

std::string Interpreter::render(const Body& body, std::shared_ptr<Frame> globals) {
  AllocationBudget budget;
  budget.max_value_bytes = limits_.max_value_bytes;
  budget.max_total_bytes = limits_.max_alloc_bytes;
  ScopedAllocationBudget scoped(budget);
  std::string out;
  auto top = std::make_shared<Frame>();
  top->parent = std::move(globals);
  exec_body(body, top, out);
  return out;
}

void Interpreter::count_iteration() {
  if (++num_iterations_ > limits_.max_iterations) {
    throw JinjaError("render exceeded " + std::to_string(limits_.max_iterations) +
                     " loop iterations");
  }
}

void Interpreter::append(std::string& out, const std::string& text) {
  output_bytes_ += text.size();
  if (output_bytes_ > limits_.max_output_bytes) {
    throw JinjaError("render exceeded " + std::to_string(limits_.max_output_bytes) +
                     " bytes of output");
  }
  out += text;
}

// Counts one level of nested evaluation for as long as it lives.
class Interpreter::Nested {
 public:
  explicit Nested(Interpreter& in) : depth_(in.eval_depth_) {
    if (++depth_ > in.limits_.max_eval_depth) {
      --depth_;
      throw JinjaError("template evaluation nested deeper than " +
                       std::to_string(in.limits_.max_eval_depth) + " levels");
    }
  }
  ~Nested() { --depth_; }
  Nested(const Nested&) = delete;
  Nested& operator=(const Nested&) = delete;

 private:
  int& depth_;
};

Interpreter::Flow Interpreter::exec_body(const Body& body, const std::shared_ptr<Frame>& frame,
                                         std::string& out) {
  Nested nested(*this);
  for (const StmtPtr& s : body) {
    Flow f = exec(*s, frame, out);
    if (f != Flow::kNormal) return f;
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::exec(const Stmt& s, const std::shared_ptr<Frame>& frame,
                                    std::string& out) {
  try {
    switch (s.kind) {
      case StmtKind::kText:
        append(out, static_cast<const TextStmt&>(s).text);
        break;
      case StmtKind::kPrint:
        append(out, python_str(eval(*static_cast<const PrintStmt&>(s).expr, *frame)));
        break;
      case StmtKind::kIf:
        return exec_if(static_cast<const IfStmt&>(s), frame, out);
      case StmtKind::kFor:
        exec_for(static_cast<const ForStmt&>(s), frame, out);
        break;
      case StmtKind::kSet:
        exec_set(static_cast<const SetStmt&>(s), frame);
        break;
      case StmtKind::kSetBlock:
        exec_set_block(static_cast<const SetBlockStmt&>(s), frame);
        break;
      case StmtKind::kMacro: {
        const auto& m = static_cast<const MacroStmt&>(s);
        frame->vars[m.name] = make_macro(m.name, &m.params, &m.body, frame);
        break;
      }
      case StmtKind::kCallBlock:
        exec_call_block(static_cast<const CallBlockStmt&>(s), frame, out);
        break;
      case StmtKind::kFilterBlock: {
        const auto& f = static_cast<const FilterBlockStmt&>(s);
        std::string body;
        exec_body(f.body, frame, body);
        Value input = Value::string(std::move(body));
        append(out,
               python_str(eval_filter(static_cast<const FilterExpr&>(*f.filter), *frame, &input)));
        break;
      }
      case StmtKind::kScope:
        return exec_body(static_cast<const ScopeStmt&>(s).body, frame, out);
      case StmtKind::kBreak:
        return Flow::kBreak;
      case StmtKind::kContinue:
        return Flow::kContinue;
    }
  } catch (JinjaError& e) {
    e.set_pos_if_unknown(s.pos);
    throw;
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::exec_if(const IfStmt& s, const std::shared_ptr<Frame>& frame,
                                       std::string& out) {
  for (const auto& [cond, body] : s.branches) {
    if (eval(*cond, *frame).truthy()) return exec_body(body, frame, out);
  }
  return exec_body(s.otherwise, frame, out);
}

namespace {

void bind_targets(Frame& f, const std::vector<std::string>& names, bool unpack, const Value& v) {
  if (!unpack) {
    f.vars[names[0]] = v;
    return;
  }
  std::vector<Value> parts = v.is_list() ? v.items() : iterate(v);
  if (parts.size() != names.size()) {
    throw JinjaError("cannot unpack " + std::to_string(parts.size()) + " values into " +
                     std::to_string(names.size()) + " names");
  }
  for (size_t i = 0; i < names.size(); ++i) f.vars[names[i]] = parts[i];
}

}  // namespace

void Interpreter::exec_for(const ForStmt& s, const std::shared_ptr<Frame>& frame,
                           std::string& out) {
  Value seq = eval(*s.iterable, *frame);
  if (seq.is_none()) throw JinjaError("'NoneType' object is not iterable", s.iterable->pos);
  std::vector<Value> items = iterate(seq);
  if (s.filter) {
    std::vector<Value> kept;
    for (Value& v : items) {
      count_iteration();
      auto scope = std::make_shared<Frame>();
      scope->parent = frame;
      bind_targets(*scope, s.targets, s.unpack, v);
      if (eval(*s.filter, *scope).truthy()) kept.push_back(std::move(v));
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    exec_body(s.otherwise, frame, out);
    return;
  }
  const int64_t n = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < n; ++i) {
    count_iteration();
    auto scope = std::make_shared<Frame>();
    scope->parent = frame;
    bind_targets(*scope, s.targets, s.unpack, items[i]);
    auto loop = std::make_shared<DictData>();
    loop->entries = {
        {"index", Value::integer(i + 1)},
        {"index0", Value::integer(i)},
        {"revindex", Value::integer(n - i)},
        {"revindex0", Value::integer(n - i - 1)},
        {"first", Value::boolean(i == 0)},
        {"last", Value::boolean(i == n - 1)},
        {"length", Value::integer(n)},
        {"depth", Value::integer(1)},
        {"depth0", Value::integer(0)},
        {"previtem", i > 0 ? items[i - 1] : Value::undefined("loop.previtem")},
        {"nextitem", i + 1 < n ? items[i + 1] : Value::undefined("loop.nextitem")},
        {"cycle",
         Value::callable("loop.cycle",
                         [i](Interpreter&, const CallArgs& a) {
                           if (a.positional.empty()) throw JinjaError("no items for cycling given");
                           return a.positional[static_cast<size_t>(i) % a.positional.size()];
                         })},
    };
    scope->vars["loop"] = Value::dict(std::move(loop));
    Flow f = exec_body(s.body, scope, out);
    if (f == Flow::kBreak) break;
  }
}

void Interpreter::assign(Frame& frame, const std::string& name, const std::string& ns_attr,
                         Value value) {
  if (ns_attr.empty()) {
    frame.vars[name] = std::move(value);
    return;
  }
  const Value* ns = frame.lookup(name);
  if (!ns || !ns->is_namespace()) {
    throw JinjaError("cannot assign attribute '" + ns_attr + "' on '" + name +
                     "': not a namespace");
  }
  ns->dict_data().set(ns_attr, std::move(value));
}

void Interpreter::exec_set(const SetStmt& s, const std::shared_ptr<Frame>& frame) {
  Value v = eval(*s.value, *frame);
  if (!s.ns_attr.empty()) return assign(*frame, s.targets[0], s.ns_attr, std::move(v));
  bind_targets(*frame, s.targets, s.unpack, v);
}

void Interpreter::exec_set_block(const SetBlockStmt& s, const std::shared_ptr<Frame>& frame) {
  std::string body;
  exec_body(s.body, frame, body);
  Value v = Value::string(std::move(body));
  if (s.filter) v = eval_filter(static_cast<const FilterExpr&>(*s.filter), *frame, &v);
  assign(*frame, s.target, s.ns_attr, std::move(v));
}

void Interpreter::exec_call_block(const CallBlockStmt& s, const std::shared_ptr<Frame>& frame,
                                  std::string& out) {
  const auto& call = static_cast<const CallExpr&>(*s.call);
  Value callee = eval(*call.callee, *frame);
  CallArgs args = eval_args(call.args, *frame);
  args.keywords.emplace_back("caller", make_macro("caller", &s.caller_params, &s.body, frame));
  append(out, python_str(this->call(callee, args)));
}

Value Interpreter::make_macro(const std::string& name, const std::vector<MacroParam>* params,
                              const Body* body, std::shared_ptr<Frame> closure) {
  // A weak reference: the defining frame holds the macro, a strong one would be a cycle.
  std::weak_ptr<Frame> weak_closure = closure;
  return Value::callable(name, [this, name, params, body, weak_closure](Interpreter&,
                                                                        const CallArgs& args) {
    std::shared_ptr<Frame> closure = weak_closure.lock();
    if (!closure) throw JinjaError("macro '" + name + "' called after its scope ended");
    count_iteration();
    if (++call_depth_ > limits_.max_call_depth) {
      throw JinjaError("macro calls nested deeper than " + std::to_string(limits_.max_call_depth));
    }
    auto scope = std::make_shared<Frame>();
    scope->parent = closure;
    if (args.positional.size() > params->size()) {
      throw JinjaError("macro '" + name + "' takes not more than " +
                       std::to_string(params->size()) + " argument(s)");
    }
    for (size_t i = 0; i < params->size(); ++i) {
      const MacroParam& p = (*params)[i];
      const Value* given = args.get(i, p.name);
      scope->vars[p.name] = given             ? *given
                            : p.default_value ? eval(*p.default_value, *scope)
                                              : Value::undefined(p.name);
    }
    for (const auto& [k, v] : args.keywords) {
      bool known = k == "caller";
      for (const MacroParam& p : *params) known = known || p.name == k;
      if (!known) throw JinjaError("macro '" + name + "' takes no keyword argument '" + k + "'");
      if (k == "caller") scope->vars["caller"] = v;
    }
    std::string out;
    exec_body(*body, scope, out);
    --call_depth_;
    return Value::string(std::move(out));
  });
}

// ---- expressions --------------------------------------------------------------------------

Value Interpreter::call(const Value& callee, const CallArgs& args) {
  if (callee.is_callable()) return callee.callable_data().fn(*this, args);
  if (callee.is_undefined()) undefined_error(callee);
  throw JinjaError("'" + callee.type_name() + "' object is not callable");
}

CallArgs Interpreter::eval_args(const CallArgsExpr& a, Frame& frame) {
  CallArgs out;
  for (const ExprPtr& e : a.positional) out.positional.push_back(eval(*e, frame));
  for (const auto& [k, e] : a.keywords) out.keywords.emplace_back(k, eval(*e, frame));
  return out;
}

Value Interpreter::eval(const Expr& e, Frame& frame) {
  Nested nested(*this);
  try {
    return eval_inner(e, frame);
  } catch (JinjaError& err) {
    err.set_pos_if_unknown(e.pos);
    throw;
  }
}

Value Interpreter::eval_inner(const Expr& e, Frame& frame) {
  switch (e.kind) {
    case ExprKind::kLiteral:
      return static_cast<const LiteralExpr&>(e).value;
    case ExprKind::kName: {
      const auto& n = static_cast<const NameExpr&>(e);
      const Value* v = frame.lookup(n.name);
      return v ? *v : Value::undefined(n.name);
    }
    case ExprKind::kList: {
      const auto& l = static_cast<const ListExpr&>(e);
      std::vector<Value> items;
      for (const ExprPtr& x : l.items) items.push_back(eval(*x, frame));
      return Value::list(std::move(items), l.is_tuple ? ListKind::kTuple : ListKind::kList);
    }
    case ExprKind::kDict: {
      auto d = std::make_shared<DictData>();
      for (const auto& [k, v] : static_cast<const DictExpr&>(e).entries) {
        Value key = eval(*k, frame);
        d->set(dict_key(key), eval(*v, frame));
      }
      return Value::dict(std::move(d));
    }
    case ExprKind::kGetAttr: {
      const auto& g = static_cast<const GetAttrExpr&>(e);
      return get_attr(*this, eval(*g.object, frame), g.name);
    }
    case ExprKind::kGetItem: {
      const auto& g = static_cast<const GetItemExpr&>(e);
      Value obj = eval(*g.object, frame);
      return get_item(*this, obj, eval(*g.index, frame));
    }
    case ExprKind::kSlice:
      return eval_slice(static_cast<const SliceExpr&>(e), frame);
    case ExprKind::kCall: {
      const auto& c = static_cast<const CallExpr&>(e);
      Value callee = eval(*c.callee, frame);
      return call(callee, eval_args(c.args, frame));
    }
    case ExprKind::kFilter:
      return eval_filter(static_cast<const FilterExpr&>(e), frame, nullptr);
    case ExprKind::kTest: {
      const auto& t = static_cast<const TestExpr&>(e);
      Value v = eval(*t.operand, frame);
      bool r = apply_test(*this, t.name, v, eval_args(t.args, frame));
      return Value::boolean(t.negated ? !r : r);
    }
    case ExprKind::kUnary: {
      const auto& u = static_cast<const UnaryExpr&>(e);
      Value v = eval(*u.operand, frame);
      if (u.op == "not") return Value::boolean(!v.truthy());
      if (v.is_undefined()) undefined_error(v);
      if (!v.is_number())
        throw JinjaError("bad operand type for unary " + u.op + ": '" + v.type_name() + "'");
      if (u.op == "+") return v.is_bool() ? Value::integer(v.as_int()) : v;
      if (v.is_float()) return Value::number(-v.as_double());
      return Value::integer(-v.as_int());
    }
    case ExprKind::kBinary:
      return eval_binary(static_cast<const BinaryExpr&>(e), frame);
    case ExprKind::kCompare:
      return eval_compare(static_cast<const CompareExpr&>(e), frame);
    case ExprKind::kCond: {
      const auto& c = static_cast<const CondExpr&>(e);
      if (eval(*c.cond, frame).truthy()) return eval(*c.then, frame);
      return c.otherwise ? eval(*c.otherwise, frame) : Value::undefined();
    }
  }
  throw JinjaError("unknown expression");
}

Value Interpreter::eval_binary(const BinaryExpr& e, Frame& frame) {
  Value a = eval(*e.left, frame);
  if (e.op == "and") return a.truthy() ? eval(*e.right, frame) : a;
  if (e.op == "or") return a.truthy() ? a : eval(*e.right, frame);
  Value b = eval(*e.right, frame);
  if (e.op == "~") return Value::string(python_str(a) + python_str(b));
  return arithmetic(e.op, a, b);
}

Value Interpreter::eval_compare(const CompareExpr& e, Frame& frame) {
  Value left = eval(*e.first, frame);
  for (const auto& [op, expr] : e.rest) {
    Value right = eval(*expr, frame);
    bool r;
    if (op == "==") {
      r = values_equal(left, right);
    } else if (op == "!=") {
      r = !values_equal(left, right);
    } else if (op == "in") {
      r = contains(right, left);
    } else if (op == "notin") {
      r = !contains(right, left);
    } else {
      if (left.is_undefined()) undefined_error(left);
      if (right.is_undefined()) undefined_error(right);
      if (op == "<")
        r = values_less(left, right);
      else if (op == ">")
        r = values_less(right, left);
      else if (op == "<=")
        r = !values_less(right, left);
      else
        r = !values_less(left, right);
    }
    if (!r) return Value::boolean(false);
    left = std::move(right);
  }
  return Value::boolean(true);
}

namespace {

// Python's slice.indices(): clamps start/stop for a sequence of length n.
void slice_indices(int64_t n, const Value* start, const Value* stop, int64_t step, int64_t& b,
                   int64_t& e) {
  auto clamp = [&](const Value* v, int64_t dflt) -> int64_t {
    if (!v || v->is_none()) return dflt;
    if (!(v->is_int() || v->is_bool())) throw JinjaError("slice indices must be integers or None");
    int64_t x = v->as_int();
    if (x < 0) {
      x += n;
      if (x < 0) x = step < 0 ? -1 : 0;
    } else if (x >= n) {
      x = step < 0 ? n - 1 : n;
    }
    return x;
  };
  b = clamp(start, step < 0 ? n - 1 : 0);
  e = clamp(stop, step < 0 ? -1 : n);
}

}  // namespace

Value Interpreter::eval_slice(const SliceExpr& s, Frame& frame) {
  Value obj = eval(*s.object, frame);
  Value start = s.start ? eval(*s.start, frame) : Value::none();
  Value stop = s.stop ? eval(*s.stop, frame) : Value::none();
  Value step_v = s.step ? eval(*s.step, frame) : Value::none();
  if (obj.is_undefined()) undefined_error(obj);
  int64_t step = 1;
  if (!step_v.is_none()) {
    if (!(step_v.is_int() || step_v.is_bool()))
      throw JinjaError("slice indices must be integers or None");
    step = step_v.as_int();
    if (step == 0) throw JinjaError("slice step cannot be zero");
  }
  auto pick = [&](int64_t n, auto&& take) {
    int64_t b, e;
    slice_indices(n, &start, &stop, step, b, e);
    for (int64_t i = b; step > 0 ? i < e : i > e; i += step) take(i);
  };
  if (obj.is_string()) {
    std::u32string cps = text::decode(obj.as_string());
    std::u32string out;
    pick(static_cast<int64_t>(cps.size()),
         [&](int64_t i) { out.push_back(cps[static_cast<size_t>(i)]); });
    return Value::string(text::encode(out));
  }
  if (obj.is_list() &&
      (obj.list_data().kind == ListKind::kList || obj.list_data().kind == ListKind::kTuple)) {
    std::vector<Value> out;
    const auto& items = obj.items();
    pick(static_cast<int64_t>(items.size()),
         [&](int64_t i) { out.push_back(items[static_cast<size_t>(i)]); });
    return Value::list(std::move(out), obj.list_data().kind);
  }
  throw JinjaError("'" + obj.type_name() + "' object is not subscriptable");
}

Value Interpreter::eval_filter(const FilterExpr& f, Frame& frame, const Value* input) {
  Value v = f.operand ? (f.operand->kind == ExprKind::kFilter
                             ? eval_filter(static_cast<const FilterExpr&>(*f.operand), frame, input)
                             : eval(*f.operand, frame))
                      : (input ? *input : Value::undefined());
  try {
    return apply_filter(*this, f.name, v, eval_args(f.args, frame));
  } catch (JinjaError& err) {
    err.set_pos_if_unknown(f.pos);
    throw;
  }
}

}  // namespace mlxs::jinja
