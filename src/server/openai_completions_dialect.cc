// OpenAI legacy completions (POST /v1/completions): a prompt as text (BOS added) or token ids;
// choices carry `text` and completions-shaped logprobs (tokens, token_logprobs, top_logprobs,
// text_offset).
#include <array>

#include "api/option_schemas.h"
#include "server/openai_dialect.h"
#include "server/request_fields.h"

namespace mlxs::server {
namespace {

using json = nlohmann::json;

// The legacy logprobs are four parallel arrays; these are token `t`'s elements of each.
constexpr const char* kLogprobArrays[] = {"tokens", "token_logprobs", "top_logprobs",
                                          "text_offset"};
std::array<json, 4> completion_logprob(const GenerationState& s, const TokenChunk& t,
                                       size_t offset) {
  json top = json::object();
  for (const auto& alt : t.top_logprobs) top[alt.text] = alt.logprob;
  return {json(s.token_text(t.token_id)), json(t.logprob.value_or(0.0)), std::move(top),
          json(offset)};
}

// `prompt`: a string (tokenized with the tokenizer's special tokens, like transformers'
// tokenizer(prompt)), an array of token ids, or an array of exactly one of these.
std::optional<std::vector<int32_t>> completion_prompt(const json* prompt, const Engine& engine,
                                                      const ServedModel& m, BodyReader& r) {
  if (!prompt) {
    r.fail_field("prompt", "is required");
    return std::nullopt;
  }
  const json* p = prompt;
  if (p->is_array() && p->size() == 1 && ((*p)[0].is_string() || (*p)[0].is_array())) p = &(*p)[0];
  if (p->is_string()) return tokenize_prompt(engine, m, p->get<std::string>(), true, r);
  if (p->is_array() && !p->empty() && (*p)[0].is_number_integer()) {
    std::vector<int32_t> ids;
    for (const auto& v : *p) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX) {
        r.fail_field("prompt", "token ids must be integers >= 0");
        return std::nullopt;
      }
      ids.push_back(v.get<int32_t>());
    }
    return ids;
  }
  r.fail_field("prompt", p->is_array() && p->size() > 1
                             ? "batched prompts (an array of several prompts) are not supported by "
                               "this server; send one request per prompt"
                             : "expected string, array of token ids, or an array of one of them");
  return std::nullopt;
}

class OpenAICompletionsDialect final : public OpenAIDialect {
 public:
  ApiKind kind() const override { return ApiKind::kCompletion; }
  const char* id_prefix() const override { return "cmpl-"; }

  std::string stream_prologue(const GenerationState&) const override { return ""; }

  void record_token(GenerationState& s, int index, const TokenChunk& t,
                    size_t offset) const override {
    if (s.request->completion_logprobs < 0) return;
    auto& parts = s.choices[size_t(index)].logprobs;
    parts.resize(4);
    auto elements = completion_logprob(s, t, offset);
    for (size_t i = 0; i < elements.size(); ++i) append_element(parts[i], dump_json(elements[i]));
  }

  std::string stream_token(const GenerationState& s, int index, const TokenChunk& t,
                           size_t offset) const override {
    json lp = nullptr;
    if (s.request->completion_logprobs >= 0) {
      auto elements = completion_logprob(s, t, offset);
      lp = json::object();
      for (size_t i = 0; i < elements.size(); ++i) {
        lp[kLogprobArrays[i]] = json::array({std::move(elements[i])});
      }
    }
    return chunk(
        s,
        json::array(
            {{{"text", t.text}, {"index", index}, {"logprobs", lp}, {"finish_reason", nullptr}}}));
  }

 protected:
  const char* chunk_object() const override { return "text_completion"; }
  const char* response_object() const override { return "text_completion"; }
  const char* prompt_field() const override { return "prompt"; }
  bool stops_at_end_of_turn() const override { return false; }

  void parse_prompt(BodyReader& r, const ServedModel& m, const Engine& engine,
                    GenerationRequest& g) const override {
    if (auto lp = r.integer("logprobs")) {
      if (*lp < 0 || *lp > limits::kMaxTopLogprobs) {
        return r.fail_field("logprobs", "must be >= 0 and <= 20, got " + std::to_string(*lp));
      }
      g.completion_logprobs = int(*lp);
      g.params.logprobs = true;
      g.params.top_logprobs = int32_t(*lp);
    }
    r.refuse("echo", "echo", false);
    r.refuse("tools", "tools (on /v1/chat/completions only)");
    r.refuse("tool_choice", "tool_choice (on /v1/chat/completions only)", "none");
    r.accept("parallel_tool_calls");  // harmless without tools
    r.refuse("response_format", "response_format other than {\"type\": \"text\"}",
             json{{"type", "text"}});
    r.refuse("suffix", "suffix");
    r.refuse("best_of", "best_of other than 1", 1);
    read_max_tokens(r, g.params, "max_tokens", nullptr);
    if (!g.params.max_tokens && !r.failed()) g.params.max_tokens = 16;  // OpenAI's default
    auto ids = completion_prompt(r.get("prompt"), engine, m, r);
    if (ids) g.params.prompt = PromptTokens{std::move(*ids)};
  }

  json closing_choice(int index, const std::string& finish_reason) const override {
    return {
        {"text", ""}, {"index", index}, {"logprobs", nullptr}, {"finish_reason", finish_reason}};
  }

  std::string response_choice(const GenerationState& s, int index) const override {
    const ChoiceState& c = s.choices[size_t(index)];
    json choice = {{"text", c.text}, {"index", index}, {"finish_reason", finish_reason(c)}};
    std::string logprobs = "null";
    if (s.request->completion_logprobs >= 0) {
      std::string lp = "{}";
      for (size_t i = 0; i < 4; ++i) {
        lp = with_raw_member(std::move(lp), kLogprobArrays[i],
                             "[" + (i < c.logprobs.size() ? c.logprobs[i] : "") + "]");
      }
      logprobs = std::move(lp);
    }
    return with_raw_member(dump_json(choice), "logprobs", logprobs);
  }
};

}  // namespace

const Dialect& openai_completions_dialect() {
  static const OpenAICompletionsDialect dialect;
  return dialect;
}

}  // namespace mlxs::server
