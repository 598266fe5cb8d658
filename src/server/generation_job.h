// One generation request in flight: its n generators (one per choice) and the response they
// become, in the shape of the API that asked (OpenAI chat / completions, Anthropic messages),
// streamed as SSE events or assembled into one JSON body.
//
// Threads: not thread-safe; the owning HTTP session calls every method from its strand. The
// engine only calls the `notify` callback given to start(), which must just schedule a poll().
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mlxs/engine.h"
#include "server/api_error.h"
#include "server/generation_request.h"
#include "server/metrics.h"

namespace mlxs::server {

class GenerationJob {
 public:
  using Clock = std::chrono::steady_clock;

  GenerationJob(GenerationRequest request, Engine& engine, Metrics& metrics);
  ~GenerationJob();

  // Creates the generators (choice i gets seed + i when a seed is set). On a refusal every
  // generator already created is cancelled and the error returned.
  std::optional<ApiError> start(const std::string& request_id, std::function<void()> notify);

  // Streaming only: the events sent before any token (role chunks, message_start, ...).
  std::string stream_prologue();
  // Pulls every chunk available now (stopping once `out` holds `max_bytes`), appending SSE
  // events when streaming. True once every choice has ended; then stream_epilogue() /
  // response_body() give the rest.
  bool poll(std::string* out, size_t max_bytes);
  std::string stream_epilogue();
  // Non-streaming: the HTTP status and JSON body (an error body when a choice failed).
  std::pair<int, std::string> response_body();
  // Cancels every generator (client gone, or the shutdown deadline passed).
  void cancel();

  bool streaming() const { return request_.stream; }
  ApiKind kind() const { return request_.kind; }
  const std::string& model() const { return request_.params.model; }
  // For the request log: totals over the choices.
  int prompt_tokens() const;
  int completion_tokens() const;
  double ttft_ms() const;
  std::string outcome() const;  // "stop", "length", "cancelled", "error:<Code>", ...

 private:
  struct Choice {
    std::unique_ptr<Generator> gen;
    std::string text;
    std::vector<TokenChunk> tokens;  // kept for logprobs and Anthropic's stop_sequence
    std::optional<MetadataChunk> meta;
    std::optional<ErrorChunk> error;
    std::optional<Clock::time_point> last_token;
    bool ended() const { return meta.has_value() || error.has_value(); }
  };

  void on_token(int index, TokenChunk t, std::string* out);
  void on_end(int index, std::string* out);
  std::string openai_chunk(nlohmann::json choices, bool with_usage_null) const;
  nlohmann::json chat_logprobs(const std::vector<TokenChunk>& tokens) const;
  nlohmann::json completion_logprobs(const std::vector<TokenChunk>& tokens, size_t offset) const;
  nlohmann::json usage_json() const;
  std::string finish_reason(const Choice& c) const;
  std::string anthropic_stop_reason(const Choice& c, std::string* stop_sequence) const;
  std::string token_text(int32_t id) const;
  std::optional<ApiError> first_error() const;

  GenerationRequest request_;
  Engine& engine_;
  Metrics& metrics_;
  std::string id_;
  int64_t created_ = 0;
  std::vector<Choice> choices_;
};

// "chatcmpl-" / "cmpl-" / "msg_" followed by 24 random alphanumerics.
std::string new_response_id(ApiKind kind);
// `j` serialized; invalid UTF-8 (which never comes from the engine) is replaced, never thrown.
std::string dump_json(const nlohmann::json& j);

}  // namespace mlxs::server
