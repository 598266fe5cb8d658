#include "server/basic_routes.h"

#include <ctime>

#include "server/body_reader.h"
#include "server/dialect.h"
#include "util/json_int.h"

namespace mlxs::server {
namespace {

using json = nlohmann::json;

json model_json(const ServedModel& m) {
  return {{"id", m.id},
          {"object", "model"},
          {"created", m.created},
          {"owned_by", "mlx-serving"},
          {"max_model_len", m.context_length}};
}

// Anthropic's model object: created_at as RFC 3339.
json anthropic_model_json(const ServedModel& m) {
  char created[32];
  const std::time_t t = std::time_t(m.created);
  std::tm utc{};
  gmtime_r(&t, &utc);
  std::strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return {{"type", "model"}, {"id", m.id}, {"display_name", m.id}, {"created_at", created}};
}

Reply json_reply(const json& body, std::string model = "", int status = 200) {
  return Reply{status, "application/json", dump_json(body), std::move(model)};
}

// "model" names a served model; absent, the first one.
const ServedModel* tokenizer_model(const ServerContext& server, BodyReader& r) {
  auto id = r.string("model");
  if (!id && !server.models.empty()) return &server.models[0];
  const ServedModel* m = id ? server.find_model(*id) : nullptr;
  if (!m && !r.failed()) {
    r.fail(make_error(404, ErrorCode::kModelNotLoaded,
                      "The model '" + id.value_or("") + "' does not exist", "model_not_found"));
  }
  return m;
}

std::vector<int32_t> token_ids(BodyReader& r) {
  std::vector<int32_t> ids;
  const json* tokens = r.get("tokens");
  if (!r.failed() && !tokens) r.fail_field("tokens", "is required");
  if (!tokens) return ids;
  if (!tokens->is_array()) {
    r.fail_field("tokens", "expected array of integers, got " + json_type_name(*tokens));
    return ids;
  }
  for (const auto& v : *tokens) {
    auto checked = json_int_in(v, 0, INT32_MAX);
    if (!checked) {
      r.fail_field("tokens", "expected array of integers >= 0 and <= 2147483647, got " + v.dump());
      break;
    }
    ids.push_back(int32_t(*checked));
  }
  return ids;
}

}  // namespace

Reply health_reply(ServerContext& server) {
  HealthStatus h = server.engine.health_check();
  const char* names[] = {"healthy", "degraded", "unhealthy"};
  std::string status = server.draining ? "draining" : names[int(h.status)];
  json body = {{"status", status},
               {"uptime_s", h.uptime_s},
               {"active_streams", h.active_streams},
               {"loaded_models", h.loaded_models}};
  if (!h.detail.empty()) body["detail"] = h.detail;
  // Per model: the KV pool's size and use (tokens = blocks x block_size).
  json pools = json::array();
  for (const ModelStats& m : server.engine.runtime_info().models) {
    pools.push_back({{"model", m.model_id},
                     {"block_size", m.kv_block_size},
                     {"blocks_total", m.kv_blocks_total},
                     {"blocks_used", m.kv_blocks_used},
                     {"blocks_free", m.kv_blocks_total - m.kv_blocks_used},
                     {"tokens_capacity", int64_t(m.kv_blocks_total) * m.kv_block_size},
                     {"bytes", m.kv_cache_bytes}});
  }
  body["kv_cache"] = std::move(pools);
  const bool ok = !server.draining && h.status != HealthState::kUnhealthy;
  return json_reply(body, "", ok ? 200 : 503);
}

RouteResult metrics_reply(ServerContext& server) {
  if (!server.options.metrics) {
    return make_error(404, ErrorCode::kNotFound,
                      "no route for GET /metrics (telemetry.metrics is false)");
  }
  return Reply{200, "text/plain; version=0.0.4; charset=utf-8",
               server.metrics.render(server.engine.runtime_info(), server.engine.health_check()),
               ""};
}

Reply models_reply(const ServerContext& server, bool anthropic) {
  json data = json::array();
  for (const auto& m : server.models)
    data.push_back(anthropic ? anthropic_model_json(m) : model_json(m));
  if (!anthropic) return json_reply({{"object", "list"}, {"data", data}});
  json first = data.empty() ? json() : data.front()["id"];
  json last = data.empty() ? json() : data.back()["id"];
  return json_reply({{"data", data}, {"has_more", false}, {"first_id", first}, {"last_id", last}});
}

RouteResult model_reply(const ServerContext& server, const std::string& id, bool anthropic) {
  const ServedModel* m = server.find_model(id);
  if (!m) {
    return make_error(404, ErrorCode::kModelNotLoaded, "The model '" + id + "' does not exist",
                      "model_not_found");
  }
  return json_reply(anthropic ? anthropic_model_json(*m) : model_json(*m));
}

RouteResult count_tokens_reply(const ServerContext& server, const json& body) {
  auto n = anthropic_count_tokens(
      body, [&server](const std::string& id) { return server.find_model(id); }, server.engine);
  if (auto* e = std::get_if<ApiError>(&n)) return *e;
  return json_reply({{"input_tokens", std::get<int32_t>(n)}}, body.value("model", ""));
}

RouteResult tokenize_reply(const ServerContext& server, const json& body) {
  BodyReader r(body);
  const ServedModel* m = tokenizer_model(server, r);
  auto prompt = r.string("prompt");
  auto text = r.string("text");
  bool add_special = r.boolean("add_special_tokens").value_or(true);
  if (!r.failed() && !prompt && !text) r.fail_field("prompt", "is required");
  if (auto e = r.finish()) return *e;
  auto t = server.engine.tokenize(m->id, prompt ? *prompt : *text, add_special);
  if (!t.ok()) return error_from_status(t.status());
  json out = {{"tokens", t->tokens},
              {"count", t->tokens.size()},
              {"max_model_len", m->context_length},
              {"token_strings", t->token_strings}};
  return json_reply(out, m->id);
}

RouteResult detokenize_reply(const ServerContext& server, const json& body) {
  BodyReader r(body);
  const ServedModel* m = tokenizer_model(server, r);
  std::vector<int32_t> ids = token_ids(r);
  if (auto e = r.finish()) return *e;
  auto text = server.engine.detokenize(m->id, ids);
  if (!text.ok()) return error_from_status(text.status());
  return json_reply(json{{"prompt", *text}}, m->id);
}

}  // namespace mlxs::server
