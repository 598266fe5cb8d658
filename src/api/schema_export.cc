// JSON Schema (draft 2020-12) export of schema trees. Patterns are written anchored, so JSON
// Schema's "search" semantics and validate()'s agree.
#include <string>

#include "api/schema.h"

namespace mlxs::schema {
namespace {

// Numbers in the schema as integers when they are whole, so "minimum": 0, not 0.0.
Json number(double v) {
  if (v == double(int64_t(v))) return int64_t(v);
  return v;
}

void export_bounds(const Node& n, Json& j) {
  if (n.minimum) j[n.exclusive_minimum ? "exclusiveMinimum" : "minimum"] = number(*n.minimum);
  if (n.maximum) j[n.exclusive_maximum ? "exclusiveMaximum" : "maximum"] = number(*n.maximum);
}

void export_string(const Node& n, Json& j) {
  j["type"] = "string";
  if (!n.enum_values.empty()) {
    j["enum"] = n.enum_values;
    return;
  }
  if (n.min_length) j["minLength"] = *n.min_length;
  if (n.max_length) j["maxLength"] = *n.max_length;
  if (!n.pattern.empty()) j["pattern"] = n.pattern;
  if (!n.forbidden_substrings.empty()) {
    std::string alternatives;
    for (const auto& s : n.forbidden_substrings) {
      std::string escaped;
      for (char c : s) {
        if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) escaped += '\\';
        escaped += c;
      }
      alternatives += (alternatives.empty() ? "" : "|") + escaped;
    }
    j["not"] = Json{{"pattern", alternatives}};
  }
}

Json export_object(const Node& n) {
  Json j;
  j["type"] = "object";
  if (!n.title.empty()) j["title"] = n.title;
  if (!n.description.empty()) j["description"] = n.description;
  Json properties = Json::object();
  Json required = Json::array();
  for (const auto& p : n.properties) {
    Json prop = to_json_schema(*p.node);
    if (!p.default_value.is_null()) prop["default"] = p.default_value;
    properties[p.name] = std::move(prop);
    if (p.required) required.push_back(p.name);
  }
  j["properties"] = std::move(properties);
  if (!required.empty()) j["required"] = std::move(required);
  j["additionalProperties"] = false;
  return j;
}

}  // namespace

Json to_json_schema(const Node& n) {
  if (n.kind == Kind::kObject) return export_object(n);
  Json j;
  if (!n.description.empty()) j["description"] = n.description;
  switch (n.kind) {
    case Kind::kBoolean:
      j["type"] = "boolean";
      break;
    case Kind::kInteger:
    case Kind::kNumber:
      j["type"] = n.kind == Kind::kInteger ? "integer" : "number";
      export_bounds(n, j);
      break;
    case Kind::kString:
      export_string(n, j);
      break;
    case Kind::kArray:
      j["type"] = "array";
      j["items"] = to_json_schema(*n.items);
      if (n.min_items) j["minItems"] = *n.min_items;
      if (n.max_items) j["maxItems"] = *n.max_items;
      break;
    case Kind::kMap:
      j["type"] = "object";
      j["additionalProperties"] = to_json_schema(*n.items);
      if (n.max_items) j["maxProperties"] = *n.max_items;
      break;
    case Kind::kJsonObject:
      j["type"] = "object";
      if (n.max_length) j["x-maxSerializedBytes"] = *n.max_length;
      break;
    case Kind::kOneOf: {
      Json variants = Json::array();
      for (const auto& v : n.variants) variants.push_back(to_json_schema(*v));
      j["oneOf"] = std::move(variants);
      break;
    }
    case Kind::kObject:
      break;
  }
  return j;
}

Json json_schema_document(const Node& node) {
  Json doc;
  doc["$schema"] = "https://json-schema.org/draft/2020-12/schema";
  Json body = to_json_schema(node);
  for (auto& [key, value] : body.items()) doc[key] = value;
  return doc;
}

}  // namespace mlxs::schema
