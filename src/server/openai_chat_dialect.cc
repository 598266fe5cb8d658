// OpenAI chat completions (POST /v1/chat/completions): messages through the model's chat
// template; choices carry a `message` (or a `delta` when streaming) and chat-shaped logprobs.
#include <algorithm>
#include <regex>

#include "server/openai_dialect.h"
#include "server/request_fields.h"
#include "server/tool_calls.h"
#include "server/tool_request.h"

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

// response_format: text (nothing), json_object (any JSON object) or json_schema {name, schema,
// description, strict} -> params.structured. `strict: false` is enforced all the same.
void read_response_format(BodyReader& r, GeneratorParams& p) {
  const json* rf = r.get("response_format");
  if (!rf) return;
  const std::string type =
      rf->is_object() && rf->contains("type") && (*rf)["type"].is_string() ? (*rf)["type"] : "";
  if (rf->is_object()) {
    for (const auto& [key, value] : rf->items()) {
      if (key != "type" && !(key == "json_schema" && type == "json_schema"))
        return r.fail_field("response_format." + key, "unknown field");
    }
  }
  StructuredOutput s;
  if (type == "text") return;
  if (type == "json_object") {
    s.schema = JsonText{R"({"type":"object"})"};
    p.structured = std::move(s);
    return;
  }
  if (type != "json_schema") {
    return r.fail_field("response_format.type",
                        "expected \"text\", \"json_object\" or \"json_schema\"");
  }
  const json* js = rf->contains("json_schema") ? &(*rf)["json_schema"] : nullptr;
  if (!js || !js->is_object()) return r.fail_field("response_format.json_schema", "is required");
  for (const auto& [key, value] : js->items()) {
    if (key != "name" && key != "schema" && key != "strict" && key != "description")
      return r.fail_field("response_format.json_schema." + key, "unknown field");
  }
  static const std::regex kName("^[a-zA-Z0-9_-]{1,64}$");
  if (!js->contains("name") || !(*js)["name"].is_string() ||
      !std::regex_match((*js)["name"].get<std::string>(), kName)) {
    return r.fail_field("response_format.json_schema.name",
                        "is required: 1 to 64 letters, digits, _ or -");
  }
  if (js->contains("strict") && !(*js)["strict"].is_boolean() && !(*js)["strict"].is_null())
    return r.fail_field("response_format.json_schema.strict", "expected boolean");
  if (!js->contains("schema")) {
    return r.fail_field("response_format.json_schema.schema", "is required: a JSON Schema object");
  }
  read_json_schema(r, (*js)["schema"], "response_format.json_schema.schema", p);
}

// A call as OpenAI's message.tool_calls and the tool_calls of a stream delta hold it.
json tool_call_json(const ParsedToolCall& c, const std::string& id) {
  return {{"id", id},
          {"type", "function"},
          {"function", {{"name", c.name}, {"arguments", c.arguments}}}};
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
    ToolCallStream* tools = s.choices[size_t(index)].tool_stream.get();
    if (!tools) return content_chunk(s, index, t.text, lp);
    ToolCallOutput out = tools->parser.feed(t.text);
    std::string events;
    if (!out.text.empty() || !lp.is_null()) events += content_chunk(s, index, out.text, lp);
    return events + tool_call_chunks(s, index, *tools, out.calls);
  }

  // What the parser still held, then the closing chunk.
  std::string stream_choice_end(const GenerationState& s, int index) const override {
    const ChoiceState& c = s.choices[size_t(index)];
    std::string events;
    if (c.tool_stream && !c.error) {
      ToolCallOutput out = c.tool_stream->parser.finish();
      if (!out.text.empty()) events += content_chunk(s, index, out.text, nullptr);
      events += tool_call_chunks(s, index, *c.tool_stream, out.calls);
    }
    return events + OpenAIDialect::stream_choice_end(s, index);
  }

 protected:
  const char* chunk_object() const override { return "chat.completion.chunk"; }
  const char* response_object() const override { return "chat.completion"; }
  const char* prompt_field() const override { return "messages"; }
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
    read_response_format(r, g.params);
    ToolsRequest tools = read_openai_tools(r);
    if (r.failed()) return;
    auto ids = tool_chat_prompt(engine, m, std::move(*messages), tools, g, r);
    if (ids) g.params.prompt = PromptTokens{std::move(*ids)};
  }

  json closing_choice(int index, const std::string& finish_reason) const override {
    return {{"index", index},
            {"delta", json::object()},
            {"logprobs", nullptr},
            {"finish_reason", finish_reason}};
  }

  std::string content_chunk(const GenerationState& s, int index, const std::string& text,
                            const json& lp) const {
    return chunk(s, json::array({{{"index", index},
                                  {"delta", {{"content", text}}},
                                  {"logprobs", lp},
                                  {"finish_reason", nullptr}}}));
  }

  // Per call two chunks, as OpenAI streams them: its index, id, type and name with empty
  // arguments, then the arguments. Without parallel_tool_calls, calls after the first are
  // dropped.
  std::string tool_call_chunks(const GenerationState& s, int index, ToolCallStream& tools,
                               const std::vector<ParsedToolCall>& calls) const {
    std::string events;
    for (const ParsedToolCall& call : calls) {
      if (!s.request->parallel_tool_calls && tools.num_calls > 0) break;
      const int k = tools.num_calls++;
      json head = tool_call_json({call.name, ""}, new_tool_call_id("call_"));
      head["index"] = k;
      json args = {{"index", k}, {"function", {{"arguments", call.arguments}}}};
      for (json* delta : {&head, &args}) {
        events += chunk(s, json::array({{{"index", index},
                                         {"delta", {{"tool_calls", json::array({*delta})}}},
                                         {"logprobs", nullptr},
                                         {"finish_reason", nullptr}}}));
      }
    }
    return events;
  }

  std::string response_choice(const GenerationState& s, int index) const override {
    const ChoiceState& c = s.choices[size_t(index)];
    json message = {{"role", "assistant"}, {"content", c.text}, {"refusal", nullptr}};
    std::string reason = finish_reason(c);
    if (s.request->tool_call_format != ToolCallFormat::kNone) {
      ToolCallOutput out = parse_tool_calls(s.request->tool_call_format, c.text);
      if (!s.request->parallel_tool_calls && out.calls.size() > 1) out.calls.resize(1);
      if (!out.calls.empty()) {
        json calls = json::array();
        for (const auto& call : out.calls)
          calls.push_back(tool_call_json(call, new_tool_call_id("call_")));
        message["content"] = out.text.empty() ? json(nullptr) : json(out.text);
        message["tool_calls"] = std::move(calls);
        if (reason == "stop") reason = "tool_calls";
      }
    }
    json choice = {{"index", index}, {"message", std::move(message)}, {"finish_reason", reason}};
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
