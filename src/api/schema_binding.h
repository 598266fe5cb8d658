// Schema<T>: a struct's schema declared once, field by field, with member pointers:
//
//   Schema<GeneratorParams> s("GeneratorParams", "One generation request");
//   s.field("temperature", &GeneratorParams::temperature, "0 = greedy").range(0, 2);
//   s.field("stop_sequences", &GeneratorParams::stop_sequences, "...").max_items(16)
//       .items().min_length(1);
//   s.refine("top_logprobs", [](const GeneratorParams& p) -> std::optional<std::string> {...});
//
// The field's JSON type comes from its C++ type (bool, integers, double, std::string, enums with an
// EnumTable, std::vector, std::map<std::string, X>, std::optional, std::variant, JsonText, and
// nested structs that have a schema_of<T>() specialization). Documented defaults are read from a
// value-initialized T, so they cannot drift from the struct. From that one declaration:
//   validate(const T&)  - a struct a C++ caller filled in (encoded to JSON, then checked),
//   parse(const Json&)  - a JSON body to a struct (unknown fields and wrong types are issues),
//   node() / json_schema() - the tree and its JSON Schema export.
// Refinements (cross-field rules) run after every field is valid, on the typed struct.
// A built Schema is immutable and safe to use from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "api/schema.h"
#include "mlxs/options.h"
#include "mlxs/status.h"

namespace mlxs::schema {

// Specialize for each enum used in a schema:
//   template <> struct EnumTable<Priority> {
//     static constexpr std::array<std::pair<Priority, const char*>, 3> kEntries{{...}};
//   };
template <class E>
struct EnumTable;

template <class T>
class Schema;

// Specialized (and defined) once per struct with a schema; nested struct fields find theirs here.
template <class T>
const Schema<T>& schema_of();

// The JSON spelling of an enum value, e.g. "urgent".
template <class E>
const char* enum_name(E value) {
  for (const auto& [e, name] : EnumTable<E>::kEntries) {
    if (e == value) return name;
  }
  return "";
}

namespace detail {

template <class>
inline constexpr bool kIsVector = false;
template <class X>
inline constexpr bool kIsVector<std::vector<X>> = true;
template <class>
inline constexpr bool kIsOptional = false;
template <class X>
inline constexpr bool kIsOptional<std::optional<X>> = true;
template <class>
inline constexpr bool kIsMap = false;
template <class X>
inline constexpr bool kIsMap<std::map<std::string, X>> = true;
template <class>
inline constexpr bool kIsVariant = false;
template <class... X>
inline constexpr bool kIsVariant<std::variant<X...>> = true;

// A struct with its own schema (what is left once the other codecs are ruled out).
template <class M>
inline constexpr bool kIsStruct =
    std::is_class_v<M> && !std::is_same_v<M, std::string> && !std::is_same_v<M, JsonText> &&
    !kIsVector<M> && !kIsMap<M> && !kIsVariant<M> && !kIsOptional<M>;

template <class M>
NodePtr node_for();

template <class... X>
NodePtr variant_node(std::variant<X...>*) {
  auto n = std::make_shared<Node>();
  n->kind = Kind::kOneOf;
  (n->variants.push_back(node_for<X>()), ...);
  return n;
}

template <class M>
NodePtr node_for() {
  if constexpr (kIsOptional<M>) {
    return node_for<typename M::value_type>();
  } else if constexpr (kIsVariant<M>) {
    return variant_node(static_cast<M*>(nullptr));
  } else {
    auto n = std::make_shared<Node>();
    if constexpr (std::is_same_v<M, bool>) {
      n->kind = Kind::kBoolean;
    } else if constexpr (std::is_integral_v<M>) {
      n->kind = Kind::kInteger;
      n->type_minimum = double(std::numeric_limits<M>::min());
      n->type_maximum = double(std::numeric_limits<M>::max());
    } else if constexpr (std::is_floating_point_v<M>) {
      n->kind = Kind::kNumber;
    } else if constexpr (std::is_same_v<M, std::string>) {
      n->kind = Kind::kString;
    } else if constexpr (std::is_same_v<M, JsonText>) {
      n->kind = Kind::kJsonObject;
    } else if constexpr (std::is_enum_v<M>) {
      n->kind = Kind::kString;
      for (const auto& [e, name] : EnumTable<M>::kEntries) n->enum_values.push_back(name);
    } else if constexpr (kIsVector<M>) {
      n->kind = Kind::kArray;
      n->items = node_for<typename M::value_type>();
    } else if constexpr (kIsMap<M>) {
      n->kind = Kind::kMap;
      n->items = node_for<typename M::mapped_type>();
    } else {
      *n = schema_of<M>().node();  // a nested struct: a copy its field can annotate
    }
    return n;
  }
}

template <class M>
Json encode(const M& v) {
  if constexpr (kIsOptional<M>) {
    return v ? encode(*v) : Json();
  } else if constexpr (kIsVariant<M>) {
    return std::visit([](const auto& x) { return encode(x); }, v);
  } else if constexpr (std::is_same_v<M, bool> || std::is_arithmetic_v<M> ||
                       std::is_same_v<M, std::string>) {
    return Json(v);
  } else if constexpr (std::is_same_v<M, JsonText>) {
    // Empty text is unset (left out); text that is not JSON stays a string, which validation
    // reports as "expected object".
    if (v.text.empty()) return Json();
    Json parsed = Json::parse(v.text, nullptr, /*allow_exceptions=*/false);
    return parsed.is_discarded() ? Json(v.text) : parsed;
  } else if constexpr (std::is_enum_v<M>) {
    return Json(enum_name(v));
  } else if constexpr (kIsVector<M>) {
    Json a = Json::array();
    for (const auto& x : v) a.push_back(encode(x));
    return a;
  } else if constexpr (kIsMap<M>) {
    Json o = Json::object();
    for (const auto& [key, x] : v) o[key] = encode(x);
    return o;
  } else {
    return schema_of<M>().to_json(v);
  }
}

// Decodes a value that validate() accepted against node_for<M>().
template <class M>
void decode(const Json& j, const Node& node, M& out);

template <class V, size_t I = 0>
void decode_variant(const Json& j, const Node& node, size_t index, V& out) {
  if constexpr (I < std::variant_size_v<V>) {
    if (index != I) return decode_variant<V, I + 1>(j, node, index, out);
    std::variant_alternative_t<I, V> value{};
    decode(j, *node.variants[I], value);
    out = std::move(value);
  }
}

template <class M>
void decode(const Json& j, const Node& node, M& out) {
  if constexpr (kIsOptional<M>) {
    typename M::value_type value{};
    decode(j, node, value);
    out = std::move(value);
  } else if constexpr (kIsVariant<M>) {
    decode_variant(j, node, size_t(select_variant(node, j)), out);
  } else if constexpr (std::is_same_v<M, bool> || std::is_same_v<M, std::string>) {
    out = j.get<M>();
  } else if constexpr (std::is_integral_v<M>) {
    if (j.is_number_unsigned()) {
      out = M(j.get<uint64_t>());
    } else {
      out = j.is_number_integer() ? M(j.get<int64_t>()) : M(j.get<double>());
    }
  } else if constexpr (std::is_floating_point_v<M>) {
    out = j.get<M>();
  } else if constexpr (std::is_same_v<M, JsonText>) {
    out.text = j.dump();
  } else if constexpr (std::is_enum_v<M>) {
    for (const auto& [e, name] : EnumTable<M>::kEntries) {
      if (j.get_ref<const std::string&>() == name) out = e;
    }
  } else if constexpr (kIsVector<M>) {
    out.clear();
    for (const auto& x : j) decode(x, *node.items, out.emplace_back());
  } else if constexpr (kIsMap<M>) {
    out.clear();
    for (const auto& [key, x] : j.items()) decode(x, *node.items, out[key]);
  } else {
    schema_of<M>().decode_into(j, out);
  }
}

}  // namespace detail

template <class T>
class Schema {
 public:
  // A handle on one field (or one of its item nodes) while the schema is being declared.
  class Field {
   public:
    Field(Node* node, Property* property) : node_(node), property_(property) {}
    Field& required() {
      property_->required = true;
      property_->default_value = Json();
      return *this;
    }
    Field& min(double v) { return bound(node_->minimum, node_->exclusive_minimum, v, false); }
    Field& max(double v) { return bound(node_->maximum, node_->exclusive_maximum, v, false); }
    Field& greater_than(double v) {
      return bound(node_->minimum, node_->exclusive_minimum, v, true);
    }
    Field& less_than(double v) { return bound(node_->maximum, node_->exclusive_maximum, v, true); }
    Field& range(double lo, double hi) { return min(lo).max(hi); }
    Field& min_length(size_t n) { return set(node_->min_length, n); }
    Field& max_length(size_t n) { return set(node_->max_length, n); }
    Field& min_items(size_t n) { return set(node_->min_items, n); }
    Field& max_items(size_t n) { return set(node_->max_items, n); }
    Field& pattern(std::string re) {
      node_->regex = std::make_shared<const std::regex>(re, std::regex::ECMAScript);
      node_->pattern = std::move(re);
      return *this;
    }
    Field& forbid(std::string substring) {
      node_->forbidden_substrings.push_back(std::move(substring));
      return *this;
    }
    // The documented default, for fields whose default is not the struct's (unset optionals).
    Field& default_doc(Json value) {
      property_->default_value = std::move(value);
      return *this;
    }
    // The item node of an array or map field (or of a one-of variant, by index).
    Field items() { return {node_->items.get(), property_}; }
    Field variant(size_t index) { return {node_->variants.at(index).get(), property_}; }
    Field& title(std::string t) {
      node_->title = std::move(t);
      return *this;
    }

   private:
    template <class V>
    Field& set(std::optional<V>& slot, V v) {
      slot = v;
      return *this;
    }
    Field& bound(std::optional<double>& slot, bool& exclusive, double v, bool is_exclusive) {
      slot = v;
      exclusive = is_exclusive;
      return *this;
    }
    Node* node_;
    Property* property_;
  };

  // `check` returns why `field` (a path relative to T) is invalid, or nullopt.
  using Refinement = std::function<std::optional<std::string>(const T&)>;

  Schema(std::string title, std::string description) : root_(std::make_shared<Node>()) {
    root_->kind = Kind::kObject;
    root_->title = std::move(title);
    root_->description = std::move(description);
  }

  // Declares field `name` bound to `member`. The returned handle is valid until the next field().
  template <class M>
  Field field(std::string name, M T::*member, std::string description) {
    NodePtr node = detail::node_for<M>();
    node->description = std::move(description);
    static const T defaults{};
    Json default_value = detail::encode(defaults.*member);
    if constexpr (std::is_same_v<M, JsonText>) default_value = Json();
    root_->properties.push_back({name, node, false, std::move(default_value)});
    bindings_.push_back(make_binding(std::move(name), member));
    return Field(node.get(), &root_->properties.back());
  }

  Schema& refine(std::string field, Refinement check) {
    refinements_.push_back({std::move(field), std::move(check)});
    return *this;
  }

  // Field `name`, bound to `member`, belongs to a feature this build does not have yet: any value
  // but the default is refused with an issue naming the field, never accepted and ignored.
  template <class M>
  Schema& unavailable(std::string name, M T::*member, std::string feature) {
    return refine(std::move(name),
                  [member, feature = std::move(feature)](const T& v) -> std::optional<std::string> {
                    static const T defaults{};
                    if (v.*member == defaults.*member) return std::nullopt;
                    return "not available in this build yet (" + feature +
                           "); leave it unset or at its default " +
                           detail::encode(defaults.*member).dump() + ", got " +
                           detail::encode(v.*member).dump();
                  });
  }

  const Node& node() const { return *root_; }
  Json json_schema() const { return json_schema_document(*root_); }

  // `value` as JSON: unset optionals and empty JsonText are left out.
  Json to_json(const T& value) const {
    Json j = Json::object();
    for (const auto& b : bindings_) {
      Json v = b.encode(value);
      if (!v.is_null()) j[b.name] = std::move(v);
    }
    return j;
  }

  // Every issue of `value` (empty = valid); paths relative to `path`.
  Issues check(const T& value, const std::string& path = "") const {
    Issues issues;
    validate(*root_, to_json(value), path, issues);
    if (issues.empty()) run_refinements(value, path, issues);
    return issues;
  }

  // Every issue of `json` as a T; on success, `out` holds it (fields absent keep T{}'s values).
  Issues parse_into(const Json& json, T& out, const std::string& path = "") const {
    Issues issues;
    validate(*root_, json, path, issues);
    if (!issues.empty()) return issues;
    out = T{};
    decode_into(json, out);
    run_refinements(out, path, issues);
    return issues;
  }

  // C++ caller's struct: ok, or `code` with every issue.
  Status validate_value(const T& value, ErrorCode code = ErrorCode::kInvalidParams) const {
    return to_status(check(value), code);
  }

  // JSON body -> T, or `code` with every issue.
  Result<T> parse(const Json& json, ErrorCode code = ErrorCode::kInvalidParams) const {
    T out{};
    Issues issues = parse_into(json, out);
    if (!issues.empty()) return to_status(issues, code);
    return out;
  }

  // Decodes an already-validated JSON object into `out` (only the fields present).
  void decode_into(const Json& json, T& out) const {
    for (size_t i = 0; i < bindings_.size(); ++i) {
      auto it = json.find(bindings_[i].name);
      if (it != json.end()) bindings_[i].decode(*it, *root_->properties[i].node, out);
    }
  }

  void run_refinements(const T& value, const std::string& path, Issues& out) const {
    for (const auto& b : bindings_) {
      if (b.refine_nested) b.refine_nested(value, join_path(path, b.name), out);
    }
    for (const auto& r : refinements_) {
      if (auto message = r.check(value)) out.push_back({join_path(path, r.field), *message});
    }
  }

 private:
  struct Binding {
    std::string name;
    std::function<Json(const T&)> encode;
    std::function<void(const Json&, const Node&, T&)> decode;
    std::function<void(const T&, const std::string&, Issues&)> refine_nested;  // nested structs
  };
  struct NamedRefinement {
    std::string field;
    Refinement check;
  };

  template <class M>
  static Binding make_binding(std::string name, M T::*member) {
    Binding b;
    b.name = std::move(name);
    b.encode = [member](const T& t) { return detail::encode(t.*member); };
    b.decode = [member](const Json& j, const Node& n, T& t) { detail::decode(j, n, t.*member); };
    if constexpr (detail::kIsOptional<M>) {
      using Inner = typename M::value_type;
      if constexpr (detail::kIsStruct<Inner>) {
        b.refine_nested = [member](const T& t, const std::string& path, Issues& out) {
          if (t.*member) schema_of<Inner>().run_refinements(*(t.*member), path, out);
        };
      }
    } else if constexpr (detail::kIsStruct<M>) {
      b.refine_nested = [member](const T& t, const std::string& path, Issues& out) {
        schema_of<M>().run_refinements(t.*member, path, out);
      };
    }
    return b;
  }

  NodePtr root_;
  std::vector<Binding> bindings_;
  std::vector<NamedRefinement> refinements_;
};

}  // namespace mlxs::schema
