// Ollama's routes that answer at once: GET /api/tags (the models), POST /api/show (one model's
// details), GET /api/ps (the models loaded: all of them, for as long as the server runs) and
// GET /api/version. Errors are Ollama's {"error": "..."} (the session's dialect shapes them).
#pragma once

#include <nlohmann/json.hpp>

#include "server/basic_routes.h"
#include "server/server_context.h"

namespace mlxs::server {

Reply ollama_tags_reply(const ServerContext& server);
// {"model"} (or the older "name"), optional "verbose" -> details, model_info, capabilities.
RouteResult ollama_show_reply(const ServerContext& server, const nlohmann::json& body);
Reply ollama_ps_reply(const ServerContext& server);
Reply ollama_version_reply();

}  // namespace mlxs::server
