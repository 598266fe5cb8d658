#include "structured/json_schema.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "structured/gbnf_expr.h"
#include "structured/grammar.h"
#include "structured/number_grammar.h"
#include "structured/regex_to_gbnf.h"
#include "util/json_depth.h"

namespace mlxs::structured {

namespace {

using Json = nlohmann::ordered_json;

// Keywords that only annotate: ignored wherever they appear.
const std::set<std::string> kMetadata = {
    "title",   "description", "$schema",       "$id",          "id",       "examples",
    "example", "default",     "$comment",      "deprecated",   "readOnly", "writeOnly",
    "$defs",   "definitions", "discriminator", "externalDocs", "xml"};

const std::set<std::string> kSupported = {"type",
                                          "enum",
                                          "const",
                                          "properties",
                                          "required",
                                          "additionalProperties",
                                          "items",
                                          "prefixItems",
                                          "additionalItems",
                                          "minItems",
                                          "maxItems",
                                          "uniqueItems",
                                          "anyOf",
                                          "oneOf",
                                          "allOf",
                                          "$ref",
                                          "format",
                                          "pattern",
                                          "minLength",
                                          "maxLength",
                                          "minimum",
                                          "maximum",
                                          "exclusiveMinimum",
                                          "exclusiveMaximum",
                                          "nullable"};

const std::set<std::string> kTypes = {"null",    "boolean", "object", "array",
                                      "integer", "number",  "string"};

// The `format`s supported, as regular expressions over the string's characters (RFC 3339 dates
// and times without the leap second, RFC 4122 UUIDs, a dot-atom email, an RFC 3986 URI with a
// scheme, IPv4, RFC 1123 host names).
const std::map<std::string, std::string> kFormats = {
    {"date",
     "\\d{4}-((0[13578]|1[02])-(0[1-9]|[12]\\d|3[01])|(0[469]|11)-(0[1-9]|[12]\\d|30)|"
     "02-(0[1-9]|1\\d|2[0-8]))"},
    {"time", "([01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(\\.\\d{1,9})?(Z|[+-]([01]\\d|2[0-3]):[0-5]\\d)"},
    {"date-time",
     "\\d{4}-((0[13578]|1[02])-(0[1-9]|[12]\\d|3[01])|(0[469]|11)-(0[1-9]|[12]\\d|30)|"
     "02-(0[1-9]|1\\d|2[0-8]))T([01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(\\.\\d{1,9})?"
     "(Z|[+-]([01]\\d|2[0-3]):[0-5]\\d)"},
    {"uuid", "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"},
    {"email",
     "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}){0,8}@"
     "([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.){1,8}[A-Za-z]{2,24}"},
    {"uri",
     "[A-Za-z][A-Za-z0-9+.-]{0,31}:([A-Za-z0-9\\-._~:/?#\\[\\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*"},
    {"ipv4", "((25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)\\.){3}(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)"},
    {"hostname",
     "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}"
     "[A-Za-z0-9])?){0,8}"},
};

std::string pointer_escape(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

// An inclusive integer bound.
struct Bound {
  int64_t value = 0;
};

class Translator {
 public:
  Translator(const Json& root, const JsonSchemaOptions& options) : root_(root), opt_(options) {}

  Result<std::string> run() {
    for (const std::string& n : {opt_.root_rule, opt_.rule_prefix}) {
      if (gbnf_rule_name(n) != n) {
        return error(ErrorCode::kInvalidParams,
                     fmt::format("rule name '{}' may hold only letters, digits and '-'", n));
      }
    }
    if (opt_.root_rule.empty()) return error(ErrorCode::kInvalidParams, "root_rule is empty");
    if (opt_.any_whitespace && (opt_.max_whitespace < 0 || opt_.max_whitespace > 1000)) {
      return error(ErrorCode::kInvalidParams,
                   fmt::format("max_whitespace must be in [0, 1000], got {}", opt_.max_whitespace));
    }
    names_.insert(opt_.root_rule);
    Result<std::string> top = visit(root_, "", 0);
    if (!top.ok()) return top.status();
    if (rules_.size() > kMaxSchemaRules) {
      return error(ErrorCode::kInvalidParams,
                   fmt::format("the schema needs more than {} grammar rules", kMaxSchemaRules));
    }
    std::string out = fmt::format("{} ::= {}\n", opt_.root_rule, *top);
    for (const auto& [name, body] : rules_) out += fmt::format("{} ::= {}\n", name, body);
    return out;
  }

 private:
  Status fail(const std::string& path, std::string_view what) const {
    return error(ErrorCode::kInvalidParams,
                 fmt::format("at {}: {}", path.empty() ? "/" : path, what));
  }

  // A fresh rule name from a hint, with the prefix.
  std::string reserve(std::string_view hint) {
    std::string base = opt_.rule_prefix + gbnf_rule_name(hint);
    std::string name = base;
    for (int i = 2; names_.count(name); ++i) name = fmt::format("{}{}", base, i);
    names_.insert(name);
    return name;
  }

  std::string define(std::string_view hint, std::string body) {
    std::string name = reserve(hint);
    rules_.emplace_back(name, std::move(body));
    return name;
  }

  // The shared rules (whitespace, any value, strings...), defined on first use.
  std::string prim(const std::string& what) {
    auto it = prims_.find(what);
    if (it != prims_.end()) return it->second;
    std::string name = reserve(what);
    prims_[what] = name;
    rules_.emplace_back(name, prim_body(what));
    return name;
  }

  std::string prim_body(const std::string& what) {
    const std::string s = sep();
    if (what == "ws") return fmt::format("[ \\t\\n\\r]{{0,{}}}", opt_.max_whitespace);
    if (what == "char") {
      // One character: printable ones raw, or an escape (\u outside the surrogates: a lone
      // one is valid JSON text that decoders reject).
      return gbnf_class({{0x20, 0x21}, {0x23, 0x5B}, {0x5D, 0xD7FF}, {0xE000, 0x10FFFF}}) +
             R"( | "\\" (["\\/bfnrt] | "u" ([0-9a-cA-CefEF] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2})))";
    }
    if (what == "key-char") {
      // An extra property's name: one spelling per character, so that names differing from
      // the listed ones can be told apart by their bytes.
      return gbnf_char_expression({{0x20, 0x10FFFF}}, RegexTarget::kJsonString);
    }
    if (what == "string") return fmt::format(R"("\"" {}* "\"")", prim("char"));
    // Digits are bounded so that every output parses as an int64 or a finite double.
    if (what == "integer") return R"("-"? ("0" | [1-9] [0-9]{0,17}))";
    if (what == "number") {
      return R"("-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,2})?)";
    }
    if (what == "boolean") return R"("true" | "false")";
    if (what == "null") return R"("null")";
    if (what == "value") {
      return fmt::format("{} | {} | {} | {} | {} | {}", prim("object"), prim("array"),
                         prim("string"), prim("number"), prim("boolean"), prim("null"));
    }
    if (what == "object") {
      std::string kv = sequence({prim("string"), s, "\":\"", s, prim("value")});
      return fmt::format("\"{{\" {} ({} ({} \",\" {} {})*)? {} \"}}\"", s, kv, s, s, kv, s);
    }
    if (what == "array") {
      return fmt::format("\"[\" {} ({} ({} \",\" {} {})*)? {} \"]\"", s, prim("value"), s, s,
                         prim("value"), s);
    }
    return "\"\"";
  }

  // Between two tokens: nothing, or the whitespace rule.
  std::string sep() { return opt_.any_whitespace ? prim("ws") : ""; }

  Result<std::string> visit(const Json& s, const std::string& path, int depth) {
    if (depth > kMaxSchemaDepth) {
      return fail(path, fmt::format("schemas nested deeper than {}", kMaxSchemaDepth));
    }
    if (rules_.size() > kMaxSchemaRules) {
      return fail(path,
                  fmt::format("the schema needs more than {} grammar rules", kMaxSchemaRules));
    }
    if (s.is_boolean()) {
      if (s.get<bool>()) return prim("value");
      return fail(path, "the schema false matches nothing");
    }
    if (!s.is_object()) return fail(path, "a schema must be an object or a boolean");
    for (const auto& [key, value] : s.items()) {
      if (kMetadata.count(key) || key.rfind("x-", 0) == 0) continue;
      if (!kSupported.count(key)) return fail(path, fmt::format("'{}' is not supported", key));
      if (key == "uniqueItems" && value != Json(false)) {
        return fail(path, "'uniqueItems': true is not supported");
      }
    }
    if (s.contains("$ref") || s.contains("allOf")) {
      Json rest = without(s, {"$ref", "allOf"});
      if (s.contains("$ref") && !s.contains("allOf") && !has_keywords(rest)) {
        return ref_rule(s["$ref"], path, depth);
      }
      Result<Json> flat = flatten(s, path, depth);
      if (!flat.ok()) return flat.status();
      return visit(*flat, path, depth + 1);
    }
    if (s.contains("anyOf") || s.contains("oneOf")) return visit_union(s, path, depth);
    if (s.contains("enum") || s.contains("const")) return visit_enum(s, path);
    Result<std::vector<std::string>> types = types_of(s, path);
    if (!types.ok()) return types.status();
    if (types->empty()) return prim("value");
    std::vector<std::string> alts;
    for (const std::string& t : *types) {
      Result<std::string> e = visit_type(s, t, path, depth);
      if (!e.ok()) return e.status();
      alts.push_back(*e);
    }
    return alternatives(alts);
  }

  static Json without(const Json& s, std::initializer_list<const char*> keys) {
    Json out = s;
    for (const char* k : keys) out.erase(k);
    return out;
  }

  static bool has_keywords(const Json& s) {
    for (const auto& [key, value] : s.items()) {
      if (!kMetadata.count(key) && key.rfind("x-", 0) != 0) return true;
    }
    return false;
  }

  Result<const Json*> resolve(const Json& ref, const std::string& path) {
    if (!ref.is_string()) return fail(path, "'$ref' must be a string");
    const std::string r = ref.get<std::string>();
    if (r.empty() || r[0] != '#') {
      return fail(path, fmt::format("$ref '{}': only references inside the schema ('#...') are "
                                    "supported",
                                    r));
    }
    try {
      Json::json_pointer ptr(r.substr(1));
      if (!root_.contains(ptr)) return fail(path, fmt::format("$ref '{}' points nowhere", r));
      return &root_.at(ptr);
    } catch (const std::exception& e) {
      return fail(path, fmt::format("$ref '{}' is not a JSON pointer", r));
    }
  }

  Result<std::string> ref_rule(const Json& ref, const std::string& path, int depth) {
    Result<const Json*> target = resolve(ref, path);
    if (!target.ok()) return target.status();
    const std::string r = ref.get<std::string>();
    auto it = ref_names_.find(r);
    if (it != ref_names_.end()) return it->second;
    size_t slash = r.rfind('/');
    std::string name =
        reserve(slash == std::string::npos || slash + 1 == r.size() ? std::string("root-ref")
                                                                    : r.substr(slash + 1));
    ref_names_[r] = name;
    size_t index = rules_.size();
    rules_.emplace_back(name, "");  // recursion refers to the name before its body exists
    Result<std::string> body = visit(**target, r.substr(1), depth + 1);
    if (!body.ok()) return body.status();
    rules_[index].second = *body;
    return name;
  }

  // `s` without $ref and allOf at its top: the referenced schema and the branches merged in.
  Result<Json> flatten(const Json& s, const std::string& path, int depth) {
    if (depth > kMaxSchemaDepth) {
      return fail(path, fmt::format("$ref/allOf chains deeper than {}", kMaxSchemaDepth));
    }
    if (s.is_boolean()) {
      if (s.get<bool>()) return Json::object();
      return fail(path, "allOf with the schema false matches nothing");
    }
    if (!s.is_object()) return fail(path, "a schema must be an object or a boolean");
    Json out = without(s, {"$ref", "allOf"});
    if (s.contains("$ref")) {
      Result<const Json*> target = resolve(s["$ref"], path);
      if (!target.ok()) return target.status();
      Result<Json> t = flatten(**target, s["$ref"].get<std::string>().substr(1), depth + 1);
      if (!t.ok()) return t.status();
      Result<Json> m = merge(std::move(*t), out, path);
      if (!m.ok()) return m.status();
      out = std::move(*m);
    }
    if (s.contains("allOf")) {
      const Json& branches = s["allOf"];
      if (!branches.is_array() || branches.empty()) {
        return fail(path, "'allOf' must be a non-empty array");
      }
      for (size_t i = 0; i < branches.size(); ++i) {
        std::string bpath = fmt::format("{}/allOf/{}", path, i);
        Result<Json> b = flatten(branches[i], bpath, depth + 1);
        if (!b.ok()) return b.status();
        Result<Json> m = merge(std::move(out), *b, bpath);
        if (!m.ok()) return m.status();
        out = std::move(*m);
      }
    }
    return out;
  }

  static std::set<std::string> type_set(const Json& t) {
    std::set<std::string> out;
    if (t.is_string()) out.insert(t.get<std::string>());
    if (t.is_array()) {
      for (const Json& x : t) {
        if (x.is_string()) out.insert(x.get<std::string>());
      }
    }
    return out;
  }

  // Both schemas at once (allOf of two flattened schemas), where the keywords combine.
  Result<Json> merge(Json a, const Json& b, const std::string& path) {
    // Properties one side lists and the other does not: that side's additionalProperties
    // applies to them.
    auto props = [](const Json& s) {
      return s.contains("properties") && s["properties"].is_object() ? s["properties"]
                                                                     : Json::object();
    };
    Json pa = props(a), pb = props(b);
    Json merged_props = pa;
    for (const auto& [k, v] : pb.items()) {
      merged_props[k] = pa.contains(k) ? Json{{"allOf", Json::array({pa[k], v})}} : v;
    }
    std::set<std::string> dropped;
    for (const auto& [side, side_props] : {std::pair<const Json*, const Json*>{&a, &pa},
                                           std::pair<const Json*, const Json*>{&b, &pb}}) {
      if (!side->contains("additionalProperties")) continue;
      const Json& ap = (*side)["additionalProperties"];
      for (auto& [k, v] : merged_props.items()) {
        if (side_props->contains(k)) continue;
        if (ap == Json(false)) {
          dropped.insert(k);
        } else if (ap != Json(true)) {
          v = Json{{"allOf", Json::array({v, ap})}};
        }
      }
    }
    for (const std::string& k : dropped) merged_props.erase(k);
    for (const auto& [key, value] : b.items()) {
      if (kMetadata.count(key) || key.rfind("x-", 0) == 0) continue;
      if (!kSupported.count(key)) return fail(path, fmt::format("'{}' is not supported", key));
      if (!a.contains(key)) {
        a[key] = value;
        continue;
      }
      Json& mine = a[key];
      if (key == "properties") continue;  // merged above
      if (key == "type") {
        std::set<std::string> ta = type_set(mine), tb = type_set(value), both;
        for (const std::string& t : ta) {
          if (tb.count(t) || (t == "integer" && tb.count("number"))) both.insert(t);
        }
        if (tb.count("integer") && ta.count("number")) both.insert("integer");
        if (both.count("integer")) both.erase("number");
        if (both.empty()) return fail(path, "allOf: the branches' types do not intersect");
        mine = Json(std::vector<std::string>(both.begin(), both.end()));
      } else if (key == "required") {
        for (const Json& r : value) {
          if (std::find(mine.begin(), mine.end(), r) == mine.end()) mine.push_back(r);
        }
      } else if (key == "enum") {
        Json kept = Json::array();
        for (const Json& x : mine) {
          if (std::find(value.begin(), value.end(), x) != value.end()) kept.push_back(x);
        }
        if (kept.empty()) return fail(path, "allOf: the branches' enums have no common value");
        mine = kept;
      } else if ((key == "minimum" || key == "exclusiveMinimum" || key == "minLength" ||
                  key == "minItems") &&
                 mine.is_number() && value.is_number()) {
        if (value > mine) mine = value;
      } else if ((key == "maximum" || key == "exclusiveMaximum" || key == "maxLength" ||
                  key == "maxItems") &&
                 mine.is_number() && value.is_number()) {
        if (value < mine) mine = value;
      } else if (key == "items" && mine.is_object() && value.is_object()) {
        mine = Json{{"allOf", Json::array({mine, value})}};
      } else if (key == "additionalProperties") {
        if (mine == Json(false) || value == Json(false)) {
          mine = false;
        } else if (mine == Json(true)) {
          mine = value;
        } else if (value != Json(true)) {
          mine = Json{{"allOf", Json::array({mine, value})}};
        }
      } else if (key == "nullable") {
        mine = mine == Json(true) && value == Json(true);
      } else if (mine != value) {
        return fail(path, fmt::format("allOf: the branches' '{}' differ and cannot be combined "
                                      "(not supported)",
                                      key));
      }
    }
    for (const std::string& r : dropped) {
      if (a.contains("required") &&
          std::find(a["required"].begin(), a["required"].end(), Json(r)) != a["required"].end()) {
        return fail(path, fmt::format("allOf: property '{}' is required but a branch's "
                                      "additionalProperties false forbids it",
                                      r));
      }
    }
    if (!merged_props.empty() || a.contains("properties")) a["properties"] = merged_props;
    return a;
  }

  Result<std::string> visit_union(const Json& s, const std::string& path, int depth) {
    if (s.contains("anyOf") && s.contains("oneOf")) {
      return fail(path, "'anyOf' and 'oneOf' in one schema are not supported");
    }
    const char* key = s.contains("anyOf") ? "anyOf" : "oneOf";
    const Json& branches = s[key];
    if (!branches.is_array() || branches.empty()) {
      return fail(path, fmt::format("'{}' must be a non-empty array", key));
    }
    Json base = without(s, {"anyOf", "oneOf"});
    std::vector<std::string> alts;
    for (size_t i = 0; i < branches.size(); ++i) {
      std::string bpath = fmt::format("{}/{}/{}", path, key, i);
      if (!has_keywords(base)) {
        Result<std::string> e = visit(branches[i], bpath, depth + 1);
        if (!e.ok()) return e.status();
        alts.push_back(*e);
        continue;
      }
      Result<Json> b = flatten(branches[i], bpath, depth + 1);
      if (!b.ok()) return b.status();
      Result<Json> m = merge(base, *b, bpath);
      if (!m.ok()) return m.status();
      Result<std::string> e = visit(*m, bpath, depth + 1);
      if (!e.ok()) return e.status();
      alts.push_back(*e);
    }
    return define(path_hint(path, key), alternatives(alts));
  }

  Result<std::string> visit_enum(const Json& s, const std::string& path) {
    Json values = Json::array();
    if (s.contains("enum")) {
      if (!s["enum"].is_array() || s["enum"].empty()) {
        return fail(path, "'enum' must be a non-empty array");
      }
      values = s["enum"];
    }
    if (s.contains("const")) {
      if (s.contains("enum") &&
          std::find(values.begin(), values.end(), s["const"]) == values.end()) {
        return fail(path, "'const' is not one of 'enum'");
      }
      values = Json::array({s["const"]});
    }
    std::set<std::string> types;
    if (s.contains("type")) types = type_set(s["type"]);
    if (s.value("nullable", false)) types.insert("null");
    std::vector<std::string> alts;
    for (const Json& v : values) {
      if (!types.empty() && !types.count(json_type(v)) &&
          !(json_type(v) == "integer" && types.count("number"))) {
        continue;
      }
      alts.push_back(literal(v.dump(-1, ' ', false, Json::error_handler_t::replace)));
    }
    if (alts.empty()) return fail(path, "no value of 'enum'/'const' has the schema's type");
    if (alts.size() < 4) return alternatives(alts);
    return shared("enum " + join(alts, " | "), "enum", alternatives(alts));
  }

  static std::string json_type(const Json& v) {
    if (v.is_null()) return "null";
    if (v.is_boolean()) return "boolean";
    if (v.is_number_integer() || v.is_number_unsigned()) return "integer";
    if (v.is_number()) {
      double d = v.get<double>();
      return std::floor(d) == d ? "integer" : "number";
    }
    if (v.is_string()) return "string";
    if (v.is_array()) return "array";
    return "object";
  }

  // The types to produce: `type` (a name or an array), or what the keywords imply (none: any
  // value), plus "null" when `nullable`.
  Result<std::vector<std::string>> types_of(const Json& s, const std::string& path) {
    std::vector<std::string> out;
    if (s.contains("type")) {
      const Json& t = s["type"];
      std::vector<Json> items =
          t.is_array() ? std::vector<Json>(t.begin(), t.end()) : std::vector<Json>{t};
      if (items.empty()) return fail(path, "'type' is an empty array");
      for (const Json& x : items) {
        if (!x.is_string() || !kTypes.count(x.get<std::string>())) {
          return fail(path, fmt::format("'type' must be one of null, boolean, object, array, "
                                        "integer, number, string (or an array of them), got {}",
                                        x.dump()));
        }
        if (std::find(out.begin(), out.end(), x.get<std::string>()) == out.end()) {
          out.push_back(x.get<std::string>());
        }
      }
      if (std::count(out.begin(), out.end(), "integer") &&
          std::count(out.begin(), out.end(), "number")) {
        out.erase(std::find(out.begin(), out.end(), "integer"));
      }
    } else {
      auto any = [&](std::initializer_list<const char*> keys) {
        for (const char* k : keys) {
          if (s.contains(k)) return true;
        }
        return false;
      };
      if (any({"properties", "required", "additionalProperties"})) out.push_back("object");
      if (any({"items", "prefixItems", "additionalItems", "minItems", "maxItems"})) {
        out.push_back("array");
      }
      if (any({"pattern", "format", "minLength", "maxLength"})) out.push_back("string");
      if (any({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})) {
        out.push_back("number");
      }
      if (out.empty()) return out;  // any value (nullable changes nothing)
    }
    if (s.contains("nullable")) {
      if (!s["nullable"].is_boolean()) return fail(path, "'nullable' must be a boolean");
      if (s["nullable"].get<bool>() && !std::count(out.begin(), out.end(), "null")) {
        out.push_back("null");
      }
    }
    return out;
  }

  Result<std::string> visit_type(const Json& s, const std::string& type, const std::string& path,
                                 int depth) {
    if (type == "null") return prim("null");
    if (type == "boolean") return prim("boolean");
    if (type == "integer") return visit_integer(s, path);
    if (type == "number") return visit_number(s, path);
    if (type == "string") return visit_string(s, path);
    if (type == "array") return visit_array(s, path, depth);
    return visit_object(s, path, depth);
  }

  // A non-negative integer keyword (minLength...), or empty when absent.
  Result<std::optional<int64_t>> count_keyword(const Json& s, const char* key,
                                               const std::string& path) {
    if (!s.contains(key)) return std::optional<int64_t>();
    const Json& v = s[key];
    if (!v.is_number() || v.get<double>() < 0 || std::floor(v.get<double>()) != v.get<double>()) {
      return fail(path, fmt::format("'{}' must be a non-negative integer, got {}", key, v.dump()));
    }
    double d = v.get<double>();
    return std::optional<int64_t>(d > 1e15 ? int64_t{1'000'000'000'000'000}
                                           : static_cast<int64_t>(d));
  }

  // minX/maxX as repetition bounds: maxX above kMaxSchemaRepeat lowered to it, minX refused.
  Result<std::pair<int64_t, std::optional<int64_t>>> count_bounds(const Json& s,
                                                                  const char* min_key,
                                                                  const char* max_key,
                                                                  const std::string& path) {
    Result<std::optional<int64_t>> lo = count_keyword(s, min_key, path);
    if (!lo.ok()) return lo.status();
    Result<std::optional<int64_t>> hi = count_keyword(s, max_key, path);
    if (!hi.ok()) return hi.status();
    int64_t min = lo->value_or(0);
    std::optional<int64_t> max = *hi;
    if (max && min > *max) {
      return fail(path,
                  fmt::format("'{}' {} is greater than '{}' {}", min_key, min, max_key, *max));
    }
    if (min > kMaxSchemaRepeat) {
      return fail(path, fmt::format("'{}' {} is over the supported limit of {}", min_key, min,
                                    kMaxSchemaRepeat));
    }
    if (max && *max > kMaxSchemaRepeat) max = kMaxSchemaRepeat;
    return std::pair{min, max};
  }

  Result<std::string> visit_string(const Json& s, const std::string& path) {
    auto bounds = count_bounds(s, "minLength", "maxLength", path);
    if (!bounds.ok()) return bounds.status();
    auto [min, max] = *bounds;
    const std::string quote = R"("\"")";
    std::string pattern;
    RegexMode mode = RegexMode::kSearch;
    std::string what;
    if (s.contains("format")) {
      if (!s["format"].is_string()) return fail(path, "'format' must be a string");
      std::string f = s["format"].get<std::string>();
      auto it = kFormats.find(f);
      if (it == kFormats.end()) {
        return fail(path, fmt::format("format '{}' is not supported (supported: date-time, date, "
                                      "time, uuid, email, uri, ipv4, hostname)",
                                      f));
      }
      if (s.contains("pattern"))
        return fail(path, "'pattern' together with 'format' is not supported");
      pattern = it->second;
      mode = RegexMode::kFullMatch;
      what = "format";
    } else if (s.contains("pattern")) {
      if (!s["pattern"].is_string()) return fail(path, "'pattern' must be a string");
      pattern = s["pattern"].get<std::string>();
      what = "pattern";
    } else {
      return sequence({quote, repeat(prim("char"), min, max), quote});
    }
    LengthBounds length{min, max};
    const bool bounded = s.contains("minLength") || s.contains("maxLength");
    Result<RegexTranslation> t =
        translate_regex(pattern, RegexTarget::kJsonString, mode, bounded ? &length : nullptr);
    if (!t.ok()) return fail(path, fmt::format("'{}': {}", what, t.status().message()));
    // One rule per distinct pattern or format, shared by every use.
    return shared(
        fmt::format("regex {} {} {} {}", static_cast<int>(mode), min, max.value_or(-1), pattern),
        what, sequence({quote, t->expression, quote}));
  }

  // A rule for `body`, defined once per `key` (identical sub-grammars are not repeated).
  std::string shared(const std::string& key, std::string_view hint, std::string body) {
    auto it = shared_.find(key);
    if (it != shared_.end()) return it->second;
    std::string name = define(hint, std::move(body));
    shared_[key] = name;
    return name;
  }

  // minimum/maximum and their exclusive forms (numbers, or draft 4's booleans) as the bounds of
  // an `integer`: a fractional or exclusive bound becomes the nearest integer inside.
  Result<std::pair<std::optional<Bound>, std::optional<Bound>>> integer_bounds(
      const Json& s, const std::string& path) {
    std::optional<Bound> lo, hi;
    auto number = [&](const char* key) -> Result<std::optional<double>> {
      if (!s.contains(key) || s[key].is_boolean()) return std::optional<double>();
      if (!s[key].is_number()) return fail(path, fmt::format("'{}' must be a number", key));
      double d = s[key].get<double>();
      if (std::fabs(d) > 1e15) {
        return fail(path, fmt::format("'{}' {} is beyond the supported range of +-1e15", key,
                                      s[key].dump()));
      }
      return std::optional<double>(d);
    };
    auto tighten_lo = [&](double d, bool exclusive) {
      double c = std::ceil(d);
      Bound b{static_cast<int64_t>(c) + (exclusive && c == d ? 1 : 0)};
      if (!lo || b.value > lo->value) lo = b;
    };
    auto tighten_hi = [&](double d, bool exclusive) {
      double f = std::floor(d);
      Bound b{static_cast<int64_t>(f) - (exclusive && f == d ? 1 : 0)};
      if (!hi || b.value < hi->value) hi = b;
    };
    for (const char* key : {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"}) {
      Result<std::optional<double>> v = number(key);
      if (!v.ok()) return v.status();
      if (!*v) continue;
      std::string k = key;
      bool draft4_exclusive =
          (k == "minimum" && s.value("exclusiveMinimum", Json()) == Json(true)) ||
          (k == "maximum" && s.value("exclusiveMaximum", Json()) == Json(true));
      if (k == "minimum" || k == "exclusiveMinimum") {
        tighten_lo(**v, k == "exclusiveMinimum" || draft4_exclusive);
      } else {
        tighten_hi(**v, k == "exclusiveMaximum" || draft4_exclusive);
      }
    }
    if (lo && hi && lo->value > hi->value) return fail(path, "no integer satisfies the bounds");
    return std::pair{lo, hi};
  }

  Result<std::string> visit_integer(const Json& s, const std::string& path) {
    auto bounds = integer_bounds(s, path);
    if (!bounds.ok()) return bounds.status();
    auto [lo, hi] = *bounds;
    if (!lo && !hi) return prim("integer");
    return integer_range_gbnf(lo ? std::optional<int64_t>(lo->value) : std::nullopt,
                              hi ? std::optional<int64_t>(hi->value) : std::nullopt);
  }

  // Bounds of a `number`: exact decimals (a bound with more than kMaxBoundFraction fraction
  // digits is rounded inward to an integer).
  Result<std::pair<std::optional<Decimal>, std::optional<Decimal>>> decimal_bounds(
      const Json& s, const std::string& path) {
    std::optional<Decimal> lo, hi;
    for (const char* key : {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"}) {
      if (!s.contains(key) || s[key].is_boolean()) continue;
      if (!s[key].is_number()) return fail(path, fmt::format("'{}' must be a number", key));
      double d = s[key].get<double>();
      if (std::fabs(d) > 1e15) {
        return fail(path, fmt::format("'{}' {} is beyond the supported range of +-1e15", key,
                                      s[key].dump()));
      }
      const std::string k = key;
      const bool lower = k == "minimum" || k == "exclusiveMinimum";
      bool exclusive = k == "exclusiveMinimum" || k == "exclusiveMaximum" ||
                       (k == "minimum" && s.value("exclusiveMinimum", Json()) == Json(true)) ||
                       (k == "maximum" && s.value("exclusiveMaximum", Json()) == Json(true));
      std::optional<Decimal> dec = decimal_bound(d, !exclusive, lower);
      std::optional<Decimal>& slot = lower ? lo : hi;
      bool tighter = !slot || (lower ? dec->value > slot->value : dec->value < slot->value) ||
                     (dec->value == slot->value && !dec->inclusive);
      if (tighter) slot = dec;
    }
    if (lo && hi &&
        (lo->value > hi->value || (lo->value == hi->value && !(lo->inclusive && hi->inclusive)))) {
      return fail(path, "no number satisfies the bounds");
    }
    return std::pair{lo, hi};
  }

  Result<std::string> visit_number(const Json& s, const std::string& path) {
    auto bounds = decimal_bounds(s, path);
    if (!bounds.ok()) return bounds.status();
    auto [lo, hi] = *bounds;
    if (!lo && !hi) return prim("number");
    std::optional<std::string> body = number_range_gbnf(lo, hi);
    if (!body) return fail(path, "no number satisfies the bounds");
    return shared("number " + *body, "number-range", *body);
  }

  Result<std::string> visit_array(const Json& s, const std::string& path, int depth) {
    auto bounds = count_bounds(s, "minItems", "maxItems", path);
    if (!bounds.ok()) return bounds.status();
    auto [min, max] = *bounds;
    // The positions' schemas: a prefix (prefixItems, or draft 7's items array) and the rest.
    std::vector<std::string> prefix;
    const Json* rest = nullptr;
    std::string rest_path;
    bool closed = false;
    auto add_prefix = [&](const Json& arr, const std::string& key) -> Status {
      if (!arr.is_array()) return fail(path, fmt::format("'{}' must be an array", key));
      for (size_t i = 0; i < arr.size(); ++i) {
        Result<std::string> e = visit(arr[i], fmt::format("{}/{}/{}", path, key, i), depth + 1);
        if (!e.ok()) return e.status();
        prefix.push_back(*e);
      }
      return Status();
    };
    if (s.contains("prefixItems")) {
      if (Status st = add_prefix(s["prefixItems"], "prefixItems"); !st.ok()) return st;
      if (s.contains("items")) {
        rest = &s["items"];
        rest_path = path + "/items";
      }
      closed = !rest;
    } else if (s.contains("items") && s["items"].is_array()) {
      if (Status st = add_prefix(s["items"], "items"); !st.ok()) return st;
      if (s.contains("additionalItems")) {
        rest = &s["additionalItems"];
        rest_path = path + "/additionalItems";
      }
      closed = !rest;
    } else if (s.contains("items")) {
      rest = &s["items"];
      rest_path = path + "/items";
    }
    std::string rest_expr;
    if (rest && *rest == Json(false)) {
      closed = true;
    } else if (rest) {
      Result<std::string> e = visit(*rest, rest_path, depth + 1);
      if (!e.ok()) return e.status();
      rest_expr = *e;
    } else if (!closed) {
      rest_expr = prim("value");
    }
    const int64_t k = static_cast<int64_t>(prefix.size());
    if (closed) {
      if (min > k) {
        return fail(path,
                    fmt::format("'minItems' {} needs more items than the {} allowed", min, k));
      }
      max = max ? std::min(*max, k) : k;
    }
    const std::string s_ = sep();
    const std::string comma = sequence({s_, R"(",")", s_});
    // Positions at and after k: the rest, between min and max of them in all.
    std::string tail;
    {
      int64_t from = k;
      int64_t need = std::max<int64_t>(0, min - from);
      std::optional<int64_t> room = max ? std::optional<int64_t>(*max - from) : std::nullopt;
      if (!room || *room > 0) {
        if (from == 0) {
          std::optional<int64_t> more = room ? std::optional<int64_t>(*room - 1) : std::nullopt;
          std::string list = sequence({rest_expr, repeat(sequence({comma, rest_expr}),
                                                         std::max<int64_t>(0, need - 1), more)});
          tail = need > 0 ? list : repeat(list, 0, 1);
        } else {
          tail = repeat(sequence({comma, rest_expr}), need, room);
        }
      }
    }
    // The prefix, nested from the end: positions past minItems are optional.
    for (int64_t i = std::min<int64_t>(k, max.value_or(k)) - 1; i >= 0; --i) {
      if (!is_trivial(tail)) tail = define(path_hint(path, "items"), tail);
      std::string elem = sequence({i > 0 ? comma : "", prefix[i], tail});
      tail = i < min ? elem : repeat(elem, 0, 1);
    }
    return define(path_hint(path, "array"),
                  sequence({R"("[")", s_, tail.empty() ? "" : tail, s_, R"("]")"}));
  }

  std::string path_hint(const std::string& path, std::string_view what) {
    size_t slash = path.rfind('/');
    std::string last = slash == std::string::npos ? "" : path.substr(slash + 1);
    if (last.empty() || last.size() > 32) return std::string(what);
    return last + "-" + std::string(what);
  }

  // Empty, or already one name: no rule needed to share it.
  static bool is_trivial(const std::string& expr) {
    return expr.empty() || expr == "\"\"" || expr.find_first_of(" ()\"[|") == std::string::npos;
  }

  struct Member {
    std::string key;
    std::string value;
    bool required = false;
  };

  Result<std::string> visit_object(const Json& s, const std::string& path, int depth) {
    for (const char* k : {"minProperties", "maxProperties"}) {
      if (s.contains(k)) return fail(path, fmt::format("'{}' is not supported", k));
    }
    std::set<std::string> required;
    if (s.contains("required")) {
      if (!s["required"].is_array()) return fail(path, "'required' must be an array of strings");
      for (const Json& r : s["required"]) {
        if (!r.is_string()) return fail(path, "'required' must be an array of strings");
        required.insert(r.get<std::string>());
      }
    }
    const bool listed = s.contains("properties");
    if (listed && !s["properties"].is_object()) return fail(path, "'properties' must be an object");
    // Extra properties: absent additionalProperties is false when properties are listed.
    std::optional<std::string> extra_value;
    const Json ap = s.contains("additionalProperties") ? s["additionalProperties"] : Json(!listed);
    if (ap.is_boolean()) {
      if (ap.get<bool>()) extra_value = prim("value");
    } else {
      Result<std::string> e = visit(ap, path + "/additionalProperties", depth + 1);
      if (!e.ok()) return e.status();
      extra_value = *e;
    }
    std::vector<Member> members;
    std::set<std::string> known;
    if (listed) {
      for (const auto& [key, sub] : s["properties"].items()) {
        Result<std::string> e = visit(sub, path + "/properties/" + pointer_escape(key), depth + 1);
        if (!e.ok()) return e.status();
        members.push_back({key, *e, required.count(key) > 0});
        known.insert(key);
      }
    }
    for (const Json& r : s.value("required", Json::array())) {
      std::string key = r.get<std::string>();
      if (known.count(key)) continue;
      if (!extra_value) {
        return fail(path, fmt::format("required property '{}' is not in 'properties' and "
                                      "additionalProperties is false",
                                      key));
      }
      members.push_back({key, *extra_value, true});
      known.insert(key);
    }
    const std::string s_ = sep();
    const std::string comma = sequence({s_, R"(",")", s_});
    const std::string colon = sequence({s_, R"(":")", s_});
    std::string extra_kv;
    if (extra_value) {
      // The extra names' grammar has one rule per character of the listed names.
      size_t name_chars = 0;
      for (const std::string& k : known) name_chars += k.size();
      if (name_chars > kMaxSchemaRules / 2) {
        return fail(path, fmt::format("more than {} bytes of property names together with "
                                      "additionalProperties are not supported",
                                      kMaxSchemaRules / 2));
      }
      extra_kv = sequence({extra_key(known), colon, *extra_value});
    }
    // after[i]: members i.. when one is already written; first[i]: when none is yet.
    std::string after = extra_value ? repeat(sequence({comma, extra_kv}), 0, std::nullopt) : "";
    std::string first =
        extra_value
            ? repeat(sequence({extra_kv, repeat(sequence({comma, extra_kv}), 0, std::nullopt)}), 0,
                     1)
            : "";
    std::string hint = path_hint(path, "object");
    for (size_t i = members.size(); i-- > 0;) {
      const Member& m = members[i];
      std::string kv =
          sequence({literal(Json(m.key).dump(-1, ' ', false, Json::error_handler_t::replace)),
                    colon, m.value});
      // `after` appears twice below: a rule keeps the grammar linear in the number of members,
      // and rules for both keep the parentheses shallow.
      if (!is_trivial(after)) after = define(hint + "-rest", after);
      if (!is_trivial(first)) first = define(hint + "-first", first);
      std::string next_after = sequence(
          {m.required ? sequence({comma, kv}) : repeat(sequence({comma, kv}), 0, 1), after});
      std::string next_first = m.required
                                   ? sequence({kv, after})
                                   : alternatives({sequence({kv, after}), sequence({first})});
      after = next_after;
      first = next_first;
    }
    return define(hint, sequence({R"("{")", s_, first, s_, R"("}")"}));
  }

  // A quoted property name that is none of `known` (decoded names compared: every character
  // has one spelling in the key-char rule).
  std::string extra_key(const std::set<std::string>& known) {
    const std::string quote = R"("\"")";
    if (known.empty()) return sequence({quote, repeat(prim("key-char"), 0, std::nullopt), quote});
    // A trie of the known names' code points; one rule per node.
    struct TrieNode {
      std::map<uint32_t, int> children;
      bool terminal = false;
    };
    std::vector<TrieNode> trie(1);
    for (const std::string& key : known) {
      int node = 0;
      std::u32string cps = decode(key);
      for (char32_t c : cps) {
        auto it = trie[node].children.find(c);
        if (it == trie[node].children.end()) {
          trie.push_back({});
          it = trie[node].children.emplace(c, static_cast<int>(trie.size()) - 1).first;
        }
        node = it->second;
      }
      trie[node].terminal = true;
    }
    std::string base = reserve("extra-key");
    auto node_name = [&](int i) { return i == 0 ? base : fmt::format("{}-{}", base, i); };
    for (size_t i = 0; i < trie.size(); ++i) {
      std::vector<std::string> alts;
      if (!trie[i].terminal) alts.push_back("\"\"");
      CodepointSet without;
      uint32_t next = 0x20;
      for (const auto& [c, child] : trie[i].children) {
        if (c < next) continue;
        if (c > next) without.push_back({next, c - 1});
        next = c + 1;
        alts.push_back(
            sequence({gbnf_char_expression({{c, c}}, RegexTarget::kJsonString), node_name(child)}));
      }
      if (next <= 0x10FFFF) without.push_back({next, 0x10FFFF});
      if (!without.empty()) {
        alts.push_back(sequence({gbnf_char_expression(without, RegexTarget::kJsonString),
                                 repeat(prim("key-char"), 0, std::nullopt)}));
      }
      if (i > 0) names_.insert(node_name(i));
      rules_.emplace_back(node_name(i), join(alts, " | "));
    }
    return sequence({quote, base, quote});
  }

  static std::u32string decode(const std::string& s) {
    std::u32string out;
    for (size_t i = 0; i < s.size();) {
      auto b = static_cast<uint8_t>(s[i]);
      int len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : 4;
      uint32_t cp = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
      for (int j = 1; j < len && i + j < s.size(); ++j) {
        cp = (cp << 6) | (static_cast<uint8_t>(s[i + j]) & 0x3F);
      }
      out += static_cast<char32_t>(cp);
      i += len;
    }
    return out;
  }

  const Json& root_;
  JsonSchemaOptions opt_;
  std::vector<std::pair<std::string, std::string>> rules_;
  std::set<std::string> names_;
  std::map<std::string, std::string> ref_names_;
  std::map<std::string, std::string> prims_;
  std::map<std::string, std::string> shared_;
};

}  // namespace

Result<std::string> json_schema_to_gbnf(std::string_view schema_json,
                                        const JsonSchemaOptions& options) {
  if (schema_json.size() > kMaxSchemaBytes) {
    return error(ErrorCode::kInvalidParams,
                 fmt::format("JSON Schema of {} bytes is over the limit of {}", schema_json.size(),
                             kMaxSchemaBytes));
  }
  if (json_nesting_depth(schema_json, 2 * kMaxSchemaDepth) > 2 * kMaxSchemaDepth) {
    return error(ErrorCode::kInvalidParams,
                 fmt::format("JSON Schema nests deeper than {} levels", 2 * kMaxSchemaDepth));
  }
  Json root = Json::parse(schema_json, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return error(ErrorCode::kInvalidParams, "JSON Schema is not valid JSON");
  return Translator(root, options).run();
}

}  // namespace mlxs::structured
