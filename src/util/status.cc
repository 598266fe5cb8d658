#include "mlxs/status.h"

namespace mlxs {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk:
      return "Ok";
    case ErrorCode::kParseError:
      return "ParseError";
    case ErrorCode::kInvalidRequest:
      return "InvalidRequest";
    case ErrorCode::kMethodNotFound:
      return "MethodNotFound";
    case ErrorCode::kInvalidParams:
      return "InvalidParams";
    case ErrorCode::kValidationError:
      return "ValidationError";
    case ErrorCode::kInternalError:
      return "InternalError";
    case ErrorCode::kServerError:
      return "ServerError";
    case ErrorCode::kModelLoadError:
      return "ModelLoadError";
    case ErrorCode::kGenerationError:
      return "GenerationError";
    case ErrorCode::kTokenizerError:
      return "TokenizerError";
    case ErrorCode::kGuidanceError:
      return "GuidanceError";
    case ErrorCode::kModelNotLoaded:
      return "ModelNotLoaded";
    case ErrorCode::kRuntimeError:
      return "RuntimeError";
    case ErrorCode::kTransportError:
      return "TransportError";
    case ErrorCode::kTimeout:
      return "Timeout";
    case ErrorCode::kCancelled:
      return "Cancelled";
    case ErrorCode::kCapacityExceeded:
      return "CapacityExceeded";
    case ErrorCode::kNotFound:
      return "NotFound";
  }
  return "Unknown";
}

std::string Status::to_string() const {
  if (ok()) return "Ok";
  return std::string(error_code_name(code_)) + ": " + message_;
}

}  // namespace mlxs
