// Typed, null-tolerant access to the fields of a JSON request body. Every field the handler
// looks at is marked known; whatever is left is an unknown field and is refused, so nothing a
// client sends is silently ignored. JSON null counts as absent (OpenAI clients send it).
// The first problem found is kept as a 400 ApiError in the engine's validation format.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "server/api_error.h"

namespace mlxs::server {

class BodyReader {
 public:
  // `body` must outlive the reader. A body that is not an object is an error at once.
  explicit BodyReader(const nlohmann::json& body);

  // The field, or nullptr when absent or null. Marks it known.
  const nlohmann::json* get(const std::string& name);
  std::optional<std::string> string(const std::string& name);
  std::optional<double> number(const std::string& name);
  std::optional<int64_t> integer(const std::string& name);
  std::optional<bool> boolean(const std::string& name);
  // A field accepted and ignored on purpose (e.g. "user").
  void accept(const std::string& name) { known_.insert(name); }
  // A field this server does not implement: an error when present (not null, not `allowed`).
  void refuse(const std::string& name, const std::string& what,
              const nlohmann::json& allowed = nlohmann::json());

  void fail(ApiError e);
  void fail_field(const std::string& name, const std::string& what);
  // Records an error for the first unknown field; returns the first error, if any.
  std::optional<ApiError> finish();
  bool failed() const { return error_.has_value(); }

 private:
  const nlohmann::json& body_;
  std::set<std::string> known_;
  std::optional<ApiError> error_;
};

// "string", "number", "object", ... as the engine's validation names JSON types.
std::string json_type_name(const nlohmann::json& v);

}  // namespace mlxs::server
