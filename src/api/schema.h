// The schema tree: the declarative description of one options struct (the C++ counterpart of a Zod
// schema). One tree serves three uses: validating a value (a JSON document, or a C++ struct encoded
// to one), reporting every violation with its dotted path, and exporting JSON Schema (draft
// 2020-12). The typed builder that produces trees from member pointers is schema_binding.h.
//
// Error policy: validation collects ALL issues (not only the first), in document order; a Status
// built from them carries every issue, joined by "; ", each in the form
//   Validation error on field 'temperature': must be >= 0 and <= 2, got 5
// Paths are dotted for nested objects ("structured.format") and indexed for array items
// ("stop_sequences[2]"). JSON null is not "absent": an optional field given null is a type error,
// as in the original's Zod schemas (.optional() without .nullable()).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "mlxs/status.h"

namespace mlxs::schema {

// Insertion-ordered JSON, so exported schemas and encoded structs keep declaration order.
using Json = nlohmann::ordered_json;

enum class Kind {
  kBoolean,
  kInteger,
  kNumber,
  kString,
  kArray,       // items: the item node
  kObject,      // a struct: fixed properties, unknown keys rejected
  kMap,         // string keys -> values of `items` (e.g. template variables)
  kJsonObject,  // any JSON object, kept opaque (e.g. a structured-output JSON Schema)
  kOneOf,       // exactly one of `variants`
};

struct Node;
using NodePtr = std::shared_ptr<Node>;

struct Property {
  std::string name;
  NodePtr node;
  bool required = false;
  Json default_value;  // null: no default to document
};

struct Node {
  Kind kind = Kind::kObject;
  std::string title;  // objects: the struct's name; one-of variants: how the variant is called
  std::string description;

  // kInteger / kNumber. type_* is the C++ field's range: enforced, not exported.
  std::optional<double> minimum, maximum;
  bool exclusive_minimum = false, exclusive_maximum = false;
  std::optional<double> type_minimum, type_maximum;

  // kString (lengths in Unicode code points); kJsonObject: max_length = serialized bytes.
  std::optional<size_t> min_length, max_length;
  std::string pattern;                      // ECMAScript regex, searched (anchor it with ^...$)
  std::shared_ptr<const std::regex> regex;  // `pattern`, compiled once
  std::vector<std::string> forbidden_substrings;
  std::vector<std::string> enum_values;

  // kArray / kMap
  NodePtr items;
  std::optional<size_t> min_items, max_items;

  // kObject
  std::vector<Property> properties;

  // kOneOf: told apart by JSON type, then (several object variants) by their first required key.
  std::vector<NodePtr> variants;

  const Property* find_property(std::string_view name) const;
};

struct Issue {
  std::string path;  // "" = the document itself
  std::string message;
  // "Validation error on field '<path>': <message>" ("Validation error: <message>" at the root).
  std::string to_string() const;
};
using Issues = std::vector<Issue>;

// Appends to `out` every way `value` breaks `node`; `path` names `value` in messages.
void validate(const Node& node, const Json& value, const std::string& path, Issues& out);

// Index of the variant of kOneOf `node` that `value` is meant as, or -1 when none fits.
int select_variant(const Node& node, const Json& value);

// `node` as a JSON Schema fragment (no "$schema").
Json to_json_schema(const Node& node);
// A complete JSON Schema document (draft 2020-12) for `node`.
Json json_schema_document(const Node& node);

// An error Status listing every issue (see the error policy above); ok when `issues` is empty.
Status to_status(const Issues& issues, ErrorCode code);

// "0 .. 2", "> 0 and <= 1", "one of: a, b", "at most 16 items"...: the constraints of `node` in
// words, for generated documentation. Empty when there are none.
std::string describe_constraints(const Node& node);
// The JSON type a node accepts, e.g. "number", "array of string", "object".
std::string describe_type(const Node& node);

// Path helpers: join_path("a", "b") == "a.b", join_path("", "b") == "b", item_path("a", 2) ==
// "a[2]".
std::string join_path(const std::string& parent, std::string_view name);
std::string item_path(const std::string& parent, size_t index);

// `value` for a message: numbers as written (5, 0.7), strings quoted and cut at 64 characters,
// arrays and objects by type.
std::string render_value(const Json& value);

}  // namespace mlxs::schema
