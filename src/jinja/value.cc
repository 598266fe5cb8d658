#include "jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "jinja/error.h"
#include "jinja/text.h"

namespace mlxs::jinja {

const Value* DictData::find(std::string_view key) const {
  for (const auto& [k, v] : entries)
    if (k == key) return &v;
  return nullptr;
}

Value* DictData::find(std::string_view key) {
  for (auto& [k, v] : entries)
    if (k == key) return &v;
  return nullptr;
}

namespace {

thread_local AllocationBudget* t_budget = nullptr;

void charge(uint64_t bytes) {
  if (!t_budget) return;
  check_value_size(bytes);
  t_budget->total_bytes += bytes;
  if (t_budget->total_bytes > t_budget->max_total_bytes) {
    throw JinjaError("template built more than " + std::to_string(t_budget->max_total_bytes) +
                     " bytes of strings and lists in one render");
  }
}

}  // namespace

ScopedAllocationBudget::ScopedAllocationBudget(AllocationBudget& budget) : previous_(t_budget) {
  t_budget = &budget;
}

ScopedAllocationBudget::~ScopedAllocationBudget() {
  t_budget = previous_;
}

void check_value_size(uint64_t bytes) {
  if (t_budget && bytes > t_budget->max_value_bytes) {
    throw JinjaError("template value of " + std::to_string(bytes) + " bytes exceeds the limit of " +
                     std::to_string(t_budget->max_value_bytes) + " bytes");
  }
}

uint64_t repeated_size(uint64_t unit, uint64_t count) {
  uint64_t total = 0;
  return __builtin_mul_overflow(unit, count, &total) ? UINT64_MAX : total;
}

void DictData::set(const std::string& key, Value value) {
  if (Value* v = find(key)) {
    *v = std::move(value);
  } else {
    charge(key.size() + sizeof(Value));
    entries.emplace_back(key, std::move(value));
  }
}

const Value* CallArgs::get(size_t index, std::string_view name) const {
  for (const auto& [k, v] : keywords)
    if (k == name) return &v;
  return index < positional.size() ? &positional[index] : nullptr;
}

const std::shared_ptr<const std::string>& Value::empty_string() {
  static const auto kEmpty = std::make_shared<const std::string>();
  return kEmpty;
}

Value Value::undefined(std::string hint) {
  Value v;
  v.s_ = std::make_shared<const std::string>(std::move(hint));
  return v;
}

Value Value::none() {
  Value v;
  v.kind_ = Kind::kNone;
  return v;
}

Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::kBool;
  v.b_ = b;
  return v;
}

Value Value::integer(int64_t i) {
  Value v;
  v.kind_ = Kind::kInt;
  v.i_ = i;
  return v;
}

Value Value::number(double f) {
  Value v;
  v.kind_ = Kind::kFloat;
  v.f_ = f;
  return v;
}

Value Value::string(std::string s) {
  charge(s.size());
  Value v;
  v.kind_ = Kind::kString;
  v.s_ = std::make_shared<const std::string>(std::move(s));
  return v;
}

Value Value::safe_string(std::string s) {
  Value v = string(std::move(s));
  v.b_ = true;
  return v;
}

std::string dict_key(const Value& key) {
  if (key.is_string()) return key.as_string();
  if (key.is_int() || key.is_bool()) {
    std::string k(1, '\xFF');
    k += std::to_string(key.as_int());
    return k;
  }
  throw JinjaError("unsupported dict key of type '" + key.type_name() +
                   "' (only str and int keys are supported)");
}

Value key_value(const std::string& stored) {
  if (!stored.empty() && stored[0] == '\xFF') return Value::integer(std::stoll(stored.substr(1)));
  return Value::string(stored);
}

std::string key_text(const std::string& stored) {
  return !stored.empty() && stored[0] == '\xFF' ? stored.substr(1) : stored;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

Value Value::list(std::vector<Value> items, ListKind kind) {
  charge(items.size() * sizeof(Value));
  Value v;
  v.kind_ = Kind::kList;
  v.list_ = std::make_shared<ListData>();
  v.list_->items = std::move(items);
  v.list_->kind = kind;
  return v;
}

Value Value::dict(std::shared_ptr<DictData> d) {
  Value v;
  v.kind_ = Kind::kDict;
  v.dict_ = d ? std::move(d) : std::make_shared<DictData>();
  return v;
}

Value Value::callable(std::string name, NativeFn fn) {
  Value v;
  v.kind_ = Kind::kCallable;
  v.fn_ = std::make_shared<const CallableData>(CallableData{std::move(name), std::move(fn)});
  return v;
}

Value Value::from_json(const nlohmann::ordered_json& j) {
  using T = nlohmann::ordered_json::value_t;
  switch (j.type()) {
    case T::null:
      return none();
    case T::boolean:
      return boolean(j.get<bool>());
    case T::number_integer:
      return integer(j.get<int64_t>());
    case T::number_unsigned:
      return integer(static_cast<int64_t>(j.get<uint64_t>()));
    case T::number_float:
      return number(j.get<double>());
    case T::string:
      return string(j.get<std::string>());
    case T::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(from_json(e));
      return list(std::move(items));
    }
    case T::object: {
      auto d = std::make_shared<DictData>();
      for (const auto& [k, e] : j.items()) d->entries.emplace_back(k, from_json(e));
      return dict(std::move(d));
    }
    default:
      throw JinjaError("unsupported JSON value of type " + std::string(j.type_name()));
  }
}

double Value::as_double() const {
  if (kind_ == Kind::kFloat) return f_;
  return static_cast<double>(as_int());
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
      return b_;
    case Kind::kInt:
      return i_ != 0;
    case Kind::kFloat:
      return f_ != 0;
    case Kind::kString:
      return !s_->empty();
    case Kind::kList:
      if (list_->kind == ListKind::kGenerator) return true;  // a generator object is truthy
      return !list_->items.empty();
    case Kind::kDict:
      return dict_->is_namespace || !dict_->entries.empty();
    case Kind::kCallable:
      return true;
  }
  return false;
}

std::string Value::type_name() const {
  switch (kind_) {
    case Kind::kUndefined:
      return "Undefined";
    case Kind::kNone:
      return "NoneType";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kList:
      switch (list_->kind) {
        case ListKind::kTuple:
          return "tuple";
        case ListKind::kGenerator:
          return "generator";
        case ListKind::kView:
          return "view";
        default:
          return "list";
      }
    case Kind::kDict:
      return dict_->is_namespace ? "Namespace" : "dict";
    case Kind::kCallable:
      return "function";
  }
  return "?";
}

std::string python_float_repr(double f) {
  if (std::isnan(f)) return "nan";
  if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
  if (f == 0) return std::signbit(f) ? "-0.0" : "0.0";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), f, std::chars_format::scientific);
  std::string sci(buf, res.ptr);  // e.g. "-1.2345e+02"
  size_t e_at = sci.find('e');
  int exp10 = std::stoi(sci.substr(e_at + 1));
  std::string mant = sci.substr(0, e_at);
  bool neg = mant[0] == '-';
  if (neg) mant.erase(0, 1);
  std::string digits;
  for (char c : mant)
    if (c != '.') digits.push_back(c);
  std::string out = neg ? "-" : "";
  if (exp10 < -4 || exp10 >= 16) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char eb[16];
    std::snprintf(eb, sizeof(eb), "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
    return out + eb;
  }
  if (exp10 < 0) {
    return out + "0." + std::string(static_cast<size_t>(-exp10 - 1), '0') + digits;
  }
  size_t int_len = static_cast<size_t>(exp10) + 1;
  if (digits.size() <= int_len) {
    return out + digits + std::string(int_len - digits.size(), '0') + ".0";
  }
  return out + digits.substr(0, int_len) + "." + digits.substr(int_len);
}

namespace {

std::string repr_string(const std::string& s) {
  bool has_single = s.find('\'') != std::string::npos;
  bool has_double = s.find('"') != std::string::npos;
  char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t cp : text::decode(s)) {
    if (cp == static_cast<char32_t>(quote) || cp == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(cp));
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp < 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0xAD) {
      char b[8];
      std::snprintf(b, sizeof(b), "\\x%02x", static_cast<unsigned>(cp));
      out += b;
    } else if (cp == 0x2028 || cp == 0x2029 || (cp >= 0xD800 && cp <= 0xDFFF)) {
      char b[8];
      std::snprintf(b, sizeof(b), "\\u%04x", static_cast<unsigned>(cp));
      out += b;
    } else {
      text::append_utf8(out, cp);
    }
  }
  out.push_back(quote);
  return out;
}

// Values are trees except through namespaces, the one mutable kind: `{% set ns.x = ns %}` makes
// a namespace that contains itself. The recursive walks below (repr, tojson, ==, <) stop at this
// depth with an error instead of overflowing the stack (found by fuzz/chat_template_fuzzer).
constexpr int kMaxWalkDepth = 512;
thread_local int g_walk_depth = 0;

class WalkDepthGuard {
 public:
  WalkDepthGuard() {
    if (++g_walk_depth > kMaxWalkDepth) {
      --g_walk_depth;
      throw JinjaError("a value nests deeper than " + std::to_string(kMaxWalkDepth) +
                       " levels (a namespace that contains itself?)");
    }
  }
  ~WalkDepthGuard() { --g_walk_depth; }
  WalkDepthGuard(const WalkDepthGuard&) = delete;
  WalkDepthGuard& operator=(const WalkDepthGuard&) = delete;
};

}  // namespace

std::string python_repr(const Value& v) {
  WalkDepthGuard depth;
  switch (v.kind()) {
    case Kind::kUndefined:
      return "Undefined";
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return v.as_bool() ? "True" : "False";
    case Kind::kInt:
      return std::to_string(v.as_int());
    case Kind::kFloat:
      return python_float_repr(v.as_double());
    case Kind::kString:
      return repr_string(v.as_string());
    case Kind::kList: {
      ListKind lk = v.list_data().kind;
      if (lk == ListKind::kGenerator || lk == ListKind::kView) {
        throw JinjaError("cannot print a " + v.type_name() +
                         " object (Python prints its memory address); apply |list first");
      }
      bool tuple = lk == ListKind::kTuple;
      std::string out = tuple ? "(" : "[";
      const auto& items = v.items();
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += ", ";
        out += python_repr(items[i]);
      }
      if (tuple && items.size() == 1) out += ",";
      return out + (tuple ? ")" : "]");
    }
    case Kind::kDict: {
      std::string out = v.is_namespace() ? "<Namespace {" : "{";
      bool first = true;
      for (const auto& [k, e] : v.dict_data().entries) {
        if (!first) out += ", ";
        first = false;
        out += python_repr(key_value(k)) + ": " + python_repr(e);
      }
      return out + (v.is_namespace() ? "}>" : "}");
    }
    case Kind::kCallable:
      throw JinjaError("cannot print the callable '" + v.callable_data().name + "'");
  }
  return "";
}

std::string python_str(const Value& v) {
  if (v.is_string()) return v.as_string();
  if (v.is_undefined()) return "";
  return python_repr(v);
}

namespace {

void json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out.push_back('"');
  for (char32_t cp : text::decode(s)) {
    switch (cp) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    char b[16];
    if (cp < 0x20 || (ensure_ascii && cp > 0x7F)) {
      if (cp >= 0x10000) {
        char32_t v = cp - 0x10000;
        std::snprintf(b, sizeof(b), "\\u%04x\\u%04x", 0xD800 + (unsigned)(v >> 10),
                      0xDC00 + (unsigned)(v & 0x3FF));
      } else {
        std::snprintf(b, sizeof(b), "\\u%04x", static_cast<unsigned>(cp));
      }
      out += b;
    } else {
      text::append_utf8(out, cp);
    }
  }
  out.push_back('"');
}

std::string json_float(double f) {
  if (std::isnan(f)) return "NaN";
  if (std::isinf(f)) return f > 0 ? "Infinity" : "-Infinity";
  return python_float_repr(f);
}

// json.dumps converts dict keys of type int/float/bool/None to strings; ours are strings.
void dump(std::string& out, const Value& v, const JsonDumpOptions& o, int level) {
  WalkDepthGuard depth;
  std::string item_sep = o.has_separators ? o.item_separator : (o.has_indent ? "," : ", ");
  std::string key_sep = o.has_separators ? o.key_separator : ": ";
  auto newline = [&](int lvl) {
    out.push_back('\n');
    for (int i = 0; i < lvl; ++i) out += o.indent;
  };
  switch (v.kind()) {
    case Kind::kNone:
      out += "null";
      return;
    case Kind::kBool:
      out += v.as_bool() ? "true" : "false";
      return;
    case Kind::kInt:
      out += std::to_string(v.as_int());
      return;
    case Kind::kFloat:
      out += json_float(v.as_double());
      return;
    case Kind::kString:
      json_string(out, v.as_string(), o.ensure_ascii);
      return;
    case Kind::kList: {
      ListKind lk = v.list_data().kind;
      if (lk != ListKind::kList && lk != ListKind::kTuple) break;
      const auto& items = v.items();
      if (items.empty()) {
        out += "[]";
        return;
      }
      out.push_back('[');
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += item_sep;
        if (o.has_indent) newline(level + 1);
        dump(out, items[i], o, level + 1);
      }
      if (o.has_indent) newline(level);
      out.push_back(']');
      return;
    }
    case Kind::kDict: {
      if (v.is_namespace()) break;
      std::vector<const std::pair<std::string, Value>*> entries;
      for (const auto& e : v.dict_data().entries) entries.push_back(&e);
      if (entries.empty()) {
        out += "{}";
        return;
      }
      if (o.sort_keys) {
        std::stable_sort(entries.begin(), entries.end(), [](auto* a, auto* b) {
          return text::decode(a->first) < text::decode(b->first);
        });
      }
      out.push_back('{');
      for (size_t i = 0; i < entries.size(); ++i) {
        if (i) out += item_sep;
        if (o.has_indent) newline(level + 1);
        json_string(out, key_text(entries[i]->first), o.ensure_ascii);
        out += key_sep;
        dump(out, entries[i]->second, o, level + 1);
      }
      if (o.has_indent) newline(level);
      out.push_back('}');
      return;
    }
    default:
      break;
  }
  throw JinjaError("Object of type " + v.type_name() + " is not JSON serializable");
}

}  // namespace

std::string json_dumps(const Value& v, const JsonDumpOptions& options) {
  std::string out;
  dump(out, v, options, 0);
  return out;
}

bool values_equal(const Value& a, const Value& b) {
  WalkDepthGuard depth;
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::kUndefined:
    case Kind::kNone:
      return true;
    case Kind::kString:
      return a.as_string() == b.as_string();
    case Kind::kList: {
      const auto &x = a.items(), &y = b.items();
      if ((a.list_data().kind == ListKind::kTuple) != (b.list_data().kind == ListKind::kTuple))
        return false;
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i)
        if (!values_equal(x[i], y[i])) return false;
      return true;
    }
    case Kind::kDict: {
      if (a.is_namespace() || b.is_namespace()) return &a.dict_data() == &b.dict_data();
      const auto &x = a.dict_data(), &y = b.dict_data();
      if (x.entries.size() != y.entries.size()) return false;
      for (const auto& [k, v] : x.entries) {
        const Value* w = y.find(k);
        if (!w || !values_equal(v, *w)) return false;
      }
      return true;
    }
    case Kind::kCallable:
      return &a.callable_data() == &b.callable_data();
    default:
      return false;
  }
}

bool values_less(const Value& a, const Value& b) {
  WalkDepthGuard depth;
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() < b.as_double();
    return a.as_int() < b.as_int();
  }
  if (a.is_string() && b.is_string())
    return text::decode(a.as_string()) < text::decode(b.as_string());
  if (a.is_list() && b.is_list()) {
    const auto &x = a.items(), &y = b.items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (values_equal(x[i], y[i])) continue;
      return values_less(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  throw JinjaError("'<' not supported between instances of '" + a.type_name() + "' and '" +
                   b.type_name() + "'");
}

}  // namespace mlxs::jinja
