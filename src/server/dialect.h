// One object per API dialect (OpenAI chat completions, OpenAI completions, Anthropic messages,
// Ollama's chat and generate, OpenAI responses):
// everything that differs between the APIs lives behind this interface. A dialect parses a
// request body into the native GenerationRequest and formats what the engine produced (stream
// events, the final body, errors, usage) in its API's shape. The server and GenerationJob never
// ask which dialect they hold; a new API (the Responses API, tool calls) is one more Dialect.
//
// Threads: dialects are stateless singletons; every method is const and thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "mlxs/engine.h"
#include "server/api_error.h"
#include "server/generation_request.h"
#include "server/tool_calls.h"

namespace mlxs::server {

// One choice of a generation as far as it has come.
// No per-token structure is kept: a non-streamed response's logprobs are appended to
// `logprobs` as JSON text token by token (Dialect::record_token), so a response costs about its
// own size in memory (issue 22, finding 7).
struct ChoiceState {
  std::string text;
  int num_tokens = 0;  // tokens received
  // Non-streamed: the choice's logprobs as JSON text, in as many parts as the dialect needs
  // (the comma-separated elements of one array each).
  std::vector<std::string> logprobs;
  std::optional<MetadataChunk> meta;
  std::optional<ErrorChunk> error;
  // Streaming with tools offered: the choice's tool-call parser (GenerationJob creates it; the
  // dialect advances it, through a const state: the pointer is const, not what it points to).
  std::unique_ptr<ToolCallStream> tool_stream;
  bool ended() const { return meta.has_value() || error.has_value(); }
  // What the choice holds for the response: its text and its logprobs.
  size_t bytes() const;
};

// A generation's response so far: what a dialect formats.
struct GenerationState {
  const GenerationRequest* request = nullptr;
  std::string id;       // the response id ("chatcmpl-...", "msg_...")
  int64_t created = 0;  // Unix seconds
  std::vector<ChoiceState> choices;
  std::function<std::string(int32_t)> token_text;  // one token's text (for logprobs)
  mutable int num_events = 0;  // events streamed so far (the Responses API numbers them)

  const std::string& model() const { return request->params.model; }
  // Totals over the choices (the engine's counts once a choice has ended).
  int prompt_tokens() const;
  int completion_tokens() const;
  // The first choice's error, if any choice failed.
  std::optional<ApiError> first_error() const;
};

class Dialect {
 public:
  virtual ~Dialect() = default;

  virtual ApiKind kind() const = 0;
  // Parses and validates a request body: unknown fields and fields this server does not
  // implement are 400s naming the field, an unknown model is 404.
  virtual std::variant<GenerationRequest, ApiError> parse(const nlohmann::json& body,
                                                          const ModelLookup& models,
                                                          const Engine& engine) const = 0;
  // An error body in this API's shape.
  virtual nlohmann::json error_json(const ApiError& e) const = 0;
  // The prefix of response ids ("chatcmpl-", "cmpl-", "msg_").
  virtual const char* id_prefix() const = 0;
  // The Content-Type of a streamed response (Ollama streams NDJSON, the others SSE).
  virtual const char* stream_content_type() const { return "text/event-stream"; }

  // Streaming, as SSE event text: the events before any token; those for one token of choice
  // `index` (`offset`: the choice's text length before it); those when choice `index` ends
  // (its metadata or its error is set); and the closing events once every choice has ended.
  virtual std::string stream_prologue(const GenerationState& s) const = 0;
  virtual std::string stream_token(const GenerationState& s, int index, const TokenChunk& t,
                                   size_t offset) const = 0;
  virtual std::string stream_choice_end(const GenerationState& s, int index) const = 0;
  virtual std::string stream_epilogue(const GenerationState& s) const = 0;
  // Not streaming: folds token `t` of choice `index` (`offset`: the choice's text length before
  // it) into s.choices[index].logprobs as JSON text, when the request asked for logprobs.
  virtual void record_token(GenerationState& s, int index, const TokenChunk& t,
                            size_t offset) const = 0;
  // Not streaming: the 200 body (JSON text) once every choice has ended without error.
  virtual std::string response(const GenerationState& s) const = 0;
};

// The dialect of each kind; they live for the whole program.
const Dialect& openai_chat_dialect();
const Dialect& openai_completions_dialect();
const Dialect& anthropic_messages_dialect();
const Dialect& ollama_chat_dialect();
const Dialect& ollama_generate_dialect();
// The Responses API with no store (previous_response_id always unknown); a server has its own
// ResponsesDialect (server/responses_dialect.h) over its store.
const Dialect& responses_dialect_without_store();
const Dialect& dialect_for(ApiKind kind);
// Anthropic's POST /v1/messages/count_tokens: the prompt tokens of a messages request body
// (without max_tokens). Thread-safe.
std::variant<int32_t, ApiError> anthropic_count_tokens(const nlohmann::json& body,
                                                       const ModelLookup& models,
                                                       const Engine& engine);

// "data: PAYLOAD\n\n" and "event: NAME\ndata: JSON\n\n".
std::string sse_data(const std::string& payload);
std::string sse_event(const char* name, const nlohmann::json& payload);
// `j` serialized; invalid UTF-8 (which never comes from the engine) is replaced, never thrown.
std::string dump_json(const nlohmann::json& j);
// `object` (the JSON text of an object) with the member `"key": raw` added, `raw` being JSON
// text already (a value built incrementally, never parsed again).
std::string with_raw_member(std::string object, const char* key, const std::string& raw);
// Appends JSON text `element` to `array_body`, the comma-separated elements of an array.
void append_element(std::string& array_body, const std::string& element);

}  // namespace mlxs::server
