// The three generation APIs' request bodies (OpenAI chat completions, OpenAI legacy completions,
// Anthropic messages) parsed into one native request: GeneratorParams with the prompt already
// rendered (chat template) and tokenized, plus what the response format needs. JSON stops here.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "mlxs/engine.h"
#include "server/api_error.h"
#include "tokenizer/chat_template.h"

namespace mlxs::server {

enum class ApiKind { kChat, kCompletion, kMessages };

// A model as the server offers it: its chat template and the ids that end an assistant turn.
struct ServedModel {
  std::string id;
  int64_t created = 0;  // Unix seconds, when it was loaded
  int32_t context_length = 0;
  std::optional<ChatTemplate> chat_template;  // none: chat routes answer 400
  TokenizerChatConfig chat_config;
  std::vector<int32_t> end_of_turn_ids;  // e.g. <|im_end|>; stop chat generations
};

struct GenerationRequest {
  ApiKind kind = ApiKind::kChat;
  GeneratorParams params;  // prompt as PromptTokens; per-choice seeds are derived from it
  int32_t num_prompt_tokens = 0;
  int n = 1;
  bool stream = false;
  bool include_usage = false;    // stream_options.include_usage
  int completion_logprobs = -1;  // legacy completions: `logprobs` (top count), -1 = off
};

using ModelLookup = std::function<const ServedModel*(const std::string& id)>;

// Parses and validates `body` for `kind`; unknown fields and fields this server does not
// implement are 400s naming the field, an unknown model is 404. Thread-safe.
std::variant<GenerationRequest, ApiError> parse_generation_request(ApiKind kind,
                                                                   const nlohmann::json& body,
                                                                   const ModelLookup& models,
                                                                   const Engine& engine);

}  // namespace mlxs::server
