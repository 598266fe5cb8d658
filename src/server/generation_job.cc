#include "server/generation_job.h"

#include <algorithm>
#include <chrono>
#include <random>

namespace mlxs::server {
namespace {

using json = nlohmann::json;

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

json bytes_of(const std::string& s) {
  json out = json::array();
  for (unsigned char c : s) out.push_back(int(c));
  return out;
}

std::string sse_data(const std::string& payload) {
  return "data: " + payload + "\n\n";
}

std::string sse_event(const char* name, const json& payload) {
  return std::string("event: ") + name + "\ndata: " + dump_json(payload) + "\n\n";
}

}  // namespace

std::string dump_json(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string new_response_id(ApiKind kind) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string id = kind == ApiKind::kChat         ? "chatcmpl-"
                   : kind == ApiKind::kCompletion ? "cmpl-"
                                                  : "msg_";
  for (int i = 0; i < 24; ++i) id += kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
  return id;
}

GenerationJob::GenerationJob(GenerationRequest request, Engine& engine, Metrics& metrics)
    : request_(std::move(request)), engine_(engine), metrics_(metrics) {}

GenerationJob::~GenerationJob() {
  cancel();
}

std::optional<ApiError> GenerationJob::start(const std::string& request_id,
                                             std::function<void()> notify) {
  id_ = new_response_id(request_.kind);
  created_ = unix_now();
  choices_.resize(size_t(request_.n));
  for (int i = 0; i < request_.n; ++i) {
    GeneratorParams p = request_.params;
    if (p.seed) p.seed = uint32_t(*p.seed + uint32_t(i));
    GeneratorOptions o;
    o.stream_id = request_.n == 1 ? request_id : request_id + "." + std::to_string(i);
    auto gen = engine_.create_generator(p, o);
    if (!gen.ok()) {
      cancel();
      return error_from_status(gen.status());
    }
    choices_[size_t(i)].gen = std::move(*gen);
  }
  for (auto& c : choices_) c.gen->set_listener(notify);
  return std::nullopt;
}

void GenerationJob::cancel() {
  for (auto& c : choices_) {
    if (c.gen && !c.gen->done()) c.gen->cancel();
  }
}

std::string GenerationJob::stream_prologue() {
  std::string out;
  if (request_.kind == ApiKind::kMessages) {
    json message = {
        {"id", id_},
        {"type", "message"},
        {"role", "assistant"},
        {"content", json::array()},
        {"model", model()},
        {"stop_reason", nullptr},
        {"stop_sequence", nullptr},
        {"usage", {{"input_tokens", request_.num_prompt_tokens}, {"output_tokens", 0}}}};
    out += sse_event("message_start", {{"type", "message_start"}, {"message", message}});
    out += sse_event("content_block_start", {{"type", "content_block_start"},
                                             {"index", 0},
                                             {"content_block", {{"type", "text"}, {"text", ""}}}});
    out += sse_event("ping", {{"type", "ping"}});
  } else if (request_.kind == ApiKind::kChat) {
    for (int i = 0; i < request_.n; ++i) {
      out += openai_chunk(json::array({{{"index", i},
                                        {"delta", {{"role", "assistant"}, {"content", ""}}},
                                        {"logprobs", nullptr},
                                        {"finish_reason", nullptr}}}),
                          true);
    }
  }
  return out;
}

bool GenerationJob::poll(std::string* out, size_t max_bytes) {
  bool all_ended = true;
  for (int i = 0; i < int(choices_.size()); ++i) {
    Choice& c = choices_[size_t(i)];
    while (!c.ended() && out->size() < max_bytes) {
      auto chunk = c.gen->next(std::chrono::milliseconds(0));
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
  Choice& c = choices_[size_t(index)];
  const auto now = Clock::now();
  if (c.last_token)
    metrics_.record_inter_token(std::chrono::duration<double>(now - *c.last_token).count());
  c.last_token = now;
  const size_t offset = c.text.size();
  c.text += t.text;
  if (request_.stream) {
    if (request_.kind == ApiKind::kMessages) {
      if (!t.text.empty()) {
        *out += sse_event("content_block_delta",
                          {{"type", "content_block_delta"},
                           {"index", 0},
                           {"delta", {{"type", "text_delta"}, {"text", t.text}}}});
      }
    } else if (request_.kind == ApiKind::kChat) {
      json lp = request_.params.logprobs ? chat_logprobs({t}) : json(nullptr);
      *out += openai_chunk(json::array({{{"index", index},
                                         {"delta", {{"content", t.text}}},
                                         {"logprobs", lp},
                                         {"finish_reason", nullptr}}}),
                           true);
    } else {
      json lp =
          request_.completion_logprobs >= 0 ? completion_logprobs({t}, offset) : json(nullptr);
      *out += openai_chunk(
          json::array(
              {{{"text", t.text}, {"index", index}, {"logprobs", lp}, {"finish_reason", nullptr}}}),
          true);
    }
  }
  t.top_logprobs.shrink_to_fit();
  c.tokens.push_back(std::move(t));
}

void GenerationJob::on_end(int index, std::string* out) {
  Choice& c = choices_[size_t(index)];
  if (c.meta && c.meta->tokens_generated > 0)
    metrics_.record_ttft(c.meta->time_to_first_token_ms / 1e3);
  if (c.error) metrics_.record_error(error_code_name(c.error->code));
  if (!request_.stream) return;
  if (c.error) {
    ApiError e = error_from_status(Status(c.error->code, c.error->message));
    if (request_.kind == ApiKind::kMessages)
      *out += sse_event("error", e.anthropic_json());
    else
      *out += sse_data(dump_json(e.openai_json()));
    return;
  }
  if (request_.kind == ApiKind::kMessages) return;  // the epilogue carries the stop reason
  json choice = request_.kind == ApiKind::kChat ? json{{"index", index},
                                                       {"delta", json::object()},
                                                       {"logprobs", nullptr},
                                                       {"finish_reason", finish_reason(c)}}
                                                : json{{"text", ""},
                                                       {"index", index},
                                                       {"logprobs", nullptr},
                                                       {"finish_reason", finish_reason(c)}};
  *out += openai_chunk(json::array({choice}), true);
}

std::string GenerationJob::stream_epilogue() {
  std::string out;
  if (request_.kind == ApiKind::kMessages) {
    const Choice& c = choices_[0];
    if (c.error) return out;  // the error event ended the stream
    std::string stop_sequence;
    std::string reason = anthropic_stop_reason(c, &stop_sequence);
    out += sse_event("content_block_stop", {{"type", "content_block_stop"}, {"index", 0}});
    out += sse_event(
        "message_delta",
        {{"type", "message_delta"},
         {"delta",
          {{"stop_reason", reason},
           {"stop_sequence", stop_sequence.empty() ? json(nullptr) : json(stop_sequence)}}},
         {"usage", {{"output_tokens", completion_tokens()}}}});
    out += sse_event("message_stop", {{"type", "message_stop"}});
    return out;
  }
  if (request_.include_usage) {
    json chunk = {
        {"id", id_},
        {"object", request_.kind == ApiKind::kChat ? "chat.completion.chunk" : "text_completion"},
        {"created", created_},
        {"model", model()},
        {"choices", json::array()},
        {"usage", usage_json()}};
    out += sse_data(dump_json(chunk));
  }
  out += sse_data("[DONE]");
  return out;
}

std::pair<int, std::string> GenerationJob::response_body() {
  if (auto e = first_error()) {
    return {e->http_status, dump_json(request_.kind == ApiKind::kMessages ? e->anthropic_json()
                                                                          : e->openai_json())};
  }
  json body;
  if (request_.kind == ApiKind::kMessages) {
    const Choice& c = choices_[0];
    std::string stop_sequence;
    std::string reason = anthropic_stop_reason(c, &stop_sequence);
    json usage = {{"input_tokens", prompt_tokens()}, {"output_tokens", completion_tokens()}};
    if (c.meta && c.meta->cached_prompt_tokens > 0) {
      usage["cache_read_input_tokens"] = c.meta->cached_prompt_tokens;
    }
    body = {{"id", id_},
            {"type", "message"},
            {"role", "assistant"},
            {"model", model()},
            {"content", json::array({{{"type", "text"}, {"text", c.text}}})},
            {"stop_reason", reason},
            {"stop_sequence", stop_sequence.empty() ? json(nullptr) : json(stop_sequence)},
            {"usage", usage}};
    return {200, dump_json(body)};
  }
  json choices = json::array();
  for (int i = 0; i < int(choices_.size()); ++i) {
    const Choice& c = choices_[size_t(i)];
    if (request_.kind == ApiKind::kChat) {
      choices.push_back(
          {{"index", i},
           {"message", {{"role", "assistant"}, {"content", c.text}, {"refusal", nullptr}}},
           {"logprobs", request_.params.logprobs ? chat_logprobs(c.tokens) : json(nullptr)},
           {"finish_reason", finish_reason(c)}});
    } else {
      choices.push_back(
          {{"text", c.text},
           {"index", i},
           {"logprobs",
            request_.completion_logprobs >= 0 ? completion_logprobs(c.tokens, 0) : json(nullptr)},
           {"finish_reason", finish_reason(c)}});
    }
  }
  body = {{"id", id_},
          {"object", request_.kind == ApiKind::kChat ? "chat.completion" : "text_completion"},
          {"created", created_},
          {"model", model()},
          {"choices", choices},
          {"usage", usage_json()}};
  return {200, dump_json(body)};
}

std::string GenerationJob::openai_chunk(json choices, bool with_usage_null) const {
  json chunk = {
      {"id", id_},
      {"object", request_.kind == ApiKind::kChat ? "chat.completion.chunk" : "text_completion"},
      {"created", created_},
      {"model", model()},
      {"choices", std::move(choices)}};
  if (with_usage_null && request_.include_usage) chunk["usage"] = nullptr;
  return sse_data(dump_json(chunk));
}

std::string GenerationJob::token_text(int32_t id) const {
  auto text = engine_.detokenize(model(), {id});
  return text.ok() ? *text : std::string();
}

json GenerationJob::chat_logprobs(const std::vector<TokenChunk>& tokens) const {
  json content = json::array();
  for (const auto& t : tokens) {
    const std::string text = token_text(t.token_id);
    json top = json::array();
    for (const auto& alt : t.top_logprobs) {
      top.push_back({{"token", alt.text}, {"logprob", alt.logprob}, {"bytes", bytes_of(alt.text)}});
    }
    content.push_back({{"token", text},
                       {"logprob", t.logprob.value_or(0.0)},
                       {"bytes", bytes_of(text)},
                       {"top_logprobs", top}});
  }
  return {{"content", content}, {"refusal", nullptr}};
}

json GenerationJob::completion_logprobs(const std::vector<TokenChunk>& tokens,
                                        size_t offset) const {
  json out = {{"tokens", json::array()},
              {"token_logprobs", json::array()},
              {"top_logprobs", json::array()},
              {"text_offset", json::array()}};
  for (const auto& t : tokens) {
    out["tokens"].push_back(token_text(t.token_id));
    out["token_logprobs"].push_back(t.logprob.value_or(0.0));
    json top = json::object();
    for (const auto& alt : t.top_logprobs) top[alt.text] = alt.logprob;
    out["top_logprobs"].push_back(top);
    out["text_offset"].push_back(offset);
    offset += t.text.size();
  }
  return out;
}

json GenerationJob::usage_json() const {
  const int prompt = prompt_tokens(), completion = completion_tokens();
  json usage = {{"prompt_tokens", prompt},
                {"completion_tokens", completion},
                {"total_tokens", prompt + completion}};
  if (!choices_.empty() && choices_[0].meta) {
    usage["prompt_tokens_details"] = {{"cached_tokens", choices_[0].meta->cached_prompt_tokens}};
  }
  return usage;
}

std::string GenerationJob::finish_reason(const Choice& c) const {
  if (!c.meta) return "error";
  switch (c.meta->finish_reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    default:
      return finish_reason_name(c.meta->finish_reason);
  }
}

// end_turn (EOS / end-of-turn token / stop token id), max_tokens, or stop_sequence with the one
// the engine matched.
std::string GenerationJob::anthropic_stop_reason(const Choice& c,
                                                 std::string* stop_sequence) const {
  if (!c.meta || c.meta->finish_reason == FinishReason::kLength) return "max_tokens";
  if (c.meta->finish_reason != FinishReason::kStop)
    return finish_reason_name(c.meta->finish_reason);
  if (c.meta->stop_sequence.empty()) return "end_turn";
  *stop_sequence = c.meta->stop_sequence;
  return "stop_sequence";
}

std::optional<ApiError> GenerationJob::first_error() const {
  for (const auto& c : choices_) {
    if (c.error) return error_from_status(Status(c.error->code, c.error->message));
  }
  return std::nullopt;
}

int GenerationJob::prompt_tokens() const {
  for (const auto& c : choices_) {
    if (c.meta && c.meta->prompt_tokens > 0) return c.meta->prompt_tokens;
  }
  return request_.num_prompt_tokens;
}

int GenerationJob::completion_tokens() const {
  int n = 0;
  for (const auto& c : choices_) n += c.meta ? c.meta->tokens_generated : int(c.tokens.size());
  return n;
}

double GenerationJob::ttft_ms() const {
  double best = -1;
  for (const auto& c : choices_) {
    if (c.meta && c.meta->tokens_generated > 0 &&
        (best < 0 || c.meta->time_to_first_token_ms < best)) {
      best = c.meta->time_to_first_token_ms;
    }
  }
  return best;
}

std::string GenerationJob::outcome() const {
  for (const auto& c : choices_) {
    if (c.error) return std::string("error:") + error_code_name(c.error->code);
  }
  if (choices_.empty() || !choices_[0].meta) return "none";
  return finish_reason_name(choices_[0].meta->finish_reason);
}

}  // namespace mlxs::server
