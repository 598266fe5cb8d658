// The value model of the Jinja interpreter: Python's types as Jinja templates see them.
//
// A Value is one of undefined, none, bool, int (int64), float (double), string (UTF-8), list
// (also tuples and one-shot generators), dict (string keys, insertion order kept, also
// `namespace()` objects) or callable (builtins and macros). Lists and dicts are shared by
// reference like Python objects; templates cannot mutate them (the sandbox is immutable) except
// namespaces through `{% set ns.attr = ... %}`. Values are not thread-safe; one render owns its
// values.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mlxs::jinja {

class Value;

// What one render may build. Every string and list the interpreter makes goes through
// Value::string / Value::list, which charge their size to the budget of the render running on
// this thread: one value over max_value_bytes, or all values of the render together over
// max_total_bytes, fails the render with a JinjaError instead of exhausting memory (a string
// doubled in a loop used to reach 5 GB in 30 s). Outside a render nothing is charged.
struct AllocationBudget {
  uint64_t max_value_bytes = 32u << 20;  // one string, or one list's items
  uint64_t max_total_bytes = 1u << 30;   // everything built during the render, freed or not
  uint64_t total_bytes = 0;
};

// Makes `budget` the budget of this thread's render until destroyed (restores the previous one).
class ScopedAllocationBudget {
 public:
  explicit ScopedAllocationBudget(AllocationBudget& budget);
  ~ScopedAllocationBudget();
  ScopedAllocationBudget(const ScopedAllocationBudget&) = delete;
  ScopedAllocationBudget& operator=(const ScopedAllocationBudget&) = delete;

 private:
  AllocationBudget* previous_;
};

// Throws JinjaError when a value of `bytes` would exceed the render's max_value_bytes. Operations
// whose result can be far larger than their operands (repeat, replace, join, indent, center,
// tojson's indent) call it before they build.
void check_value_size(uint64_t bytes);
// unit * count, saturating at UINT64_MAX instead of wrapping ('x' * 2^62 used to wrap to a small
// size that passed the check, then grew without bound).
uint64_t repeated_size(uint64_t unit, uint64_t count);

enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kCallable };

// How a list prints and behaves where Python's types differ.
enum class ListKind {
  kList,       // [1, 2]
  kTuple,      // (1, 2)
  kGenerator,  // map/select results: iterable once; printing, len() and tojson fail
  kView,       // dict.items()/keys()/values(), range(): iterable, len(); printing fails
};

struct ListData {
  std::vector<Value> items;
  ListKind kind = ListKind::kList;
  bool consumed = false;  // a generator that has been iterated once
};

struct DictData {
  std::vector<std::pair<std::string, Value>> entries;  // insertion order
  bool is_namespace = false;

  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  void set(const std::string& key, Value value);
};

// Positional and keyword arguments of a call.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keywords;

  // The argument at `index` or named `name` (keyword wins), or nullptr.
  const Value* get(size_t index, std::string_view name) const;
};

class Interpreter;
using NativeFn = std::function<Value(Interpreter&, const CallArgs&)>;

struct CallableData {
  std::string name;
  NativeFn fn;
};

class Value {
 public:
  Value() = default;  // undefined
  static Value undefined(std::string hint = {});
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value number(double f);
  static Value string(std::string s);
  // A markupsafe.Markup string (from |safe or |escape): `+` with a plain string HTML-escapes the
  // plain side, as Python's Markup.__add__/__radd__ do.
  static Value safe_string(std::string s);
  static Value list(std::vector<Value> items, ListKind kind = ListKind::kList);
  static Value dict(std::shared_ptr<DictData> d = nullptr);
  static Value callable(std::string name, NativeFn fn);

  // Converts JSON (keys keep their order); numbers keep their integer/float nature.
  static Value from_json(const nlohmann::ordered_json& j);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat || is_bool(); }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_safe() const { return kind_ == Kind::kString && b_; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_namespace() const { return is_dict() && dict_->is_namespace; }
  bool is_callable() const { return kind_ == Kind::kCallable; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return kind_ == Kind::kBool ? (b_ ? 1 : 0) : i_; }
  double as_double() const;  // int, bool or float
  const std::string& as_string() const { return *s_; }
  // For undefined: the name that was looked up, for error messages.
  const std::string& undefined_hint() const { return *s_; }
  ListData& list_data() const { return *list_; }
  const std::vector<Value>& items() const { return list_->items; }
  DictData& dict_data() const { return *dict_; }
  const CallableData& callable_data() const { return *fn_; }

  // Python truthiness (undefined is false).
  bool truthy() const;
  // Python's type name ("str", "int", "dict", "NoneType", "Undefined", ...).
  std::string type_name() const;

 private:
  Kind kind_ = Kind::kUndefined;
  bool b_ = false;
  int64_t i_ = 0;
  double f_ = 0;
  std::shared_ptr<const std::string> s_ = empty_string();
  std::shared_ptr<ListData> list_;
  std::shared_ptr<DictData> dict_;
  std::shared_ptr<const CallableData> fn_;

  static const std::shared_ptr<const std::string>& empty_string();
};

// Dict keys are stored as strings. A non-string key (int, or bool as Python's 1/0) is stored as
// "\xFF" + its decimal digits, a byte that never occurs in UTF-8 text, so {0: a} and {'0': a}
// stay distinct. dict_key throws JinjaError for other key types (unhashable or unsupported).
std::string dict_key(const Value& key);
// The key as templates see it: a string, or the int that dict_key encoded.
Value key_value(const std::string& stored);
// The key as json.dumps writes it (ints become their decimal string).
std::string key_text(const std::string& stored);

// HTML escaping as markupsafe.escape: & < > " ' -> &amp; &lt; &gt; &#34; &#39;.
std::string html_escape(const std::string& s);

// Python's float repr: shortest round-trip digits, "1.0", "1e+16", "1e-05", "inf", "nan".
std::string python_float_repr(double f);
// Python repr() of a value ("'a'", "[1, 'b']", "{'k': None}", "(1,)"). Fails (throws
// JinjaError) for generators and views, whose Python repr holds a memory address.
std::string python_repr(const Value& v);
// Python str() as Jinja prints a value: strings verbatim, undefined as "", the rest as repr.
std::string python_str(const Value& v);

// Options of transformers' tojson filter: json.dumps(x, ensure_ascii, indent, separators,
// sort_keys).
struct JsonDumpOptions {
  bool ensure_ascii = false;
  bool has_indent = false;
  std::string indent;  // the string repeated per level (an int n means n spaces)
  bool has_separators = false;
  std::string item_separator;
  std::string key_separator;
  bool sort_keys = false;
};
// Python json.dumps of a value; throws JinjaError for values JSON cannot hold.
std::string json_dumps(const Value& v, const JsonDumpOptions& options);

// Python ==: 1 == 1.0 == True, deep for lists and dicts, undefined equals only undefined.
bool values_equal(const Value& a, const Value& b);
// Python <, for numbers, strings and lists; throws JinjaError for other pairs.
bool values_less(const Value& a, const Value& b);

}  // namespace mlxs::jinja
