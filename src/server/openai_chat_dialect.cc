// OpenAI chat completions (POST /v1/chat/completions): messages through the model's chat
// template; choices carry a `message` (or a `delta` when streaming) and chat-shaped logprobs.
#include <algorithm>

#include "server/openai_dialect.h"
#include "server/request_fields.h"

namespace mlxs::server {
namespace {

using json = nlohmann::json;

json bytes_of(const std::string& s) {
  json out = json::array();
  for (unsigned char c : s) out.push_back(int(c));
  return out;
}

// One element of `logprobs.content`: token `t` and its alternatives.
json chat_logprob(const GenerationState& s, const TokenChunk& t) {
  const std::string text = s.token_text(t.token_id);
  json top = json::array();
  for (const auto& alt : t.top_logprobs) {
    top.push_back({{"token", alt.text}, {"logprob", alt.logprob}, {"bytes", bytes_of(alt.text)}});
  }
  return {{"token", text},
          {"logprob", t.logprob.value_or(0.0)},
          {"bytes", bytes_of(text)},
          {"top_logprobs", top}};
}

class OpenAIChatDialect final : public OpenAIDialect {
 public:
  ApiKind kind() const override { return ApiKind::kChat; }
  const char* id_prefix() const override { return "chatcmpl-"; }

  std::string stream_prologue(const GenerationState& s) const override {
    std::string out;
    for (int i = 0; i < s.request->n; ++i) {
      out += chunk(s, json::array({{{"index", i},
                                    {"delta", {{"role", "assistant"}, {"content", ""}}},
                                    {"logprobs", nullptr},
                                    {"finish_reason", nullptr}}}));
    }
    return out;
  }

  void record_token(GenerationState& s, int index, const TokenChunk& t, size_t) const override {
    if (!s.request->params.logprobs) return;
    auto& parts = s.choices[size_t(index)].logprobs;
    parts.resize(1);
    append_element(parts[0], dump_json(chat_logprob(s, t)));
  }

  std::string stream_token(const GenerationState& s, int index, const TokenChunk& t,
                           size_t) const override {
    json lp = s.request->params.logprobs
                  ? json{{"content", json::array({chat_logprob(s, t)})}, {"refusal", nullptr}}
                  : json(nullptr);
    return chunk(s, json::array({{{"index", index},
                                  {"delta", {{"content", t.text}}},
                                  {"logprobs", lp},
                                  {"finish_reason", nullptr}}}));
  }

 protected:
  const char* chunk_object() const override { return "chat.completion.chunk"; }
  const char* response_object() const override { return "chat.completion"; }
  bool stops_at_end_of_turn() const override { return true; }

  void parse_prompt(BodyReader& r, const ServedModel& m, const Engine& engine,
                    GenerationRequest& g) const override {
    auto messages = chat_messages(r.get("messages"), /*openai=*/true, r);
    if (!messages) return;
    g.params.logprobs = r.boolean("logprobs").value_or(false);
    if (auto top = r.integer("top_logprobs")) {
      if (!g.params.logprobs) return r.fail_field("top_logprobs", "needs logprobs: true");
      g.params.top_logprobs = int32_t(std::clamp<int64_t>(*top, -1, 1000));
    }
    read_max_tokens(r, g.params, "max_tokens", "max_completion_tokens");
    if (r.failed()) return;
    auto ids = chat_prompt(engine, m, std::move(*messages), r);
    if (ids) g.params.prompt = PromptTokens{std::move(*ids)};
  }

  json closing_choice(int index, const std::string& finish_reason) const override {
    return {{"index", index},
            {"delta", json::object()},
            {"logprobs", nullptr},
            {"finish_reason", finish_reason}};
  }

  std::string response_choice(const GenerationState& s, int index) const override {
    const ChoiceState& c = s.choices[size_t(index)];
    json choice = {{"index", index},
                   {"message", {{"role", "assistant"}, {"content", c.text}, {"refusal", nullptr}}},
                   {"finish_reason", finish_reason(c)}};
    std::string logprobs = "null";
    if (s.request->params.logprobs) {
      logprobs =
          "{\"content\":[" + (c.logprobs.empty() ? "" : c.logprobs[0]) + "],\"refusal\":null}";
    }
    return with_raw_member(dump_json(choice), "logprobs", logprobs);
  }
};

}  // namespace

const Dialect& openai_chat_dialect() {
  static const OpenAIChatDialect dialect;
  return dialect;
}

}  // namespace mlxs::server
