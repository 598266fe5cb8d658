#include "server/dialect.h"

namespace mlxs::server {

using json = nlohmann::json;

std::string dump_json(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string with_raw_member(std::string object, const char* key, const std::string& raw) {
  object.pop_back();  // the closing brace
  if (object.size() > 1) object += ',';
  object += dump_json(key);
  object += ':';
  object += raw;
  object += '}';
  return object;
}

void append_element(std::string& array_body, const std::string& element) {
  if (!array_body.empty()) array_body += ',';
  array_body += element;
}

size_t ChoiceState::bytes() const {
  size_t n = text.size();
  for (const auto& part : logprobs) n += part.size();
  return n;
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
  for (const auto& c : choices) n += c.meta ? c.meta->tokens_generated : c.num_tokens;
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
    case ApiKind::kOllamaChat:
      return ollama_chat_dialect();
    case ApiKind::kOllamaGenerate:
      return ollama_generate_dialect();
    case ApiKind::kResponses:
      return responses_dialect_without_store();
    case ApiKind::kMessages:
      break;
  }
  return anthropic_messages_dialect();
}

}  // namespace mlxs::server
