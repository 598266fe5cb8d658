#include "server/ollama_routes.h"

#include <ctime>

#include "server/body_reader.h"
#include "server/dialect.h"

namespace mlxs::server {
namespace {

using json = nlohmann::json;

// The version `mlx-serving version` prints.
constexpr const char* kServerVersion = "0.1.0";

std::string rfc3339(int64_t unix_seconds) {
  const std::time_t t = std::time_t(unix_seconds);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char out[32];
  std::strftime(out, sizeof(out), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return out;
}

// "Qwen3ForCausalLM" -> "qwen3": the family, as Ollama names it.
std::string family_of(const std::string& architecture) {
  std::string f = architecture.substr(0, architecture.find("For"));
  for (char& c : f) c = char(std::tolower(static_cast<unsigned char>(c)));
  return f;
}

json details_json(const ServedModel& m) {
  const std::string family = family_of(m.architecture);
  return {{"parent_model", ""},
          {"format", "safetensors"},
          {"family", family},
          {"families", json::array({family})},
          {"parameter_size", std::to_string(m.num_parameters)},
          {"quantization_level", m.dtype}};
}

// One entry of /api/tags and /api/ps. There is no digest or file size to report: both empty.
json model_entry(const ServedModel& m) {
  return {{"name", m.id}, {"model", m.id}, {"modified_at", rfc3339(m.created)},
          {"size", 0},    {"digest", ""},  {"details", details_json(m)}};
}

Reply json_reply(const json& body, std::string model = "") {
  return Reply{200, "application/json", dump_json(body), std::move(model)};
}

}  // namespace

Reply ollama_tags_reply(const ServerContext& server) {
  json models = json::array();
  for (const auto& m : server.models) models.push_back(model_entry(m));
  return json_reply({{"models", models}});
}

Reply ollama_ps_reply(const ServerContext& server) {
  json models = json::array();
  for (const auto& m : server.models) {
    json e = model_entry(m);
    e["expires_at"] = "9999-12-31T23:59:59Z";  // loaded until the server stops
    e["size_vram"] = 0;
    e["context_length"] = m.context_length;
    models.push_back(std::move(e));
  }
  return json_reply({{"models", models}});
}

Reply ollama_version_reply() {
  return json_reply({{"version", kServerVersion}});
}

RouteResult ollama_show_reply(const ServerContext& server, const json& body) {
  BodyReader r(body);
  auto id = r.string("model");
  if (auto name = r.string("name"); !id) id = name;
  r.boolean("verbose");  // the tensor list it adds: none to show, the answer is the same
  if (!r.failed() && !id) r.fail_field("model", "is required");
  if (auto e = r.finish()) return *e;
  const ServedModel* m = server.find_model(*id);
  if (!m && id->ends_with(":latest")) m = server.find_model(id->substr(0, id->size() - 7));
  if (!m) {
    return make_error(404, ErrorCode::kModelNotLoaded, "model '" + *id + "' not found",
                      "model_not_found");
  }
  const std::string family = family_of(m->architecture);
  json capabilities = json::array({"completion"});
  if (m->has_chat_template &&
      (!m->chat_template_renders_tools || m->tool_call_format != ToolCallFormat::kNone)) {
    capabilities.push_back("tools");  // server/tool_request.h, policies 1 and 2
  }
  return json_reply({{"modelfile", ""},
                     {"parameters", ""},
                     {"template", ""},
                     {"details", details_json(*m)},
                     {"model_info",
                      {{"general.architecture", family},
                       {"general.parameter_count", m->num_parameters},
                       {family + ".context_length", m->context_length}}},
                     {"capabilities", capabilities},
                     {"modified_at", rfc3339(m->created)}},
                    m->id);
}

}  // namespace mlxs::server
