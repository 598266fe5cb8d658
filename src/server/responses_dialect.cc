#include "server/responses_dialect.h"

#include "server/body_reader.h"
#include "server/request_fields.h"

namespace mlxs::server {
namespace {

using json = nlohmann::json;

// The text of a message item's content: a string, or input_text / output_text parts.
std::optional<std::string> item_text(const json& content, const std::string& at, BodyReader& r) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) {
    r.fail_field(at, "expected string or array of content parts");
    return std::nullopt;
  }
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const json& part = content[i];
    const std::string type = part.is_object() ? part.value("type", "") : "";
    if ((type != "input_text" && type != "output_text") || !part.contains("text") ||
        !part["text"].is_string()) {
      r.fail_field(at + "." + std::to_string(i) + ".type",
                   "content part type '" + type +
                       "' is not supported by this server (input_text, output_text)");
      return std::nullopt;
    }
    if (!text.empty()) text += "\n";
    text += part["text"].get<std::string>();
  }
  return text;
}

// input: a string (one user message) or message items {type?: "message", role, content}.
bool read_input(BodyReader& r, std::vector<ChatMessage>& out) {
  const json* input = r.get("input");
  if (!input) {
    r.fail_field("input", "is required");
    return false;
  }
  if (input->is_string()) {
    out.push_back({"user", input->get<std::string>()});
    return true;
  }
  if (!input->is_array() || input->empty()) {
    r.fail_field("input", "expected a string or a non-empty array of items");
    return false;
  }
  for (size_t i = 0; i < input->size(); ++i) {
    const json& item = (*input)[i];
    const std::string at = "input." + std::to_string(i);
    const std::string type = item.is_object() ? item.value("type", "message") : "";
    if (type != "message") {
      r.fail_field(at + ".type",
                   "item type '" + type + "' is not supported by this server (message items only)");
      return false;
    }
    std::string role = item.value("role", "");
    if (role == "developer") role = "system";
    if (role != "user" && role != "assistant" && role != "system") {
      r.fail_field(at + ".role", "expected user, assistant, system or developer");
      return false;
    }
    for (const auto& [key, value] : item.items()) {
      if (key != "type" && key != "role" && key != "content" && key != "id" && key != "status" &&
          !value.is_null()) {
        r.fail_field(at + "." + key, "is not supported by this server");
        return false;
      }
    }
    auto text = item_text(item.value("content", json()), at + ".content", r);
    if (!text) return false;
    out.push_back({role, std::move(*text)});
  }
  return true;
}

// text: {format: {type: text | json_object | json_schema {name, schema, strict, description}},
// verbosity ("medium", the default, only)}.
void read_text_config(BodyReader& r, GeneratorParams& p, json& echo) {
  echo["text"] = {{"format", {{"type", "text"}}}};
  const json* t = r.get("text");
  if (!t) return;
  if (!t->is_object()) return r.fail_field("text", "expected object");
  for (const auto& [key, value] : t->items()) {
    if (value.is_null()) continue;
    if (key == "verbosity") {
      if (value != "medium") return r.fail_field("text.verbosity", "only \"medium\" is supported");
      continue;
    }
    if (key != "format") return r.fail_field("text." + key, "unknown field");
    const std::string type = value.is_object() ? value.value("type", "") : "";
    if (type == "json_object") {
      StructuredOutput s;
      s.schema = JsonText{R"({"type":"object"})"};
      p.structured = std::move(s);
    } else if (type == "json_schema") {
      if (!value.contains("name") || !value["name"].is_string())
        return r.fail_field("text.format.name", "is required (a string)");
      read_json_schema(r, value.value("schema", json()), "text.format.schema", p);
    } else if (type != "text") {
      return r.fail_field("text.format.type",
                          "expected \"text\", \"json_object\" or \"json_schema\"");
    }
    echo["text"]["format"] = value;
  }
}

// The fields that change nothing here (hints, identifiers, OpenAI-side storage), and those
// that would change the answer and are refused by name.
void read_responses_extras(BodyReader& r, json& echo) {
  for (const char* hint : {"user", "safety_identifier", "prompt_cache_key",
                           "prompt_cache_retention", "service_tier"}) {
    r.string(hint);
  }
  if (const json* m = r.get("metadata")) {
    if (!m->is_object()) r.fail_field("metadata", "expected object");
    echo["metadata"] = *m;
  }
  if (const json* so = r.get("stream_options")) {
    for (const auto& [key, value] : so->items()) {
      if (key != "include_obfuscation") r.fail_field("stream_options." + key, "unknown field");
    }
  }
  r.refuse("truncation", "truncation other than \"disabled\"", "disabled");
  r.refuse("tools", "tools on /v1/responses (use /v1/chat/completions for function tools)");
  if (const json* tc = r.get("tool_choice"); tc && *tc != "auto" && *tc != "none")
    r.fail_field("tool_choice", "expected \"auto\" or \"none\" (no tools are offered)");
  r.boolean("parallel_tool_calls");
  r.integer("max_tool_calls");
  if (const json* reasoning = r.get("reasoning")) {
    if (!reasoning->is_object()) return r.fail_field("reasoning", "expected object");
    for (const auto& [key, value] : reasoning->items()) {
      if (!value.is_null()) r.fail_field("reasoning." + key, "reasoning is not supported");
    }
  }
  r.refuse("include", "include");
  r.refuse("background", "background responses", false);
  r.refuse("conversation", "conversations (use previous_response_id)");
  r.refuse("prompt", "prompt templates");
  r.refuse("top_logprobs", "top_logprobs", 0);
}

json usage_json(const GenerationState& s) {
  const int in = s.prompt_tokens(), out = s.completion_tokens();
  const int cached =
      s.choices.empty() || !s.choices[0].meta ? 0 : s.choices[0].meta->cached_prompt_tokens;
  return {{"input_tokens", in},
          {"input_tokens_details", {{"cached_tokens", cached}}},
          {"output_tokens", out},
          {"output_tokens_details", {{"reasoning_tokens", 0}}},
          {"total_tokens", in + out}};
}

// The id of the response's message item: msg_ and the response id's random part.
std::string message_id(const GenerationState& s) {
  return "msg_" + s.id.substr(5);
}

json text_part(const std::string& text) {
  return {{"type", "output_text"},
          {"text", text},
          {"annotations", json::array()},
          {"logprobs", json::array()}};
}

json message_item(const GenerationState& s, const std::string& status, json content) {
  return {{"id", message_id(s)},
          {"type", "message"},
          {"status", status},
          {"role", "assistant"},
          {"content", std::move(content)}};
}

// completed, or incomplete when max_output_tokens ended the answer.
std::string final_status(const ChoiceState& c) {
  return c.meta && c.meta->finish_reason == FinishReason::kLength ? "incomplete" : "completed";
}

}  // namespace

std::variant<GenerationRequest, ApiError> ResponsesDialect::parse(const json& body,
                                                                  const ModelLookup& models,
                                                                  const Engine& engine) const {
  BodyReader r(body);
  GenerationRequest g;
  g.kind = ApiKind::kResponses;
  const ServedModel* m = r.failed() ? nullptr : read_model(r, models);
  if (!m) return *r.finish();
  g.params.model = m->id;
  read_sampling(r, g.params, /*openai=*/false);
  g.stream = r.boolean("stream").value_or(false);
  read_max_tokens(r, g.params, "max_output_tokens", nullptr);
  g.store = r.boolean("store").value_or(true) && store_.capacity() > 0;
  json echo = {{"previous_response_id", nullptr}, {"metadata", json::object()}};
  if (auto prev = r.string("previous_response_id")) {
    auto stored = store_.get(*prev);
    if (!stored || stored->model != m->id) {
      ApiError e = make_error(400, ErrorCode::kInvalidParams,
                              "Previous response with id '" + *prev + "' not found.",
                              "previous_response_not_found");
      e.param = "previous_response_id";
      r.fail(std::move(e));
    } else {
      g.conversation = std::move(stored->conversation);
      echo["previous_response_id"] = *prev;
    }
  }
  auto instructions = r.string("instructions");
  echo["instructions"] = instructions ? json(*instructions) : json();
  read_text_config(r, g.params, echo);
  read_responses_extras(r, echo);
  if (!r.failed() && read_input(r, g.conversation)) {
    std::vector<ChatMessage> messages = g.conversation;
    if (instructions) messages.insert(messages.begin(), ChatMessage{"system", *instructions});
    auto ids = chat_prompt(engine, *m, std::move(messages), {}, r);
    if (ids) g.params.prompt = PromptTokens{std::move(*ids)};
  }
  check_context_length(r, *m, g, /*openai=*/true, "input");
  if (!r.failed()) {
    for (int32_t id : m->end_of_turn_ids) g.params.stop_token_ids.push_back(id);
  }
  echo["max_output_tokens"] = g.params.max_tokens ? json(*g.params.max_tokens) : json();
  echo["temperature"] = g.params.temperature ? json(*g.params.temperature) : json(1.0);
  echo["top_p"] = g.params.top_p ? json(*g.params.top_p) : json(1.0);
  echo["store"] = g.store;
  g.echo = std::move(echo);
  return finish_request(r, std::move(g), /*openai=*/false);
}

json ResponsesDialect::response_object(const GenerationState& s, const std::string& status) const {
  json o = {{"id", s.id},
            {"object", "response"},
            {"created_at", s.created},
            {"status", status},
            {"error", nullptr},
            {"incomplete_details", nullptr},
            {"model", s.model()},
            {"output", json::array()},
            {"parallel_tool_calls", true},
            {"tool_choice", "auto"},
            {"tools", json::array()},
            {"truncation", "disabled"},
            {"usage", nullptr}};
  o.update(s.request->echo);
  if (status == "in_progress") return o;
  const ChoiceState& c = s.choices[0];
  if (status == "incomplete") o["incomplete_details"] = {{"reason", "max_output_tokens"}};
  if (c.error) {
    o["error"] = {{"code", "server_error"}, {"message", c.error->message}};
    return o;
  }
  o["output"] = json::array({message_item(s, "completed", json::array({text_part(c.text)}))});
  o["usage"] = usage_json(s);
  return o;
}

void ResponsesDialect::remember(const GenerationState& s, const json& response) const {
  if (!s.request->store || s.choices[0].error) return;
  StoredResponse r{s.model(), s.request->conversation, response};
  r.conversation.push_back({"assistant", s.choices[0].text});
  store_.put(s.id, std::move(r));
}

std::optional<json> ResponsesDialect::stored(const std::string& id) const {
  auto r = store_.get(id);
  if (!r) return std::nullopt;
  return std::move(r->response);
}

std::string ResponsesDialect::event(const GenerationState& s, const char* type,
                                    json payload) const {
  payload["type"] = type;
  payload["sequence_number"] = s.num_events++;
  return sse_event(type, payload);
}

std::string ResponsesDialect::stream_prologue(const GenerationState& s) const {
  const json in_progress = response_object(s, "in_progress");
  std::string out = event(s, "response.created", {{"response", in_progress}});
  out += event(s, "response.in_progress", {{"response", in_progress}});
  out += event(s, "response.output_item.added",
               {{"output_index", 0}, {"item", message_item(s, "in_progress", json::array())}});
  out += event(s, "response.content_part.added",
               {{"item_id", message_id(s)},
                {"output_index", 0},
                {"content_index", 0},
                {"part", text_part("")}});
  return out;
}

std::string ResponsesDialect::stream_token(const GenerationState& s, int, const TokenChunk& t,
                                           size_t) const {
  if (t.text.empty()) return "";
  return event(s, "response.output_text.delta",
               {{"item_id", message_id(s)},
                {"output_index", 0},
                {"content_index", 0},
                {"delta", t.text},
                {"logprobs", json::array()}});
}

std::string ResponsesDialect::stream_choice_end(const GenerationState& s, int) const {
  if (!s.choices[0].error) return "";
  return event(s, "response.failed", {{"response", response_object(s, "failed")}});
}

std::string ResponsesDialect::stream_epilogue(const GenerationState& s) const {
  const ChoiceState& c = s.choices[0];
  if (c.error) return "";  // response.failed ended the stream
  const json part = text_part(c.text);
  std::string out = event(s, "response.output_text.done",
                          {{"item_id", message_id(s)},
                           {"output_index", 0},
                           {"content_index", 0},
                           {"text", c.text},
                           {"logprobs", json::array()}});
  out += event(
      s, "response.content_part.done",
      {{"item_id", message_id(s)}, {"output_index", 0}, {"content_index", 0}, {"part", part}});
  out += event(s, "response.output_item.done",
               {{"output_index", 0}, {"item", message_item(s, "completed", json::array({part}))}});
  const std::string status = final_status(c);
  const json response = response_object(s, status);
  remember(s, response);
  out += event(s, status == "completed" ? "response.completed" : "response.incomplete",
               {{"response", response}});
  return out;
}

std::string ResponsesDialect::response(const GenerationState& s) const {
  const json response = response_object(s, final_status(s.choices[0]));
  remember(s, response);
  return dump_json(response);
}

const Dialect& responses_dialect_without_store() {
  static ResponseStore none(0);
  static const ResponsesDialect dialect(none);
  return dialect;
}

}  // namespace mlxs::server
