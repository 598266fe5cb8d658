#include "server/generation_request.h"

#include "api/option_schemas.h"
#include "server/body_reader.h"
#include "util/json_int.h"

namespace mlxs::server {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

constexpr int kMaxChoices = 128;

// Text of an OpenAI/Anthropic message content: a string or an array of text parts.
std::optional<std::string> content_text(const json& content, const std::string& field,
                                        BodyReader& r) {
  if (content.is_null()) return std::string();
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) {
    r.fail_field(field,
                 "expected string or array of content parts, got " + json_type_name(content));
    return std::nullopt;
  }
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const json& part = content[i];
    const std::string at = field + "." + std::to_string(i);
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) {
      r.fail_field(at, "expected a content part object with a string 'type'");
      return std::nullopt;
    }
    const std::string type = part["type"].get<std::string>();
    if (type != "text") {
      r.fail_field(at + ".type", "content part type '" + type +
                                     "' is not supported by this server "
                                     "(only 'text')");
      return std::nullopt;
    }
    if (!part.contains("text") || !part["text"].is_string()) {
      r.fail_field(at + ".text", "expected string");
      return std::nullopt;
    }
    if (!text.empty()) text += "\n";
    text += part["text"].get<std::string>();
  }
  return text;
}

// messages -> [{role, content}] for the chat template.
std::optional<ojson> chat_messages(const json* messages, ApiKind kind, BodyReader& r) {
  if (!messages) {
    r.fail_field("messages", "is required");
    return std::nullopt;
  }
  if (!messages->is_array() || messages->empty()) {
    r.fail_field("messages", "expected a non-empty array");
    return std::nullopt;
  }
  ojson out = ojson::array();
  for (size_t i = 0; i < messages->size(); ++i) {
    const json& m = (*messages)[i];
    const std::string at = "messages." + std::to_string(i);
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      r.fail_field(at + ".role", "is required (a string)");
      return std::nullopt;
    }
    std::string role = m["role"].get<std::string>();
    const bool openai = kind == ApiKind::kChat;
    if (openai && role == "developer") role = "system";
    const bool known = role == "user" || role == "assistant" || (openai && role == "system");
    if (!known) {
      r.fail_field(at + ".role", "role '" + role + "' is not supported (user, assistant" +
                                     std::string(openai ? ", system, developer" : "") + ")");
      return std::nullopt;
    }
    for (const auto& [key, value] : m.items()) {
      if (key == "role" || key == "content" || (openai && key == "name")) continue;
      if (value.is_null() || (value.is_array() && value.empty())) continue;
      r.fail_field(at + "." + key, "is not supported by this server");
      return std::nullopt;
    }
    static const json kNoContent;
    auto content = m.find("content");  // by reference: a copy of a JSON value recurses
    auto text = content_text(content != m.end() ? *content : kNoContent, at + ".content", r);
    if (!text) return std::nullopt;
    out.push_back({{"role", role}, {"content", *text}});
  }
  return out;
}

// The prompt text from the chat template. A final assistant message (Anthropic prefill) is
// continued: the conversation before it gets the generation prompt, then its text follows.
std::optional<std::string> render_chat(const ServedModel& model, ojson messages, BodyReader& r) {
  if (!model.chat_template) {
    r.fail(make_error(400, ErrorCode::kInvalidRequest,
                      "model '" + model.id + "' has no chat template; use /v1/completions"));
    return std::nullopt;
  }
  std::string prefill;
  if (!messages.empty() && messages.back()["role"] == "assistant") {
    prefill = messages.back()["content"].get<std::string>();
    messages.erase(messages.size() - 1);
  }
  ChatTemplateOptions opts;
  opts.add_generation_prompt = true;
  opts.bos_token = model.chat_config.bos_token;
  opts.eos_token = model.chat_config.eos_token;
  auto text = model.chat_template->render(messages, opts);
  if (!text.ok()) {
    r.fail(error_from_status(text.status()));
    return std::nullopt;
  }
  return *text + prefill;
}

void read_stop(BodyReader& r, const std::string& name, GeneratorParams& p) {
  const json* stop = r.get(name);
  if (!stop) return;
  if (stop->is_string()) {
    p.stop_sequences.push_back(stop->get<std::string>());
    return;
  }
  if (!stop->is_array()) return r.fail_field(name, "expected string or array of strings");
  for (const auto& s : *stop) {
    if (!s.is_string()) return r.fail_field(name, "expected string or array of strings");
    p.stop_sequences.push_back(s.get<std::string>());
  }
}

void read_sampling(BodyReader& r, GeneratorParams& p, bool openai) {
  p.temperature = r.number("temperature");
  p.top_p = r.number("top_p");
  if (auto k = r.integer("top_k")) {
    if (*k < 0 || *k > INT32_MAX)
      r.fail_field("top_k", "must be >= 0, got " + std::to_string(*k));
    else
      p.top_k = int32_t(*k);
  }
  if (!openai) return;
  if (auto ignore = r.boolean("ignore_eos")) p.ignore_eos = *ignore;
  p.min_p = r.number("min_p");
  p.presence_penalty = r.number("presence_penalty");
  p.frequency_penalty = r.number("frequency_penalty");
  p.repetition_penalty = r.number("repetition_penalty");
  if (auto seed = r.integer("seed")) {
    if (*seed < 0 || *seed > int64_t(UINT32_MAX)) {
      r.fail_field("seed", "must be >= 0 and <= 4294967295, got " + std::to_string(*seed));
    } else {
      p.seed = uint32_t(*seed);
    }
  }
  if (const json* ids = r.get("stop_token_ids")) {
    if (!ids->is_array()) return r.fail_field("stop_token_ids", "expected array of integers");
    for (const auto& id : *ids) {
      auto checked = json_int_in(id, 0, INT32_MAX);
      if (!checked)
        return r.fail_field("stop_token_ids",
                            "expected array of integers >= 0 and <= 2147483647, got " + id.dump());
      p.stop_token_ids.push_back(int32_t(*checked));
    }
  }
}

// Fields of both OpenAI routes that this engine cannot honour: refused by name.
void refuse_openai_extras(BodyReader& r) {
  r.refuse("logit_bias", "logit_bias");
  r.refuse("tools", "tools (function calling)");
  r.refuse("functions", "functions (function calling)");
  r.refuse("function_call", "function_call", "none");
  r.refuse("tool_choice", "tool_choice", "none");
  r.refuse("audio", "audio output");
  r.refuse("prediction", "predicted outputs");
  r.refuse("reasoning_effort", "reasoning_effort");
  r.refuse("web_search_options", "web_search_options");
  r.refuse("modalities", "modalities other than [\"text\"]", json::array({"text"}));
  if (const json* rf = r.get("response_format")) {
    if (!rf->is_object() || rf->value("type", "") != "text") {
      r.fail_field("response_format",
                   "only {\"type\": \"text\"} is supported by this server "
                   "(structured output is not implemented yet)");
    }
  }
  for (const char* harmless :
       {"user", "metadata", "store", "service_tier", "parallel_tool_calls"}) {
    r.accept(harmless);
  }
}

void read_stream(BodyReader& r, GenerationRequest& g) {
  g.stream = r.boolean("stream").value_or(false);
  if (const json* so = r.get("stream_options")) {
    if (!so->is_object()) return r.fail_field("stream_options", "expected object");
    for (const auto& [key, value] : so->items()) {
      if (key == "include_usage" && (value.is_boolean() || value.is_null())) {
        g.include_usage = value.is_boolean() && value.get<bool>();
      } else if (key != "include_obfuscation") {
        return r.fail_field("stream_options." + key, "unknown field or wrong type");
      }
    }
  }
}

void read_max_tokens(BodyReader& r, GeneratorParams& p, const char* primary, const char* alias) {
  std::optional<int64_t> v = r.integer(primary);
  const char* name = primary;
  if (alias) {
    auto a = r.integer(alias);
    if (a) v = a, name = alias;
  }
  if (!v) return;
  if (*v < 1 || *v > limits::kMaxTokens) {
    r.fail_field(name, "must be >= 1 and <= " + std::to_string(limits::kMaxTokens) + ", got " +
                           std::to_string(*v));
    return;
  }
  p.max_tokens = int32_t(*v);
}

const ServedModel* read_model(BodyReader& r, const ModelLookup& models) {
  auto id = r.string("model");
  if (r.failed()) return nullptr;
  if (!id) {
    r.fail_field("model", "is required");
    return nullptr;
  }
  const ServedModel* m = models(*id);
  if (!m) {
    ApiError e = make_error(404, ErrorCode::kModelNotLoaded,
                            "The model '" + *id + "' does not exist", "model_not_found");
    e.param = "model";
    r.fail(std::move(e));
  }
  return m;
}

// Prompt tokens: chat/messages render without special tokens (the template has them);
// completions add the tokenizer's (BOS) like transformers' tokenizer(prompt) does.
std::optional<std::vector<int32_t>> tokenize(const Engine& engine, const ServedModel& m,
                                             const std::string& text, bool add_special,
                                             BodyReader& r) {
  auto t = engine.tokenize(m.id, text, add_special);
  if (!t.ok()) {
    r.fail(error_from_status(t.status()));
    return std::nullopt;
  }
  if (t->tokens.empty()) {
    r.fail_field("prompt", "encodes to no tokens");
    return std::nullopt;
  }
  return std::move(t->tokens);
}

std::optional<std::vector<int32_t>> completion_prompt(const json* prompt, const Engine& engine,
                                                      const ServedModel& m, BodyReader& r) {
  if (!prompt) {
    r.fail_field("prompt", "is required");
    return std::nullopt;
  }
  const json* p = prompt;
  if (p->is_array() && p->size() == 1 && ((*p)[0].is_string() || (*p)[0].is_array())) p = &(*p)[0];
  if (p->is_string()) return tokenize(engine, m, p->get<std::string>(), true, r);
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

void parse_chat(BodyReader& r, const json* messages, const ServedModel& m, const Engine& engine,
                GenerationRequest& g) {
  auto msgs = chat_messages(messages, ApiKind::kChat, r);
  if (!msgs) return;
  g.params.logprobs = r.boolean("logprobs").value_or(false);
  if (auto top = r.integer("top_logprobs")) {
    if (!g.params.logprobs) return r.fail_field("top_logprobs", "needs logprobs: true");
    g.params.top_logprobs = int32_t(std::clamp<int64_t>(*top, -1, 1000));
  }
  read_max_tokens(r, g.params, "max_tokens", "max_completion_tokens");
  if (r.failed()) return;
  auto text = render_chat(m, std::move(*msgs), r);
  if (!text) return;
  auto ids = tokenize(engine, m, *text, false, r);
  if (ids) g.params.prompt = PromptTokens{std::move(*ids)};
}

void parse_completion(BodyReader& r, const ServedModel& m, const Engine& engine,
                      GenerationRequest& g) {
  if (auto lp = r.integer("logprobs")) {
    if (*lp < 0 || *lp > limits::kMaxTopLogprobs) {
      return r.fail_field("logprobs", "must be >= 0 and <= 20, got " + std::to_string(*lp));
    }
    g.completion_logprobs = int(*lp);
    g.params.logprobs = true;
    g.params.top_logprobs = int32_t(*lp);
  }
  r.refuse("echo", "echo", false);
  r.refuse("suffix", "suffix");
  r.refuse("best_of", "best_of other than 1", 1);
  read_max_tokens(r, g.params, "max_tokens", nullptr);
  if (!g.params.max_tokens && !r.failed()) g.params.max_tokens = 16;  // OpenAI's default
  auto ids = completion_prompt(r.get("prompt"), engine, m, r);
  if (ids) g.params.prompt = PromptTokens{std::move(*ids)};
}

void parse_messages(BodyReader& r, const ServedModel& m, const Engine& engine,
                    GenerationRequest& g) {
  std::string system;
  if (const json* s = r.get("system")) {
    auto text = content_text(*s, "system", r);
    if (!text) return;
    system = *text;
  }
  auto msgs = chat_messages(r.get("messages"), ApiKind::kMessages, r);
  if (!msgs) return;
  if (!system.empty()) msgs->insert(msgs->begin(), ojson{{"role", "system"}, {"content", system}});
  if (!r.get("max_tokens")) return r.fail_field("max_tokens", "is required");
  read_max_tokens(r, g.params, "max_tokens", nullptr);
  read_stop(r, "stop_sequences", g.params);
  r.refuse("tools", "tools (tool use)");
  r.refuse("tool_choice", "tool_choice");
  r.refuse("thinking", "extended thinking");
  r.refuse("mcp_servers", "mcp_servers");
  r.refuse("container", "container");
  for (const char* harmless : {"metadata", "service_tier"}) r.accept(harmless);
  if (r.failed()) return;
  auto text = render_chat(m, std::move(*msgs), r);
  if (!text) return;
  auto ids = tokenize(engine, m, *text, false, r);
  if (ids) g.params.prompt = PromptTokens{std::move(*ids)};
}

}  // namespace

std::variant<GenerationRequest, ApiError> parse_generation_request(ApiKind kind, const json& body,
                                                                   const ModelLookup& models,
                                                                   const Engine& engine) {
  BodyReader r(body);
  GenerationRequest g;
  g.kind = kind;
  const ServedModel* m = r.failed() ? nullptr : read_model(r, models);
  if (!m) return *r.finish();
  g.params.model = m->id;
  const bool openai = kind != ApiKind::kMessages;
  read_sampling(r, g.params, openai);
  read_stream(r, g);
  if (openai) {
    read_stop(r, "stop", g.params);
    refuse_openai_extras(r);
    if (auto n = r.integer("n")) {
      if (*n < 1 || *n > kMaxChoices)
        r.fail_field("n", "must be >= 1 and <= 128, got " + std::to_string(*n));
      else
        g.n = int(*n);
    }
  }
  if (!r.failed()) {
    if (kind == ApiKind::kChat)
      parse_chat(r, r.get("messages"), *m, engine, g);
    else if (kind == ApiKind::kCompletion)
      parse_completion(r, *m, engine, g);
    else
      parse_messages(r, *m, engine, g);
  }
  if (auto e = r.finish()) return *e;
  if (kind != ApiKind::kCompletion) {
    for (int32_t id : m->end_of_turn_ids) g.params.stop_token_ids.push_back(id);
  }
  const auto& tokens = std::get<PromptTokens>(g.params.prompt).tokens;
  g.num_prompt_tokens = int32_t(tokens.size());
  // An unset max_tokens stays unset: the engine gives sampling.max_tokens, cut to the context.
  g.params.streaming = true;
  Status s = validate_options(g.params);
  if (!s.ok()) {
    ApiError e = error_from_status(s);
    if (openai && e.param.starts_with("stop_sequences")) {  // the engine's name for OpenAI's `stop`
      e.param = "stop" + e.param.substr(14);
      size_t at = e.message.find("'stop_sequences");
      if (at != std::string::npos) e.message.replace(at + 1, 14, "stop");
    }
    return e;
  }
  return g;
}

}  // namespace mlxs::server
