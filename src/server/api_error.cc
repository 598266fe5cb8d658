#include "server/api_error.h"

namespace mlxs::server {
namespace {

int status_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kParseError:
    case ErrorCode::kInvalidRequest:
    case ErrorCode::kInvalidParams:
    case ErrorCode::kValidationError:
    case ErrorCode::kTokenizerError:
    case ErrorCode::kGuidanceError:
      return 400;
    case ErrorCode::kModelNotLoaded:
    case ErrorCode::kNotFound:
    case ErrorCode::kMethodNotFound:
      return 404;
    case ErrorCode::kCapacityExceeded:
      return 429;
    case ErrorCode::kServerError:  // the engine's circuit breaker is open
      return 503;
    case ErrorCode::kTimeout:
      return 504;
    default:
      return 500;
  }
}

// "Validation error on field 'x': ..." -> "x".
std::string field_of(const std::string& message) {
  const std::string key = "on field '";
  size_t at = message.find(key);
  if (at == std::string::npos) return "";
  at += key.size();
  size_t end = message.find('\'', at);
  return end == std::string::npos ? "" : message.substr(at, end - at);
}

nlohmann::json null_if_empty(const std::string& s) {
  return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
}

}  // namespace

std::string ApiError::openai_type() const {
  switch (http_status) {
    case 400:
    case 404:
    case 405:
    case 413:
    case 431:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 429:
      return "rate_limit_error";
    case 503:
      return "service_unavailable_error";
    case 504:
      return "timeout_error";
    default:
      return "server_error";
  }
}

std::string ApiError::anthropic_type() const {
  switch (http_status) {
    case 400:
    case 405:
    case 431:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 503:
      return "overloaded_error";
    case 504:
      return "timeout_error";
    default:
      return "api_error";
  }
}

nlohmann::json ApiError::openai_json() const {
  return {{"error",
           {{"message", message},
            {"type", openai_type()},
            {"param", null_if_empty(param)},
            {"code", null_if_empty(code)}}}};
}

nlohmann::json ApiError::anthropic_json() const {
  return {{"type", "error"}, {"error", {{"type", anthropic_type()}, {"message", message}}}};
}

ApiError make_error(int http_status, ErrorCode code, std::string message, std::string short_code) {
  ApiError e;
  e.http_status = http_status;
  e.engine_code = code;
  e.message = std::move(message);
  e.code = std::move(short_code);
  if (http_status == 429 || http_status == 503) e.retry_after_s = 1;
  return e;
}

ApiError error_from_status(const Status& status) {
  ApiError e = make_error(status_for(status.code()), status.code(), status.message());
  e.param = field_of(status.message());
  if (status.code() == ErrorCode::kModelNotLoaded) e.code = "model_not_found";
  return e;
}

ApiError bad_field(const std::string& param, const std::string& what) {
  ApiError e = make_error(400, ErrorCode::kInvalidParams,
                          "Validation error on field '" + param + "': " + what);
  e.param = param;
  return e;
}

}  // namespace mlxs::server
