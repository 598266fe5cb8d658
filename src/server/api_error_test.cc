#include "server/api_error.h"

#include <gtest/gtest.h>

namespace mlxs::server {
namespace {

TEST(ApiError, StatusMapping) {
  EXPECT_EQ(error_from_status({ErrorCode::kInvalidParams, "x"}).http_status, 400);
  EXPECT_EQ(error_from_status({ErrorCode::kModelNotLoaded, "x"}).http_status, 404);
  EXPECT_EQ(error_from_status({ErrorCode::kModelNotLoaded, "x"}).code, "model_not_found");
  ApiError cap = error_from_status({ErrorCode::kCapacityExceeded, "busy"});
  EXPECT_EQ(cap.http_status, 429);
  EXPECT_EQ(cap.retry_after_s, 1);
  ApiError breaker = error_from_status({ErrorCode::kServerError, "circuit breaker open"});
  EXPECT_EQ(breaker.http_status, 503);
  EXPECT_EQ(breaker.retry_after_s, 1);
  EXPECT_EQ(error_from_status({ErrorCode::kGenerationError, "x"}).http_status, 500);
}

TEST(ApiError, ParamComesFromTheValidationMessage) {
  ApiError e =
      error_from_status({ErrorCode::kInvalidParams,
                         "Validation error on field 'top_p': must be > 0 and <= 1, got 3"});
  EXPECT_EQ(e.param, "top_p");
}

TEST(ApiError, OpenAIAndAnthropicShapes) {
  ApiError e = bad_field("temperature", "expected number, got string");
  auto o = e.openai_json();
  EXPECT_EQ(o["error"]["type"], "invalid_request_error");
  EXPECT_EQ(o["error"]["param"], "temperature");
  EXPECT_TRUE(o["error"]["code"].is_null());
  EXPECT_EQ(o["error"]["message"],
            "Validation error on field 'temperature': expected number, got string");
  auto a = e.anthropic_json();
  EXPECT_EQ(a["type"], "error");
  EXPECT_EQ(a["error"]["type"], "invalid_request_error");
  EXPECT_EQ(make_error(503, ErrorCode::kServerError, "x").anthropic_json()["error"]["type"],
            "overloaded_error");
  // Oversized headers are the client's fault in both APIs.
  ApiError big = make_error(431, ErrorCode::kInvalidRequest, "x");
  EXPECT_EQ(big.openai_type(), "invalid_request_error");
  EXPECT_EQ(big.anthropic_type(), "invalid_request_error");
}

}  // namespace
}  // namespace mlxs::server
