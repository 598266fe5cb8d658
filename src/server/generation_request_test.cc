#include "server/generation_request.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "server/http_server.h"
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
