// Jinja's builtin filters with transformers' `tojson` (json.dumps with ensure_ascii=False).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "jinja/builtins.h"
#include "jinja/text.h"

namespace mlxs::jinja {
namespace {

using FilterFn = Value (*)(Interpreter&, const Value&, const CallArgs&);

[[noreturn]] void undefined_error(const Value& v) {
  throw JinjaError(v.undefined_hint().empty() ? "value is undefined"
                                              : "'" + v.undefined_hint() + "' is undefined");
}

bool flag(const CallArgs& a, size_t i, const char* name, bool dflt) {
  const Value* v = a.get(i, name);
  return v ? v->truthy() : dflt;
}

std::vector<Value> items_of(const Value& v) {
  if (v.is_none()) throw JinjaError("'NoneType' object is not iterable");
  return iterate(v);
}

// map/select/reject/selectattr/rejectattr start with `if value:`, so a falsy input (None, an
// empty string) yields nothing instead of failing.
std::vector<Value> items_if_truthy(const Value& v) {
  return v.truthy() ? items_of(v) : std::vector<Value>{};
}

Value generator(std::vector<Value> items) {
  return Value::list(std::move(items), ListKind::kGenerator);
}

// Jinja's make_attrgetter: "a.b.0" looks up a, then b, then index 0, with getitem semantics.
Value attr_path(Interpreter& in, Value v, const std::string& path) {
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part =
        path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) {
      return std::isdigit(static_cast<unsigned char>(c));
    });
    v = get_item(in, v, digits ? Value::integer(std::atoll(part.c_str())) : Value::string(part));
    if (dot == std::string::npos) return v;
    start = dot + 1;
  }
}

Value attribute_of(Interpreter& in, const Value& item, const Value& attribute) {
  if (attribute.is_int()) return get_item(in, item, attribute);
  if (!attribute.is_string()) throw JinjaError("attribute must be a string or an integer");
  return attr_path(in, item, attribute.as_string());
}

// select/reject/selectattr/rejectattr.
Value select_impl(Interpreter& in, const Value& v, const CallArgs& a, bool by_attr, bool keep) {
  size_t base = by_attr ? 1 : 0;
  if (by_attr && a.positional.empty())
    throw JinjaError("selectattr/rejectattr need an attribute name");
  std::string test;
  CallArgs test_args;
  if (a.positional.size() > base) {
    if (!a.positional[base].is_string()) throw JinjaError("the test name must be a string");
    test = a.positional[base].as_string();
    test_args.positional.assign(a.positional.begin() + static_cast<long>(base) + 1,
                                a.positional.end());
    test_args.keywords = a.keywords;
  }
  std::vector<Value> out;
  for (const Value& item : items_if_truthy(v)) {
    in.count_iteration();
    Value subject = by_attr ? attribute_of(in, item, a.positional[0]) : item;
    bool ok = test.empty() ? subject.truthy() : apply_test(in, test, subject, test_args);
    if (ok == keep) out.push_back(item);
  }
  return generator(std::move(out));
}

Value do_map(Interpreter& in, const Value& v, const CallArgs& a) {
  std::vector<Value> out;
  const Value* attribute = nullptr;
  const Value* dflt = nullptr;
  for (const auto& [k, kv] : a.keywords) {
    if (k == "attribute")
      attribute = &kv;
    else if (k == "default")
      dflt = &kv;
  }
  if (attribute) {
    for (const Value& item : items_if_truthy(v)) {
      in.count_iteration();
      Value r = attribute_of(in, item, *attribute);
      out.push_back(r.is_undefined() && dflt ? *dflt : r);
    }
    return generator(std::move(out));
  }
  if (a.positional.empty() || !a.positional[0].is_string())
    throw JinjaError("map needs a filter name or attribute=");
  std::string filter = a.positional[0].as_string();
  CallArgs rest;
  rest.positional.assign(a.positional.begin() + 1, a.positional.end());
  rest.keywords = a.keywords;
  for (const Value& item : items_if_truthy(v)) {
    in.count_iteration();
    out.push_back(apply_filter(in, filter, item, rest));
  }
  return generator(std::move(out));
}

Value do_length(Interpreter&, const Value& v, const CallArgs&) {
  switch (v.kind()) {
    case Kind::kUndefined:
      return Value::integer(0);
    case Kind::kString:
      return Value::integer(static_cast<int64_t>(text::length(v.as_string())));
    case Kind::kList:
      if (v.list_data().kind == ListKind::kGenerator)
        throw JinjaError("object of type 'generator' has no len()");
      return Value::integer(static_cast<int64_t>(v.items().size()));
    case Kind::kDict:
      if (!v.is_namespace())
        return Value::integer(static_cast<int64_t>(v.dict_data().entries.size()));
      break;
    default:
      break;
  }
  throw JinjaError("object of type '" + v.type_name() + "' has no len()");
}

Value do_tojson(Interpreter&, const Value& v, const CallArgs& a) {
  JsonDumpOptions o;
  o.ensure_ascii = flag(a, 0, "ensure_ascii", false);
  if (const Value* ind = a.get(1, "indent"); ind && !ind->is_none()) {
    o.has_indent = true;
    if (ind->is_string())
      o.indent = ind->as_string();
    else if (ind->is_int() &&
             (check_value_size(uint64_t(std::max<int64_t>(0, ind->as_int()))), true))
      o.indent = std::string(static_cast<size_t>(std::max<int64_t>(0, ind->as_int())), ' ');
    else
      throw JinjaError("tojson: indent must be an int or a string");
  }
  if (const Value* sep = a.get(2, "separators"); sep && !sep->is_none()) {
    if (!sep->is_list() || sep->items().size() != 2 || !sep->items()[0].is_string() ||
        !sep->items()[1].is_string()) {
      throw JinjaError("tojson: separators must be a pair of strings");
    }
    o.has_separators = true;
    o.item_separator = sep->items()[0].as_string();
    o.key_separator = sep->items()[1].as_string();
  }
  o.sort_keys = flag(a, 3, "sort_keys", false);
  for (const auto& [k, _] : a.keywords) {
    if (k != "ensure_ascii" && k != "indent" && k != "separators" && k != "sort_keys") {
      throw JinjaError("tojson() got an unexpected keyword argument '" + k + "'");
    }
  }
  return Value::string(json_dumps(v, o));
}

std::string soft_str(const Value& v) {
  return python_str(v);
}

// A string result that stays Markup when its input was (Markup's str methods return Markup).
Value like(const Value& input, std::string s) {
  return input.is_safe() ? Value::safe_string(std::move(s)) : Value::string(std::move(s));
}

Value do_join(Interpreter& in, const Value& v, const CallArgs& a) {
  const Value* d = a.get(0, "d");
  std::string sep = d ? soft_str(*d) : "";
  const Value* attribute = a.get(1, "attribute");
  std::string out;
  bool first = true;
  for (const Value& item : items_of(v)) {
    in.count_iteration();
    std::string piece =
        soft_str(attribute && !attribute->is_none() ? attribute_of(in, item, *attribute) : item);
    check_value_size(uint64_t(out.size()) + (first ? 0 : sep.size()) + piece.size());
    if (!first) out += sep;
    first = false;
    out += piece;
  }
  return Value::string(std::move(out));
}

Value do_default(Interpreter&, const Value& v, const CallArgs& a) {
  const Value* d = a.get(0, "default_value");
  bool boolean = flag(a, 1, "boolean", false);
  if (v.is_undefined() || (boolean && !v.truthy())) return d ? *d : Value::string("");
  return v;
}

Value do_first(Interpreter&, const Value& v, const CallArgs&) {
  std::vector<Value> items = items_of(v);
  return items.empty() ? Value::undefined("first item") : items.front();
}

Value do_last(Interpreter&, const Value& v, const CallArgs&) {
  if (v.is_list() && v.list_data().kind == ListKind::kGenerator)
    throw JinjaError("'generator' object is not reversible");
  if (v.is_dict()) throw JinjaError("'dict' object is not reversible");
  std::vector<Value> items = items_of(v);
  return items.empty() ? Value::undefined("last item") : items.back();
}

Value do_indent(Interpreter&, const Value& v, const CallArgs& a) {
  std::string ind = "    ";
  if (const Value* w = a.get(0, "width")) {
    if (!w->is_string()) check_value_size(uint64_t(std::max<int64_t>(0, w->as_int())));
    ind = w->is_string() ? w->as_string()
                         : std::string(static_cast<size_t>(std::max<int64_t>(0, w->as_int())), ' ');
  }
  bool first = flag(a, 1, "first", false), blank = flag(a, 2, "blank", false);
  std::string s = soft_str(v) + "\n";
  // str.splitlines(); line breaks other than \n and \r\n are rare enough to treat as text.
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' || s[i] == '\r') {
      lines.push_back(s.substr(start, i - start));
      if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
      start = i + 1;
    }
  }
  if (start < s.size()) lines.push_back(s.substr(start));
  check_value_size(s.size() + repeated_size(ind.size(), lines.size() + 1));
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i) out += "\n";
    if (i == 0 || (!blank && lines[i].empty()))
      out += lines[i];
    else
      out += ind + lines[i];
  }
  if (first) out = ind + out;
  return like(v, std::move(out));
}

Value do_round(Interpreter&, const Value& v, const CallArgs& a) {
  if (!v.is_number()) throw JinjaError("round: value must be a number");
  const Value* p = a.get(0, "precision");
  int64_t precision = p ? p->as_int() : 0;
  const Value* m = a.get(1, "method");
  std::string method = m ? soft_str(*m) : "common";
  double x = v.as_double();
  double scale = std::pow(10.0, static_cast<double>(precision));
  if (method == "ceil") return Value::number(std::ceil(x * scale) / scale);
  if (method == "floor") return Value::number(std::floor(x * scale) / scale);
  if (method != "common") throw JinjaError("round: method must be common, ceil or floor");
  if (!v.is_float()) return Value::integer(v.as_int());
  char buf[512];
  std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(std::clamp<int64_t>(precision, 0, 300)),
                x);
  double r = std::strtod(buf, nullptr);
  if (precision < 0) r = std::nearbyint(x * scale) / scale;
  return Value::number(r);
}

Value do_int(Interpreter&, const Value& v, const CallArgs& a) {
  const Value* d = a.get(0, "default");
  Value dflt = d ? *d : Value::integer(0);
  if (v.is_int() || v.is_bool()) return Value::integer(v.as_int());
  if (v.is_float())
    return std::isfinite(v.as_double()) ? Value::integer(static_cast<int64_t>(v.as_double()))
                                        : dflt;
  if (v.is_string()) {
    std::string s = text::strip(v.as_string(), true, true);
    char* end = nullptr;
    long long i = std::strtoll(s.c_str(), &end, 10);
    if (!s.empty() && end && *end == '\0') return Value::integer(i);
    double f = std::strtod(s.c_str(), &end);
    if (!s.empty() && end && *end == '\0' && std::isfinite(f))
      return Value::integer(static_cast<int64_t>(f));
  }
  return dflt;
}

Value do_float(Interpreter&, const Value& v, const CallArgs& a) {
  const Value* d = a.get(0, "default");
  Value dflt = d ? *d : Value::number(0.0);
  if (v.is_number()) return Value::number(v.as_double());
  if (v.is_string()) {
    std::string s = text::strip(v.as_string(), true, true);
    char* end = nullptr;
    double f = std::strtod(s.c_str(), &end);
    if (!s.empty() && end && *end == '\0') return Value::number(f);
  }
  return dflt;
}

Value do_items(Interpreter&, const Value& v, const CallArgs&) {
  if (v.is_undefined()) return generator({});
  if (!v.is_dict() || v.is_namespace()) throw JinjaError("Can only get item pairs from a mapping.");
  std::vector<Value> out;
  for (const auto& [k, x] : v.dict_data().entries)
    out.push_back(Value::list({key_value(k), x}, ListKind::kTuple));
  return generator(std::move(out));
}

// Sort key for case-insensitive comparisons: strings lowercased.
Value sort_key(const Value& v, bool case_sensitive) {
  return !case_sensitive && v.is_string() ? Value::string(text::lower(v.as_string())) : v;
}

Value do_dictsort(Interpreter&, const Value& v, const CallArgs& a) {
  if (!v.is_dict() || v.is_namespace())
    throw JinjaError("You can only sort by either 'key' or 'value'");
  bool cs = flag(a, 0, "case_sensitive", false);
  const Value* by = a.get(1, "by");
  bool by_value = by && by->is_string() && by->as_string() == "value";
  bool rev = flag(a, 2, "reverse", false);
  std::vector<Value> out;
  for (const auto& [k, x] : v.dict_data().entries)
    out.push_back(Value::list({key_value(k), x}, ListKind::kTuple));
  std::stable_sort(out.begin(), out.end(), [&](const Value& l, const Value& r) {
    size_t i = by_value ? 1 : 0;
    return rev ? values_less(sort_key(r.items()[i], cs), sort_key(l.items()[i], cs))
               : values_less(sort_key(l.items()[i], cs), sort_key(r.items()[i], cs));
  });
  return Value::list(std::move(out));
}

Value do_sort(Interpreter& in, const Value& v, const CallArgs& a) {
  bool rev = flag(a, 0, "reverse", false), cs = flag(a, 1, "case_sensitive", false);
  const Value* attribute = a.get(2, "attribute");
  std::vector<Value> items = items_of(v);
  auto key = [&](const Value& x) {
    return sort_key(attribute && !attribute->is_none() ? attribute_of(in, x, *attribute) : x, cs);
  };
  std::stable_sort(items.begin(), items.end(), [&](const Value& l, const Value& r) {
    return rev ? values_less(key(r), key(l)) : values_less(key(l), key(r));
  });
  return Value::list(std::move(items));
}

Value do_unique(Interpreter& in, const Value& v, const CallArgs& a) {
  bool cs = flag(a, 0, "case_sensitive", false);
  const Value* attribute = a.get(1, "attribute");
  std::vector<Value> out, seen;
  for (const Value& x : items_of(v)) {
    Value k =
        sort_key(attribute && !attribute->is_none() ? attribute_of(in, x, *attribute) : x, cs);
    if (std::none_of(seen.begin(), seen.end(),
                     [&](const Value& s) { return values_equal(s, k); })) {
      seen.push_back(k);
      out.push_back(x);
    }
  }
  return generator(std::move(out));
}

Value do_reverse(Interpreter&, const Value& v, const CallArgs&) {
  if (v.is_string()) {
    std::u32string cps = text::decode(v.as_string());
    std::reverse(cps.begin(), cps.end());
    return Value::string(text::encode(cps));
  }
  std::vector<Value> items = items_of(v);
  std::reverse(items.begin(), items.end());
  return generator(std::move(items));
}

Value do_escape(Interpreter&, const Value& v, const CallArgs&) {
  if (v.is_safe()) return v;
  return Value::safe_string(html_escape(soft_str(v)));
}

Value do_forceescape(Interpreter&, const Value& v, const CallArgs&) {
  return Value::safe_string(html_escape(soft_str(v)));
}

Value do_sum(Interpreter& in, const Value& v, const CallArgs& a) {
  const Value* attribute = a.get(0, "attribute");
  const Value* start = a.get(1, "start");
  Value total = start ? *start : Value::integer(0);
  for (const Value& x : items_of(v))
    total = arithmetic("+", total,
                       attribute && !attribute->is_none() ? attribute_of(in, x, *attribute) : x);
  return total;
}

Value min_max(Interpreter& in, const Value& v, const CallArgs& a, bool want_max) {
  bool cs = flag(a, 0, "case_sensitive", false);
  const Value* attribute = a.get(1, "attribute");
  std::vector<Value> items = items_of(v);
  if (items.empty()) return Value::undefined("min/max of an empty sequence");
  size_t best = 0;
  auto key = [&](const Value& x) {
    return sort_key(attribute && !attribute->is_none() ? attribute_of(in, x, *attribute) : x, cs);
  };
  for (size_t i = 1; i < items.size(); ++i) {
    bool better = want_max ? values_less(key(items[best]), key(items[i]))
                           : values_less(key(items[i]), key(items[best]));
    if (better) best = i;
  }
  return items[best];
}

Value do_batch(Interpreter&, const Value& v, const CallArgs& a) {
  const Value* n = a.get(0, "linecount");
  if (!n || !n->is_int() || n->as_int() <= 0) throw JinjaError("batch needs a positive line count");
  const Value* fill = a.get(1, "fill_with");
  std::vector<Value> out, cur;
  for (const Value& x : items_of(v)) {
    cur.push_back(x);
    if (static_cast<int64_t>(cur.size()) == n->as_int()) {
      out.push_back(Value::list(std::move(cur)));
      cur.clear();
    }
  }
  if (!cur.empty()) {
    if (fill && !fill->is_none())
      while (static_cast<int64_t>(cur.size()) < n->as_int()) cur.push_back(*fill);
    out.push_back(Value::list(std::move(cur)));
  }
  return generator(std::move(out));
}

Value do_format(Interpreter&, const Value& v, const CallArgs& a) {
  std::string fmt = soft_str(v), out;
  size_t next = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out.push_back(fmt[i]);
      continue;
    }
    if (i + 1 >= fmt.size()) throw JinjaError("format: incomplete format");
    char c = fmt[++i];
    if (c == '%') {
      out.push_back('%');
      continue;
    }
    if (next >= a.positional.size())
      throw JinjaError("format: not enough arguments for format string");
    const Value& x = a.positional[next++];
    if (c == 's')
      out += soft_str(x);
    else if (c == 'r')
      out += python_repr(x);
    else if ((c == 'd' || c == 'i') && x.is_number())
      out += std::to_string(static_cast<int64_t>(x.as_double()));
    else
      throw JinjaError(std::string("format: unsupported conversion '%") + c + "'");
  }
  if (next != a.positional.size())
    throw JinjaError("format: not all arguments converted during string formatting");
  return Value::string(std::move(out));
}

const std::vector<std::pair<std::string, FilterFn>>& filters() {
  static const std::vector<std::pair<std::string, FilterFn>> k = {
      {"tojson", do_tojson},
      {"length", do_length},
      {"count", do_length},
      {"join", do_join},
      {"default", do_default},
      {"d", do_default},
      {"first", do_first},
      {"last", do_last},
      {"map", do_map},
      {"select", [](Interpreter& in, const Value& v,
                    const CallArgs& a) { return select_impl(in, v, a, false, true); }},
      {"reject", [](Interpreter& in, const Value& v,
                    const CallArgs& a) { return select_impl(in, v, a, false, false); }},
      {"selectattr", [](Interpreter& in, const Value& v,
                        const CallArgs& a) { return select_impl(in, v, a, true, true); }},
      {"rejectattr", [](Interpreter& in, const Value& v,
                        const CallArgs& a) { return select_impl(in, v, a, true, false); }},
      {"list",
       [](Interpreter&, const Value& v, const CallArgs&) { return Value::list(items_of(v)); }},
      {"items", do_items},
      {"dictsort", do_dictsort},
      {"sort", do_sort},
      {"unique", do_unique},
      {"reverse", do_reverse},
      {"batch", do_batch},
      {"sum", do_sum},
      {"min",
       [](Interpreter& in, const Value& v, const CallArgs& a) { return min_max(in, v, a, false); }},
      {"max",
       [](Interpreter& in, const Value& v, const CallArgs& a) { return min_max(in, v, a, true); }},
      {"string", [](Interpreter&, const Value& v,
                    const CallArgs&) { return v.is_string() ? v : Value::string(soft_str(v)); }},
      {"safe", [](Interpreter&, const Value& v,
                  const CallArgs&) { return Value::safe_string(soft_str(v)); }},
      {"escape", do_escape},
      {"e", do_escape},
      {"forceescape", do_forceescape},
      {"trim",
       [](Interpreter&, const Value& v, const CallArgs& a) {
         const Value* chars = a.get(0, "chars");
         std::string set = chars && !chars->is_none() ? soft_str(*chars) : "";
         return like(
             v, text::strip(soft_str(v), true, true, chars && !chars->is_none() ? &set : nullptr));
       }},
      {"upper", [](Interpreter&, const Value& v,
                   const CallArgs&) { return like(v, text::upper(soft_str(v))); }},
      {"lower", [](Interpreter&, const Value& v,
                   const CallArgs&) { return like(v, text::lower(soft_str(v))); }},
      {"title", [](Interpreter&, const Value& v,
                   const CallArgs&) { return like(v, text::jinja_title(soft_str(v))); }},
      {"capitalize", [](Interpreter&, const Value& v,
                        const CallArgs&) { return like(v, text::capitalize(soft_str(v))); }},
      {"replace",
       [](Interpreter&, const Value& v, const CallArgs& a) {
         const Value* o = a.get(0, "old");
         const Value* n = a.get(1, "new");
         const Value* c = a.get(2, "count");
         if (!o || !n) throw JinjaError("replace needs old and new");
         const std::string s = soft_str(v), from = soft_str(*o), to = soft_str(*n);
         const long count = c && !c->is_none() ? static_cast<long>(c->as_int()) : -1;
         if (to.size() > from.size()) {  // the result can be far larger than its operands
           uint64_t found = from.empty() ? text::length(s) + 1 : text::count(s, from);
           if (count >= 0) found = std::min<uint64_t>(found, uint64_t(count));
           check_value_size(s.size() + repeated_size(to.size() - from.size(), found));
         }
         return Value::string(text::replace(s, from, to, count));
       }},
      {"wordcount",
       [](Interpreter&, const Value& v, const CallArgs&) {
         return Value::integer(static_cast<int64_t>(text::split(soft_str(v), nullptr, -1).size()));
       }},
      {"indent", do_indent},
      {"int", do_int},
      {"float", do_float},
      {"abs",
       [](Interpreter&, const Value& v, const CallArgs&) {
         if (v.is_float()) return Value::number(std::fabs(v.as_double()));
         if (v.is_int() || v.is_bool()) return Value::integer(std::llabs(v.as_int()));
         if (v.is_undefined()) undefined_error(v);
         throw JinjaError("bad operand type for abs(): '" + v.type_name() + "'");
       }},
      {"round", do_round},
      {"attr",
       [](Interpreter& in, const Value& v, const CallArgs& a) {
         const Value* n = a.get(0, "name");
         if (!n || !n->is_string()) throw JinjaError("attr needs a name");
         if (v.is_dict() && !v.is_namespace()) {
           Value m = get_attr(in, v, n->as_string());
           return m.is_callable() ? m : Value::undefined(n->as_string());
         }
         return get_attr(in, v, n->as_string());
       }},
      {"format", do_format},
      {"center",
       [](Interpreter&, const Value& v, const CallArgs& a) {
         std::string s = soft_str(v);
         const Value* w = a.get(0, "width");
         int64_t width = w ? w->as_int() : 80, len = static_cast<int64_t>(text::length(s));
         if (width <= len) return Value::string(s);
         check_value_size(uint64_t(width));
         int64_t total = width - len, left = total / 2 + (total & width & 1);
         return Value::string(std::string(static_cast<size_t>(left), ' ') + s +
                              std::string(static_cast<size_t>(total - left), ' '));
       }},
  };
  return k;
}

}  // namespace

bool has_filter(const std::string& name) {
  for (const auto& [k, _] : filters())
    if (k == name) return true;
  return false;
}

Value apply_filter(Interpreter& in, const std::string& name, const Value& v, const CallArgs& args) {
  for (const auto& [k, fn] : filters())
    if (k == name) return fn(in, v, args);
  throw JinjaError("no filter named '" + name + "'");
}

}  // namespace mlxs::jinja
