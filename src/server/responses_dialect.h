// OpenAI's Responses API (POST /v1/responses): `input` (a string or message items) and
// `instructions` through the model's chat template, `previous_response_id` continuing a stored
// conversation (server/response_store.h), `text.format` (json_schema / json_object) through
// structured output. The response is a `response` object whose output is one message of
// output_text; streamed, the events are response.created, response.in_progress,
// response.output_item.added, response.content_part.added, response.output_text.delta*,
// response.output_text.done, response.content_part.done, response.output_item.done and
// response.completed (response.incomplete when max_output_tokens ended it, response.failed on
// an error), each with its sequence_number.
//
// Unlike the other dialects it holds state: the store it reads previous responses from and
// writes finished ones to (one per server). Thread-safe (the store is).
#pragma once

#include "server/dialect.h"
#include "server/response_store.h"

namespace mlxs::server {

class ResponsesDialect final : public Dialect {
 public:
  explicit ResponsesDialect(ResponseStore& store) : store_(store) {}

  ApiKind kind() const override { return ApiKind::kResponses; }
  const char* id_prefix() const override { return "resp_"; }
  nlohmann::json error_json(const ApiError& e) const override { return e.openai_json(); }
  std::variant<GenerationRequest, ApiError> parse(const nlohmann::json& body,
                                                  const ModelLookup& models,
                                                  const Engine& engine) const override;
  std::string stream_prologue(const GenerationState& s) const override;
  std::string stream_token(const GenerationState& s, int index, const TokenChunk& t,
                           size_t offset) const override;
  std::string stream_choice_end(const GenerationState& s, int index) const override;
  std::string stream_epilogue(const GenerationState& s) const override;
  void record_token(GenerationState&, int, const TokenChunk&, size_t) const override {}
  std::string response(const GenerationState& s) const override;

  // GET /v1/responses/{id}: the stored response object, or nullopt.
  std::optional<nlohmann::json> stored(const std::string& id) const;

 private:
  // The response object as it stands (`status`: in_progress, completed, incomplete, failed).
  nlohmann::json response_object(const GenerationState& s, const std::string& status) const;
  // Keeps a finished response (when the request asked to store it).
  void remember(const GenerationState& s, const nlohmann::json& response) const;
  std::string event(const GenerationState& s, const char* type, nlohmann::json payload) const;

  ResponseStore& store_;
};

}  // namespace mlxs::server
