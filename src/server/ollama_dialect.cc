// Ollama's generation API: POST /api/chat (messages through the model's chat template, tools as
// OpenAI function tools, calls answered as message.tool_calls) and POST /api/generate (a prompt,
// with `system`, through the chat template; `raw: true` tokenizes it as it is). Both stream
// NDJSON by default (one object per token, then a final `done: true` object with the counts and
// durations); `stream: false` answers one object.
//
// Fields (docs/server.md, "Ollama"): `options` maps the engine's sampling knobs (temperature,
// top_p, top_k, min_p, num_predict, stop, seed, repeat_penalty, presence_penalty,
// frequency_penalty); the runtime hints (num_ctx, num_batch, num_gpu, main_gpu, num_thread,
// use_mmap, use_mlock, numa, low_vram, vocab_only, f16_kv, logits_all) are accepted as no-ops;
// any other option is refused by name. `format` is "json" or a JSON Schema (structured output);
// `keep_alive` is accepted (models stay loaded while the server runs); `think: false` is
// accepted; `template`, `suffix`, `context`, images and thinking are refused.
#include <fmt/format.h>

#include <chrono>
#include <deque>

#include "api/option_schemas.h"
#include "server/body_reader.h"
#include "server/dialect.h"
#include "server/request_fields.h"
#include "server/tool_calls.h"
#include "server/tool_request.h"
#include "util/json_int.h"

namespace mlxs::server {
namespace {

using json = nlohmann::json;

// Now as Ollama writes created_at: RFC 3339, UTC, nanoseconds.
std::string rfc3339_now() {
  const auto now = std::chrono::system_clock::now();
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch());
  const std::time_t secs = std::time_t(ns.count() / 1000000000);
  std::tm utc{};
  gmtime_r(&secs, &utc);
  char head[32];
  std::strftime(head, sizeof(head), "%Y-%m-%dT%H:%M:%S", &utc);
  return fmt::format("{}.{:09d}Z", head, ns.count() % 1000000000);
}

// The sampling options the engine has, by their Ollama names.
void read_option(const std::string& key, const json& v, GeneratorParams& p, BodyReader& r) {
  const std::string at = "options." + key;
  auto number = [&](std::optional<double>& out) {
    if (!v.is_number()) return r.fail_field(at, "expected number, got " + json_type_name(v));
    out = v.get<double>();
  };
  if (key == "temperature") return number(p.temperature);
  if (key == "top_p") return number(p.top_p);
  if (key == "min_p") return number(p.min_p);
  if (key == "repeat_penalty") return number(p.repetition_penalty);
  if (key == "presence_penalty") return number(p.presence_penalty);
  if (key == "frequency_penalty") return number(p.frequency_penalty);
  if (key == "top_k") {
    auto k = json_int_in(v, 0, INT32_MAX);
    if (!k) return r.fail_field(at, "expected integer >= 0, got " + v.dump());
    p.top_k = int32_t(*k);
    return;
  }
  if (key == "seed") {  // Ollama: a negative seed is a random one
    auto seed = json_int_in(v, INT32_MIN, int64_t(UINT32_MAX));
    if (!seed) return r.fail_field(at, "expected integer <= 4294967295, got " + v.dump());
    if (*seed >= 0) p.seed = uint32_t(*seed);
    return;
  }
  if (key == "num_predict") {  // -1: no limit, -2: fill the context (both: up to the context)
    auto n = json_int_in(v, -2, limits::kMaxTokens);
    if (!n || *n == 0)
      return r.fail_field(at, fmt::format("expected -1, -2 or an integer >= 1 and <= {}, got {}",
                                          limits::kMaxTokens, v.dump()));
    if (*n > 0) p.max_tokens = int32_t(*n);
    return;
  }
  if (key == "stop") {
    if (!v.is_array()) return r.fail_field(at, "expected array of strings");
    for (const auto& s : v) {
      if (!s.is_string()) return r.fail_field(at, "expected array of strings");
      p.stop_sequences.push_back(s.get<std::string>());
    }
    return;
  }
  static const char* kHints[] = {"num_ctx",    "num_batch",  "num_gpu",   "main_gpu",
                                 "num_thread", "use_mmap",   "use_mlock", "numa",
                                 "low_vram",   "vocab_only", "f16_kv",    "logits_all"};
  for (const char* hint : kHints) {
    if (key == hint) return;  // how Ollama's runtime runs, never what it answers
  }
  r.fail_field(at, "is not supported by this server");
}

void read_options(BodyReader& r, GeneratorParams& p) {
  const json* o = r.get("options");
  if (!o) return;
  if (!o->is_object()) return r.fail_field("options", "expected object");
  for (const auto& [key, value] : o->items()) {
    if (!value.is_null()) read_option(key, value, p, r);
    if (r.failed()) return;
  }
}

// format: "json" (any JSON value... as Ollama: an object) or a JSON Schema object.
void read_format(BodyReader& r, GeneratorParams& p) {
  const json* f = r.get("format");
  if (!f || (f->is_string() && f->get<std::string>().empty())) return;
  if (f->is_string() && f->get<std::string>() == "json") {
    StructuredOutput s;
    s.schema = JsonText{R"({"type":"object"})"};
    p.structured = std::move(s);
    return;
  }
  if (!f->is_object()) return r.fail_field("format", "expected \"json\" or a JSON Schema object");
  read_json_schema(r, *f, "format", p);
}

// The model, as Ollama names it ("default" or "default:latest").
const ServedModel* read_ollama_model(BodyReader& r, const ModelLookup& models) {
  return read_model(r, [&models](const std::string& id) {
    const ServedModel* m = models(id);
    if (!m && id.ends_with(":latest")) m = models(id.substr(0, id.size() - 7));
    return m;
  });
}

// An assistant message's tool_calls: [{function: {name, arguments: {...}}}] (no ids in Ollama:
// each gets one, which the tool messages after it answer in order).
bool read_ollama_calls(const json& calls, const std::string& at, ChatMessage& msg,
                       std::deque<ToolCall>& unanswered, BodyReader& r) {
  if (!calls.is_array()) {
    r.fail_field(at, "expected an array of tool calls");
    return false;
  }
  for (size_t k = 0; k < calls.size(); ++k) {
    const std::string ck = at + "[" + std::to_string(k) + "].function";
    const json* f =
        calls[k].is_object() && calls[k].contains("function") ? &calls[k]["function"] : nullptr;
    if (!f || !f->is_object() || !f->contains("name") || !(*f)["name"].is_string()) {
      r.fail_field(ck + ".name", "is required (a string)");
      return false;
    }
    const json args = f->value("arguments", json::object());
    if (!args.is_object()) {
      r.fail_field(ck + ".arguments", "expected object");
      return false;
    }
    ToolCall call{new_tool_call_id("call_"), (*f)["name"].get<std::string>(), {args.dump()}};
    unanswered.push_back(call);
    msg.tool_calls.push_back(std::move(call));
  }
  return true;
}

// messages: [{role: system|user|assistant|tool, content, tool_calls (assistant), tool_name
// (tool)}]; images and thinking are refused.
std::optional<std::vector<ChatMessage>> ollama_messages(const json* messages, BodyReader& r) {
  if (!messages || !messages->is_array() || messages->empty()) {
    r.fail_field("messages", "is required: a non-empty array");
    return std::nullopt;
  }
  std::vector<ChatMessage> out;
  std::deque<ToolCall> unanswered;
  for (size_t i = 0; i < messages->size(); ++i) {
    const json& m = (*messages)[i];
    const std::string at = "messages." + std::to_string(i);
    const std::string role = m.is_object() ? m.value("role", "") : "";
    if (role != "system" && role != "user" && role != "assistant" && role != "tool") {
      r.fail_field(at + ".role", "expected system, user, assistant or tool");
      return std::nullopt;
    }
    ChatMessage msg{role, ""};
    for (const auto& [key, value] : m.items()) {
      if (key == "role" || value.is_null() || (value.is_array() && value.empty())) continue;
      if (key == "content" && value.is_string()) {
        msg.content = value.get<std::string>();
      } else if (key == "tool_calls" && role == "assistant") {
        if (!read_ollama_calls(value, at + ".tool_calls", msg, unanswered, r)) return std::nullopt;
      } else if (key == "tool_name" && role == "tool" && value.is_string()) {
        msg.name = value.get<std::string>();
      } else if (key == "thinking" && value.is_string() && value.get<std::string>().empty()) {
        continue;
      } else {
        r.fail_field(at + "." + key,
                     key == "content" ? "expected string" : "is not supported by this server");
        return std::nullopt;
      }
    }
    if (role == "tool") {  // answers the first call not answered yet (by name when given)
      auto it = unanswered.begin();
      while (it != unanswered.end() && !msg.name.empty() && it->name != msg.name) ++it;
      if (it != unanswered.end()) {
        msg.tool_call_id = it->id;
        if (msg.name.empty()) msg.name = it->name;
        unanswered.erase(it);
      }
    }
    out.push_back(std::move(msg));
  }
  return out;
}

json ollama_calls_json(const std::vector<ParsedToolCall>& calls) {
  json out = json::array();
  for (const auto& c : calls) {
    out.push_back({{"function",
                    {{"name", c.name}, {"arguments", json::parse(c.arguments, nullptr, false)}}}});
  }
  return out;
}

// The fields both routes share, then the route's own (prompt) fields.
class OllamaDialect : public Dialect {
 public:
  const char* id_prefix() const override { return "ollama-"; }
  const char* stream_content_type() const override { return "application/x-ndjson"; }
  json error_json(const ApiError& e) const override { return {{"error", e.message}}; }

  std::variant<GenerationRequest, ApiError> parse(const json& body, const ModelLookup& models,
                                                  const Engine& engine) const final {
    BodyReader r(body);
    GenerationRequest g;
    g.kind = kind();
    const ServedModel* m = r.failed() ? nullptr : read_ollama_model(r, models);
    if (!m) return *r.finish();
    g.params.model = m->id;
    g.stream = r.boolean("stream").value_or(true);
    read_options(r, g.params);
    read_format(r, g.params);
    if (const json* think = r.get("think"); think && *think != json(false))
      r.fail_field("think", "thinking is not supported by this server (only false)");
    if (const json* k = r.get("keep_alive"); k && !k->is_string() && !k->is_number())
      r.fail_field("keep_alive", "expected a duration string or a number of seconds");
    bool templated = true;
    if (!r.failed()) templated = parse_prompt(r, *m, engine, g);
    check_context_length(r, *m, g, /*openai=*/true, prompt_field());
    if (!r.failed() && templated) {
      for (int32_t id : m->end_of_turn_ids) g.params.stop_token_ids.push_back(id);
    }
    return finish_request(r, std::move(g), /*openai=*/false);
  }

  std::string stream_prologue(const GenerationState&) const override { return ""; }

  std::string stream_token(const GenerationState& s, int, const TokenChunk& t,
                           size_t) const override {
    ToolCallStream* tools = s.choices[0].tool_stream.get();
    if (!tools) return t.text.empty() ? "" : line(s, t.text, {});
    ToolCallOutput out = tools->parser.feed(t.text);
    tools->num_calls += int(out.calls.size());
    if (out.text.empty() && out.calls.empty()) return "";
    return line(s, out.text, out.calls);
  }

  std::string stream_choice_end(const GenerationState& s, int) const override {
    const ChoiceState& c = s.choices[0];
    if (c.error)
      return dump_json(error_json(error_from_status(Status(c.error->code, c.error->message)))) +
             "\n";
    if (!c.tool_stream) return "";
    ToolCallOutput out = c.tool_stream->parser.finish();
    c.tool_stream->num_calls += int(out.calls.size());
    if (out.text.empty() && out.calls.empty()) return "";
    return line(s, out.text, out.calls);
  }

  std::string stream_epilogue(const GenerationState& s) const override {
    if (s.choices[0].error) return "";
    return dump_json(final_object(s, "", {})) + "\n";
  }

  void record_token(GenerationState&, int, const TokenChunk&, size_t) const override {}

  std::string response(const GenerationState& s) const override {
    ToolCallOutput out{s.choices[0].text, {}};
    if (s.request->tool_call_format != ToolCallFormat::kNone)
      out = parse_tool_calls(s.request->tool_call_format, out.text);
    return dump_json(final_object(s, out.text, out.calls));
  }

 protected:
  // The route's prompt fields into g.params.prompt; whether it went through the chat template.
  virtual bool parse_prompt(BodyReader& r, const ServedModel& m, const Engine& engine,
                            GenerationRequest& g) const = 0;
  virtual const char* prompt_field() const = 0;
  // The route's output member(s) for `text` and `calls` ("message" / "response").
  virtual void put_output(json& object, const std::string& text,
                          const std::vector<ParsedToolCall>& calls) const = 0;

 private:
  json head(const GenerationState& s) const {
    return {{"model", s.model()}, {"created_at", rfc3339_now()}};
  }

  std::string line(const GenerationState& s, const std::string& text,
                   const std::vector<ParsedToolCall>& calls) const {
    json o = head(s);
    put_output(o, text, calls);
    o["done"] = false;
    return dump_json(o) + "\n";
  }

  // The last object: done, why, and the counts and durations (nanoseconds) Ollama reports.
  json final_object(const GenerationState& s, const std::string& text,
                    const std::vector<ParsedToolCall>& calls) const {
    const ChoiceState& c = s.choices[0];
    json o = head(s);
    put_output(o, text, calls);
    o["done"] = true;
    std::string reason = "stop";
    if (c.meta && c.meta->finish_reason != FinishReason::kStop)
      reason = c.meta->finish_reason == FinishReason::kLength
                   ? "length"
                   : finish_reason_name(c.meta->finish_reason);
    o["done_reason"] = reason;
    const double total_ms = c.meta ? c.meta->total_time_ms : 0;
    const double ttft_ms = c.meta ? c.meta->time_to_first_token_ms : 0;
    o["total_duration"] = int64_t(total_ms * 1e6);
    o["load_duration"] = 0;
    o["prompt_eval_count"] = s.prompt_tokens();
    o["prompt_eval_duration"] = int64_t(ttft_ms * 1e6);
    o["eval_count"] = s.completion_tokens();
    o["eval_duration"] = int64_t(std::max(0.0, total_ms - ttft_ms) * 1e6);
    return o;
  }
};

class OllamaChatDialect final : public OllamaDialect {
 public:
  ApiKind kind() const override { return ApiKind::kOllamaChat; }

 protected:
  const char* prompt_field() const override { return "messages"; }

  bool parse_prompt(BodyReader& r, const ServedModel& m, const Engine& engine,
                    GenerationRequest& g) const override {
    auto messages = ollama_messages(r.get("messages"), r);
    ToolsRequest tools = read_openai_tools(r);
    if (!messages || r.failed()) return true;
    auto ids = tool_chat_prompt(engine, m, std::move(*messages), tools, g, r);
    if (ids) g.params.prompt = PromptTokens{std::move(*ids)};
    return true;
  }

  void put_output(json& o, const std::string& text,
                  const std::vector<ParsedToolCall>& calls) const override {
    o["message"] = {{"role", "assistant"}, {"content", text}};
    if (!calls.empty()) o["message"]["tool_calls"] = ollama_calls_json(calls);
  }
};

class OllamaGenerateDialect final : public OllamaDialect {
 public:
  ApiKind kind() const override { return ApiKind::kOllamaGenerate; }

 protected:
  const char* prompt_field() const override { return "prompt"; }

  // prompt (required), system, raw; template, suffix, images and context refused.
  bool parse_prompt(BodyReader& r, const ServedModel& m, const Engine& engine,
                    GenerationRequest& g) const override {
    r.refuse("template", "template (the model's own chat template is used)");
    r.refuse("suffix", "suffix (fill-in-the-middle)");
    r.refuse("images", "images");
    r.refuse("context", "context (the deprecated token context; send the conversation)");
    auto prompt = r.string("prompt");
    auto system = r.string("system");
    const bool raw = r.boolean("raw").value_or(false) || !m.has_chat_template;
    if (r.failed()) return !raw;
    if (!prompt || prompt->empty()) {
      r.fail_field("prompt", "is required (a non-empty string; models here are loaded at start)");
      return !raw;
    }
    if (raw && system) {
      r.fail_field("system",
                   "cannot apply to a raw prompt (raw: true, or a model without a chat "
                   "template): the prompt is sent as it is");
      return false;
    }
    std::optional<std::vector<int32_t>> ids;
    if (raw) {
      ids = tokenize_prompt(engine, m, *prompt, /*add_special=*/true, r);
    } else {
      std::vector<ChatMessage> messages;
      if (system) messages.push_back({"system", *system});
      messages.push_back({"user", *prompt});
      ids = chat_prompt(engine, m, std::move(messages), {}, r);
    }
    if (ids) g.params.prompt = PromptTokens{std::move(*ids)};
    return !raw;
  }

  void put_output(json& o, const std::string& text,
                  const std::vector<ParsedToolCall>&) const override {
    o["response"] = text;
  }
};

}  // namespace

const Dialect& ollama_chat_dialect() {
  static const OllamaChatDialect dialect;
  return dialect;
}

const Dialect& ollama_generate_dialect() {
  static const OllamaGenerateDialect dialect;
  return dialect;
}

}  // namespace mlxs::server
