// One generation request in flight: its n generators (one per choice) and the response they
// become, formatted by the request's dialect (server/dialect.h), streamed as SSE events or
// assembled into one JSON body. The job itself knows no API: it pulls chunks, keeps the choices'
// state and the metrics, and asks the dialect for every byte it emits.
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
#include "server/dialect.h"
#include "server/generation_request.h"
#include "server/metrics.h"

namespace mlxs::server {

class GenerationJob {
 public:
  using Clock = std::chrono::steady_clock;

  // `dialect` formats the response (a program-lifetime singleton). A non-streamed response
  // that grows past `max_response_bytes` (0: no cap) is cancelled and answered with a 400.
  GenerationJob(GenerationRequest request, const Dialect& dialect, Engine& engine, Metrics& metrics,
                int64_t max_response_bytes = 0);
  ~GenerationJob();
  GenerationJob(const GenerationJob&) = delete;  // state_ points into the job
  GenerationJob& operator=(const GenerationJob&) = delete;

  // Creates the generators (choice i gets seed + i when a seed is set). On a refusal every
  // generator already created is cancelled and the error returned.
  std::optional<ApiError> start(const std::string& request_id, std::function<void()> notify);

  // Streaming only: the events sent before any token (role chunks, message_start, ...).
  std::string stream_prologue() const { return dialect_.stream_prologue(state_); }
  // Pulls every chunk available now (stopping once `out` holds `max_bytes`), appending SSE
  // events when streaming. True once every choice has ended; then stream_epilogue() /
  // response_body() give the rest.
  bool poll(std::string* out, size_t max_bytes);
  std::string stream_epilogue() const { return dialect_.stream_epilogue(state_); }
  // Non-streaming: the HTTP status and JSON body (an error body when a choice failed).
  std::pair<int, std::string> response_body() const;
  // Cancels every generator (client gone, or the shutdown deadline passed).
  void cancel();

  bool streaming() const { return request_.stream; }
  const std::string& model() const { return request_.params.model; }
  // For the request log: totals over the choices.
  int prompt_tokens() const { return state_.prompt_tokens(); }
  int completion_tokens() const { return state_.completion_tokens(); }
  double ttft_ms() const;
  std::string outcome() const;  // "stop", "length", "cancelled", "error:<Code>", ...

 private:
  void on_token(int index, TokenChunk t, std::string* out);
  void on_end(int index, std::string* out);

  GenerationRequest request_;
  const Dialect& dialect_;
  Engine& engine_;
  Metrics& metrics_;
  GenerationState state_;  // state_.choices[i] is fed by generators_[i]
  std::vector<std::unique_ptr<Generator>> generators_;
  std::vector<std::optional<Clock::time_point>> last_token_;  // per choice, for inter-token time
  const int64_t max_response_bytes_;
  int64_t response_bytes_ = 0;  // non-streamed: what the choices hold (text and logprobs)
  bool too_large_ = false;      // the response passed max_response_bytes: cancelled
};

// Non-streamed responses: a request whose response could exceed `max_bytes`
// (server.max_response_bytes), estimated before it starts from n, max_tokens (or the context
// the prompt leaves, `context_length`) and logprobs, is refused with a 400 naming the limit and
// the fields to lower. nullopt: the estimate fits, or the request streams.
std::optional<ApiError> refuse_oversized_response(const GenerationRequest& request,
                                                  int context_length, int64_t max_bytes);
// The estimate behind it, in bytes.
int64_t estimated_response_bytes(const GenerationRequest& request, int context_length);

// The dialect's id prefix ("chatcmpl-", "cmpl-", "msg_") followed by 24 random alphanumerics.
std::string new_response_id(const Dialect& dialect);

}  // namespace mlxs::server
