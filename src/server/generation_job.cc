#include "server/generation_job.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <random>

namespace mlxs::server {
namespace {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Low estimates of what one token costs in a response, so that only requests sure to exceed the
// cap are refused up front; the cap itself is enforced as the response grows.
constexpr int64_t kTextBytesPerToken = 4;  // a token's text
constexpr int64_t kBytesPerLogprob = 32;   // one logprob entry (the token's or an alternative)

std::string response_too_large(int64_t max_bytes) {
  return fmt::format(
      "the response would exceed server.max_response_bytes ({} bytes): lower n, max_tokens or "
      "top_logprobs/logprobs, or set stream: true (a streamed response has no such limit)",
      max_bytes);
}

}  // namespace

int64_t estimated_response_bytes(const GenerationRequest& request, int context_length) {
  const GeneratorParams& p = request.params;
  const int64_t tokens = p.max_tokens
                             ? int64_t(*p.max_tokens)
                             : std::max<int64_t>(1, context_length - request.num_prompt_tokens);
  int64_t per_token = kTextBytesPerToken;
  if (p.logprobs) per_token += (1 + std::max<int64_t>(0, p.top_logprobs)) * kBytesPerLogprob;
  return int64_t(request.n) * tokens * per_token;
}

std::optional<ApiError> refuse_oversized_response(const GenerationRequest& request,
                                                  int context_length, int64_t max_bytes) {
  if (request.stream || max_bytes <= 0) return std::nullopt;
  const int64_t estimate = estimated_response_bytes(request, context_length);
  if (estimate <= max_bytes) return std::nullopt;
  return bad_field(
      "max_tokens",
      fmt::format("with n={} and {} logprobs per token, at least {} bytes: {}", request.n,
                  request.params.logprobs ? 1 + std::max(0, request.params.top_logprobs) : 0,
                  estimate, response_too_large(max_bytes)));
}

std::string new_response_id(const Dialect& dialect) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string id = dialect.id_prefix();
  for (int i = 0; i < 24; ++i) id += kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
  return id;
}

GenerationJob::GenerationJob(GenerationRequest request, const Dialect& dialect, Engine& engine,
                             Metrics& metrics, int64_t max_response_bytes)
    : request_(std::move(request)),
      dialect_(dialect),
      engine_(engine),
      metrics_(metrics),
      max_response_bytes_(max_response_bytes) {
  state_.request = &request_;
  state_.token_text = [this](int32_t id) {
    auto text = engine_.detokenize(model(), {id});
    return text.ok() ? *text : std::string();
  };
}

GenerationJob::~GenerationJob() {
  cancel();
}

std::optional<ApiError> GenerationJob::start(const std::string& request_id,
                                             std::function<void()> notify) {
  state_.id = new_response_id(dialect_);
  state_.created = unix_now();
  const size_t n = size_t(request_.n);
  state_.choices.resize(n);
  generators_.resize(n);
  last_token_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    GeneratorParams p = request_.params;
    if (p.seed) p.seed = uint32_t(*p.seed + uint32_t(i));
    GeneratorOptions o;
    o.stream_id = n == 1 ? request_id : request_id + "." + std::to_string(i);
    auto gen = engine_.create_generator(p, o);
    if (!gen.ok()) {
      cancel();
      return error_from_status(gen.status());
    }
    generators_[i] = std::move(*gen);
    if (request_.stream && request_.tool_call_format != ToolCallFormat::kNone) {
      state_.choices[i].tool_stream = std::make_unique<ToolCallStream>(request_.tool_call_format);
    }
  }
  for (auto& g : generators_) g->set_listener(notify);
  return std::nullopt;
}

void GenerationJob::cancel() {
  for (auto& g : generators_) {
    if (g && !g->done()) g->cancel();
  }
}

bool GenerationJob::poll(std::string* out, size_t max_bytes) {
  bool all_ended = true;
  for (int i = 0; i < int(generators_.size()); ++i) {
    ChoiceState& c = state_.choices[size_t(i)];
    while (!c.ended() && out->size() < max_bytes) {
      auto chunk = generators_[size_t(i)]->next(std::chrono::milliseconds(0));
      if (!chunk) break;
      if (auto* t = std::get_if<TokenChunk>(&*chunk)) {
        on_token(i, std::move(*t), out);
      } else if (auto* m = std::get_if<MetadataChunk>(&*chunk)) {
        c.meta = *m;
        on_end(i, out);
      } else {
        c.error = std::get<ErrorChunk>(*chunk);
        on_end(i, out);
      }
    }
    all_ended = all_ended && c.ended();
  }
  return all_ended;
}

void GenerationJob::on_token(int index, TokenChunk t, std::string* out) {
  ChoiceState& c = state_.choices[size_t(index)];
  auto& last = last_token_[size_t(index)];
  const auto now = Clock::now();
  if (last) metrics_.record_inter_token(std::chrono::duration<double>(now - *last).count());
  last = now;
  if (too_large_) return;  // cancelled: what still comes is dropped
  const size_t offset = c.text.size(), before = c.bytes();
  c.text += t.text;
  ++c.num_tokens;
  if (request_.stream) {
    *out += dialect_.stream_token(state_, index, t, offset);
    return;
  }
  dialect_.record_token(state_, index, t, offset);
  response_bytes_ += int64_t(c.bytes() - before);
  if (max_response_bytes_ > 0 && response_bytes_ > max_response_bytes_) {
    too_large_ = true;
    cancel();
    for (auto& choice : state_.choices) {  // the memory goes now
      std::string().swap(choice.text);
      std::vector<std::string>().swap(choice.logprobs);
    }
  }
}

void GenerationJob::on_end(int index, std::string* out) {
  const ChoiceState& c = state_.choices[size_t(index)];
  if (c.meta && c.meta->tokens_generated > 0)
    metrics_.record_ttft(c.meta->time_to_first_token_ms / 1e3);
  if (c.error) metrics_.record_error(error_code_name(c.error->code));
  if (request_.stream) *out += dialect_.stream_choice_end(state_, index);
}

std::pair<int, std::string> GenerationJob::response_body() const {
  if (too_large_) {
    ApiError e = bad_field("max_tokens", response_too_large(max_response_bytes_));
    return {e.http_status, dump_json(dialect_.error_json(e))};
  }
  if (auto e = state_.first_error()) return {e->http_status, dump_json(dialect_.error_json(*e))};
  return {200, dialect_.response(state_)};
}

double GenerationJob::ttft_ms() const {
  double best = -1;
  for (const auto& c : state_.choices) {
    if (c.meta && c.meta->tokens_generated > 0 &&
        (best < 0 || c.meta->time_to_first_token_ms < best)) {
      best = c.meta->time_to_first_token_ms;
    }
  }
  return best;
}

std::string GenerationJob::outcome() const {
  if (too_large_) return "error:response_too_large";
  for (const auto& c : state_.choices) {
    if (c.error) return std::string("error:") + error_code_name(c.error->code);
  }
  if (state_.choices.empty() || !state_.choices[0].meta) return "none";
  return finish_reason_name(state_.choices[0].meta->finish_reason);
}

}  // namespace mlxs::server
