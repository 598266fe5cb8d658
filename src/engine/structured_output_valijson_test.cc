// Structured output end to end on the embedded default model: whatever the model would say, the
// engine's output matches the request's JSON Schema (checked by valijson, a real validator),
// regex (std::regex) or grammar, greedy and sampled at temperature 1; bad grammars are the
// request's error with the field and the reason; the limits and the cache hold.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validator.hpp>

#include "engine/engine_test_support.h"
#include "engine/structured_output.h"
#include "mlxs/engine.h"

namespace mlxs {
namespace {

using Json = nlohmann::json;
using test_support::Collected;
using test_support::drain;
using test_support::engine_with_config;

const std::string kModelDir = std::string(MLXS_SOURCE_DIR) + "/models/default";

// Whether `text` is JSON that `schema` accepts (valijson, draft 7); the reason when not.
std::string schema_violation(const Json& schema, const std::string& text) {
  Json doc = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return "not JSON: " + text;
  valijson::Schema compiled;
  valijson::SchemaParser parser;
  valijson::adapters::NlohmannJsonAdapter schema_adapter(schema);
  parser.populateSchema(schema_adapter, compiled);
  valijson::Validator validator;
  valijson::adapters::NlohmannJsonAdapter doc_adapter(doc);
  valijson::ValidationResults results;
  if (validator.validate(compiled, doc_adapter, &results)) return "";
  std::string why = "invalid: " + text;
  valijson::ValidationResults::Error e;
  while (results.popError(e)) why += "\n  " + e.description;
  return why;
}

class StructuredOutputTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto e = create_engine(EngineOptions{});
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    engine_ = std::move(*e).release();
    LoadModelOptions lo;
    lo.model = "default";
    lo.local_path = kModelDir;
    ASSERT_TRUE(engine_->load_model(lo).ok());
  }
  static void TearDownTestSuite() {
    delete engine_;
    engine_ = nullptr;
  }

  static GeneratorParams params(StructuredOutput s, double temperature, uint32_t seed = 1) {
    GeneratorParams p;
    p.model = "default";
    p.prompt = "Here is the record as JSON:";
    p.max_tokens = 160;
    p.temperature = temperature;
    p.seed = seed;
    p.structured = std::move(s);
    return p;
  }
  static Collected run(const GeneratorParams& p) {
    auto g = engine_->create_generator(p);
    EXPECT_TRUE(g.ok()) << g.status().to_string();
    if (!g.ok()) return {};
    return drain(**g);
  }
  static StructuredOutput schema(const Json& s) {
    StructuredOutput o;
    o.schema.text = s.dump();
    return o;
  }

  static Engine* engine_;
};
Engine* StructuredOutputTest::engine_ = nullptr;

// One schema per construct; every output of the default model validates, greedy and sampled.
TEST_F(StructuredOutputTest, OutputsValidateAgainstTheirSchemaGreedyAndSampled) {
  const std::vector<Json> schemas = {
      {{"type", "object"},
       {"properties",
        {{"name", {{"type", "string"}, {"minLength", 1}, {"maxLength", 12}}},
         {"age", {{"type", "integer"}, {"minimum", 0}, {"maximum", 120}}}}},
       {"required", {"name", "age"}},
       {"additionalProperties", false}},
      {{"type", "array"},
       {"items", {{"enum", {"red", "green", "blue"}}}},
       {"minItems", 1},
       {"maxItems", 4}},
      {{"type", "object"},
       {"properties",
        {{"id", {{"type", "string"}, {"format", "uuid"}}},
         {"score", {{"type", "number"}}},
         {"ok", {{"type", "boolean"}}},
         {"note", {{"type", {"string", "null"}}, {"maxLength", 20}}}}},
       {"required", {"id", "score", "ok", "note"}},
       {"additionalProperties", false}},
      {{"anyOf", {{{"type", "integer"}}, {{"type", "string"}, {"pattern", "^[A-Z]{2}[0-9]{3}$"}}}}},
      {{"$defs",
        {{"node",
          {{"type", "object"},
           {"properties",
            {{"v", {{"type", "integer"}}},
             {"next", {{"anyOf", {{{"$ref", "#/$defs/node"}}, {{"type", "null"}}}}}}}},
           {"required", {"v", "next"}},
           {"additionalProperties", false}}}}},
       {"$ref", "#/$defs/node"}},
  };
  int sampled_runs = 0;
  for (const Json& s : schemas) {
    for (double temperature : {0.0, 1.0}) {
      for (uint32_t seed = 1; seed <= (temperature > 0 ? 4u : 1u); ++seed) {
        Collected c = run(params(schema(s), temperature, seed));
        ASSERT_FALSE(c.error) << c.error->message;
        ASSERT_TRUE(c.meta);
        if (c.meta->finish_reason == FinishReason::kLength) continue;  // a long draw: cut
        EXPECT_EQ(c.meta->finish_reason, FinishReason::kStop) << s.dump();
        EXPECT_EQ(schema_violation(s, c.text), "") << "schema " << s.dump() << " T=" << temperature;
        sampled_runs += temperature > 0;
      }
    }
  }
  EXPECT_GE(sampled_runs, 10);  // most sampled runs end within max_tokens
}

TEST_F(StructuredOutputTest, RegexAndGrammarOutputsMatchTheWholePattern) {
  for (uint32_t seed = 1; seed <= 6; ++seed) {
    StructuredOutput r;
    r.regex = "[a-z]{3,8}-[0-9]{2}";
    Collected c = run(params(r, 1.0, seed));
    ASSERT_TRUE(c.meta && !c.error);
    EXPECT_TRUE(std::regex_match(c.text, std::regex("[a-z]{3,8}-[0-9]{2}"))) << c.text;
    EXPECT_EQ(c.meta->finish_reason, FinishReason::kStop);

    StructuredOutput g;
    g.grammar = "root ::= \"yes\" | \"no\" | \"maybe (\" [0-9]+ \"%)\"";
    c = run(params(g, 1.0, seed));
    ASSERT_TRUE(c.meta && !c.error);
    EXPECT_TRUE(std::regex_match(c.text, std::regex("yes|no|maybe \\([0-9]+%\\)"))) << c.text;
  }
}

// ignore_eos does not let a structured output run past its match.
TEST_F(StructuredOutputTest, TheOutputEndsAtTheMatchEvenWithIgnoreEos) {
  StructuredOutput g;
  g.grammar = "root ::= \"done\"";
  GeneratorParams p = params(g, 0.0);
  p.ignore_eos = true;
  Collected c = run(p);
  ASSERT_TRUE(c.meta);
  EXPECT_EQ(c.text, "done");
  EXPECT_EQ(c.meta->finish_reason, FinishReason::kStop);
}

TEST_F(StructuredOutputTest, ABadGrammarIsTheRequestsErrorNamingTheFieldAndWhere) {
  StructuredOutput g;
  g.grammar = "root ::= \"a\" undefined_rule";
  auto r = engine_->create_generator(params(g, 0.0));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidParams);
  EXPECT_NE(r.status().message().find("'structured.grammar'"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("undefined_rule"), std::string::npos) << r.status().message();

  StructuredOutput s = schema({{"type", "object"}, {"patternProperties", {{"^a", {}}}}});
  r = engine_->create_generator(params(s, 0.0));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'structured.schema'"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("patternProperties"), std::string::npos)
      << r.status().message();

  StructuredOutput y = schema({{"type", "object"}});
  y.format = StructuredFormat::kYaml;
  r = engine_->create_generator(params(y, 0.0));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'structured.format': yaml"), std::string::npos)
      << r.status().message();

  // The engine is unharmed: the next request runs.
  StructuredOutput ok;
  ok.regex = "[0-9]{4}";
  Collected c = run(params(ok, 0.0));
  EXPECT_EQ(c.text.size(), 4u) << c.text;
}

TEST(StructuredOutputLimits, MaxSchemaBytesIsTheConfiguredLimit) {
  auto e = engine_with_config("structured_limits", "model:\n  limits:\n    max_schema_bytes: 64\n");
  ASSERT_TRUE(e);
  GeneratorParams p;
  p.model = "default";
  p.prompt = "x";
  p.structured = StructuredOutput{};
  p.structured->regex = std::string(65, 'a');
  auto r = e->create_generator(p);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("at most 64 bytes (model.limits.max_schema_bytes), got 65"),
            std::string::npos)
      << r.status().message();
  p.structured->regex = std::string(64, 'a');
  EXPECT_TRUE(e->create_generator(p).ok());
}

TEST(GrammarCache, ASecondRequestWithTheSameSchemaIsAHitAndTheLeastRecentGoesFirst) {
  GrammarCache cache(2, {});
  auto regex = [](std::string r) {
    StructuredOutput s;
    s.regex = std::move(r);
    return s;
  };
  ASSERT_TRUE(cache.get(regex("a+")).ok());
  ASSERT_TRUE(cache.get(regex("b+")).ok());
  auto first = cache.get(regex("a+"));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(cache.stats().hits, 1);
  ASSERT_TRUE(cache.get(regex("c+")).ok());  // evicts b+, the least recently used
  EXPECT_EQ(cache.get(regex("a+")).value(), first.value());
  EXPECT_EQ(cache.stats().hits, 2);
  ASSERT_TRUE(cache.get(regex("b+")).ok());
  EXPECT_EQ(cache.stats().misses, 4);
  // The same text as a grammar is another key.
  StructuredOutput g;
  g.grammar = "root ::= \"a\"+";
  ASSERT_TRUE(cache.get(g).ok());
  EXPECT_EQ(cache.stats().misses, 5);
}

// structured.json_any_whitespace and json_max_whitespace reach the compiled grammar.
TEST(GrammarCache, TheJsonWhitespacePolicyComesFromTheConfig) {
  StructuredOutput s;
  s.schema.text = R"({"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]})";
  auto vocab = structured::TokenVocabulary::create({"x"}, {false}, {});
  auto accepts = [&](const StructuredConfig& c, const std::string& text) {
    GrammarCache cache(4, json_schema_options(c));
    auto g = cache.get(s);
    EXPECT_TRUE(g.ok()) << g.status().to_string();
    auto m = structured::Matcher::create(*g, vocab);
    return m->accept_bytes(text) && m->can_end();
  };
  StructuredConfig compact;
  EXPECT_TRUE(accepts(compact, R"({"a":1})"));
  EXPECT_FALSE(accepts(compact, R"({ "a": 1 })"));
  StructuredConfig any;
  any.json_any_whitespace = true;
  EXPECT_TRUE(accepts(any, R"({ "a": 1 })"));
  any.json_max_whitespace = 2;
  EXPECT_TRUE(accepts(any, "{\"a\":  1}"));
  EXPECT_FALSE(accepts(any, "{\"a\":   1}"));
}

// structured.compile_cache_entries: the second request with the same schema is a cache hit,
// and with 0 nothing is kept.
TEST(StructuredOutputConfig, CompileCacheEntriesKeepsCompiledGrammars) {
  for (int entries : {256, 0}) {
    auto e = engine_with_config("structured_cache",
                                "structured:\n  compile_cache_entries: " + std::to_string(entries));
    ASSERT_TRUE(e);
    for (int i = 0; i < 2; ++i) {
      GeneratorParams p;
      p.model = "default";
      p.prompt = "x";
      p.max_tokens = 4;
      p.structured = StructuredOutput{};
      p.structured->regex = "[0-9]+";
      auto g = e->create_generator(p);
      ASSERT_TRUE(g.ok()) << g.status().to_string();
      drain(**g);
    }
    const RuntimeInfo info = e->runtime_info();
    EXPECT_EQ(info.grammar_cache_hits, entries > 0 ? 1 : 0) << entries;
    EXPECT_EQ(info.grammar_cache_misses, entries > 0 ? 1 : 2) << entries;
  }
}

}  // namespace
}  // namespace mlxs
