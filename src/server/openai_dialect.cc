#include "server/openai_dialect.h"

#include "server/request_fields.h"

namespace mlxs::server {
namespace {

using json = nlohmann::json;

constexpr int kMaxChoices = 128;

// Fields of both OpenAI routes beyond the sampling ones (docs/server.md, "Fields accepted as
// no-ops"). Refused by name: what would change the answer and this engine cannot do. Accepted,
// their types checked: what only identifies, stores, bills, routes or caches on OpenAI's side
// and cannot change the output (the prefix cache here is automatic), and `verbosity: "medium"`,
// the default that every model here follows.
void read_openai_extras(BodyReader& r) {
  r.refuse("logit_bias", "logit_bias");
  r.refuse("functions", "functions (the deprecated function calling; use tools)");
  r.refuse("function_call", "function_call (deprecated; use tool_choice)", "none");
  r.refuse("audio", "audio output");
  r.refuse("reasoning_effort", "reasoning_effort");
  if (r.get("web_search_options"))  // {} asks for a search too
    r.fail_field("web_search_options", "web search is not supported by this server");
  r.refuse("modalities", "modalities other than [\"text\"]", json::array({"text"}));
  r.refuse("verbosity", "verbosity other than \"medium\"", "medium");
  for (const char* hint : {"user", "safety_identifier", "prompt_cache_key",
                           "prompt_cache_retention", "service_tier"}) {
    r.string(hint);
  }
  r.boolean("store");
  if (const json* m = r.get("metadata"); m && !m->is_object()) {
    r.fail_field("metadata", "expected object, got " + json_type_name(*m));
  }
  // Predicted outputs only make OpenAI's decoding faster: the answer is the same.
  if (const json* p = r.get("prediction")) {
    if (!p->is_object() || p->value("type", json()) != "content" || !p->contains("content"))
      r.fail_field("prediction", "expected {\"type\": \"content\", \"content\": ...}");
  }
}

void read_n(BodyReader& r, GenerationRequest& g) {
  auto n = r.integer("n");
  if (!n) return;
  if (*n < 1 || *n > kMaxChoices)
    r.fail_field("n", "must be >= 1 and <= 128, got " + std::to_string(*n));
  else
    g.n = int(*n);
}

json usage_json(const GenerationState& s) {
  const int prompt = s.prompt_tokens(), completion = s.completion_tokens();
  json usage = {{"prompt_tokens", prompt},
                {"completion_tokens", completion},
                {"total_tokens", prompt + completion}};
  if (!s.choices.empty() && s.choices[0].meta) {
    usage["prompt_tokens_details"] = {{"cached_tokens", s.choices[0].meta->cached_prompt_tokens}};
  }
  return usage;
}

}  // namespace

std::variant<GenerationRequest, ApiError> OpenAIDialect::parse(const json& body,
                                                               const ModelLookup& models,
                                                               const Engine& engine) const {
  BodyReader r(body);
  GenerationRequest g;
  g.kind = kind();
  const ServedModel* m = r.failed() ? nullptr : read_model(r, models);
  if (!m) return *r.finish();
  g.params.model = m->id;
  read_sampling(r, g.params, /*openai=*/true);
  read_stream(r, g);
  read_stop(r, "stop", g.params);
  read_openai_extras(r);
  read_n(r, g);
  if (!r.failed()) parse_prompt(r, *m, engine, g);
  check_context_length(r, *m, g, /*openai=*/true, prompt_field());
  if (!r.failed() && stops_at_end_of_turn()) {
    for (int32_t id : m->end_of_turn_ids) g.params.stop_token_ids.push_back(id);
  }
  return finish_request(r, std::move(g), /*openai=*/true);
}

std::string OpenAIDialect::chunk(const GenerationState& s, json choices) const {
  json c = {{"id", s.id},
            {"object", chunk_object()},
            {"created", s.created},
            {"model", s.model()},
            {"choices", std::move(choices)}};
  if (s.request->include_usage) c["usage"] = nullptr;
  return sse_data(dump_json(c));
}

std::string OpenAIDialect::stream_choice_end(const GenerationState& s, int index) const {
  const ChoiceState& c = s.choices[size_t(index)];
  if (c.error) {
    return sse_data(
        dump_json(error_from_status(Status(c.error->code, c.error->message)).openai_json()));
  }
  return chunk(s, json::array({closing_choice(index, finish_reason(c))}));
}

std::string OpenAIDialect::stream_epilogue(const GenerationState& s) const {
  std::string out;
  if (s.request->include_usage) {
    json c = {{"id", s.id},         {"object", chunk_object()}, {"created", s.created},
              {"model", s.model()}, {"choices", json::array()}, {"usage", usage_json(s)}};
    out += sse_data(dump_json(c));
  }
  out += sse_data("[DONE]");
  return out;
}

std::string OpenAIDialect::response(const GenerationState& s) const {
  std::string choices;
  for (int i = 0; i < int(s.choices.size()); ++i) append_element(choices, response_choice(s, i));
  json head = {{"id", s.id},
               {"object", response_object()},
               {"created", s.created},
               {"model", s.model()},
               {"usage", usage_json(s)}};
  return with_raw_member(dump_json(head), "choices", "[" + choices + "]");
}

std::string OpenAIDialect::finish_reason(const ChoiceState& c) {
  if (!c.meta) return "error";
  switch (c.meta->finish_reason) {
    case FinishReason::kStop:
      return c.tool_stream && c.tool_stream->num_calls > 0 ? "tool_calls" : "stop";
    case FinishReason::kLength:
      return "length";
    default:
      return finish_reason_name(c.meta->finish_reason);
  }
}

}  // namespace mlxs::server
