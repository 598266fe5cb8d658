#include "server/request_fields.h"

#include <fmt/format.h>

#include "api/option_schemas.h"
#include "server/tool_calls.h"
#include "structured/grammar.h"
#include "util/json_depth.h"
#include "util/json_int.h"

namespace mlxs::server {

using json = nlohmann::json;

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

namespace {

// The id of the call a tool message answers -> the function's name, from the assistant calls
// before it (templates that print the name of a result get it).
std::string name_of_call(const std::vector<ChatMessage>& before, const std::string& id) {
  for (auto m = before.rbegin(); m != before.rend(); ++m) {
    for (const ToolCall& c : m->tool_calls) {
      if (c.id == id) return c.name;
    }
  }
  return "";
}

// An OpenAI assistant message's tool_calls: [{id, type: function, function: {name, arguments
// (a JSON object as a string)}}].
std::optional<std::vector<ToolCall>> openai_tool_calls(const json& calls, const std::string& at,
                                                       BodyReader& r) {
  if (!calls.is_array()) {
    r.fail_field(at, "expected an array of tool calls");
    return std::nullopt;
  }
  std::vector<ToolCall> out;
  for (size_t k = 0; k < calls.size(); ++k) {
    const json& c = calls[k];
    const std::string ck = at + "[" + std::to_string(k) + "]";
    if (!c.is_object() || !c.contains("id") || !c["id"].is_string()) {
      r.fail_field(ck + ".id", "is required (a string)");
      return std::nullopt;
    }
    if (c.value("type", json("function")) != "function") {
      r.fail_field(ck + ".type", "only \"function\" tool calls are supported");
      return std::nullopt;
    }
    const json* f = c.contains("function") ? &c["function"] : nullptr;
    if (!f || !f->is_object() || !f->contains("name") || !(*f)["name"].is_string()) {
      r.fail_field(ck + ".function.name", "is required (a string)");
      return std::nullopt;
    }
    const json args_text = f->value("arguments", json("{}"));
    const std::string text = args_text.is_string() ? args_text.get<std::string>() : "";
    if (json_nesting_depth(text, kMaxToolCallJsonDepth) > kMaxToolCallJsonDepth) {
      r.fail_field(ck + ".function.arguments",
                   "nests deeper than " + std::to_string(kMaxToolCallJsonDepth) + " levels");
      return std::nullopt;
    }
    json args = args_text.is_string() ? json::parse(text, nullptr, false) : json();
    if (!args.is_object()) {
      r.fail_field(ck + ".function.arguments", "expected a JSON object serialized as a string");
      return std::nullopt;
    }
    out.push_back({c["id"].get<std::string>(), (*f)["name"].get<std::string>(), {args.dump()}});
  }
  return out;
}

// One OpenAI message into `out`: system/developer, user, assistant (with tool_calls) or tool
// (with tool_call_id).
bool openai_message(const json& m, const std::string& at, std::vector<ChatMessage>& out,
                    BodyReader& r) {
  std::string role = m["role"].get<std::string>();
  if (role == "developer") role = "system";
  if (role != "user" && role != "assistant" && role != "system" && role != "tool") {
    r.fail_field(at + ".role",
                 "role '" + role + "' is not supported (user, assistant, system, developer, tool)");
    return false;
  }
  ChatMessage msg{role, ""};
  for (const auto& [key, value] : m.items()) {
    if (key == "role" || key == "content" || key == "name") continue;
    if (value.is_null() || (value.is_array() && value.empty())) continue;
    if (key == "tool_calls" && role == "assistant") {
      auto calls = openai_tool_calls(value, at + ".tool_calls", r);
      if (!calls) return false;
      msg.tool_calls = std::move(*calls);
    } else if (key == "tool_call_id" && role == "tool" && value.is_string()) {
      msg.tool_call_id = value.get<std::string>();
    } else {
      r.fail_field(at + "." + key, "is not supported by this server");
      return false;
    }
  }
  if (role == "tool") {
    if (msg.tool_call_id.empty()) {
      r.fail_field(at + ".tool_call_id", "is required in a tool message (a string)");
      return false;
    }
    msg.name = name_of_call(out, msg.tool_call_id);
  }
  static const json kNoContent;
  auto content = m.find("content");  // by reference: a copy of a JSON value recurses
  auto text = content_text(content != m.end() ? *content : kNoContent, at + ".content", r);
  if (!text) return false;
  msg.content = std::move(*text);
  out.push_back(std::move(msg));
  return true;
}

// The content of a tool_result block: a string or text blocks.
std::optional<std::string> tool_result_text(const json& block, const std::string& at,
                                            BodyReader& r) {
  auto content = block.find("content");
  if (content == block.end()) return std::string();
  return content_text(*content, at + ".content", r);
}

// One Anthropic message into `out`: its content a string or blocks of text, tool_use (assistant)
// and tool_result (user; each becomes a tool message before the user's text).
bool anthropic_message(const json& m, const std::string& at, std::vector<ChatMessage>& out,
                       BodyReader& r) {
  const std::string role = m["role"].get<std::string>();
  if (role != "user" && role != "assistant") {
    r.fail_field(at + ".role", "role '" + role + "' is not supported (user, assistant)");
    return false;
  }
  for (const auto& [key, value] : m.items()) {
    if (key != "role" && key != "content" && !value.is_null()) {
      r.fail_field(at + "." + key, "is not supported by this server");
      return false;
    }
  }
  static const json kNoContent;
  auto it = m.find("content");
  const json& content = it != m.end() ? *it : kNoContent;
  ChatMessage msg{role, ""};
  if (!content.is_array()) {
    auto text = content_text(content, at + ".content", r);
    if (!text) return false;
    msg.content = std::move(*text);
    out.push_back(std::move(msg));
    return true;
  }
  json text_parts = json::array();
  for (size_t i = 0; i < content.size(); ++i) {
    const json& block = content[i];
    const std::string bat = at + ".content." + std::to_string(i);
    const std::string type = block.is_object() ? block.value("type", "") : "";
    if (type == "tool_use" && role == "assistant") {
      if (!block.contains("id") || !block["id"].is_string() || !block.contains("name") ||
          !block["name"].is_string()) {
        r.fail_field(bat, "a tool_use block needs a string id and name");
        return false;
      }
      const json input = block.value("input", json::object());
      if (!input.is_object()) {
        r.fail_field(bat + ".input", "expected object");
        return false;
      }
      msg.tool_calls.push_back(
          {block["id"].get<std::string>(), block["name"].get<std::string>(), {input.dump()}});
    } else if (type == "tool_result" && role == "user") {
      if (!block.contains("tool_use_id") || !block["tool_use_id"].is_string()) {
        r.fail_field(bat + ".tool_use_id", "is required (a string)");
        return false;
      }
      auto text = tool_result_text(block, bat, r);
      if (!text) return false;
      ChatMessage result{"tool", std::move(*text)};
      result.tool_call_id = block["tool_use_id"].get<std::string>();
      result.name = name_of_call(out, result.tool_call_id);
      out.push_back(std::move(result));
    } else if (type == "text") {
      text_parts.push_back(block);
    } else {
      r.fail_field(bat + ".type", "content block type '" + type +
                                      "' is not supported here (text; tool_use in assistant "
                                      "messages; tool_result in user messages)");
      return false;
    }
  }
  if (!text_parts.empty() || !msg.tool_calls.empty()) {
    auto text = content_text(text_parts, at + ".content", r);
    if (!text) return false;
    msg.content = std::move(*text);
    out.push_back(std::move(msg));
  }
  return true;
}

}  // namespace

std::optional<std::vector<ChatMessage>> chat_messages(const json* messages, bool openai,
                                                      BodyReader& r) {
  if (!messages) {
    r.fail_field("messages", "is required");
    return std::nullopt;
  }
  if (!messages->is_array() || messages->empty()) {
    r.fail_field("messages", "expected a non-empty array");
    return std::nullopt;
  }
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < messages->size(); ++i) {
    const json& m = (*messages)[i];
    const std::string at = "messages." + std::to_string(i);
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      r.fail_field(at + ".role", "is required (a string)");
      return std::nullopt;
    }
    const bool ok = openai ? openai_message(m, at, out, r) : anthropic_message(m, at, out, r);
    if (!ok) return std::nullopt;
  }
  return out;
}

std::optional<std::vector<int32_t>> chat_prompt(const Engine& engine, const ServedModel& m,
                                                std::vector<ChatMessage> messages,
                                                const std::vector<ToolDefinition>& tools,
                                                BodyReader& r) {
  if (!m.has_chat_template) {
    r.fail(make_error(400, ErrorCode::kInvalidRequest,
                      "model '" + m.id + "' has no chat template; use /v1/completions"));
    return std::nullopt;
  }
  std::string prefill;
  if (!messages.empty() && messages.back().role == "assistant" &&
      messages.back().tool_calls.empty()) {
    prefill = std::move(messages.back().content);
    messages.pop_back();
  }
  auto text = engine.apply_chat_template(m.id, messages, tools);
  if (!text.ok()) {
    r.fail(error_from_status(text.status()));
    return std::nullopt;
  }
  return tokenize_prompt(engine, m, *text + prefill, false, r);
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

std::optional<std::vector<int32_t>> tokenize_prompt(const Engine& engine, const ServedModel& m,
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

std::variant<GenerationRequest, ApiError> finish_request(BodyReader& r, GenerationRequest g,
                                                         bool openai) {
  if (auto e = r.finish()) return *e;
  g.num_prompt_tokens = int32_t(std::get<PromptTokens>(g.params.prompt).tokens.size());
  // An unset max_tokens stays unset: the engine gives sampling.max_tokens, cut to the context.
  g.params.streaming = true;
  Status s = validate_options(g.params);
  if (s.ok()) return g;
  ApiError e = error_from_status(s);
  if (openai && e.param.starts_with("stop_sequences")) {  // the engine's name for OpenAI's `stop`
    e.param = "stop" + e.param.substr(14);
    size_t at = e.message.find("'stop_sequences");
    if (at != std::string::npos) e.message.replace(at + 1, 14, "stop");
  }
  return e;
}

}  // namespace mlxs::server

namespace mlxs::server {

void check_context_length(BodyReader& r, const ServedModel& m, const GenerationRequest& g,
                          bool openai, const std::string& param) {
  const auto* prompt = std::get_if<PromptTokens>(&g.params.prompt);
  if (r.failed() || !prompt || m.context_length <= 0) return;
  const int64_t num_prompt = int64_t(prompt->tokens.size());
  const int64_t num_out = g.params.max_tokens.value_or(1);
  const int64_t total = num_prompt + num_out, most = m.context_length;
  if (total <= most) return;
  std::string message;
  if (openai) {
    message = fmt::format(
        "This model's maximum context length is {} tokens. However, you requested {} tokens ({} "
        "in the prompt, {} for the completion). Please reduce the length of the prompt or "
        "max_tokens.",
        most, total, num_prompt, num_out);
  } else if (num_prompt >= most) {
    message = fmt::format("prompt is too long: {} tokens > {} maximum", num_prompt, most - 1);
  } else {
    message = fmt::format(
        "input length and `max_tokens` exceed context limit: {} + {} > {}, decrease input "
        "length or `max_tokens` and try again",
        num_prompt, num_out, most);
  }
  ApiError e =
      make_error(400, ErrorCode::kInvalidParams, std::move(message), "context_length_exceeded");
  e.param = param;
  r.fail(std::move(e));
}

void read_json_schema(BodyReader& r, const json& schema, const std::string& field,
                      GeneratorParams& p) {
  if (!schema.is_object()) return r.fail_field(field, "is required: a JSON Schema object");
  StructuredOutput s;
  s.schema = JsonText{schema.dump()};
  // Translated here too (the engine translates again, from its cache) so that a schema it
  // cannot enforce is a 400 on this field rather than on the engine's `structured.schema`.
  if (auto gbnf = structured::json_schema_to_gbnf(s.schema.text); !gbnf.ok()) {
    return r.fail_field(field, "cannot be enforced: " + gbnf.status().message());
  }
  p.structured = std::move(s);
}

}  // namespace mlxs::server
