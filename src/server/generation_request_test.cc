#include "server/generation_request.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "server/dialect.h"
#include "server/http_server.h"
#include "server/responses_dialect.h"
#include "server/server_test_support.h"

namespace mlxs::server {
namespace {

using json = nlohmann::json;

class GenerationRequestTest : public test_support::DefaultModelSuite {
 protected:
  std::variant<GenerationRequest, ApiError> parse(ApiKind kind, const json& body) {
    return parse_generation_request(
        kind, body, [](const std::string& id) { return id == "default" ? model_ : nullptr; },
        *engine_);
  }
  ApiError error_of(ApiKind kind, const json& body) {
    auto r = parse(kind, body);
    EXPECT_TRUE(std::holds_alternative<ApiError>(r));
    return std::holds_alternative<ApiError>(r) ? std::get<ApiError>(r) : ApiError{};
  }
  GenerationRequest ok(ApiKind kind, const json& body) {
    auto r = parse(kind, body);
    if (auto* e = std::get_if<ApiError>(&r)) ADD_FAILURE() << e->message;
    return std::holds_alternative<GenerationRequest>(r) ? std::get<GenerationRequest>(r)
                                                        : GenerationRequest{};
  }
};

const json kChat = {{"model", "default"}, {"messages", {{{"role", "user"}, {"content", "Hi"}}}}};

TEST_F(GenerationRequestTest, ChatRendersTheTemplateWithoutBosAndStopsAtEndOfTurn) {
  GenerationRequest g = ok(ApiKind::kChat, kChat);
  auto expected = engine_->tokenize(
      "default", "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", false);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(std::get<PromptTokens>(g.params.prompt).tokens, expected->tokens);
  EXPECT_EQ(g.num_prompt_tokens, int(expected->tokens.size()));
  auto im_end = engine_->tokenize("default", "<|im_end|>", false);
  ASSERT_EQ(im_end->tokens.size(), 1u);
  EXPECT_NE(
      std::find(g.params.stop_token_ids.begin(), g.params.stop_token_ids.end(), im_end->tokens[0]),
      g.params.stop_token_ids.end());
}

TEST_F(GenerationRequestTest, ChatFields) {
  json body = kChat;
  body.update({{"n", 3},
               {"seed", 9},
               {"stop", "x"},
               {"max_completion_tokens", 7},
               {"logprobs", true},
               {"top_logprobs", 2},
               {"temperature", 0.5},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}},
               {"user", "u"},
               {"top_p", nullptr}});
  GenerationRequest g = ok(ApiKind::kChat, body);
  EXPECT_EQ(g.n, 3);
  EXPECT_EQ(g.params.seed, 9u);
  EXPECT_EQ(g.params.stop_sequences, std::vector<std::string>{"x"});
  EXPECT_EQ(g.params.max_tokens, 7);
  EXPECT_TRUE(g.params.logprobs);
  EXPECT_EQ(g.params.top_logprobs, 2);
  EXPECT_EQ(g.params.temperature, 0.5);
  EXPECT_FALSE(g.params.top_p.has_value());
  EXPECT_TRUE(g.stream);
  EXPECT_TRUE(g.include_usage);
}

TEST_F(GenerationRequestTest, RefusalsNameTheField) {
  json body = kChat;
  body["tools"] = json::array({{{"type", "function"}}});
  EXPECT_EQ(error_of(ApiKind::kChat, body).param, "tools[0].function");
  body = kChat;
  body["temperature"] = 3;
  ApiError e = error_of(ApiKind::kChat, body);
  EXPECT_EQ(e.param, "temperature");
  EXPECT_NE(e.message.find("must be >= 0 and <= 2, got 3"), std::string::npos);
  body = kChat;
  body["model"] = "other";
  EXPECT_EQ(error_of(ApiKind::kChat, body).http_status, 404);
  body = kChat;
  body["messages"][0]["content"] = json::array({{{"type", "image_url"}, {"image_url", "x"}}});
  EXPECT_EQ(error_of(ApiKind::kChat, body).param, "messages.0.content.0.type");
  body = kChat;
  body["stop"] = json::array({""});
  e = error_of(ApiKind::kChat, body);
  EXPECT_EQ(e.param, "stop[0]");
  EXPECT_NE(e.message.find("field 'stop[0]'"), std::string::npos) << e.message;
}

// Issue 21 item 6: a prompt over the context was a 400 with `code: null`; OpenAI sends
// `context_length_exceeded` (LangChain's trimming relies on it), Anthropic "prompt is too long".
TEST_F(GenerationRequestTest, PromptOverTheContextIsContextLengthExceeded) {
  const int ctx = model_->context_length;
  json body = {
      {"model", "default"}, {"prompt", std::vector<int>(size_t(ctx), 5)}, {"max_tokens", 1}};
  ApiError e = error_of(ApiKind::kCompletion, body);
  EXPECT_EQ(e.http_status, 400);
  EXPECT_EQ(e.param, "prompt");
  EXPECT_EQ(e.openai_json()["error"]["code"], "context_length_exceeded");
  EXPECT_NE(e.message.find("maximum context length is " + std::to_string(ctx)), std::string::npos)
      << e.message;
  body["prompt"] = std::vector<int>(size_t(ctx - 1), 5);
  ok(ApiKind::kCompletion, body);
  std::string text;
  for (int i = 0; i < ctx; ++i) text += " hello";
  e = error_of(ApiKind::kChat,
               {{"model", "default"}, {"messages", {{{"role", "user"}, {"content", text}}}}});
  EXPECT_EQ(e.code, "context_length_exceeded");
  EXPECT_EQ(e.param, "messages");
  json anthropic = {{"model", "default"},
                    {"max_tokens", 5},
                    {"messages", {{{"role", "user"}, {"content", text}}}}};
  e = error_of(ApiKind::kMessages, anthropic);
  EXPECT_EQ(e.anthropic_json()["error"]["type"], "invalid_request_error");
  EXPECT_TRUE(e.message.starts_with("prompt is too long: ")) << e.message;
  anthropic["messages"][0]["content"] = "Hi";
  anthropic["max_tokens"] = ctx;
  e = error_of(ApiKind::kMessages, anthropic);
  EXPECT_EQ(e.code, "context_length_exceeded");
  EXPECT_NE(e.message.find("exceed context limit"), std::string::npos) << e.message;
}

// Issue 21 item 6: the current chat-completions fields were refused as unknown.
TEST_F(GenerationRequestTest, CurrentOpenAIChatFieldsAreAcceptedOrRefusedByName) {
  json body = kChat;
  body.update({{"prompt_cache_key", "k"},
               {"prompt_cache_retention", "24h"},
               {"safety_identifier", "s"},
               {"verbosity", nullptr},
               {"store", true},
               {"metadata", {{"a", "b"}}},
               {"service_tier", "auto"},
               {"modalities", {"text"}},
               {"prediction", {{"type", "content"}, {"content", "Hi"}}},
               {"reasoning_effort", nullptr},
               {"user", "u"}});
  ok(ApiKind::kChat, body);
  body["verbosity"] = "medium";
  ok(ApiKind::kChat, body);
  const std::vector<std::pair<std::string, json>> refused = {
      {"verbosity", "low"},
      {"audio", {{"voice", "alloy"}, {"format", "mp3"}}},
      {"web_search_options", json::object()},
      {"reasoning_effort", "low"},
      {"modalities", {"text", "audio"}},
      {"logit_bias", {{"5", 10}}},
      {"prompt_cache_key", 5},
      {"store", "yes"},
      {"prediction", "x"}};
  for (const auto& [field, value] : refused) {
    json b = kChat;
    b[field] = value;
    EXPECT_EQ(error_of(ApiKind::kChat, b).param, field) << field;
  }
}

const json kMessagesBody = {
    {"model", "default"}, {"max_tokens", 4}, {"messages", {{{"role", "user"}, {"content", "Hi"}}}}};

TEST_F(GenerationRequestTest, CurrentAnthropicFieldsAreAcceptedOrRefusedByName) {
  json body = kMessagesBody;
  body.update({{"thinking", {{"type", "disabled"}}},
               {"service_tier", "auto"},
               {"inference_geo", "us"},
               {"metadata", {{"user_id", "u"}}},
               {"cache_control", {{"type", "ephemeral"}}},
               {"output_config", {{"effort", "high"}}}});
  EXPECT_FALSE(ok(ApiKind::kMessages, body).params.structured.has_value());
  body["output_format"] = {{"type", "json_schema"},
                           {"schema", {{"type", "object"}, {"properties", json::object()}}}};
  EXPECT_TRUE(ok(ApiKind::kMessages, body).params.structured.has_value());
  const std::vector<std::pair<std::string, json>> refused = {
      {"thinking", {{"type", "enabled"}, {"budget_tokens", 1024}}},
      {"container", "c"},
      {"mcp_servers", {{{"type", "url"}, {"url", "https://x"}, {"name", "x"}}}},
      {"context_management", {{"edits", json::array({{{"type", "clear_tool_uses_20250919"}}})}}},
      {"output_format", {{"type", "text"}}}};
  for (const auto& [field, value] : refused) {
    json b = kMessagesBody;
    b[field] = value;
    EXPECT_EQ(error_of(ApiKind::kMessages, b).param, field) << field;
  }
  json b = kMessagesBody;
  b["output_config"] = {{"effort", "low"}};
  EXPECT_EQ(error_of(ApiKind::kMessages, b).param, "output_config.effort");
}

TEST_F(GenerationRequestTest, AnthropicCountTokensIsThePromptOfTheMessagesRequest) {
  auto lookup = [](const std::string& id) { return id == "default" ? model_ : nullptr; };
  json body = kMessagesBody;
  body["system"] = "Be brief.";
  const int expected = ok(ApiKind::kMessages, body).num_prompt_tokens;
  body.erase("max_tokens");
  auto n = anthropic_count_tokens(body, lookup, *engine_);
  ASSERT_TRUE(std::holds_alternative<int32_t>(n)) << std::get<ApiError>(n).message;
  EXPECT_EQ(std::get<int32_t>(n), expected);
  body["max_tokens"] = 4;  // not a field of count_tokens
  n = anthropic_count_tokens(body, lookup, *engine_);
  ASSERT_TRUE(std::holds_alternative<ApiError>(n));
  EXPECT_EQ(std::get<ApiError>(n).param, "max_tokens");
}

// Issue 21 item 3: Ollama's options map to the engine's knobs; the rest is refused by name.
TEST_F(GenerationRequestTest, OllamaChatOptionsFormatAndRefusals) {
  const json messages = {{{"role", "user"}, {"content", "Hi"}}};
  json body = {{"model", "default:latest"},
               {"messages", messages},
               {"options",
                {{"temperature", 0.5},
                 {"num_predict", 7},
                 {"top_k", 3},
                 {"seed", 4},
                 {"repeat_penalty", 1.1},
                 {"stop", {"x"}},
                 {"num_ctx", 4096}}},
               {"format", "json"},
               {"keep_alive", "5m"},
               {"think", false}};
  GenerationRequest g = ok(ApiKind::kOllamaChat, body);
  EXPECT_TRUE(g.stream);  // Ollama streams unless told not to
  EXPECT_EQ(g.params.model, "default");
  EXPECT_EQ(g.params.temperature, 0.5);
  EXPECT_EQ(g.params.max_tokens, 7);
  EXPECT_EQ(g.params.top_k, 3);
  EXPECT_EQ(g.params.seed, 4u);
  EXPECT_EQ(g.params.repetition_penalty, 1.1);
  EXPECT_EQ(g.params.stop_sequences, std::vector<std::string>{"x"});
  EXPECT_TRUE(g.params.structured.has_value());
  EXPECT_EQ(g.num_prompt_tokens, ok(ApiKind::kChat, kChat).num_prompt_tokens);
  const std::vector<std::pair<std::string, json>> refused = {
      {"options", {{"mirostat", 2}}},
      {"think", true},
      {"format", "yaml"},
      {"messages", {{{"role", "user"}, {"content", "Hi"}, {"images", {"aGk="}}}}}};
  const std::vector<std::string> params = {"options.mirostat", "think", "format",
                                           "messages.0.images"};
  for (size_t i = 0; i < refused.size(); ++i) {
    json b = body;
    b[refused[i].first] = refused[i].second;
    EXPECT_EQ(error_of(ApiKind::kOllamaChat, b).param, params[i]);
  }
}

TEST_F(GenerationRequestTest, OllamaGenerateTemplatedOrRaw) {
  json body = {{"model", "default"}, {"prompt", "Hi"}, {"stream", false}};
  GenerationRequest g = ok(ApiKind::kOllamaGenerate, body);
  EXPECT_FALSE(g.stream);
  EXPECT_EQ(std::get<PromptTokens>(g.params.prompt).tokens,
            std::get<PromptTokens>(ok(ApiKind::kChat, kChat).params.prompt).tokens);
  body["raw"] = true;
  g = ok(ApiKind::kOllamaGenerate, body);
  EXPECT_EQ(std::get<PromptTokens>(g.params.prompt).tokens,
            engine_->tokenize("default", "Hi", true)->tokens);
  EXPECT_TRUE(g.params.stop_token_ids.empty());  // no template: no end-of-turn stop
  body["system"] = "Be brief.";
  EXPECT_EQ(error_of(ApiKind::kOllamaGenerate, body).param, "system");
  body.erase("raw");
  for (const char* field : {"template", "suffix", "context"}) {
    json b = body;
    b[field] = field == std::string("context") ? json({1, 2}) : json("x");
    EXPECT_EQ(error_of(ApiKind::kOllamaGenerate, b).param, field);
  }
}

// Issue 21 item 3: the Responses API's request: input and instructions through the template,
// previous_response_id from the store, the refused fields named.
TEST_F(GenerationRequestTest, ResponsesInputInstructionsAndPreviousResponse) {
  json body = {{"model", "default"}, {"input", "Hi"}, {"max_output_tokens", 9}};
  GenerationRequest g = ok(ApiKind::kResponses, body);
  EXPECT_EQ(g.params.max_tokens, 9);
  EXPECT_EQ(g.num_prompt_tokens, ok(ApiKind::kChat, kChat).num_prompt_tokens);
  EXPECT_EQ(g.echo["max_output_tokens"], 9);
  body["instructions"] = "Be brief.";
  json chat = kChat;
  const json system = {{"role", "system"}, {"content", "Be brief."}};
  chat["messages"].insert(chat["messages"].begin(), system);
  EXPECT_EQ(ok(ApiKind::kResponses, body).num_prompt_tokens,
            ok(ApiKind::kChat, chat).num_prompt_tokens);
  body["text"] = {
      {"format", {{"type", "json_schema"}, {"name", "a"}, {"schema", {{"type", "object"}}}}}};
  EXPECT_TRUE(ok(ApiKind::kResponses, body).params.structured.has_value());
  body["previous_response_id"] = "resp_1";
  ApiError e = error_of(ApiKind::kResponses, body);  // no store here
  EXPECT_EQ(e.param, "previous_response_id");
  EXPECT_EQ(e.code, "previous_response_not_found");
  ResponseStore store(2);
  store.put("resp_1", {"default", {{"user", "Q"}, {"assistant", "A"}}, json::object()});
  const ResponsesDialect d(store);
  auto parsed = d.parse(
      body, [](const std::string& id) { return id == "default" ? model_ : nullptr; }, *engine_);
  ASSERT_TRUE(std::holds_alternative<GenerationRequest>(parsed))
      << std::get<ApiError>(parsed).message;
  EXPECT_EQ(std::get<GenerationRequest>(parsed).conversation.size(), 3u);
  EXPECT_EQ(std::get<GenerationRequest>(parsed).echo["previous_response_id"], "resp_1");
  const std::vector<std::pair<std::string, json>> refused = {
      {"tools", {{{"type", "function"}, {"name", "f"}}}},
      {"include", {"message.output_text.logprobs"}},
      {"background", true},
      {"truncation", "auto"},
      {"input", {{{"type", "input_image"}}}}};
  for (const auto& [field, value] : refused) {
    json b = {{"model", "default"}, {"input", "Hi"}};
    b[field] = value;
    EXPECT_EQ(error_of(ApiKind::kResponses, b).param.substr(0, field.size()), field) << field;
  }
  json b = {{"model", "default"}, {"input", "Hi"}, {"reasoning", {{"effort", "low"}}}};
  EXPECT_EQ(error_of(ApiKind::kResponses, b).param, "reasoning.effort");
}

TEST_F(GenerationRequestTest, CompletionPromptForms) {
  GenerationRequest g =
      ok(ApiKind::kCompletion, {{"model", "default"}, {"prompt", "Hello"}, {"logprobs", 3}});
  auto expected = engine_->tokenize("default", "Hello", true);
  EXPECT_EQ(std::get<PromptTokens>(g.params.prompt).tokens, expected->tokens);
  EXPECT_EQ(g.params.max_tokens, 16);  // OpenAI's default for completions
  EXPECT_EQ(g.completion_logprobs, 3);
  EXPECT_EQ(g.params.top_logprobs, 3);
  g = ok(ApiKind::kCompletion, {{"model", "default"}, {"prompt", {5, 6, 7}}});
  EXPECT_EQ(std::get<PromptTokens>(g.params.prompt).tokens, (std::vector<int32_t>{5, 6, 7}));
  EXPECT_EQ(error_of(ApiKind::kCompletion, {{"model", "default"}, {"prompt", {"a", "b"}}}).param,
            "prompt");
  EXPECT_EQ(
      error_of(ApiKind::kCompletion, {{"model", "default"}, {"prompt", "a"}, {"echo", true}}).param,
      "echo");
}

TEST_F(GenerationRequestTest, IgnoreEosReachesTheEngineAndIsTypeChecked) {
  EXPECT_FALSE(ok(ApiKind::kCompletion, {{"model", "default"}, {"prompt", "a"}}).params.ignore_eos);
  EXPECT_TRUE(
      ok(ApiKind::kCompletion, {{"model", "default"}, {"prompt", "a"}, {"ignore_eos", true}})
          .params.ignore_eos);
  EXPECT_TRUE(ok(ApiKind::kChat, {{"model", "default"},
                                  {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                                  {"ignore_eos", true}})
                  .params.ignore_eos);
  EXPECT_EQ(
      error_of(ApiKind::kCompletion, {{"model", "default"}, {"prompt", "a"}, {"ignore_eos", "yes"}})
          .param,
      "ignore_eos");
}

TEST_F(GenerationRequestTest, MessagesNeedMaxTokensAndContinueAPrefill) {
  json body = {{"model", "default"}, {"messages", {{{"role", "user"}, {"content", "Hi"}}}}};
  EXPECT_EQ(error_of(ApiKind::kMessages, body).param, "max_tokens");
  body["max_tokens"] = 5;
  body["system"] = json::array({{{"type", "text"}, {"text", "Be brief."}}});
  body["messages"].push_back({{"role", "assistant"}, {"content", "Well,"}});
  body["stop_sequences"] = {"."};
  GenerationRequest g = ok(ApiKind::kMessages, body);
  auto expected = engine_->tokenize(
      "default",
      "<|im_start|>system\nBe "
      "brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nWell,",
      false);
  EXPECT_EQ(std::get<PromptTokens>(g.params.prompt).tokens, expected->tokens);
  EXPECT_EQ(g.params.stop_sequences, std::vector<std::string>{"."});
  body["n"] = 2;  // not an Anthropic field
  EXPECT_EQ(error_of(ApiKind::kMessages, body).param, "n");
}

}  // namespace
}  // namespace mlxs::server

namespace mlxs::server {
namespace {

// Regression (security audit, finding 9): a corrupt tokenizer.json or a chat template with a
// syntax error was dropped at load; the server reported healthy and every request then failed
// with a misleading "no tokenizer" / "no chat template". Now the load fails naming the file.
class BrokenModelFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mlxs_broken_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    const auto src = std::filesystem::path(MLXS_SOURCE_DIR) / "models" / "default";
    for (const auto& f : std::filesystem::directory_iterator(src))
      std::filesystem::copy(f.path(), dir_ / f.path().filename(),
                            std::filesystem::copy_options::overwrite_existing);
    auto e = create_engine({});
    ASSERT_TRUE(e.ok());
    engine_ = std::move(*e);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  Result<ModelHandle> load() {
    LoadModelOptions lo;
    lo.model = "broken";
    lo.local_path = dir_.string();
    return engine_->load_model(lo);
  }
  std::filesystem::path dir_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(BrokenModelFolder, ACorruptTokenizerFailsTheLoad) {
  std::ofstream(dir_ / "tokenizer.json") << R"({"model": {"type": "BPE", "vocab": )";
  auto h = load();
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.status().message().find("tokenizer.json"), std::string::npos) << h.status().message();
}

// The engine reads the chat template at load (the server asks it, never the folder).
TEST_F(BrokenModelFolder, AChatTemplateWithASyntaxErrorIsNotServed) {
  std::ofstream(dir_ / "tokenizer_config.json")
      << R"({"chat_template": "{% for m in messages %}{{ m.content }", "eos_token": "</s>"})";
  auto h = load();
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.status().message().find("chat template"), std::string::npos) << h.status().message();
  // Without a chat template at all the model serves completions only.
  std::ofstream(dir_ / "tokenizer_config.json") << R"({"eos_token": "</s>"})";
  auto plain = load();
  ASSERT_TRUE(plain.ok()) << plain.status().to_string();
  EXPECT_FALSE(plain->has_chat_template);
  EXPECT_FALSE(served_model_of(*plain).has_chat_template);
}

}  // namespace
}  // namespace mlxs::server
