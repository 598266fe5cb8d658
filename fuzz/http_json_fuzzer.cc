// Fuzzes the JSON bodies of every HTTP route that takes one, through the server's own parsing:
// the nesting check (util/json_depth.h, as server.max_json_depth applies it), nlohmann::json, then
// for /v1/chat/completions, /v1/completions and /v1/messages server::parse_generation_request
// (fields, the chat template, tokenizing, validate_options) against the shipped default model,
// and the error's OpenAI/Anthropic JSON. /tokenize and /detokenize read their two fields with
// BodyReader and json_int_in as the server's handlers do and call the engine.
// Input: one byte choosing the route (mod 5), then the body.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <variant>

#include "mlxs/engine.h"
#include "server/api_error.h"
#include "server/body_reader.h"
#include "server/generation_request.h"
#include "server/http_server.h"
#include "util/json_depth.h"
#include "util/json_int.h"

namespace {

using json = nlohmann::json;
namespace server = mlxs::server;

constexpr int kMaxDepth = 64;  // server.max_json_depth's default

struct Served {
  std::unique_ptr<mlxs::Engine> engine;
  std::unique_ptr<server::ServedModel> model;
};

Served& served() {
  static Served* s = [] {
    auto e = mlxs::create_engine({});
    if (!e.ok()) std::abort();
    mlxs::LoadModelOptions lo;
    lo.model = "default";
    lo.local_path = (std::filesystem::path(MLXS_SOURCE_DIR) / "models" / "default").string();
    auto h = (*e)->load_model(lo);
    if (!h.ok()) std::abort();
    auto m = server::served_model_of(*h);
    return new Served{std::move(*e), std::make_unique<server::ServedModel>(std::move(m))};
  }();
  return *s;
}

void use_error(const server::ApiError& e) {
  if (e.http_status < 400 || e.http_status > 599) std::abort();
  (void)e.openai_json().dump(-1, ' ', false, json::error_handler_t::replace);
  (void)e.anthropic_json().dump(-1, ' ', false, json::error_handler_t::replace);
}

void tokenize(const json& body) {
  server::BodyReader r(body);
  (void)r.string("model");
  auto prompt = r.string("prompt");
  auto text = r.string("text");
  bool add_special = r.boolean("add_special_tokens").value_or(true);
  if (!r.failed() && !prompt && !text) r.fail_field("prompt", "is required");
  if (auto e = r.finish()) return use_error(*e);
  (void)served().engine->tokenize("default", prompt ? *prompt : *text, add_special);
}

void detokenize(const json& body) {
  server::BodyReader r(body);
  (void)r.string("model");
  std::vector<int32_t> ids;
  const json* tokens = r.get("tokens");
  if (tokens && tokens->is_array()) {
    for (const auto& v : *tokens) {
      auto id = mlxs::json_int_in(v, 0, INT32_MAX);
      if (!id) return;
      ids.push_back(int32_t(*id));
    }
  }
  if (auto e = r.finish()) return use_error(*e);
  (void)served().engine->detokenize("default", ids);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)served();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int route = data[0] % 5;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (mlxs::json_nesting_depth(text, kMaxDepth) > kMaxDepth) return 0;
  json body = json::parse(text, nullptr, false);
  if (body.is_discarded()) return 0;
  if (route == 3) return tokenize(body), 0;
  if (route == 4) return detokenize(body), 0;
  const server::ApiKind kind = route == 0   ? server::ApiKind::kChat
                               : route == 1 ? server::ApiKind::kCompletion
                                            : server::ApiKind::kMessages;
  Served& s = served();
  auto parsed = server::parse_generation_request(
      kind, body, [&s](const std::string& id) { return id == "default" ? s.model.get() : nullptr; },
      *s.engine);
  if (auto* e = std::get_if<server::ApiError>(&parsed)) use_error(*e);
  return 0;
}
