// Errors as values: Status and Result<T>. Every module boundary returns one of these; exceptions
// never cross it. Error codes are the original mlx-serving's, plus CapacityExceeded.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace mlxs {

enum class ErrorCode {
  kOk = 0,
  kParseError,
  kInvalidRequest,
  kMethodNotFound,
  kInvalidParams,
  kValidationError,
  kInternalError,
  kServerError,
  kModelLoadError,
  kGenerationError,
  kTokenizerError,
  kGuidanceError,
  kModelNotLoaded,
  kRuntimeError,
  kTransportError,
  kTimeout,
  kCancelled,
  kCapacityExceeded,  // the engine refused for capacity (HTTP 429/503)
  kNotFound,          // a file, model or route that does not exist
};

// The original's spelling of the code, e.g. "ValidationError".
const char* error_code_name(ErrorCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status ok_status() { return {}; }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "ValidationError: temperature must be >= 0 and <= 2, got 5".
  std::string to_string() const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

inline Status error(ErrorCode code, std::string message) {
  return {code, std::move(message)};
}

// A value or the Status that explains its absence. Never holds an ok Status.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<1>(v_);
  }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace mlxs

#define MLXS_CONCAT_INNER_(a, b) a##b
#define MLXS_CONCAT_(a, b) MLXS_CONCAT_INNER_(a, b)

// Returns the Status of `expr` from the enclosing function if it is an error.
#define MLXS_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::mlxs::Status mlxs_status_ = (expr);        \
    if (!mlxs_status_.ok()) return mlxs_status_; \
  } while (0)

// `lhs = *expr` for a Result, or returns its Status.
#define MLXS_ASSIGN_OR_RETURN(lhs, expr) \
  MLXS_ASSIGN_OR_RETURN_IMPL_(MLXS_CONCAT_(mlxs_result_, __LINE__), lhs, expr)
#define MLXS_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()
