// Attribute and item access, the str/dict/list methods, tests and globals. Filters live in
// filters.cc.
#include "jinja/builtins.h"

#include <set>

#include "jinja/text.h"

namespace mlxs::jinja {
namespace {

[[noreturn]] void undefined_error(const Value& v) {
  throw JinjaError(v.undefined_hint().empty() ? "value is undefined"
                                              : "'" + v.undefined_hint() + "' is undefined");
}

const std::string& str_arg(const CallArgs& a, size_t i, const char* name, const char* fn) {
  const Value* v = a.get(i, name);
  if (!v || !v->is_string()) {
    throw JinjaError(std::string(fn) + "() argument '" + name + "' must be str");
  }
  return v->as_string();
}

long int_arg(const CallArgs& a, size_t i, const char* name, long dflt) {
  const Value* v = a.get(i, name);
  if (!v || v->is_none()) return dflt;
  if (!(v->is_int() || v->is_bool()))
    throw JinjaError(std::string("argument '") + name + "' must be an integer");
  return static_cast<long>(v->as_int());
}

const std::string* opt_str(const CallArgs& a, size_t i, const char* name) {
  const Value* v = a.get(i, name);
  if (!v || v->is_none()) return nullptr;
  if (!v->is_string()) throw JinjaError(std::string("argument '") + name + "' must be str or None");
  return &v->as_string();
}

Value str_list(const std::vector<std::string>& parts) {
  std::vector<Value> out;
  out.reserve(parts.size());
  for (const auto& p : parts) out.push_back(Value::string(p));
  return Value::list(std::move(out));
}

// Python's str.startswith/endswith with a str or tuple of str prefix.
bool affix_match(const std::string& s, const Value& affix, bool start) {
  auto one = [&](const std::string& a) {
    if (a.size() > s.size()) return false;
    return start ? s.compare(0, a.size(), a) == 0
                 : s.compare(s.size() - a.size(), a.size(), a) == 0;
  };
  if (affix.is_string()) return one(affix.as_string());
  if (affix.is_list()) {
    for (const Value& v : affix.items()) {
      if (!v.is_string()) throw JinjaError("tuple for startswith/endswith must only contain str");
      if (one(v.as_string())) return true;
    }
    return false;
  }
  throw JinjaError("startswith/endswith first arg must be str or a tuple of str");
}

// Python's str.format with {} / {0} / {name} fields and no format specs.
std::string py_format(const std::string& fmt, const CallArgs& a) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '{' && i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out.push_back('{');
      ++i;
    } else if (c == '}' && i + 1 < fmt.size() && fmt[i + 1] == '}') {
      out.push_back('}');
      ++i;
    } else if (c == '{') {
      size_t end = fmt.find('}', i);
      if (end == std::string::npos) throw JinjaError("str.format(): single '{' encountered");
      std::string field = fmt.substr(i + 1, end - i - 1);
      if (field.find_first_of(":!.[") != std::string::npos) {
        throw JinjaError("str.format(): format specs and conversions are not supported: {" + field +
                         "}");
      }
      const Value* v = nullptr;
      if (field.empty()) {
        v = auto_index < a.positional.size() ? &a.positional[auto_index] : nullptr;
        ++auto_index;
      } else if (std::isdigit(static_cast<unsigned char>(field[0]))) {
        size_t idx = std::stoul(field);
        v = idx < a.positional.size() ? &a.positional[idx] : nullptr;
      } else {
        for (const auto& [k, kv] : a.keywords)
          if (k == field) v = &kv;
      }
      if (!v) throw JinjaError("str.format(): missing argument for {" + field + "}");
      out += python_str(*v);
      i = end;
    } else if (c == '}') {
      throw JinjaError("str.format(): single '}' encountered");
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::vector<std::string> splitlines(const std::string& s, bool keepends) {
  std::u32string cps = text::decode(s);
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i < cps.size(); ++i) {
    char32_t c = cps[i];
    bool brk = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D ||
               c == 0x1E || c == 0x85 || c == 0x2028 || c == 0x2029;
    if (!brk) continue;
    size_t end = i;
    if (c == '\r' && i + 1 < cps.size() && cps[i + 1] == '\n') ++i;
    out.push_back(
        text::encode(std::u32string_view(cps).substr(start, (keepends ? i + 1 : end) - start)));
    start = i + 1;
  }
  if (start < cps.size()) out.push_back(text::encode(std::u32string_view(cps).substr(start)));
  return out;
}

template <class Pred>
bool all_cps(const std::string& s, Pred p) {
  std::u32string cps = text::decode(s);
  if (cps.empty()) return false;
  for (char32_t c : cps)
    if (!p(c)) return false;
  return true;
}

Value string_method(const Value& self, const std::string& name) {
  const std::string s = self.as_string();
  if (self.is_safe()) {
    // Markup's methods escape their arguments; only the argument-free ones are supported.
    static const std::set<std::string> kPlain = {"upper",    "lower",   "title",  "capitalize",
                                                 "strip",    "lstrip",  "rstrip", "startswith",
                                                 "endswith", "isdigit", "isspace"};
    if (!kPlain.count(name)) {
      return Value::callable("Markup." + name, [name](Interpreter&, const CallArgs&) -> Value {
        throw JinjaError("the method '" + name + "' of a |safe (Markup) string is not supported");
      });
    }
    Value plain = string_method(Value::string(s), name);
    if (!plain.is_callable()) return plain;
    return Value::callable("Markup." + name, [plain](Interpreter& in, const CallArgs& a) {
      Value r = in.call(plain, a);
      return r.is_string() ? Value::safe_string(r.as_string()) : r;
    });
  }
  auto m = [&](auto fn) {
    return Value::callable("str." + name,
                           [s, fn](Interpreter&, const CallArgs& a) -> Value { return fn(s, a); });
  };
  if (name == "upper")
    return m([](const std::string& s, const CallArgs&) { return Value::string(text::upper(s)); });
  if (name == "lower")
    return m([](const std::string& s, const CallArgs&) { return Value::string(text::lower(s)); });
  if (name == "title")
    return m(
        [](const std::string& s, const CallArgs&) { return Value::string(text::py_title(s)); });
  if (name == "capitalize")
    return m(
        [](const std::string& s, const CallArgs&) { return Value::string(text::capitalize(s)); });
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    bool l = name != "rstrip", r = name != "lstrip";
    return m([l, r](const std::string& s, const CallArgs& a) {
      return Value::string(text::strip(s, l, r, opt_str(a, 0, "chars")));
    });
  }
  if (name == "split" || name == "rsplit") {
    bool right = name == "rsplit";
    return m([right](const std::string& s, const CallArgs& a) {
      const std::string* sep = opt_str(a, 0, "sep");
      long n = int_arg(a, 1, "maxsplit", -1);
      return str_list(right ? text::rsplit(s, sep, n) : text::split(s, sep, n));
    });
  }
  if (name == "splitlines") {
    return m([](const std::string& s, const CallArgs& a) {
      const Value* k = a.get(0, "keepends");
      return str_list(splitlines(s, k && k->truthy()));
    });
  }
  if (name == "startswith" || name == "endswith") {
    bool start = name == "startswith";
    return m([start](const std::string& s, const CallArgs& a) {
      const Value* affix = a.get(0, "prefix");
      if (!affix) throw JinjaError("startswith/endswith takes at least 1 argument");
      return Value::boolean(affix_match(s, *affix, start));
    });
  }
  if (name == "replace") {
    return m([](const std::string& s, const CallArgs& a) {
      return Value::string(text::replace(s, str_arg(a, 0, "old", "replace"),
                                         str_arg(a, 1, "new", "replace"),
                                         int_arg(a, 2, "count", -1)));
    });
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    std::string which = name;
    return m([which](const std::string& s, const CallArgs& a) {
      const std::string& sub = str_arg(a, 0, "sub", which.c_str());
      if (a.positional.size() > 1)
        throw JinjaError("str." + which + "(): start/end arguments are not supported");
      if (which == "count") {
        if (sub.empty()) return Value::integer(static_cast<int64_t>(text::length(s)) + 1);
        int64_t n = 0;
        for (size_t at = s.find(sub); at != std::string::npos; at = s.find(sub, at + sub.size()))
          ++n;
        return Value::integer(n);
      }
      size_t at = (which[0] == 'r') ? s.rfind(sub) : s.find(sub);
      if (at == std::string::npos) {
        if (which == "index" || which == "rindex") throw JinjaError("substring not found");
        return Value::integer(-1);
      }
      return Value::integer(static_cast<int64_t>(text::length(std::string_view(s).substr(0, at))));
    });
  }
  if (name == "format")
    return m(
        [](const std::string& s, const CallArgs& a) { return Value::string(py_format(s, a)); });
  if (name == "join") {
    return m([](const std::string& s, const CallArgs& a) {
      const Value* seq = a.get(0, "iterable");
      if (!seq) throw JinjaError("str.join() takes exactly one argument");
      std::string out;
      bool first = true;
      for (const Value& v : iterate(*seq)) {
        if (!v.is_string())
          throw JinjaError("sequence item: expected str instance, " + v.type_name() + " found");
        if (!first) out += s;
        first = false;
        out += v.as_string();
      }
      return Value::string(std::move(out));
    });
  }
  if (name == "isdigit" || name == "isnumeric" || name == "isdecimal")
    return m([](const std::string& s, const CallArgs&) {
      return Value::boolean(all_cps(s, [](char32_t c) { return c >= '0' && c <= '9'; }));
    });
  if (name == "isalpha")
    return m([](const std::string& s, const CallArgs&) {
      return Value::boolean(all_cps(
          s, [](char32_t c) { return c > 127 ? true : std::isalpha(static_cast<int>(c)) != 0; }));
    });
  if (name == "isalnum")
    return m([](const std::string& s, const CallArgs&) {
      return Value::boolean(all_cps(
          s, [](char32_t c) { return c > 127 ? true : std::isalnum(static_cast<int>(c)) != 0; }));
    });
  if (name == "isspace")
    return m([](const std::string& s, const CallArgs&) {
      return Value::boolean(all_cps(s, text::is_space));
    });
  if (name == "isupper")
    return m([](const std::string& s, const CallArgs&) {
      return Value::boolean(text::upper(s) == s && text::lower(s) != s);
    });
  if (name == "islower")
    return m([](const std::string& s, const CallArgs&) {
      return Value::boolean(text::lower(s) == s && text::upper(s) != s);
    });
  return Value::undefined("str." + name);
}

const std::set<std::string>& mutating_methods() {
  static const std::set<std::string> k = {"append",  "pop",   "insert",  "extend",
                                          "remove",  "clear", "update",  "setdefault",
                                          "popitem", "sort",  "reverse", "__setitem__"};
  return k;
}

Value dict_method(const Value& self, const std::string& name) {
  if (name == "items" || name == "keys" || name == "values") {
    return Value::callable("dict." + name, [self, name](Interpreter&, const CallArgs&) {
      std::vector<Value> out;
      for (const auto& [k, v] : self.dict_data().entries) {
        if (name == "items")
          out.push_back(Value::list({key_value(k), v}, ListKind::kTuple));
        else if (name == "keys")
          out.push_back(key_value(k));
        else
          out.push_back(v);
      }
      return Value::list(std::move(out), ListKind::kView);
    });
  }
  if (name == "get") {
    return Value::callable("dict.get", [self](Interpreter&, const CallArgs& a) {
      const Value* key = a.get(0, "key");
      if (!key) throw JinjaError("get expected at least 1 argument, got 0");
      const Value* dflt = a.get(1, "default");
      const Value* v = self.dict_data().find(dict_key(*key));
      return v ? *v : dflt ? *dflt : Value::none();
    });
  }
  if (name == "copy") {
    return Value::callable("dict.copy", [self](Interpreter&, const CallArgs&) {
      return Value::dict(std::make_shared<DictData>(DictData{self.dict_data().entries, false}));
    });
  }
  return Value();
}

}  // namespace

Value get_attr(Interpreter& in, const Value& obj, const std::string& name) {
  switch (obj.kind()) {
    case Kind::kUndefined:
      undefined_error(obj);
    case Kind::kDict: {
      if (obj.is_namespace()) {
        const Value* v = obj.dict_data().find(name);
        return v ? *v : Value::undefined(name);
      }
      if (mutating_methods().count(name)) {
        throw JinjaError("access to attribute '" + name + "' of 'dict' object is unsafe");
      }
      Value m = dict_method(obj, name);
      if (m.is_callable()) return m;
      const Value* v = obj.dict_data().find(name);
      return v ? *v : Value::undefined(name);
    }
    case Kind::kString:
      return string_method(obj, name);
    case Kind::kList: {
      if (mutating_methods().count(name)) {
        throw JinjaError("access to attribute '" + name + "' of '" + obj.type_name() +
                         "' object is unsafe");
      }
      if (name == "index" || name == "count") {
        return Value::callable("list." + name, [obj, name](Interpreter&, const CallArgs& a) {
          const Value* x = a.get(0, "value");
          if (!x) throw JinjaError("list." + name + "() takes exactly one argument");
          int64_t n = 0;
          const auto& items = obj.items();
          for (size_t i = 0; i < items.size(); ++i) {
            if (!values_equal(items[i], *x)) continue;
            if (name == "index") return Value::integer(static_cast<int64_t>(i));
            ++n;
          }
          if (name == "index") throw JinjaError("value is not in list");
          return Value::integer(n);
        });
      }
      return Value::undefined(name);
    }
    default:
      return Value::undefined(name);
  }
}

Value get_item(Interpreter& in, const Value& obj, const Value& key) {
  switch (obj.kind()) {
    case Kind::kUndefined:
      undefined_error(obj);
    case Kind::kDict: {
      if (key.is_string() || key.is_int() || key.is_bool()) {
        const Value* v = obj.dict_data().find(dict_key(key));
        if (v) return *v;
        if (!key.is_string()) return Value::undefined(python_str(key));
        if (!obj.is_namespace()) {
          Value m = dict_method(obj, key.as_string());
          if (m.is_callable()) return m;
        }
      }
      return Value::undefined(key.is_string() ? key.as_string() : python_str(key));
    }
    case Kind::kList:
    case Kind::kString: {
      if (key.is_string()) return get_attr(in, obj, key.as_string());
      if (!(key.is_int() || key.is_bool())) return Value::undefined();
      if (obj.is_list() && obj.list_data().kind == ListKind::kGenerator) {
        throw JinjaError("'generator' object is not subscriptable");
      }
      int64_t i = key.as_int();
      if (obj.is_string()) {
        std::u32string cps = text::decode(obj.as_string());
        int64_t n = static_cast<int64_t>(cps.size());
        if (i < 0) i += n;
        if (i < 0 || i >= n) return Value::undefined();
        return Value::string(text::encode(std::u32string(1, cps[static_cast<size_t>(i)])));
      }
      int64_t n = static_cast<int64_t>(obj.items().size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value::undefined();
      return obj.items()[static_cast<size_t>(i)];
    }
    default:
      return Value::undefined();
  }
}

// ---- tests --------------------------------------------------------------------------------

namespace {

using TestFn = bool (*)(Interpreter&, const Value&, const CallArgs&);

const Value& test_arg(const CallArgs& a, const char* test) {
  if (a.positional.empty()) throw JinjaError(std::string("test '") + test + "' needs an argument");
  return a.positional[0];
}

bool less_checked(const Value& a, const Value& b) {
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  return values_less(a, b);
}

const std::vector<std::pair<std::string, TestFn>>& tests() {
  static const std::vector<std::pair<std::string, TestFn>> k = {
      {"defined", [](Interpreter&, const Value& v, const CallArgs&) { return !v.is_undefined(); }},
      {"undefined", [](Interpreter&, const Value& v, const CallArgs&) { return v.is_undefined(); }},
      {"none", [](Interpreter&, const Value& v, const CallArgs&) { return v.is_none(); }},
      {"boolean", [](Interpreter&, const Value& v, const CallArgs&) { return v.is_bool(); }},
      {"true",
       [](Interpreter&, const Value& v, const CallArgs&) { return v.is_bool() && v.as_bool(); }},
      {"false",
       [](Interpreter&, const Value& v, const CallArgs&) { return v.is_bool() && !v.as_bool(); }},
      {"integer", [](Interpreter&, const Value& v, const CallArgs&) { return v.is_int(); }},
      {"float", [](Interpreter&, const Value& v, const CallArgs&) { return v.is_float(); }},
      {"number", [](Interpreter&, const Value& v, const CallArgs&) { return v.is_number(); }},
      {"string", [](Interpreter&, const Value& v, const CallArgs&) { return v.is_string(); }},
      {"mapping", [](Interpreter&, const Value& v,
                     const CallArgs&) { return v.is_dict() && !v.is_namespace(); }},
      {"iterable",
       [](Interpreter&, const Value& v, const CallArgs&) {
         return v.is_undefined() || v.is_string() || v.is_list() ||
                (v.is_dict() && !v.is_namespace());
       }},
      {"sequence",
       [](Interpreter&, const Value& v, const CallArgs&) {
         return v.is_string() || (v.is_dict() && !v.is_namespace()) ||
                (v.is_list() && v.list_data().kind != ListKind::kGenerator);
       }},
      {"callable", [](Interpreter&, const Value& v, const CallArgs&) { return v.is_callable(); }},
      {"odd",
       [](Interpreter&, const Value& v, const CallArgs&) {
         if (!v.is_int() && !v.is_bool()) throw JinjaError("test 'odd' needs an integer");
         return v.as_int() % 2 != 0;
       }},
      {"even",
       [](Interpreter&, const Value& v, const CallArgs&) {
         if (!v.is_int() && !v.is_bool()) throw JinjaError("test 'even' needs an integer");
         return v.as_int() % 2 == 0;
       }},
      {"divisibleby",
       [](Interpreter&, const Value& v, const CallArgs& a) {
         const Value& d = test_arg(a, "divisibleby");
         if (!(v.is_int() || v.is_bool()) || !(d.is_int() || d.is_bool()))
           throw JinjaError("divisibleby needs integers");
         if (d.as_int() == 0) throw JinjaError("integer division or modulo by zero");
         return v.as_int() % d.as_int() == 0;
       }},
      {"eq", [](Interpreter&, const Value& v,
                const CallArgs& a) { return values_equal(v, test_arg(a, "eq")); }},
      {"ne", [](Interpreter&, const Value& v,
                const CallArgs& a) { return !values_equal(v, test_arg(a, "ne")); }},
      {"lt", [](Interpreter&, const Value& v,
                const CallArgs& a) { return less_checked(v, test_arg(a, "lt")); }},
      {"gt", [](Interpreter&, const Value& v,
                const CallArgs& a) { return less_checked(test_arg(a, "gt"), v); }},
      {"le", [](Interpreter&, const Value& v,
                const CallArgs& a) { return !less_checked(test_arg(a, "le"), v); }},
      {"ge", [](Interpreter&, const Value& v,
                const CallArgs& a) { return !less_checked(v, test_arg(a, "ge")); }},
      {"in", [](Interpreter&, const Value& v,
                const CallArgs& a) { return contains(test_arg(a, "in"), v); }},
      {"sameas",
       [](Interpreter&, const Value& v, const CallArgs& a) {
         const Value& o = test_arg(a, "sameas");
         if (v.kind() != o.kind()) return false;
         if (v.is_none() || v.is_undefined()) return true;
         if (v.is_bool()) return v.as_bool() == o.as_bool();
         if (v.is_list()) return &v.list_data() == &o.list_data();
         if (v.is_dict()) return &v.dict_data() == &o.dict_data();
         return values_equal(v, o);  // small ints and interned strings: Python's `is` is unreliable
       }},
      {"lower",
       [](Interpreter&, const Value& v, const CallArgs&) {
         return v.is_string() && text::lower(v.as_string()) == v.as_string();
       }},
      {"upper",
       [](Interpreter&, const Value& v, const CallArgs&) {
         return v.is_string() && text::upper(v.as_string()) == v.as_string();
       }},
      {"escaped", [](Interpreter&, const Value&, const CallArgs&) { return false; }},
      {"filter", [](Interpreter&, const Value& v,
                    const CallArgs&) { return v.is_string() && has_filter(v.as_string()); }},
      {"test", [](Interpreter&, const Value& v,
                  const CallArgs&) { return v.is_string() && has_test(v.as_string()); }},
  };
  return k;
}

std::string canonical_test(const std::string& name) {
  if (name == "equalto" || name == "==") return "eq";
  if (name == "!=") return "ne";
  if (name == "lessthan" || name == "<") return "lt";
  if (name == "greaterthan" || name == ">") return "gt";
  if (name == "<=") return "le";
  if (name == ">=") return "ge";
  return name;
}

}  // namespace

bool has_test(const std::string& name) {
  std::string n = canonical_test(name);
  for (const auto& [k, _] : tests())
    if (k == n) return true;
  return false;
}

bool apply_test(Interpreter& in, const std::string& name, const Value& v, const CallArgs& args) {
  std::string n = canonical_test(name);
  for (const auto& [k, fn] : tests())
    if (k == n) return fn(in, v, args);
  throw JinjaError("no test named '" + name + "'");
}

// ---- globals ------------------------------------------------------------------------------

void install_builtin_globals(Frame& g) {
  g.vars["range"] = Value::callable("range", [](Interpreter&, const CallArgs& a) {
    if (a.positional.empty() || a.positional.size() > 3 || !a.keywords.empty()) {
      throw JinjaError("range expected 1 to 3 integer arguments");
    }
    for (const Value& v : a.positional)
      if (!(v.is_int() || v.is_bool()))
        throw JinjaError("'" + v.type_name() + "' object cannot be interpreted as an integer");
    int64_t start = 0, stop, step = 1;
    if (a.positional.size() == 1) {
      stop = a.positional[0].as_int();
    } else {
      start = a.positional[0].as_int();
      stop = a.positional[1].as_int();
      if (a.positional.size() == 3) step = a.positional[2].as_int();
    }
    if (step == 0) throw JinjaError("range() arg 3 must not be zero");
    std::vector<Value> out;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      if (out.size() >= 100000)
        throw JinjaError("range too big, max is 100000 items");  // Jinja's MAX_RANGE
      out.push_back(Value::integer(i));
    }
    return Value::list(std::move(out), ListKind::kView);
  });
  g.vars["namespace"] = Value::callable("namespace", [](Interpreter&, const CallArgs& a) {
    auto d = std::make_shared<DictData>();
    d->is_namespace = true;
    for (const Value& p : a.positional) {
      if (!p.is_dict()) throw JinjaError("namespace() positional argument must be a dict");
      for (const auto& [k, v] : p.dict_data().entries) d->set(k, v);
    }
    for (const auto& [k, v] : a.keywords) d->set(k, v);
    return Value::dict(std::move(d));
  });
  g.vars["dict"] = Value::callable("dict", [](Interpreter&, const CallArgs& a) {
    auto d = std::make_shared<DictData>();
    for (const Value& p : a.positional) {
      if (!p.is_dict()) throw JinjaError("dict() positional argument must be a dict");
      for (const auto& [k, v] : p.dict_data().entries) d->set(k, v);
    }
    for (const auto& [k, v] : a.keywords) d->set(k, v);
    return Value::dict(std::move(d));
  });
  g.vars["joiner"] = Value::callable("joiner", [](Interpreter&, const CallArgs& a) {
    const Value* sep = a.get(0, "sep");
    std::string s = sep ? python_str(*sep) : ", ";
    auto used = std::make_shared<bool>(false);
    return Value::callable("joiner", [s, used](Interpreter&, const CallArgs&) {
      if (!*used) {
        *used = true;
        return Value::string("");
      }
      return Value::string(s);
    });
  });
}

}  // namespace mlxs::jinja
