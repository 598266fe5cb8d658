#include "api/schema.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace mlxs::schema {
namespace {

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::kBoolean:
      return "boolean";
    case Kind::kInteger:
      return "integer";
    case Kind::kNumber:
      return "number";
    case Kind::kString:
      return "string";
    case Kind::kArray:
      return "array";
    case Kind::kObject:
    case Kind::kMap:
    case Kind::kJsonObject:
      return "object";
    case Kind::kOneOf:
      return "one of";
  }
  return "value";
}

const char* json_type_name(const Json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "boolean";
  if (v.is_number_integer()) return "integer";
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  if (v.is_array()) return "array";
  return "object";
}

std::string format_number(double v) {
  return fmt::format("{}", v);
}

void add(Issues& out, const std::string& path, std::string message) {
  out.push_back({path, std::move(message)});
}

void type_error(Issues& out, const std::string& path, const char* expected, const Json& value) {
  if (value.is_array() || value.is_object() || value.is_null()) {
    return add(out, path, fmt::format("expected {}, got {}", expected, json_type_name(value)));
  }
  add(out, path,
      fmt::format("expected {}, got {} {}", expected, json_type_name(value), render_value(value)));
}

size_t count_code_points(const std::string& s) {
  return size_t(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

// The effective bounds: the declared ones, tightened by the C++ type's range.
struct Bounds {
  std::optional<double> lo, hi;
  bool lo_exclusive = false, hi_exclusive = false;
};

Bounds effective_bounds(const Node& n) {
  Bounds b{n.minimum, n.maximum, n.exclusive_minimum, n.exclusive_maximum};
  if (n.type_minimum && (!b.lo || *b.lo < *n.type_minimum))
    b = {n.type_minimum, b.hi, false, b.hi_exclusive};
  if (n.type_maximum && (!b.hi || *b.hi > *n.type_maximum))
    b = {b.lo, n.type_maximum, b.lo_exclusive, false};
  return b;
}

std::string range_words(const Bounds& b) {
  std::string lo =
      b.lo ? fmt::format("{} {}", b.lo_exclusive ? ">" : ">=", format_number(*b.lo)) : "";
  std::string hi =
      b.hi ? fmt::format("{} {}", b.hi_exclusive ? "<" : "<=", format_number(*b.hi)) : "";
  if (!lo.empty() && !hi.empty()) return lo + " and " + hi;
  return lo + hi;
}

void validate_number(const Node& n, const Json& v, const std::string& path, Issues& out) {
  if (!v.is_number()) return type_error(out, path, kind_name(n.kind), v);
  double d = v.get<double>();
  if (v.is_number_float() && !std::isfinite(d)) {
    return add(out, path, fmt::format("must be a finite number, got {}", render_value(v)));
  }
  if (n.kind == Kind::kInteger && v.is_number_float() && d != std::floor(d)) {
    return add(out, path, fmt::format("must be an integer, got {}", render_value(v)));
  }
  // The declared range is what the message shows; the C++ type's only when it alone is broken.
  for (const Bounds& b : {Bounds{n.minimum, n.maximum, n.exclusive_minimum, n.exclusive_maximum},
                          effective_bounds(n)}) {
    bool low = b.lo && (b.lo_exclusive ? d <= *b.lo : d < *b.lo);
    bool high = b.hi && (b.hi_exclusive ? d >= *b.hi : d > *b.hi);
    if (low || high)
      return add(out, path, fmt::format("must be {}, got {}", range_words(b), render_value(v)));
  }
}

std::string quoted_list(const std::vector<std::string>& values) {
  std::string s;
  for (const auto& v : values) s += (s.empty() ? "" : ", ") + Json(v).dump();
  return s;
}

void validate_string(const Node& n, const Json& v, const std::string& path, Issues& out) {
  if (!v.is_string()) return type_error(out, path, "string", v);
  const auto& s = v.get_ref<const std::string&>();
  if (!n.enum_values.empty()) {
    if (std::find(n.enum_values.begin(), n.enum_values.end(), s) == n.enum_values.end()) {
      add(out, path,
          fmt::format("must be one of {}, got {}", quoted_list(n.enum_values), render_value(v)));
    }
    return;
  }
  // A length error is reported alone: the pattern of a string that is too short says nothing more.
  size_t len = count_code_points(s);
  if (n.min_length && len < *n.min_length) {
    return add(out, path,
               fmt::format("must have at least {} character{}, got {}", *n.min_length,
                           *n.min_length == 1 ? "" : "s", render_value(v)));
  }
  if (n.max_length && len > *n.max_length) {
    return add(out, path,
               fmt::format("must have at most {} characters, got {}", *n.max_length, len));
  }
  if (n.regex && !std::regex_search(s, *n.regex)) {
    add(out, path, fmt::format("must match {}, got {}", n.pattern, render_value(v)));
  }
  for (const auto& bad : n.forbidden_substrings) {
    if (s.find(bad) != std::string::npos) {
      add(out, path, fmt::format("must not contain {}, got {}", Json(bad).dump(), render_value(v)));
    }
  }
}

void validate_array(const Node& n, const Json& v, const std::string& path, Issues& out) {
  if (!v.is_array()) return type_error(out, path, "array", v);
  if (n.min_items && v.size() < *n.min_items) {
    add(out, path,
        fmt::format("must have at least {} item{}, got {}", *n.min_items,
                    *n.min_items == 1 ? "" : "s", v.size()));
  }
  if (n.max_items && v.size() > *n.max_items) {
    add(out, path, fmt::format("must have at most {} items, got {}", *n.max_items, v.size()));
  }
  for (size_t i = 0; i < v.size(); ++i) validate(*n.items, v[i], item_path(path, i), out);
}

void validate_map(const Node& n, const Json& v, const std::string& path, Issues& out) {
  if (!v.is_object()) return type_error(out, path, "object", v);
  if (n.max_items && v.size() > *n.max_items) {
    add(out, path, fmt::format("must have at most {} entries, got {}", *n.max_items, v.size()));
  }
  for (const auto& [key, item] : v.items()) validate(*n.items, item, join_path(path, key), out);
}

void validate_json_object(const Node& n, const Json& v, const std::string& path, Issues& out) {
  if (!v.is_object()) return type_error(out, path, "object", v);
  if (n.max_length) {
    size_t bytes = v.dump().size();
    if (bytes > *n.max_length) {
      add(out, path,
          fmt::format("must be at most {} bytes serialized, got {}", *n.max_length, bytes));
    }
  }
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string unknown_field_message(const Node& n, const std::string& key) {
  const Property* best = nullptr;
  size_t best_distance = 3;  // suggest only near misses
  for (const auto& p : n.properties) {
    size_t d = edit_distance(key, p.name);
    if (d < best_distance) best = &p, best_distance = d;
  }
  if (best) return fmt::format("unknown field (did you mean '{}'?)", best->name);
  std::string known;
  for (const auto& p : n.properties) known += (known.empty() ? "" : ", ") + p.name;
  return fmt::format("unknown field (known fields: {})", known);
}

void validate_object(const Node& n, const Json& v, const std::string& path, Issues& out) {
  if (!v.is_object()) return type_error(out, path, "object", v);
  for (const auto& [key, item] : v.items()) {
    if (!n.find_property(key)) add(out, join_path(path, key), unknown_field_message(n, key));
  }
  for (const auto& p : n.properties) {
    auto it = v.find(p.name);
    if (it != v.end()) {
      validate(*p.node, *it, join_path(path, p.name), out);
    } else if (p.required) {
      add(out, join_path(path, p.name), "is required");
    }
  }
}

bool kind_accepts(Kind kind, const Json& v) {
  switch (kind) {
    case Kind::kBoolean:
      return v.is_boolean();
    case Kind::kInteger:
    case Kind::kNumber:
      return v.is_number();
    case Kind::kString:
      return v.is_string();
    case Kind::kArray:
      return v.is_array();
    case Kind::kObject:
    case Kind::kMap:
    case Kind::kJsonObject:
      return v.is_object();
    case Kind::kOneOf:
      return false;
  }
  return false;
}

std::string variant_label(const Node& variant) {
  if (variant.kind == Kind::kObject && !variant.properties.empty()) {
    return fmt::format("object with '{}'", variant.properties.front().name);
  }
  return kind_name(variant.kind);
}

void validate_one_of(const Node& n, const Json& v, const std::string& path, Issues& out) {
  int index = select_variant(n, v);
  if (index >= 0) return validate(*n.variants[size_t(index)], v, path, out);
  std::string labels;
  for (const auto& variant : n.variants)
    labels += (labels.empty() ? "" : " | ") + variant_label(*variant);
  std::string given = json_type_name(v);
  if (v.is_object()) {
    std::vector<std::string> keys;
    for (const auto& [key, item] : v.items()) keys.push_back(key);
    given = keys.empty() ? "empty object" : "object with keys " + quoted_list(keys);
  }
  add(out, path, fmt::format("expected {}, got {}", labels, given));
}

}  // namespace

const Property* Node::find_property(std::string_view name) const {
  for (const auto& p : properties) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

std::string Issue::to_string() const {
  if (path.empty()) return "Validation error: " + message;
  return fmt::format("Validation error on field '{}': {}", path, message);
}

void validate(const Node& node, const Json& value, const std::string& path, Issues& out) {
  switch (node.kind) {
    case Kind::kBoolean:
      if (!value.is_boolean()) type_error(out, path, "boolean", value);
      return;
    case Kind::kInteger:
    case Kind::kNumber:
      return validate_number(node, value, path, out);
    case Kind::kString:
      return validate_string(node, value, path, out);
    case Kind::kArray:
      return validate_array(node, value, path, out);
    case Kind::kObject:
      return validate_object(node, value, path, out);
    case Kind::kMap:
      return validate_map(node, value, path, out);
    case Kind::kJsonObject:
      return validate_json_object(node, value, path, out);
    case Kind::kOneOf:
      return validate_one_of(node, value, path, out);
  }
}

int select_variant(const Node& node, const Json& value) {
  std::vector<int> fits;
  for (size_t i = 0; i < node.variants.size(); ++i) {
    if (kind_accepts(node.variants[i]->kind, value)) fits.push_back(int(i));
  }
  if (fits.size() <= 1) return fits.empty() ? -1 : fits.front();
  // Several object variants: the one whose first required key is present.
  for (int i : fits) {
    const Node& variant = *node.variants[size_t(i)];
    for (const auto& p : variant.properties) {
      if (p.required && value.contains(p.name)) return i;
    }
  }
  return -1;
}

Status to_status(const Issues& issues, ErrorCode code) {
  if (issues.empty()) return Status::ok_status();
  std::string message;
  for (const auto& issue : issues) message += (message.empty() ? "" : "; ") + issue.to_string();
  return {code, std::move(message)};
}

std::string join_path(const std::string& parent, std::string_view name) {
  if (parent.empty()) return std::string(name);
  return parent + "." + std::string(name);
}

std::string item_path(const std::string& parent, size_t index) {
  return fmt::format("{}[{}]", parent, index);
}

std::string render_value(const Json& value) {
  if (value.is_number()) {
    if (value.is_number_integer()) return value.dump();
    return format_number(value.get<double>());
  }
  if (value.is_string()) {
    const auto& s = value.get_ref<const std::string&>();
    if (s.size() <= 64) return value.dump();
    size_t cut = 64;
    while (cut > 0 && (s[cut] & 0xC0) == 0x80) --cut;  // never split a UTF-8 sequence
    return Json(s.substr(0, cut)).dump() + "...";
  }
  if (value.is_array()) return "array";
  if (value.is_object()) return "object";
  return value.dump();
}

std::string describe_type(const Node& node) {
  switch (node.kind) {
    case Kind::kArray:
      return "array of " + describe_type(*node.items);
    case Kind::kMap:
      return "map of " + describe_type(*node.items);
    case Kind::kString:
      return node.enum_values.empty() ? "string" : "enum";
    case Kind::kOneOf: {
      std::string s;
      for (const auto& v : node.variants) s += (s.empty() ? "" : " | ") + variant_label(*v);
      return s;
    }
    default:
      return kind_name(node.kind);
  }
}

std::string describe_constraints(const Node& node) {
  std::vector<std::string> parts;
  std::string range =
      range_words({node.minimum, node.maximum, node.exclusive_minimum, node.exclusive_maximum});
  if (!range.empty()) parts.push_back(range);
  if (!node.enum_values.empty()) parts.push_back("one of: " + quoted_list(node.enum_values));
  if (node.min_length && *node.min_length == 1) parts.push_back("non-empty");
  if (node.min_length && *node.min_length > 1)
    parts.push_back(fmt::format("at least {} chars", *node.min_length));
  if (node.max_length) {
    const char* unit = node.kind == Kind::kJsonObject ? "bytes" : "chars";
    parts.push_back(fmt::format("at most {} {}", *node.max_length, unit));
  }
  if (!node.pattern.empty()) parts.push_back("matches `" + node.pattern + "`");
  for (const auto& bad : node.forbidden_substrings) parts.push_back("no `" + bad + "`");
  if (node.min_items) parts.push_back(fmt::format("at least {} items", *node.min_items));
  if (node.max_items) parts.push_back(fmt::format("at most {} items", *node.max_items));
  if (node.items) {
    std::string inner = describe_constraints(*node.items);
    if (!inner.empty()) parts.push_back("each " + inner);
  }
  std::string s;
  for (const auto& p : parts) s += (s.empty() ? "" : "; ") + p;
  return s;
}

}  // namespace mlxs::schema
