// Anthropic messages (POST /v1/messages): a `system` field and user/assistant messages through
// the model's chat template, max_tokens required, one choice. Streams message_start,
// content_block_* and message_delta/message_stop events; stop reasons are end_turn,
// max_tokens, stop_sequence (with the sequence the engine matched) and tool_use. With tools
// (server/tool_request.h), calls come back as tool_use blocks (streamed: content_block_start with
// the block, one input_json_delta with the whole input, content_block_stop).
#include "server/body_reader.h"
#include "server/dialect.h"
#include "server/request_fields.h"
#include "server/tool_calls.h"
#include "server/tool_request.h"

namespace mlxs::server {
namespace {

using json = nlohmann::json;

// end_turn (EOS / end-of-turn token / stop token id), tool_use (so, with calls), max_tokens, or
// stop_sequence with the one the engine matched.
std::string stop_reason(const ChoiceState& c, bool called, std::string* stop_sequence) {
  if (!c.meta || c.meta->finish_reason == FinishReason::kLength) return "max_tokens";
  if (c.meta->finish_reason != FinishReason::kStop)
    return finish_reason_name(c.meta->finish_reason);
  if (c.meta->stop_sequence.empty()) return called ? "tool_use" : "end_turn";
  *stop_sequence = c.meta->stop_sequence;
  return "stop_sequence";
}

json null_if_empty(const std::string& s) {
  return s.empty() ? json(nullptr) : json(s);
}

json tool_use_block(const ParsedToolCall& call, json input) {
  return {{"type", "tool_use"},
          {"id", new_tool_call_id("toolu_")},
          {"name", call.name},
          {"input", std::move(input)}};
}

// The content blocks of a streamed choice with tools, as the parser releases text and calls:
// a text block opens at the first text after a call (or at the start) and closes before the
// next call; each call is a tool_use block whose input comes as one input_json_delta.
std::string stream_tool_output(ToolCallStream& st, bool parallel, ToolCallOutput out) {
  std::string events;
  if (!out.text.empty()) {
    if (!st.text_open) {
      events +=
          sse_event("content_block_start", {{"type", "content_block_start"},
                                            {"index", st.num_blocks++},
                                            {"content_block", {{"type", "text"}, {"text", ""}}}});
      st.text_open = true;
    }
    events +=
        sse_event("content_block_delta", {{"type", "content_block_delta"},
                                          {"index", st.num_blocks - 1},
                                          {"delta", {{"type", "text_delta"}, {"text", out.text}}}});
  }
  for (const ParsedToolCall& call : out.calls) {
    if (!parallel && st.num_calls > 0) break;
    if (st.text_open) {
      events += sse_event("content_block_stop",
                          {{"type", "content_block_stop"}, {"index", st.num_blocks - 1}});
      st.text_open = false;
    }
    const int index = st.num_blocks++;
    ++st.num_calls;
    events +=
        sse_event("content_block_start", {{"type", "content_block_start"},
                                          {"index", index},
                                          {"content_block", tool_use_block(call, json::object())}});
    events +=
        sse_event("content_block_delta",
                  {{"type", "content_block_delta"},
                   {"index", index},
                   {"delta", {{"type", "input_json_delta"}, {"partial_json", call.arguments}}}});
    events += sse_event("content_block_stop", {{"type", "content_block_stop"}, {"index", index}});
  }
  return events;
}

class AnthropicMessagesDialect final : public Dialect {
 public:
  ApiKind kind() const override { return ApiKind::kMessages; }
  const char* id_prefix() const override { return "msg_"; }
  json error_json(const ApiError& e) const override { return e.anthropic_json(); }

  std::variant<GenerationRequest, ApiError> parse(const json& body, const ModelLookup& models,
                                                  const Engine& engine) const override {
    BodyReader r(body);
    GenerationRequest g;
    g.kind = ApiKind::kMessages;
    const ServedModel* m = r.failed() ? nullptr : read_model(r, models);
    if (!m) return *r.finish();
    g.params.model = m->id;
    read_sampling(r, g.params, /*openai=*/false);
    read_stream(r, g);
    if (!r.failed()) parse_prompt(r, *m, engine, g);
    check_context_length(r, *m, g, /*openai=*/false, "messages");
    if (!r.failed()) {
      for (int32_t id : m->end_of_turn_ids) g.params.stop_token_ids.push_back(id);
    }
    return finish_request(r, std::move(g), /*openai=*/false);
  }

  std::string stream_prologue(const GenerationState& s) const override {
    json message = {
        {"id", s.id},
        {"type", "message"},
        {"role", "assistant"},
        {"content", json::array()},
        {"model", s.model()},
        {"stop_reason", nullptr},
        {"stop_sequence", nullptr},
        {"usage", {{"input_tokens", s.request->num_prompt_tokens}, {"output_tokens", 0}}}};
    std::string out = sse_event("message_start", {{"type", "message_start"}, {"message", message}});
    if (s.choices[0].tool_stream) {  // blocks open as the parser releases text and calls
      return out + sse_event("ping", {{"type", "ping"}});
    }
    out += sse_event("content_block_start", {{"type", "content_block_start"},
                                             {"index", 0},
                                             {"content_block", {{"type", "text"}, {"text", ""}}}});
    out += sse_event("ping", {{"type", "ping"}});
    return out;
  }

  std::string stream_token(const GenerationState& s, int, const TokenChunk& t,
                           size_t) const override {
    if (ToolCallStream* st = s.choices[0].tool_stream.get()) {
      return stream_tool_output(*st, s.request->parallel_tool_calls, st->parser.feed(t.text));
    }
    if (t.text.empty()) return "";
    return sse_event("content_block_delta",
                     {{"type", "content_block_delta"},
                      {"index", 0},
                      {"delta", {{"type", "text_delta"}, {"text", t.text}}}});
  }

  // The epilogue carries the stop reason; an error is an `error` event that ends the stream.
  std::string stream_choice_end(const GenerationState& s, int index) const override {
    const ChoiceState& c = s.choices[size_t(index)];
    if (!c.error) return "";
    return sse_event("error",
                     error_from_status(Status(c.error->code, c.error->message)).anthropic_json());
  }

  std::string stream_epilogue(const GenerationState& s) const override {
    const ChoiceState& c = s.choices[0];
    if (c.error) return "";  // the error event ended the stream
    std::string stop_sequence, out;
    bool called = false;
    if (ToolCallStream* st = c.tool_stream.get()) {
      out = stream_tool_output(*st, s.request->parallel_tool_calls, st->parser.finish());
      if (st->num_blocks == 0) {  // no output at all: one empty text block
        out +=
            sse_event("content_block_start", {{"type", "content_block_start"},
                                              {"index", st->num_blocks++},
                                              {"content_block", {{"type", "text"}, {"text", ""}}}});
        st->text_open = true;
      }
      if (st->text_open) {
        out += sse_event("content_block_stop",
                         {{"type", "content_block_stop"}, {"index", st->num_blocks - 1}});
      }
      called = st->num_calls > 0;
    } else {
      out = sse_event("content_block_stop", {{"type", "content_block_stop"}, {"index", 0}});
    }
    const std::string reason = stop_reason(c, called, &stop_sequence);
    out += sse_event(
        "message_delta",
        {{"type", "message_delta"},
         {"delta", {{"stop_reason", reason}, {"stop_sequence", null_if_empty(stop_sequence)}}},
         {"usage", {{"output_tokens", s.completion_tokens()}}}});
    out += sse_event("message_stop", {{"type", "message_stop"}});
    return out;
  }

  // Anthropic's API has no logprobs: nothing per token to keep.
  void record_token(GenerationState&, int, const TokenChunk&, size_t) const override {}

  std::string response(const GenerationState& s) const override {
    const ChoiceState& c = s.choices[0];
    json content = json::array();
    ToolCallOutput out{c.text, {}};
    if (s.request->tool_call_format != ToolCallFormat::kNone)
      out = parse_tool_calls(s.request->tool_call_format, c.text);
    if (!s.request->parallel_tool_calls && out.calls.size() > 1) out.calls.resize(1);
    if (!out.text.empty() || out.calls.empty())
      content.push_back({{"type", "text"}, {"text", out.text}});
    for (const ParsedToolCall& call : out.calls)
      content.push_back(tool_use_block(call, json::parse(call.arguments)));
    std::string stop_sequence;
    const std::string reason = stop_reason(c, !out.calls.empty(), &stop_sequence);
    json usage = {{"input_tokens", s.prompt_tokens()}, {"output_tokens", s.completion_tokens()}};
    if (c.meta && c.meta->cached_prompt_tokens > 0) {
      usage["cache_read_input_tokens"] = c.meta->cached_prompt_tokens;
    }
    return dump_json({{"id", s.id},
                      {"type", "message"},
                      {"role", "assistant"},
                      {"model", s.model()},
                      {"content", std::move(content)},
                      {"stop_reason", reason},
                      {"stop_sequence", null_if_empty(stop_sequence)},
                      {"usage", usage}});
  }

 private:
  // system, messages (a final assistant message is a prefill), max_tokens (required unless
  // `counting`: count_tokens has none), stop_sequences, tools and tool_choice, the output
  // format; the features this server lacks are refused by name, the hints accepted
  // (docs/server.md, "Fields accepted as no-ops").
  static void parse_prompt(BodyReader& r, const ServedModel& m, const Engine& engine,
                           GenerationRequest& g, bool counting = false) {
    std::string system;
    if (const json* s = r.get("system")) {
      auto text = content_text(*s, "system", r);
      if (!text) return;
      system = *text;
    }
    auto messages = chat_messages(r.get("messages"), /*openai=*/false, r);
    if (!messages) return;
    if (!system.empty()) messages->insert(messages->begin(), ChatMessage{"system", system});
    if (!counting) {
      if (!r.get("max_tokens")) return r.fail_field("max_tokens", "is required");
      read_max_tokens(r, g.params, "max_tokens", nullptr);
      read_stop(r, "stop_sequences", g.params);
      r.get("metadata");
      for (const char* hint : {"service_tier", "inference_geo"}) r.string(hint);
      r.get("cache_control");  // prompt caching here is automatic (the prefix cache)
    }
    ToolsRequest tools = read_anthropic_tools(r);
    read_thinking(r);
    read_output_config(r, g.params);
    r.refuse("mcp_servers", "mcp_servers");
    r.refuse("container", "container");
    r.refuse("context_management", "context_management");
    if (r.failed()) return;
    auto ids = tool_chat_prompt(engine, m, std::move(*messages), tools, g, r);
    if (ids) g.params.prompt = PromptTokens{std::move(*ids)};
  }

  // thinking: {type: "disabled"} is what every model here does; extended thinking is refused.
  static void read_thinking(BodyReader& r) {
    const json* t = r.get("thinking");
    if (!t) return;
    if (!t->is_object() || (*t).value("type", json()) != "disabled")
      r.fail_field("thinking",
                   "extended thinking is not supported by this server (only "
                   "{\"type\": \"disabled\"})");
  }

  // output_format {type: json_schema, schema} (the structured outputs beta) or
  // output_config {format, effort}: the schema through structured output. An effort other than
  // "high" (the default) would change the answer: refused.
  static void read_output_config(BodyReader& r, GeneratorParams& p) {
    auto read_format = [&](const json& f, const std::string& at) {
      if (!f.is_object() || f.value("type", json()) != "json_schema" || !f.contains("schema"))
        return r.fail_field(at, "expected {\"type\": \"json_schema\", \"schema\": {...}}");
      read_json_schema(r, f["schema"], at + ".schema", p);
    };
    if (const json* f = r.get("output_format")) read_format(*f, "output_format");
    const json* c = r.get("output_config");
    if (!c) return;
    if (!c->is_object()) return r.fail_field("output_config", "expected object");
    for (const auto& [key, value] : c->items()) {
      if (value.is_null()) continue;
      if (key == "format") {
        read_format(value, "output_config.format");
      } else if (key != "effort" || value != "high") {
        return r.fail_field(
            "output_config." + key,
            key == "effort" ? "an effort other than \"high\" is not supported" : "unknown field");
      }
    }
  }

 public:
  // POST /v1/messages/count_tokens: the request's prompt tokens (the fields of a messages
  // request that shape the prompt; max_tokens and the sampling fields are unknown here).
  static std::variant<int32_t, ApiError> count_tokens(const json& body, const ModelLookup& models,
                                                      const Engine& engine) {
    BodyReader r(body);
    GenerationRequest g;
    const ServedModel* m = r.failed() ? nullptr : read_model(r, models);
    if (!m) return *r.finish();
    parse_prompt(r, *m, engine, g, /*counting=*/true);
    if (auto e = r.finish()) return *e;
    return int32_t(std::get<PromptTokens>(g.params.prompt).tokens.size());
  }
};

}  // namespace

const Dialect& anthropic_messages_dialect() {
  static const AnthropicMessagesDialect dialect;
  return dialect;
}

std::variant<int32_t, ApiError> anthropic_count_tokens(const json& body, const ModelLookup& models,
                                                       const Engine& engine) {
  return AnthropicMessagesDialect::count_tokens(body, models, engine);
}

}  // namespace mlxs::server
