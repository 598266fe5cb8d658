// Tools and response_format on both APIs, from the request body to the GenerationRequest: the
// prompt the default model's template (no tool support: the Hermes fallback) gets, the format
// the output is parsed in, the grammar that forces a call, and the 400s naming their field.
#include "server/tool_request.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "server/server_test_support.h"
#include "server/tool_calls.h"
#include "structured/grammar.h"
#include "tokenizer/tokenizer.h"

namespace mlxs::server {
namespace {

using json = nlohmann::json;

const json kWeatherTool = {{"type", "function"},
                           {"function",
                            {{"name", "get_weather"},
                             {"description", "The weather in a city"},
                             {"parameters",
                              {{"type", "object"},
                               {"properties", {{"city", {{"type", "string"}}}}},
                               {"required", {"city"}}}}}}};
const json kTimeTool = {{"type", "function"}, {"function", {{"name", "get_time"}}}};

class ToolRequestTest : public test_support::DefaultModelSuite {
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
  std::string prompt_of(const GenerationRequest& g) {
    auto text = engine_->detokenize("default", std::get<PromptTokens>(g.params.prompt).tokens);
    EXPECT_TRUE(text.ok());
    return text.ok() ? *text : "";
  }
  static json chat(json extra = json::object()) {
    json body = {{"model", "default"},
                 {"messages", {{{"role", "user"}, {"content", "Weather in Paris?"}}}},
                 {"tools", {kWeatherTool, kTimeTool}}};
    body.update(extra);
    return body;
  }
  static json messages_api(json extra = json::object()) {
    json body = {{"model", "default"},
                 {"max_tokens", 16},
                 {"messages", {{{"role", "user"}, {"content", "Weather in Paris?"}}}},
                 {"tools",
                  {{{"name", "get_weather"},
                    {"description", "The weather in a city"},
                    {"input_schema", kWeatherTool["function"]["parameters"]}}}}};
    body.update(extra);
    return body;
  }
};

TEST_F(ToolRequestTest, ATemplateWithoutToolsGetsTheHermesFallbackAndAutoParsesTheOutput) {
  ASSERT_FALSE(model_->chat_template_renders_tools);
  GenerationRequest g = ok(ApiKind::kChat, chat());
  EXPECT_EQ(g.tool_call_format, ToolCallFormat::kHermes);
  EXPECT_FALSE(g.params.structured.has_value());  // auto: nothing forced
  const std::string prompt = prompt_of(g);
  EXPECT_EQ(prompt.rfind("<|im_start|>system\n# Tools", 0), 0u) << prompt;
  EXPECT_NE(prompt.find(R"("name":"get_weather","description":"The weather in a city")"),
            std::string::npos)
      << prompt;
  EXPECT_NE(prompt.find("<tool_call>\n{\"name\": <the function's name>"), std::string::npos);
  EXPECT_NE(prompt.find("<|im_start|>user\nWeather in Paris?<|im_end|>"), std::string::npos);
}

TEST_F(ToolRequestTest, RequiredForcesACallOfAnyToolThroughAGrammar) {
  GenerationRequest g = ok(ApiKind::kChat, chat({{"tool_choice", "required"}}));
  ASSERT_TRUE(g.params.structured.has_value());
  const std::string& grammar = g.params.structured->grammar;
  EXPECT_TRUE(g.params.structured->schema.text.empty());
  EXPECT_NE(grammar.find("root ::= call (\"\\n\" call)*"), std::string::npos) << grammar;
  EXPECT_NE(grammar.find("call ::= \"<tool_call>\\n\" fn \"\\n</tool_call>\""), std::string::npos);
  EXPECT_NE(grammar.find("fn ::= fn0 | fn1"), std::string::npos) << grammar;
  EXPECT_NE(grammar.find(R"(fn0 ::= "{\"name\": \"get_weather\", \"arguments\": " p0-root "}")"),
            std::string::npos)
      << grammar;
  EXPECT_NE(grammar.find("p0-root ::="), std::string::npos);
  EXPECT_NE(grammar.find("p1-root ::="), std::string::npos);
}

TEST_F(ToolRequestTest, ANamedToolWithoutParallelCallsForcesExactlyThatOne) {
  GenerationRequest g =
      ok(ApiKind::kChat,
         chat({{"tool_choice", {{"type", "function"}, {"function", {{"name", "get_weather"}}}}},
               {"parallel_tool_calls", false}}));
  ASSERT_TRUE(g.params.structured.has_value());
  const std::string& grammar = g.params.structured->grammar;
  EXPECT_NE(grammar.find("root ::= call\n"), std::string::npos) << grammar;
  EXPECT_NE(grammar.find("fn ::= fn0\n"), std::string::npos) << grammar;
  EXPECT_EQ(grammar.find("fn1"), std::string::npos);
  EXPECT_FALSE(g.parallel_tool_calls);
}

TEST_F(ToolRequestTest, NoneLeavesTheToolsOutAndTheOutputPlain) {
  GenerationRequest g = ok(ApiKind::kChat, chat({{"tool_choice", "none"}}));
  EXPECT_EQ(g.tool_call_format, ToolCallFormat::kNone);
  EXPECT_FALSE(g.params.structured.has_value());
  EXPECT_EQ(prompt_of(g).find("<tools>"), std::string::npos);
}

TEST_F(ToolRequestTest, ACallAndItsResultReachTheTemplate) {
  json body = chat();
  body["messages"].push_back(
      {{"role", "assistant"},
       {"content", nullptr},
       {"tool_calls",
        {{{"id", "call_1"},
          {"type", "function"},
          {"function", {{"name", "get_weather"}, {"arguments", R"({"city": "Paris"})"}}}}}}});
  body["messages"].push_back({{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "18C"}});
  const std::string prompt = prompt_of(ok(ApiKind::kChat, body));
  EXPECT_NE(prompt.find("<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", "
                        "\"arguments\": {\"city\":\"Paris\"}}\n</tool_call><|im_end|>\n"
                        "<|im_start|>user\n<tool_response>\n18C\n</tool_response><|im_end|>\n"
                        "<|im_start|>assistant\n"),
            std::string::npos)
      << prompt;
}

TEST_F(ToolRequestTest, ResponseFormatBecomesTheStructuredSchema) {
  json body = {{"model", "default"}, {"messages", {{{"role", "user"}, {"content", "Hi"}}}}};
  body["response_format"] = {{"type", "json_object"}};
  GenerationRequest g = ok(ApiKind::kChat, body);
  ASSERT_TRUE(g.params.structured.has_value());
  EXPECT_EQ(g.params.structured->schema.text, R"({"type":"object"})");
  body["response_format"] = {
      {"type", "json_schema"},
      {"json_schema",
       {{"name", "answer"},
        {"strict", true},
        {"schema", {{"type", "object"}, {"properties", {{"a", {{"type", "integer"}}}}}}}}}};
  g = ok(ApiKind::kChat, body);
  ASSERT_TRUE(g.params.structured.has_value());
  EXPECT_EQ(g.params.structured->schema.text,
            R"({"properties":{"a":{"type":"integer"}},"type":"object"})");
  body["response_format"] = {{"type", "text"}};
  EXPECT_FALSE(ok(ApiKind::kChat, body).params.structured.has_value());
}

TEST_F(ToolRequestTest, BadToolsAndFormatsAre400sNamingTheField) {
  auto param_of = [&](const json& body) { return error_of(ApiKind::kChat, body).param; };
  json body = chat();
  body["tools"][0]["function"]["parameters"] = "an object";
  EXPECT_EQ(param_of(body), "tools[0].function.parameters");
  body = chat();
  body["tools"][1]["function"]["name"] = "get_weather";
  EXPECT_EQ(param_of(body), "tools[1].function.name");
  body = chat();
  body["tools"][1]["function"]["name"] = "has space";
  EXPECT_EQ(param_of(body), "tools[1].function.name");
  body = chat();
  body["tools"][0]["type"] = "code_interpreter";
  EXPECT_EQ(param_of(body), "tools[0].type");
  EXPECT_EQ(param_of(chat({{"tool_choice", "sometimes"}})), "tool_choice");
  EXPECT_EQ(param_of(chat(
                {{"tool_choice", {{"type", "function"}, {"function", {{"name", "get_news"}}}}}})),
            "tool_choice.function.name");
  body = chat({{"tool_choice", "required"}});
  body.erase("tools");
  EXPECT_EQ(param_of(body), "tool_choice");
  // A schema the grammar cannot enforce, when a call is forced.
  body = chat({{"tool_choice", "required"}});
  body["tools"][0]["function"]["parameters"]["properties"]["city"] = {{"type", "array"},
                                                                      {"uniqueItems", true}};
  ApiError e = error_of(ApiKind::kChat, body);
  EXPECT_EQ(e.param, "tools[0].function.parameters");
  EXPECT_NE(e.message.find("uniqueItems"), std::string::npos) << e.message;
  EXPECT_EQ(e.http_status, 400);
  EXPECT_EQ(
      param_of(chat({{"tool_choice", "required"}, {"response_format", {{"type", "json_object"}}}})),
      "response_format");
  EXPECT_EQ(param_of(chat({{"response_format", {{"type", "json_schema"}}}})),
            "response_format.json_schema");
  EXPECT_EQ(param_of(chat({{"response_format",
                            {{"type", "json_schema"}, {"json_schema", {{"name", "x"}}}}}})),
            "response_format.json_schema.schema");
  EXPECT_EQ(param_of(chat({{"response_format", {{"type", "yaml"}}}})), "response_format.type");
  e = error_of(
      ApiKind::kChat,
      chat({{"response_format",
             {{"type", "json_schema"},
              {"json_schema",
               {{"name", "x"}, {"schema", {{"type", "array"}, {"uniqueItems", true}}}}}}}}));
  EXPECT_EQ(e.param, "response_format.json_schema.schema");
  EXPECT_NE(e.message.find("'uniqueItems': true is not supported"), std::string::npos) << e.message;
  // Messages.
  body = chat();
  body["messages"].push_back(
      {{"role", "assistant"},
       {"tool_calls",
        {{{"id", "c"}, {"function", {{"name", "get_weather"}, {"arguments", "not json"}}}}}}});
  EXPECT_EQ(param_of(body), "messages.1.tool_calls[0].function.arguments");
  body = chat();
  body["messages"].push_back({{"role", "tool"}, {"content", "18C"}});
  EXPECT_EQ(param_of(body), "messages.1.tool_call_id");
  // Regression: arguments nested 100,000 deep (inside a string, so the body's depth limit does
  // not see them) overflowed the stack when parsed and rendered.
  std::string nested(100000, '[');
  nested = R"({"a":)" + nested + std::string(100000, ']') + "}";
  body = chat();
  body["messages"].push_back(
      {{"role", "assistant"},
       {"tool_calls",
        {{{"id", "c"}, {"function", {{"name", "get_weather"}, {"arguments", nested}}}}}}});
  EXPECT_EQ(param_of(body), "messages.1.tool_calls[0].function.arguments");
  // Completions has no tools.
  json completion = {{"model", "default"}, {"prompt", "Hi"}, {"tools", {kWeatherTool}}};
  EXPECT_EQ(error_of(ApiKind::kCompletion, completion).param, "tools");
}

TEST_F(ToolRequestTest, AnthropicToolsToolChoiceAndBlocks) {
  GenerationRequest g = ok(ApiKind::kMessages, messages_api());
  EXPECT_EQ(g.tool_call_format, ToolCallFormat::kHermes);
  EXPECT_FALSE(g.params.structured.has_value());
  g = ok(ApiKind::kMessages, messages_api({{"tool_choice", {{"type", "any"}}}}));
  ASSERT_TRUE(g.params.structured.has_value());
  EXPECT_NE(g.params.structured->grammar.find("fn ::= fn0\n"), std::string::npos);
  g = ok(ApiKind::kMessages,
         messages_api(
             {{"tool_choice",
               {{"type", "tool"}, {"name", "get_weather"}, {"disable_parallel_tool_use", true}}}}));
  ASSERT_TRUE(g.params.structured.has_value());
  EXPECT_NE(g.params.structured->grammar.find("root ::= call\n"), std::string::npos);
  g = ok(ApiKind::kMessages, messages_api({{"tool_choice", {{"type", "none"}}}}));
  EXPECT_EQ(g.tool_call_format, ToolCallFormat::kNone);

  json body = messages_api();
  body["messages"].push_back({{"role", "assistant"},
                              {"content",
                               {{{"type", "text"}, {"text", "Checking."}},
                                {{"type", "tool_use"},
                                 {"id", "toolu_1"},
                                 {"name", "get_weather"},
                                 {"input", {{"city", "Paris"}}}}}}});
  body["messages"].push_back(
      {{"role", "user"},
       {"content",
        {{{"type", "tool_result"}, {"tool_use_id", "toolu_1"}, {"content", "18C"}},
         {{"type", "text"}, {"text", "Thanks"}}}}});
  const std::string prompt = prompt_of(ok(ApiKind::kMessages, body));
  EXPECT_NE(prompt.find("<|im_start|>assistant\nChecking.\n<tool_call>\n{\"name\": "
                        "\"get_weather\", \"arguments\": {\"city\":\"Paris\"}}\n</tool_call>"
                        "<|im_end|>\n<|im_start|>user\n<tool_response>\n18C\n</tool_response>"
                        "<|im_end|>\n<|im_start|>user\nThanks<|im_end|>\n"),
            std::string::npos)
      << prompt;

  auto param_of = [&](const json& b) { return error_of(ApiKind::kMessages, b).param; };
  body = messages_api();
  body["tools"][0].erase("input_schema");
  EXPECT_EQ(param_of(body), "tools[0].input_schema");
  body = messages_api();
  body["tools"][0]["type"] = "bash_20250124";
  EXPECT_EQ(param_of(body), "tools[0].type");
  EXPECT_EQ(param_of(messages_api({{"tool_choice", {{"type", "tool"}, {"name", "nope"}}}})),
            "tool_choice.name");
  body = messages_api();
  body["messages"][0]["content"] = {{{"type", "tool_use"}, {"id", "x"}, {"name", "get_weather"}}};
  EXPECT_EQ(param_of(body), "messages.0.content.0.type");  // tool_use is the assistant's
}

TEST(ForcedToolCallGrammar, EachFormatWrapsTheCallsItsOwnWay) {
  ToolsRequest t;
  t.tools.push_back({"f", "", JsonText{R"({"type":"object"})"}});
  t.choice.kind = ToolChoice::Kind::kRequired;
  auto llama = forced_tool_call_grammar(ToolCallFormat::kLlama3Json, t);
  ASSERT_TRUE(llama.ok()) << llama.status().to_string();
  EXPECT_NE(llama->find(R"(fn0 ::= "{\"name\": \"f\", \"parameters\": " p0-root "}")"),
            std::string::npos)
      << *llama;
  EXPECT_NE(llama->find("root ::= fn\n"), std::string::npos);
  auto mistral = forced_tool_call_grammar(ToolCallFormat::kMistral, t);
  ASSERT_TRUE(mistral.ok());
  EXPECT_NE(mistral->find(R"(root ::= "[" fn (", " fn)* "]")"), std::string::npos) << *mistral;
  t.parallel = false;
  mistral = forced_tool_call_grammar(ToolCallFormat::kMistral, t);
  EXPECT_NE(mistral->find(R"(root ::= "[" fn "]")"), std::string::npos) << *mistral;
}

// The grammar compiles, and matches exactly the calls whose arguments follow their tool's schema.
TEST(ForcedToolCallGrammar, MatchesValidCallsOnly) {
  ToolsRequest t;
  t.tools.push_back({"get_weather", "", JsonText{kWeatherTool["function"]["parameters"].dump()}});
  t.tools.push_back({"get_time", "", JsonText{R"({"type":"object","properties":{}})"}});
  t.choice.kind = ToolChoice::Kind::kRequired;
  auto gbnf = forced_tool_call_grammar(ToolCallFormat::kHermes, t);
  ASSERT_TRUE(gbnf.ok()) << gbnf.status().to_string();
  auto grammar = structured::compile_gbnf(*gbnf);
  ASSERT_TRUE(grammar.ok()) << grammar.status().to_string() << "\n" << *gbnf;
  auto vocab = structured::TokenVocabulary::create({"a", "</s>"}, {false, true}, {1});
  auto matches = [&](const std::string& text) {
    auto m = structured::Matcher::create(*grammar, vocab);
    return m->accept_bytes(text) && m->can_end();
  };
  const std::string weather =
      "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\":\"Paris\"}}\n"
      "</tool_call>";
  const std::string time = "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>";
  EXPECT_TRUE(matches(weather));
  EXPECT_TRUE(matches(weather + "\n" + time));
  EXPECT_FALSE(matches(weather.substr(0, 20)));
  EXPECT_FALSE(
      matches("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(matches("<tool_call>\n{\"name\": \"get_news\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(matches("Sure! " + weather));
  for (ToolCallFormat f : {ToolCallFormat::kLlama3Json, ToolCallFormat::kMistral}) {
    auto other = forced_tool_call_grammar(f, t);
    ASSERT_TRUE(other.ok());
    EXPECT_TRUE(structured::compile_gbnf(*other).ok()) << *other;
  }
}

// Random walks through the forcing grammar over the default model's real vocabulary (any token
// the mask allows, EOS where allowed): every output the grammar lets a model write is parsed
// back by that format's parser as calls of the offered tools, arguments within their schemas,
// and no text.
TEST(ForcedToolCallGrammar, EveryOutputItAllowsParsesAsValidCalls) {
  auto tokenizer = Tokenizer::load(std::string(MLXS_SOURCE_DIR) + "/models/default");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().to_string();
  auto vocab = structured::TokenVocabulary::from_tokenizer(**tokenizer);
  ToolsRequest t;
  t.tools.push_back({"get_weather", "",
                     JsonText{R"({"type":"object","properties":{"city":{"enum":["Paris","Tokyo"]},)"
                              R"("days":{"type":"integer","minimum":1,"maximum":7}},)"
                              R"("required":["city","days"],"additionalProperties":false})"}});
  t.tools.push_back({"get_time", "", JsonText{R"({"type":"object","properties":{}})"}});
  t.choice.kind = ToolChoice::Kind::kRequired;
  std::mt19937 rng(7);
  for (ToolCallFormat format :
       {ToolCallFormat::kHermes, ToolCallFormat::kMistral, ToolCallFormat::kLlama3Json}) {
    for (bool parallel : {false, true}) {
      t.parallel = parallel;
      auto gbnf = forced_tool_call_grammar(format, t);
      ASSERT_TRUE(gbnf.ok()) << gbnf.status().to_string();
      auto grammar = structured::compile_gbnf(*gbnf);
      ASSERT_TRUE(grammar.ok()) << grammar.status().to_string();
      for (int walk = 0; walk < 10; ++walk) {
        auto m = structured::Matcher::create(*grammar, vocab);
        std::vector<uint32_t> mask((vocab->size() + 31) / 32);
        std::string text;
        for (int step = 0; step < 300 && !m->is_terminated(); ++step) {
          m->fill_next_token_bitmask(mask);
          std::vector<int32_t> allowed;
          for (size_t id = 0; id < vocab->size(); ++id) {
            if (mask[id / 32] >> (id % 32) & 1) allowed.push_back(int32_t(id));
          }
          ASSERT_FALSE(allowed.empty());
          const int32_t id = allowed[rng() % allowed.size()];
          ASSERT_TRUE(m->accept_token(id));
          if (!m->is_terminated()) text += vocab->bytes_of(id);
        }
        ASSERT_TRUE(m->is_terminated()) << text;
        ToolCallOutput out = parse_tool_calls(format, text);
        EXPECT_EQ(out.text, "") << text;
        ASSERT_GE(out.calls.size(), 1u) << text;
        if (!parallel) EXPECT_EQ(out.calls.size(), 1u) << text;
        for (const ParsedToolCall& call : out.calls) {
          const json args = json::parse(call.arguments);
          if (call.name == "get_time") {
            EXPECT_EQ(args, json::object()) << text;
            continue;
          }
          ASSERT_EQ(call.name, "get_weather") << text;
          EXPECT_EQ(args.size(), 2u) << text;
          EXPECT_TRUE(args["city"] == "Paris" || args["city"] == "Tokyo") << text;
          ASSERT_TRUE(args["days"].is_number_integer()) << text;
          EXPECT_GE(args["days"].get<int>(), 1);
          EXPECT_LE(args["days"].get<int>(), 7);
        }
      }
    }
  }
}

// The default model's weights and tokenizer under other chat templates: Qwen3's (renders tools
// in the Hermes format) and one that renders tools in no format the server knows.
class NativeToolTemplateTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    namespace fs = std::filesystem;
    dir_ = fs::temp_directory_path() / ("mlxs_native_tools_" + std::to_string(::getpid()));
    const fs::path source = fs::path(MLXS_SOURCE_DIR) / "models" / "default";
    auto qwen = json::parse(std::ifstream(fs::path(MLXS_SOURCE_DIR) /
                                          ".fixtures/tokenizers/qwen3/tokenizer_config.json"));
    const std::pair<const char*, std::string> templates[] = {
        {"qwen-template", qwen["chat_template"].get<std::string>()},
        {"opaque-template",
         "{{ tools | tojson }}{% for m in messages %}{{ m.content }}{% endfor %}"},
        // Mistral's rule on call ids, reduced to what this test reads.
        {"mistral-template",
         "{% if tools %}[AVAILABLE_TOOLS]{% endif %}{% for m in messages %}{% if m.tool_calls %}"
         "{% for c in m.tool_calls %}{% if c.id | length != 9 %}{{ raise_exception('Tool call "
         "IDs should be alphanumeric strings with length 9!') }}{% endif %}[TOOL_CALLS]{{ c.id "
         "}}{% endfor %}{% elif m.role == 'tool' %}[TOOL_RESULTS]{{ m.tool_call_id }}{% else %}"
         "{{ m.content }}{% endif %}{% endfor %}"}};
    auto e = create_engine({});
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    engine_ = std::move(*e).release();
    for (const auto& [id, chat_template] : templates) {
      const fs::path d = dir_ / id;
      fs::create_directories(d);
      for (const char* f :
           {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"}) {
        fs::copy_file(source / f, d / f, fs::copy_options::overwrite_existing);
      }
      auto config = json::parse(std::ifstream(source / "tokenizer_config.json"));
      config["chat_template"] = chat_template;
      std::ofstream(d / "tokenizer_config.json") << config.dump();
      LoadModelOptions lo;
      lo.model = id;
      lo.local_path = d.string();
      auto h = engine_->load_model(lo);
      ASSERT_TRUE(h.ok()) << h.status().to_string();
      models_.push_back(served_model_of(*h));
    }
  }
  static void TearDownTestSuite() {
    delete engine_;
    engine_ = nullptr;
    models_.clear();
    std::filesystem::remove_all(dir_);
  }
  std::variant<GenerationRequest, ApiError> parse(const json& body) {
    return parse_generation_request(
        ApiKind::kChat, body,
        [](const std::string& id) -> const ServedModel* {
          for (const ServedModel& m : models_) {
            if (m.id == id) return &m;
          }
          return nullptr;
        },
        *engine_);
  }

  static inline Engine* engine_ = nullptr;
  static inline std::vector<ServedModel> models_;
  static inline std::filesystem::path dir_;
};

TEST_F(NativeToolTemplateTest, ATemplateThatRendersToolsGetsThemNatively) {
  const ServedModel& qwen = models_[0];
  EXPECT_TRUE(qwen.chat_template_renders_tools);
  EXPECT_EQ(qwen.tool_call_format, ToolCallFormat::kHermes);
  json body = {{"model", "qwen-template"},
               {"messages", {{{"role", "user"}, {"content", "Weather in Paris?"}}}},
               {"tools", {kWeatherTool}}};
  auto r = parse(body);
  ASSERT_TRUE(std::holds_alternative<GenerationRequest>(r)) << std::get<ApiError>(r).message;
  const GenerationRequest& g = std::get<GenerationRequest>(r);
  EXPECT_EQ(g.tool_call_format, ToolCallFormat::kHermes);
  auto prompt =
      engine_->detokenize("qwen-template", std::get<PromptTokens>(g.params.prompt).tokens);
  ASSERT_TRUE(prompt.ok());
  EXPECT_NE(
      prompt->find("<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\""),
      std::string::npos)
      << *prompt;
  EXPECT_EQ(prompt->find("You can call functions to help answer"),
            std::string::npos);  // no fallback
}

TEST_F(NativeToolTemplateTest, AToolFormatTheServerCannotParseIsRefusedNamingTheModel) {
  EXPECT_TRUE(models_[1].chat_template_renders_tools);
  EXPECT_EQ(models_[1].tool_call_format, ToolCallFormat::kNone);
  json body = {{"model", "opaque-template"},
               {"messages", {{{"role", "user"}, {"content", "Hi"}}}},
               {"tools", {kWeatherTool}}};
  auto r = parse(body);
  ASSERT_TRUE(std::holds_alternative<ApiError>(r));
  const ApiError& e = std::get<ApiError>(r);
  EXPECT_EQ(e.http_status, 400);
  EXPECT_EQ(e.param, "tools");
  EXPECT_NE(e.message.find("model 'opaque-template'"), std::string::npos) << e.message;
  body["tool_choice"] = "none";  // no tools offered: fine
  EXPECT_TRUE(std::holds_alternative<GenerationRequest>(parse(body)));
}

TEST_F(NativeToolTemplateTest, MistralTemplatesGetNineCharacterCallIds) {
  EXPECT_EQ(models_[2].tool_call_format, ToolCallFormat::kMistral);
  json body = {{"model", "mistral-template"},
               {"messages",
                {{{"role", "user"}, {"content", "Weather?"}},
                 {{"role", "assistant"},
                  {"tool_calls",
                   {{{"id", "call_abc_123456789xyz"},
                     {"type", "function"},
                     {"function", {{"name", "get_weather"}, {"arguments", "{}"}}}}}}},
                 {{"role", "tool"}, {"tool_call_id", "call_abc_123456789xyz"}, {"content", "18"}}}},
               {"tools", {kWeatherTool}}};
  auto r = parse(body);
  ASSERT_TRUE(std::holds_alternative<GenerationRequest>(r)) << std::get<ApiError>(r).message;
  auto prompt = engine_->detokenize(
      "mistral-template",
      std::get<PromptTokens>(std::get<GenerationRequest>(r).params.prompt).tokens);
  ASSERT_TRUE(prompt.ok());
  EXPECT_NE(prompt->find("[TOOL_CALLS]456789xyz[TOOL_RESULTS]456789xyz"), std::string::npos)
      << *prompt;
}

}  // namespace
}  // namespace mlxs::server
