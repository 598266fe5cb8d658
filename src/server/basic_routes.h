// The routes that answer at once, as functions from the request to a reply: /health,
// /metrics, /v1/models, /v1/models/{id}, /tokenize, /detokenize and
// /v1/messages/count_tokens. They never touch the socket;
// the connection writes what they return.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <variant>

#include "server/api_error.h"
#include "server/server_context.h"

namespace mlxs::server {

struct Reply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string model;  // the model it concerned, for the request log ("" when none)
};
using RouteResult = std::variant<Reply, ApiError>;

// 200 with the engine's health and each KV pool, or 503 when draining or unhealthy.
Reply health_reply(ServerContext& server);
// Prometheus text; a 404 when telemetry.metrics is off.
RouteResult metrics_reply(ServerContext& server);
// The loaded models, in OpenAI's shape or (`anthropic`: the request carried anthropic-version)
// Anthropic's ({type: "model", id, display_name, created_at}, has_more, first_id, last_id).
Reply models_reply(const ServerContext& server, bool anthropic);
RouteResult model_reply(const ServerContext& server, const std::string& id, bool anthropic);
// Anthropic's count_tokens: {model, messages, system?, tools?, ...} -> {"input_tokens"}.
RouteResult count_tokens_reply(const ServerContext& server, const nlohmann::json& body);
// {"model"?, "prompt" | "text", "add_special_tokens"?} -> tokens, count, max_model_len, strings.
RouteResult tokenize_reply(const ServerContext& server, const nlohmann::json& body);
// {"model"?, "tokens"} -> {"prompt"}.
RouteResult detokenize_reply(const ServerContext& server, const nlohmann::json& body);

}  // namespace mlxs::server
