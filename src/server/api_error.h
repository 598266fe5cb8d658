// An HTTP API error: status code, the error's kind, and its JSON body in each API's shape.
// Mapping from engine ErrorCodes: bad input -> 400, unknown model -> 404, capacity -> 429,
// circuit breaker open -> 503 (both with Retry-After), timeout -> 504, the rest -> 500.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "mlxs/status.h"

namespace mlxs::server {

struct ApiError {
  int http_status = 500;
  std::string message;
  std::string param;  // the offending request field, "" when none
  std::string code;   // a short machine code ("model_not_found", "invalid_api_key"), or ""
  ErrorCode engine_code = ErrorCode::kInternalError;  // for metrics ("errors by code")
  int retry_after_s = 0;                              // > 0: send a Retry-After header

  // OpenAI's "type" for the status ("invalid_request_error", "authentication_error", ...).
  std::string openai_type() const;
  // Anthropic's "type" ("invalid_request_error", "not_found_error", "overloaded_error", ...).
  std::string anthropic_type() const;
  // {"error":{"message","type","param","code"}} (param/code null when empty).
  nlohmann::json openai_json() const;
  // {"type":"error","error":{"type","message"}}.
  nlohmann::json anthropic_json() const;
};

// The error for an engine Status (never ok). The field named in "Validation error on field 'x'"
// becomes `param`.
ApiError error_from_status(const Status& status);

// A 400 for request field `param` ("Validation error on field 'param': what").
ApiError bad_field(const std::string& param, const std::string& what);

ApiError make_error(int http_status, ErrorCode code, std::string message,
                    std::string short_code = "");

}  // namespace mlxs::server
