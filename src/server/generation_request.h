// A generation request as the server hands it to the engine: GeneratorParams with the prompt
// already rendered (chat template) and tokenized, plus what the response format needs. Each API
// dialect (server/dialect.h) parses its request bodies into one; JSON stops there.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "mlxs/engine.h"
#include "server/api_error.h"

namespace mlxs::server {

enum class ApiKind { kChat, kCompletion, kMessages, kOllamaChat, kOllamaGenerate, kResponses };

// A model as the server offers it; everything but `created` comes from the Engine's handle.
struct ServedModel {
  std::string id;
  int64_t created = 0;  // Unix seconds, when it was loaded
  int32_t context_length = 0;
  bool has_chat_template = false;            // false: chat routes answer 400
  std::vector<int32_t> end_of_turn_ids;      // e.g. <|im_end|>; stop chat generations
  bool chat_template_renders_tools = false;  // see ModelHandle
  ToolCallFormat tool_call_format = ToolCallFormat::kNone;  // see ModelHandle
  std::string architecture;  // config.json's, e.g. "Qwen3ForCausalLM"
  int64_t num_parameters = 0;
  std::string dtype;
};

// The ServedModel of a loaded model, created now.
ServedModel served_model_of(const ModelHandle& handle);

struct GenerationRequest {
  ApiKind kind = ApiKind::kChat;
  GeneratorParams params;  // prompt as PromptTokens; per-choice seeds are derived from it
  int32_t num_prompt_tokens = 0;
  int n = 1;
  bool stream = false;
  bool include_usage = false;    // stream_options.include_usage
  int completion_logprobs = -1;  // legacy completions: `logprobs` (top count), -1 = off
  // Tools offered (tool_choice not none): the format the output is parsed in for calls
  // (server/tool_calls.h); kNone: the output is plain text.
  ToolCallFormat tool_call_format = ToolCallFormat::kNone;
  bool parallel_tool_calls = true;  // false: only the first call parsed is returned
  // The Responses API only: the conversation so far (a previous response's, then the input;
  // without `instructions`), kept with the answer when `store`; and the request fields its
  // response object repeats.
  std::vector<ChatMessage> conversation;
  bool store = false;
  nlohmann::json echo;
};

using ModelLookup = std::function<const ServedModel*(const std::string& id)>;

// dialect_for(kind).parse(body, models, engine): see Dialect::parse. Thread-safe.
std::variant<GenerationRequest, ApiError> parse_generation_request(ApiKind kind,
                                                                   const nlohmann::json& body,
                                                                   const ModelLookup& models,
                                                                   const Engine& engine);

}  // namespace mlxs::server
