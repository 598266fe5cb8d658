#include "server/dialect.h"

namespace mlxs::server {

using json = nlohmann::json;

std::string dump_json(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string sse_data(const std::string& payload) {
  return "data: " + payload + "\n\n";
}

std::string sse_event(const char* name, const json& payload) {
  return std::string("event: ") + name + "\ndata: " + dump_json(payload) + "\n\n";
}

int GenerationState::prompt_tokens() const {
  for (const auto& c : choices) {
    if (c.meta && c.meta->prompt_tokens > 0) return c.meta->prompt_tokens;
  }
  return request->num_prompt_tokens;
}

int GenerationState::completion_tokens() const {
  int n = 0;
  for (const auto& c : choices) n += c.meta ? c.meta->tokens_generated : int(c.tokens.size());
  return n;
}

std::optional<ApiError> GenerationState::first_error() const {
  for (const auto& c : choices) {
    if (c.error) return error_from_status(Status(c.error->code, c.error->message));
  }
  return std::nullopt;
}

const Dialect& dialect_for(ApiKind kind) {
  switch (kind) {
    case ApiKind::kChat:
      return openai_chat_dialect();
    case ApiKind::kCompletion:
      return openai_completions_dialect();
    case ApiKind::kMessages:
      break;
  }
  return anthropic_messages_dialect();
}

}  // namespace mlxs::server
