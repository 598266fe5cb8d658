// What OpenAI's two generation APIs (chat completions and the legacy completions) share: the
// request fields around the prompt (sampling, `stop`, `n`, the refused extras), the chunk
// envelope, usage, finish reasons, the `[DONE]` sentinel and the error shape. Each API is a
// subclass that fills in its prompt, its choice shapes and its logprobs.
#pragma once

#include "server/body_reader.h"
#include "server/dialect.h"

namespace mlxs::server {

class OpenAIDialect : public Dialect {
 public:
  std::variant<GenerationRequest, ApiError> parse(const nlohmann::json& body,
                                                  const ModelLookup& models,
                                                  const Engine& engine) const final;
  nlohmann::json error_json(const ApiError& e) const final { return e.openai_json(); }
  std::string stream_choice_end(const GenerationState& s, int index) const override;
  std::string stream_epilogue(const GenerationState& s) const final;
  std::string response(const GenerationState& s) const final;

 protected:
  // "chat.completion.chunk" / "text_completion" for stream chunks; "chat.completion" /
  // "text_completion" for the whole response.
  virtual const char* chunk_object() const = 0;
  virtual const char* response_object() const = 0;
  // The API's own fields, then its prompt into g.params.prompt.
  virtual void parse_prompt(BodyReader& r, const ServedModel& m, const Engine& engine,
                            GenerationRequest& g) const = 0;
  // The field that holds the prompt ("messages", "prompt"): named by a context overflow.
  virtual const char* prompt_field() const = 0;
  // Whether the model's end-of-turn markers stop the generation (chat: yes).
  virtual bool stops_at_end_of_turn() const = 0;
  // The choice of the chunk that ends choice `index`.
  virtual nlohmann::json closing_choice(int index, const std::string& finish_reason) const = 0;
  // Choice `index` of the whole response, as JSON text (its logprobs spliced in as recorded).
  virtual std::string response_choice(const GenerationState& s, int index) const = 0;

  // One stream chunk (an SSE data event) carrying `choices`.
  std::string chunk(const GenerationState& s, nlohmann::json choices) const;
  // stop, length, tool_calls (a streamed choice that sent calls and stopped), ...
  static std::string finish_reason(const ChoiceState& c);
};

}  // namespace mlxs::server
