#include "server/body_reader.h"

#include <cmath>

namespace mlxs::server {

std::string json_type_name(const nlohmann::json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "boolean";
  if (v.is_number_integer() || v.is_number_unsigned()) return "integer";
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  if (v.is_array()) return "array";
  return "object";
}

BodyReader::BodyReader(const nlohmann::json& body) : body_(body) {
  if (!body.is_object()) {
    fail(make_error(400, ErrorCode::kInvalidRequest,
                    "Validation error on field '': expected object, got " + json_type_name(body)));
  }
}

const nlohmann::json* BodyReader::get(const std::string& name) {
  known_.insert(name);
  if (!body_.is_object()) return nullptr;
  auto it = body_.find(name);
  if (it == body_.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<std::string> BodyReader::string(const std::string& name) {
  const auto* v = get(name);
  if (!v) return std::nullopt;
  if (!v->is_string()) {
    fail_field(name, "expected string, got " + json_type_name(*v));
    return std::nullopt;
  }
  return v->get<std::string>();
}

std::optional<double> BodyReader::number(const std::string& name) {
  const auto* v = get(name);
  if (!v) return std::nullopt;
  if (!v->is_number()) {
    fail_field(name, "expected number, got " + json_type_name(*v));
    return std::nullopt;
  }
  return v->get<double>();
}

std::optional<int64_t> BodyReader::integer(const std::string& name) {
  const auto* v = get(name);
  if (!v) return std::nullopt;
  if (v->is_number_integer() || v->is_number_unsigned()) {
    if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX)) {
      fail_field(name, "integer out of range, got " + v->dump());
      return std::nullopt;
    }
    return v->get<int64_t>();
  }
  if (v->is_number_float() && std::floor(v->get<double>()) == v->get<double>() &&
      std::fabs(v->get<double>()) < 9e15) {
    return int64_t(v->get<double>());
  }
  fail_field(name, "expected integer, got " + json_type_name(*v) +
                       (v->is_number() ? " " + v->dump() : ""));
  return std::nullopt;
}

std::optional<bool> BodyReader::boolean(const std::string& name) {
  const auto* v = get(name);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) {
    fail_field(name, "expected boolean, got " + json_type_name(*v));
    return std::nullopt;
  }
  return v->get<bool>();
}

void BodyReader::refuse(const std::string& name, const std::string& what,
                        const nlohmann::json& allowed) {
  const auto* v = get(name);
  if (!v) return;
  if (!allowed.is_null() && *v == allowed) return;
  if ((v->is_array() || v->is_object()) && v->empty()) return;
  fail_field(name, what + " is not supported by this server");
}

void BodyReader::fail(ApiError e) {
  if (!error_) error_ = std::move(e);
}

void BodyReader::fail_field(const std::string& name, const std::string& what) {
  fail(bad_field(name, what));
}

std::optional<ApiError> BodyReader::finish() {
  if (!error_ && body_.is_object()) {
    for (const auto& [key, value] : body_.items()) {
      if (!known_.count(key)) {
        fail_field(key, "unknown field (Unrecognized request argument supplied: " + key + ")");
        break;
      }
    }
  }
  return error_;
}

}  // namespace mlxs::server
