// The chat format through the Engine: the template, the end-of-turn ids and the handle's flag
// come from the model folder at load; the server never reads the folder itself.
#include "engine/chat_format.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace mlxs {
namespace {

const std::string kDefaultModel =
    (std::filesystem::path(MLXS_SOURCE_DIR) / "models" / "default").string();

TEST(ChatFormat, TheEngineRendersTheModelsTemplateAndNamesItsEndOfTurn) {
  auto engine = create_engine({});
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  LoadModelOptions lo;
  lo.model = "default";
  lo.local_path = kDefaultModel;
  auto h = (*engine)->load_model(lo);
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  EXPECT_TRUE(h->has_chat_template);
  auto im_end = (*engine)->tokenize("default", "<|im_end|>", false);
  ASSERT_TRUE(im_end.ok());
  EXPECT_EQ(h->end_of_turn_ids, im_end->tokens);  // the only marker this vocabulary has
  EXPECT_EQ((*engine)->get_model_info("default")->end_of_turn_ids, im_end->tokens);
  auto text = (*engine)->apply_chat_template("default", {{"system", "Be brief."}, {"user", "Hi"}});
  ASSERT_TRUE(text.ok()) << text.status().to_string();
  EXPECT_EQ(*text,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ((*engine)->apply_chat_template("other", {}).status().code(),
            ErrorCode::kModelNotLoaded);
}

TEST(ChatFormat, AFolderWithoutTokenizerConfigHasNoTemplate) {
  auto f = ChatFormat::load("m", "/nonexistent-folder", nullptr, {});
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_FALSE(f->has_template());
  EXPECT_TRUE(f->end_of_turn_ids().empty());
  EXPECT_EQ(f->render({{"user", "Hi"}}).status().code(), ErrorCode::kInvalidRequest);
}

const std::string kFixtures =
    (std::filesystem::path(MLXS_SOURCE_DIR) / ".fixtures" / "tokenizers").string();

// The fixture's chat template; "" for one without (a base model's tokenizer).
std::string chat_template_of(const std::string& fixture) {
  auto cfg = read_tokenizer_chat_config(kFixtures + "/" + fixture);
  if (!cfg.ok()) EXPECT_EQ(cfg.status().code(), ErrorCode::kNotFound) << fixture;
  return cfg.ok() ? cfg->chat_template : "";
}

TEST(ChatFormat, TheToolCallFormatComesFromTheTemplatesMarkers) {
  EXPECT_TRUE(template_renders_tools(chat_template_of("qwen3")));
  EXPECT_EQ(detect_tool_call_format(chat_template_of("qwen3")), ToolCallFormat::kHermes);
  for (const char* fixture : {"llama2", "llama3", "llama3_1", "gemma3"}) {
    EXPECT_FALSE(template_renders_tools(chat_template_of(fixture))) << fixture;
    EXPECT_EQ(detect_tool_call_format(chat_template_of(fixture)), ToolCallFormat::kNone);
  }
  // The shapes of the Llama 3.1 and Mistral templates, reduced to what the detection reads.
  EXPECT_EQ(detect_tool_call_format("{% if tools %}<|start_header_id|>{{ '\"parameters\": ' }}"
                                    "{% endif %}"),
            ToolCallFormat::kLlama3Json);
  EXPECT_EQ(detect_tool_call_format("{% if tools %}<|python_tag|>{% endif %}"),
            ToolCallFormat::kLlama3Json);
  EXPECT_EQ(detect_tool_call_format("{% for t in tools %}[AVAILABLE_TOOLS]{% endfor %}"
                                    "{{ '[TOOL_CALLS]' }}"),
            ToolCallFormat::kMistral);
  // `tools` inside a string is no use of the variable; an unknown format is kNone.
  EXPECT_FALSE(template_renders_tools("{{ 'no tools here' }}<tool_call>"));
  EXPECT_TRUE(template_renders_tools("{% if tools %}{{ tools | tojson }}{% endif %}"));
  EXPECT_EQ(detect_tool_call_format("{% if tools %}{{ tools | tojson }}{% endif %}"),
            ToolCallFormat::kNone);
}

// Qwen3's own template renders the tools, an assistant's calls and a tool's result.
TEST(ChatFormat, ToolsAndToolCallsReachTheTemplateAsTransformersPassesThem) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("mlxs_chat_format_tools_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(kFixtures + "/qwen3/tokenizer_config.json",
                             dir / "tokenizer_config.json",
                             std::filesystem::copy_options::overwrite_existing);
  auto f = ChatFormat::load("qwen", dir.string(), nullptr, {});
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_TRUE(f->renders_tools());
  EXPECT_EQ(f->tool_call_format(), ToolCallFormat::kHermes);

  std::vector<ToolDefinition> tools = {
      {"get_weather", "The weather",
       JsonText{R"({"type":"object","properties":{"city":{"type":"string"}}})"}}};
  ChatMessage call{"assistant", ""};
  call.tool_calls.push_back({"call_1", "get_weather", JsonText{R"({"city":"Paris"})"}});
  ChatMessage result{"tool", "18C"};
  result.tool_call_id = "call_1";
  result.name = "get_weather";
  auto text = f->render({{"user", "Weather?"}, call, result}, tools);
  ASSERT_TRUE(text.ok()) << text.status().to_string();
  EXPECT_NE(text->find("<tools>\n{\"type\": \"function\", \"function\": {\"name\": "
                       "\"get_weather\""),
            std::string::npos)
      << *text;
  EXPECT_NE(text->find("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
                       "\"Paris\"}}\n</tool_call>"),
            std::string::npos)
      << *text;
  EXPECT_NE(text->find("<tool_response>\n18C\n</tool_response>"), std::string::npos) << *text;

  call.tool_calls[0].arguments = JsonText{"[1]"};
  auto bad = f->render({{"user", "Weather?"}, call}, tools);
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidRequest);
  EXPECT_NE(bad.status().message().find("tool call 'call_1'"), std::string::npos);
  // Regression: arguments nested 100,000 deep overflowed the stack when rendered.
  call.tool_calls[0].arguments =
      JsonText{R"({"a":)" + std::string(100000, '[') + std::string(100000, ']') + "}"};
  bad = f->render({{"user", "Weather?"}, call}, tools);
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidRequest);
  EXPECT_NE(bad.status().message().find("nests deeper than 64 levels"), std::string::npos);
}

}  // namespace
}  // namespace mlxs
