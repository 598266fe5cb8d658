// Each dialect's formatting, on a GenerationState built by hand (no engine): stream events,
// the final body, errors and usage in its API's shape.
#include "server/dialect.h"

#include <gtest/gtest.h>

#include "server/responses_dialect.h"

namespace mlxs::server {
namespace {

using json = nlohmann::json;

// The JSON payloads of the "data: " lines of SSE text ([DONE] as the string "[DONE]").
std::vector<json> data_events(const std::string& sse) {
  std::vector<json> out;
  size_t at = 0;
  while ((at = sse.find("data: ", at)) != std::string::npos) {
    size_t end = sse.find("\n\n", at);
    std::string payload = sse.substr(at + 6, end - at - 6);
    out.push_back(payload == "[DONE]" ? json("[DONE]") : json::parse(payload));
    at = end;
  }
  return out;
}

// The "event: " names of SSE text.
std::vector<std::string> event_names(const std::string& sse) {
  std::vector<std::string> out;
  size_t at = 0;
  while ((at = sse.find("event: ", at)) != std::string::npos) {
    size_t end = sse.find('\n', at);
    out.push_back(sse.substr(at + 7, end - at - 7));
    at = end;
  }
  return out;
}

class DialectTest : public ::testing::Test {
 protected:
  DialectTest() {
    request_.params.model = "m";
    request_.num_prompt_tokens = 5;
    state_.request = &request_;
    state_.id = "id-1";
    state_.created = 1700000000;
    state_.token_text = [](int32_t id) { return "t" + std::to_string(id); };
    state_.choices.resize(1);
  }
  TokenChunk token(const std::string& text, int32_t id) {
    TokenChunk t;
    t.text = text;
    t.token_id = id;
    t.logprob = -0.5;
    t.top_logprobs = {{id, text, -0.5}, {9, "z", -2.0}};
    return t;
  }
  // Choice 0 generated "Hi" (recorded for a non-streamed response of `d`) and ended with
  // `reason`.
  void finish(const Dialect& d, FinishReason reason, const std::string& stop_sequence = "") {
    ChoiceState& c = state_.choices[0];
    c = ChoiceState{};
    for (const TokenChunk& t : {token("H", 1), token("i", 2)}) {
      d.record_token(state_, 0, t, c.text.size());
      c.text += t.text;
      ++c.num_tokens;
    }
    c.meta.emplace();
    c.meta->tokens_generated = 2;
    c.meta->prompt_tokens = 5;
    c.meta->cached_prompt_tokens = 3;
    c.meta->finish_reason = reason;
    c.meta->stop_sequence = stop_sequence;
  }

  GenerationRequest request_;
  GenerationState state_;
};

TEST_F(DialectTest, EachKindHasItsDialectAndIdPrefix) {
  EXPECT_EQ(dialect_for(ApiKind::kChat).kind(), ApiKind::kChat);
  EXPECT_EQ(dialect_for(ApiKind::kCompletion).kind(), ApiKind::kCompletion);
  EXPECT_EQ(dialect_for(ApiKind::kMessages).kind(), ApiKind::kMessages);
  EXPECT_STREQ(openai_chat_dialect().id_prefix(), "chatcmpl-");
  EXPECT_STREQ(openai_completions_dialect().id_prefix(), "cmpl-");
  EXPECT_STREQ(anthropic_messages_dialect().id_prefix(), "msg_");
}

TEST_F(DialectTest, ErrorsInEachApisShape) {
  ApiError e = make_error(429, ErrorCode::kCapacityExceeded, "busy");
  EXPECT_EQ(openai_chat_dialect().error_json(e)["error"]["type"], "rate_limit_error");
  EXPECT_EQ(openai_completions_dialect().error_json(e)["error"]["message"], "busy");
  json a = anthropic_messages_dialect().error_json(e);
  EXPECT_EQ(a["type"], "error");
  EXPECT_EQ(a["error"]["type"], "rate_limit_error");
}

TEST_F(DialectTest, ChatStreamsRoleThenDeltasThenFinishThenUsageAndDone) {
  const Dialect& d = openai_chat_dialect();
  request_.n = 2;
  request_.include_usage = true;
  state_.choices.resize(2);
  auto prologue = data_events(d.stream_prologue(state_));
  ASSERT_EQ(prologue.size(), 2u);
  EXPECT_EQ(prologue[1]["choices"][0]["index"], 1);
  EXPECT_EQ(prologue[0]["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(prologue[0]["object"], "chat.completion.chunk");
  EXPECT_TRUE(prologue[0].contains("usage") && prologue[0]["usage"].is_null());
  auto delta = data_events(d.stream_token(state_, 0, token("H", 1), 0));
  ASSERT_EQ(delta.size(), 1u);
  EXPECT_EQ(delta[0]["choices"][0]["delta"]["content"], "H");
  EXPECT_TRUE(delta[0]["choices"][0]["logprobs"].is_null());  // not asked for
  finish(d, FinishReason::kLength);
  auto end = data_events(d.stream_choice_end(state_, 0));
  EXPECT_EQ(end[0]["choices"][0]["finish_reason"], "length");
  auto epilogue = data_events(d.stream_epilogue(state_));
  ASSERT_EQ(epilogue.size(), 2u);
  EXPECT_EQ(epilogue[0]["usage"]["prompt_tokens"], 5);
  EXPECT_EQ(epilogue[0]["usage"]["completion_tokens"], 2);
  EXPECT_EQ(epilogue[0]["usage"]["prompt_tokens_details"]["cached_tokens"], 3);
  EXPECT_EQ(epilogue[1], "[DONE]");
}

TEST_F(DialectTest, ChatResponseWithLogprobs) {
  request_.params.logprobs = true;
  finish(openai_chat_dialect(), FinishReason::kStop);
  json r = json::parse(openai_chat_dialect().response(state_));
  EXPECT_EQ(r["object"], "chat.completion");
  EXPECT_EQ(r["id"], "id-1");
  EXPECT_EQ(r["choices"][0]["message"]["content"], "Hi");
  EXPECT_EQ(r["choices"][0]["finish_reason"], "stop");
  const json& lp = r["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(lp.size(), 2u);
  EXPECT_EQ(lp[1]["token"], "t2");  // the token's own text, from the engine
  EXPECT_EQ(lp[1]["bytes"], json::array({'t', '2'}));
  EXPECT_EQ(lp[1]["top_logprobs"][1]["token"], "z");
  EXPECT_EQ(r["usage"]["total_tokens"], 7);
}

TEST_F(DialectTest, ChatStreamsAFailedChoiceAsAnErrorEvent) {
  state_.choices[0].error = ErrorChunk{ErrorCode::kTimeout, "too slow", ""};
  auto events = data_events(openai_chat_dialect().stream_choice_end(state_, 0));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["error"]["type"], "timeout_error");
  EXPECT_EQ(state_.first_error()->http_status, 504);
}

TEST_F(DialectTest, CompletionsCarryTextAndOffsetLogprobs) {
  const Dialect& d = openai_completions_dialect();
  request_.completion_logprobs = 1;
  EXPECT_EQ(d.stream_prologue(state_), "");
  auto chunk = data_events(d.stream_token(state_, 0, token("i", 2), 1));
  EXPECT_EQ(chunk[0]["object"], "text_completion");
  EXPECT_EQ(chunk[0]["choices"][0]["text"], "i");
  EXPECT_EQ(chunk[0]["choices"][0]["logprobs"]["text_offset"], json::array({1}));
  finish(d, FinishReason::kStop);
  EXPECT_EQ(data_events(d.stream_choice_end(state_, 0))[0]["choices"][0]["text"], "");
  json r = json::parse(d.response(state_));
  EXPECT_EQ(r["choices"][0]["text"], "Hi");
  EXPECT_EQ(r["choices"][0]["logprobs"]["tokens"], json::array({"t1", "t2"}));
  EXPECT_EQ(r["choices"][0]["logprobs"]["text_offset"], json::array({0, 1}));
  EXPECT_EQ(r["choices"][0]["logprobs"]["top_logprobs"][0]["z"], -2.0);
  auto epilogue = data_events(d.stream_epilogue(state_));
  ASSERT_EQ(epilogue.size(), 1u);  // no usage chunk unless asked
  EXPECT_EQ(epilogue[0], "[DONE]");
}

TEST_F(DialectTest, MessagesStreamTheAnthropicEventSequence) {
  const Dialect& d = anthropic_messages_dialect();
  std::string sse = d.stream_prologue(state_);
  EXPECT_EQ(event_names(sse),
            (std::vector<std::string>{"message_start", "content_block_start", "ping"}));
  EXPECT_EQ(data_events(sse)[0]["message"]["usage"]["input_tokens"], 5);
  sse = d.stream_token(state_, 0, token("H", 1), 0);
  EXPECT_EQ(data_events(sse)[0]["delta"]["text"], "H");
  EXPECT_EQ(d.stream_token(state_, 0, token("", 3), 1), "");  // no empty deltas
  finish(d, FinishReason::kStop, "##");
  EXPECT_EQ(d.stream_choice_end(state_, 0), "");  // the epilogue carries the stop reason
  sse = d.stream_epilogue(state_);
  EXPECT_EQ(event_names(sse),
            (std::vector<std::string>{"content_block_stop", "message_delta", "message_stop"}));
  json delta = data_events(sse)[1];
  EXPECT_EQ(delta["delta"]["stop_reason"], "stop_sequence");
  EXPECT_EQ(delta["delta"]["stop_sequence"], "##");
  EXPECT_EQ(delta["usage"]["output_tokens"], 2);
}

TEST_F(DialectTest, MessagesResponseStopReasonsAndUsage) {
  const Dialect& d = anthropic_messages_dialect();
  finish(d, FinishReason::kStop);
  json r = json::parse(d.response(state_));
  EXPECT_EQ(r["type"], "message");
  EXPECT_EQ(r["content"][0]["text"], "Hi");
  EXPECT_EQ(r["stop_reason"], "end_turn");
  EXPECT_TRUE(r["stop_sequence"].is_null());
  EXPECT_EQ(r["usage"]["input_tokens"], 5);
  EXPECT_EQ(r["usage"]["output_tokens"], 2);
  EXPECT_EQ(r["usage"]["cache_read_input_tokens"], 3);
  finish(d, FinishReason::kLength);
  EXPECT_EQ(json::parse(d.response(state_))["stop_reason"], "max_tokens");
}

TEST_F(DialectTest, MessagesStreamAnErrorAsAnErrorEventAndNothingAfter) {
  const Dialect& d = anthropic_messages_dialect();
  state_.choices[0].error = ErrorChunk{ErrorCode::kCapacityExceeded, "full", ""};
  std::string sse = d.stream_choice_end(state_, 0);
  EXPECT_EQ(event_names(sse), std::vector<std::string>{"error"});
  EXPECT_EQ(data_events(sse)[0]["error"]["type"], "rate_limit_error");
  EXPECT_EQ(d.stream_epilogue(state_), "");
}

// Issue 21 item 3: Ollama streams NDJSON, one object per token, then a done object with the
// counts and durations (nanoseconds); errors are {"error": "..."}.
TEST_F(DialectTest, OllamaStreamsNdjsonLinesThenADoneLine) {
  const Dialect& d = ollama_chat_dialect();
  EXPECT_STREQ(d.stream_content_type(), "application/x-ndjson");
  EXPECT_EQ(d.stream_prologue(state_), "");
  std::string line = d.stream_token(state_, 0, token("H", 1), 0);
  ASSERT_EQ(line.back(), '\n');
  json j = json::parse(line);
  EXPECT_EQ(j["model"], "m");
  EXPECT_EQ(j["message"]["role"], "assistant");
  EXPECT_EQ(j["message"]["content"], "H");
  EXPECT_EQ(j["done"], false);
  EXPECT_TRUE(j["created_at"].get<std::string>().ends_with("Z"));
  finish(d, FinishReason::kLength);
  state_.choices[0].meta->total_time_ms = 10;
  state_.choices[0].meta->time_to_first_token_ms = 4;
  EXPECT_EQ(d.stream_choice_end(state_, 0), "");
  j = json::parse(d.stream_epilogue(state_));
  EXPECT_EQ(j["done"], true);
  EXPECT_EQ(j["done_reason"], "length");
  EXPECT_EQ(j["message"]["content"], "");
  EXPECT_EQ(j["eval_count"], 2);
  EXPECT_EQ(j["prompt_eval_count"], 5);
  EXPECT_EQ(j["total_duration"], 10000000);
  EXPECT_EQ(j["eval_duration"], 6000000);
  j = json::parse(d.response(state_));
  EXPECT_EQ(j["message"]["content"], "Hi");
  j = json::parse(ollama_generate_dialect().response(state_));
  EXPECT_EQ(j["response"], "Hi");
  EXPECT_FALSE(j.contains("message"));
  EXPECT_EQ(d.error_json(make_error(400, ErrorCode::kInvalidParams, "bad")),
            json({{"error", "bad"}}));
  state_.choices[0].error = ErrorChunk{ErrorCode::kCapacityExceeded, "full", ""};
  EXPECT_EQ(json::parse(d.stream_choice_end(state_, 0))["error"], "full");
  EXPECT_EQ(d.stream_epilogue(state_), "");
}

// Issue 21 item 3: the Responses API's event sequence, numbered, and the stored answer.
TEST_F(DialectTest, ResponsesStreamNumberedEventsAndStoreTheAnswer) {
  ResponseStore store(4);
  const ResponsesDialect d(store);
  state_.id = "resp_abc";
  request_.store = true;
  request_.conversation = {{"user", "Q"}};
  request_.echo = {{"instructions", "Be brief."}};
  std::string sse = d.stream_prologue(state_);
  EXPECT_EQ(data_events(sse)[0]["response"]["status"], "in_progress");
  sse += d.stream_token(state_, 0, token("H", 1), 0);
  sse += d.stream_token(state_, 0, token("i", 2), 1);
  finish(d, FinishReason::kStop);
  sse += d.stream_choice_end(state_, 0) + d.stream_epilogue(state_);
  EXPECT_EQ(event_names(sse),
            (std::vector<std::string>{"response.created", "response.in_progress",
                                      "response.output_item.added", "response.content_part.added",
                                      "response.output_text.delta", "response.output_text.delta",
                                      "response.output_text.done", "response.content_part.done",
                                      "response.output_item.done", "response.completed"}));
  auto events = data_events(sse);
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i]["sequence_number"], int(i));
  EXPECT_EQ(events[4]["item_id"], "msg_abc");
  json done = events.back()["response"];
  EXPECT_EQ(done["status"], "completed");
  EXPECT_EQ(done["output"][0]["content"][0]["text"], "Hi");
  EXPECT_EQ(done["usage"]["output_tokens"], 2);
  EXPECT_EQ(done["usage"]["input_tokens_details"]["cached_tokens"], 3);
  EXPECT_EQ(done["instructions"], "Be brief.");
  auto kept = store.get("resp_abc");
  ASSERT_TRUE(kept.has_value());
  ASSERT_EQ(kept->conversation.size(), 2u);
  EXPECT_EQ(kept->conversation[1].content, "Hi");
  EXPECT_EQ((*d.stored("resp_abc"))["status"], "completed");
  finish(d, FinishReason::kLength);
  json r = json::parse(d.response(state_));
  EXPECT_EQ(r["status"], "incomplete");
  EXPECT_EQ(r["incomplete_details"]["reason"], "max_output_tokens");
  request_.store = false;
  state_.id = "resp_other";
  d.response(state_);
  EXPECT_FALSE(store.get("resp_other").has_value());
}

// Issue 22, finding 7: a non-streamed response's logprobs are built as JSON text token by
// token. The whole body equals, member for member, what the former path built as one JSON tree
// (written out here for two tokens with two alternatives each).
TEST_F(DialectTest, IncrementalLogprobsEqualTheWholeTreeBody) {
  request_.params.logprobs = true;
  finish(openai_chat_dialect(), FinishReason::kStop);
  auto entry = [](const std::string& text, const std::string& alt_text) {
    json top = json::array();
    for (auto [t, lp] : {std::pair<std::string, double>{alt_text, -0.5}, {"z", -2.0}}) {
      json bytes = json::array();
      for (unsigned char ch : t) bytes.push_back(int(ch));
      top.push_back({{"token", t}, {"logprob", lp}, {"bytes", bytes}});
    }
    json bytes = json::array();
    for (unsigned char ch : text) bytes.push_back(int(ch));
    return json{{"token", text}, {"logprob", -0.5}, {"bytes", bytes}, {"top_logprobs", top}};
  };
  json expected = {
      {"id", "id-1"},
      {"object", "chat.completion"},
      {"created", 1700000000},
      {"model", "m"},
      {"choices",
       {{{"index", 0},
         {"message", {{"role", "assistant"}, {"content", "Hi"}, {"refusal", nullptr}}},
         {"logprobs", {{"content", {entry("t1", "H"), entry("t2", "i")}}, {"refusal", nullptr}}},
         {"finish_reason", "stop"}}}},
      {"usage",
       {{"prompt_tokens", 5},
        {"completion_tokens", 2},
        {"total_tokens", 7},
        {"prompt_tokens_details", {{"cached_tokens", 3}}}}}};
  EXPECT_EQ(json::parse(openai_chat_dialect().response(state_)), expected);

  const Dialect& d = openai_completions_dialect();
  request_.params.logprobs = false;
  request_.completion_logprobs = 2;
  finish(d, FinishReason::kLength);
  json top1 = {{"H", -0.5}, {"z", -2.0}}, top2 = {{"i", -0.5}, {"z", -2.0}};
  EXPECT_EQ(json::parse(d.response(state_))["choices"][0], (json{{"text", "Hi"},
                                                                 {"index", 0},
                                                                 {"logprobs",
                                                                  {{"tokens", {"t1", "t2"}},
                                                                   {"token_logprobs", {-0.5, -0.5}},
                                                                   {"top_logprobs", {top1, top2}},
                                                                   {"text_offset", {0, 1}}}},
                                                                 {"finish_reason", "length"}}));
  // No logprobs asked: null, and nothing is kept per token.
  request_.completion_logprobs = -1;
  finish(d, FinishReason::kLength);
  EXPECT_TRUE(state_.choices[0].logprobs.empty());
  EXPECT_TRUE(json::parse(d.response(state_))["choices"][0]["logprobs"].is_null());
}

// Issue 22, finding 7: what a choice holds for its response is about the size of the JSON it
// becomes (it used to keep every token and its alternatives as C++ structures, then a JSON tree,
// then the text: several times the body). 2,000 tokens with 20 alternatives each.
TEST_F(DialectTest, RecordedLogprobsCostAboutTheirJsonSize) {
  request_.params.logprobs = true;
  request_.params.top_logprobs = 20;
  ChoiceState& c = state_.choices[0];
  TokenChunk t = token("ab", 1);
  t.top_logprobs.clear();
  for (int i = 0; i < 20; ++i) t.top_logprobs.push_back({i, "alt" + std::to_string(i), -1.25});
  for (int i = 0; i < 2000; ++i) {
    openai_chat_dialect().record_token(state_, 0, t, c.text.size());
    c.text += t.text;
    ++c.num_tokens;
  }
  c.meta.emplace();
  const std::string body = openai_chat_dialect().response(state_);
  size_t held = c.text.capacity();
  for (const auto& part : c.logprobs) held += part.capacity();
  EXPECT_GT(body.size(), 2000u * 20 * 30);  // the alternatives are all there
  EXPECT_LE(held, 2 * body.size());
  EXPECT_EQ(json::parse(body)["choices"][0]["logprobs"]["content"].size(), 2000u);
  EXPECT_EQ(c.bytes(), c.text.size() + c.logprobs[0].size());
}

// Tool calls: the output of a model offered tools (the Hermes format), in each API's shape.
class ToolDialectTest : public DialectTest {
 protected:
  static constexpr const char* kOutput =
      "Checking.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
      "\"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": "
      "{}}\n</tool_call>";
  ToolDialectTest() { request_.tool_call_format = ToolCallFormat::kHermes; }
  // kOutput streamed through `d` in pieces of 7 bytes (the SSE text), then choice 0 stopped.
  std::string stream(const Dialect& d) {
    request_.stream = true;
    ChoiceState& c = state_.choices[0];
    c.tool_stream = std::make_unique<ToolCallStream>(ToolCallFormat::kHermes);
    std::string sse = d.stream_prologue(state_);
    const std::string text = kOutput;
    for (size_t at = 0; at < text.size(); at += 7) {
      const TokenChunk t = token(text.substr(at, 7), 1);
      sse += d.stream_token(state_, 0, t, c.text.size());
      c.text += t.text;
    }
    stop();
    return sse + d.stream_choice_end(state_, 0) + d.stream_epilogue(state_);
  }
  void stop() {
    ChoiceState& c = state_.choices[0];
    c.meta.emplace();
    c.meta->finish_reason = FinishReason::kStop;
  }
};

TEST_F(ToolDialectTest, ChatResponseCarriesToolCallsAndFinishReasonToolCalls) {
  state_.choices[0].text = kOutput;
  stop();
  json r = json::parse(openai_chat_dialect().response(state_));
  const json& choice = r["choices"][0];
  EXPECT_EQ(choice["finish_reason"], "tool_calls");
  EXPECT_EQ(choice["message"]["content"], "Checking.");
  const json& calls = choice["message"]["tool_calls"];
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0]["type"], "function");
  EXPECT_EQ(calls[0]["id"].get<std::string>().rfind("call_", 0), 0u);
  EXPECT_EQ(calls[0]["function"]["name"], "get_weather");
  EXPECT_EQ(calls[0]["function"]["arguments"], R"({"city":"Paris"})");
  EXPECT_EQ(calls[1]["function"]["name"], "get_time");
  request_.parallel_tool_calls = false;
  r = json::parse(openai_chat_dialect().response(state_));
  EXPECT_EQ(r["choices"][0]["message"]["tool_calls"].size(), 1u);
}

TEST_F(ToolDialectTest, ChatStreamsToolCallDeltasAsOpenAIDoes) {
  std::string content;
  std::vector<json> deltas;
  std::string finish;
  for (const json& e : data_events(stream(openai_chat_dialect()))) {
    if (e == "[DONE]") continue;
    const json& choice = e["choices"][0];
    if (choice["delta"].contains("content")) content += choice["delta"]["content"];
    if (choice["delta"].contains("tool_calls")) deltas.push_back(choice["delta"]["tool_calls"][0]);
    if (!choice["finish_reason"].is_null()) finish = choice["finish_reason"];
  }
  EXPECT_EQ(content, "Checking.");
  EXPECT_EQ(finish, "tool_calls");
  ASSERT_EQ(deltas.size(), 4u);  // per call: index, id, type and name; then the arguments
  EXPECT_EQ(deltas[0]["index"], 0);
  EXPECT_EQ(deltas[0]["type"], "function");
  EXPECT_EQ(deltas[0]["function"]["name"], "get_weather");
  EXPECT_EQ(deltas[0]["function"]["arguments"], "");
  EXPECT_FALSE(deltas[1].contains("id"));
  EXPECT_EQ(deltas[1]["index"], 0);
  EXPECT_EQ(deltas[1]["function"]["arguments"], R"({"city":"Paris"})");
  EXPECT_EQ(deltas[2]["index"], 1);
  EXPECT_EQ(deltas[2]["function"]["name"], "get_time");
  EXPECT_NE(deltas[0]["id"], deltas[2]["id"]);
}

TEST_F(ToolDialectTest, MessagesResponseHasToolUseBlocks) {
  state_.choices[0].text = kOutput;
  stop();
  json r = json::parse(anthropic_messages_dialect().response(state_));
  EXPECT_EQ(r["stop_reason"], "tool_use");
  ASSERT_EQ(r["content"].size(), 3u);
  EXPECT_EQ(r["content"][0], json({{"type", "text"}, {"text", "Checking."}}));
  EXPECT_EQ(r["content"][1]["type"], "tool_use");
  EXPECT_EQ(r["content"][1]["id"].get<std::string>().rfind("toolu_", 0), 0u);
  EXPECT_EQ(r["content"][1]["name"], "get_weather");
  EXPECT_EQ(r["content"][1]["input"], json({{"city", "Paris"}}));
  EXPECT_EQ(r["content"][2]["input"], json::object());
}

TEST_F(ToolDialectTest, MessagesStreamToolUseBlocksWithInputJsonDeltas) {
  const std::string sse = stream(anthropic_messages_dialect());
  std::vector<json> events = data_events(sse);
  std::vector<std::string> names = event_names(sse);
  std::vector<std::string> expected = {"message_start",       "ping",
                                       "content_block_start", "content_block_delta",
                                       "content_block_stop",  "content_block_start",
                                       "content_block_delta", "content_block_stop",
                                       "content_block_start", "content_block_delta",
                                       "content_block_stop",  "message_delta",
                                       "message_stop"};
  // The text block may come in several deltas: fold them.
  std::vector<std::string> folded;
  std::string text;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == "content_block_delta" && events[i]["delta"]["type"] == "text_delta") {
      text += events[i]["delta"]["text"];
      if (!folded.empty() && folded.back() == "content_block_delta") continue;
    }
    folded.push_back(names[i]);
  }
  EXPECT_EQ(folded, expected);
  EXPECT_EQ(text, "Checking.");
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == "content_block_start" && events[i]["content_block"]["type"] == "tool_use") {
      EXPECT_EQ(events[i]["content_block"]["input"], json::object());
      EXPECT_EQ(events[i + 1]["delta"]["type"], "input_json_delta");
      EXPECT_EQ(events[i + 1]["index"], events[i]["index"]);
    }
  }
  EXPECT_EQ(events[names.size() - 2]["delta"]["stop_reason"], "tool_use");
}

}  // namespace
}  // namespace mlxs::server
