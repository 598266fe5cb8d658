// Every rule of the option schemas: each field's range edges (min, max, just outside), wrong types,
// unknown fields, nested paths, the prompt one-of, refinements, C++-struct validation and the JSON
// round trip.
#include "api/option_schemas.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace mlxs {
namespace {

using schema::Json;

// A minimal valid GeneratorParams body with `key` set to `value`.
Json body_with(const std::string& key, Json value) {
  Json body = {{"model", "qwen2.5-0.5b"}, {"prompt", "hello"}};
  body[key] = std::move(value);
  return body;
}

std::string error_of(const Json& body) {
  auto result = schema::schema_of<GeneratorParams>().parse(body);
  return result.ok() ? "" : result.status().message();
}

std::string msg(const std::string& field, const std::string& text) {
  return "Validation error on field '" + field + "': " + text;
}

struct RangeCase {
  std::string field;
  Json valid;
  Json invalid;
  std::string message;  // for `invalid`
};

class GeneratorParamsRange : public ::testing::TestWithParam<RangeCase> {};

TEST_P(GeneratorParamsRange, EdgeAcceptedAndJustOutsideRejected) {
  const RangeCase& c = GetParam();
  EXPECT_EQ(error_of(body_with(c.field, c.valid)), "") << c.field << " = " << c.valid;
  EXPECT_EQ(error_of(body_with(c.field, c.invalid)), msg(c.field, c.message)) << c.field;
}

INSTANTIATE_TEST_SUITE_P(
    Fields, GeneratorParamsRange,
    ::testing::Values(
        RangeCase{"temperature", 0, -0.01, "must be >= 0 and <= 2, got -0.01"},
        RangeCase{"temperature", 2, 5, "must be >= 0 and <= 2, got 5"},
        RangeCase{"temperature", 0.7, 2.0001, "must be >= 0 and <= 2, got 2.0001"},
        RangeCase{"top_p", 1, 0, "must be > 0 and <= 1, got 0"},
        RangeCase{"top_p", 1e-9, 1.5, "must be > 0 and <= 1, got 1.5"},
        RangeCase{"top_k", 0, -1, "must be >= 0, got -1"},
        RangeCase{"top_k", 2147483647, 2147483648LL,
                  "must be >= 0 and <= 2147483647, got 2147483648"},
        RangeCase{"min_p", 0, -0.5, "must be >= 0 and <= 1, got -0.5"},
        RangeCase{"min_p", 1, 1.01, "must be >= 0 and <= 1, got 1.01"},
        RangeCase{"presence_penalty", -2, -2.5, "must be >= -2 and <= 2, got -2.5"},
        RangeCase{"presence_penalty", 2, 3, "must be >= -2 and <= 2, got 3"},
        RangeCase{"frequency_penalty", -2, -3, "must be >= -2 and <= 2, got -3"},
        RangeCase{"frequency_penalty", 2, 2.1, "must be >= -2 and <= 2, got 2.1"},
        RangeCase{"repetition_penalty", 0.01, 0, "must be > 0 and <= 10, got 0"},
        RangeCase{"repetition_penalty", 10, 10.5, "must be > 0 and <= 10, got 10.5"},
        RangeCase{"max_tokens", 1, 0, "must be >= 1 and <= 100000, got 0"},
        RangeCase{"max_tokens", 100000, 100001, "must be >= 1 and <= 100000, got 100001"},
        RangeCase{"max_tokens", 5.0, 5.5, "must be an integer, got 5.5"},
        RangeCase{"seed", 0, -1, "must be >= 0 and <= 4294967295, got -1"},
        RangeCase{"seed", 4294967295LL, 4294967296LL,
                  "must be >= 0 and <= 4294967295, got 4294967296"},
        RangeCase{"top_logprobs", 0, -1, "must be >= 0 and <= 20, got -1"},
        RangeCase{"top_logprobs", 0, 21, "must be >= 0 and <= 20, got 21"},
        RangeCase{"temperature", 1, "hot", "expected number, got string \"hot\""},
        RangeCase{"max_tokens", 10, "10", "expected integer, got string \"10\""},
        RangeCase{"logprobs", true, 1, "expected boolean, got integer 1"},
        RangeCase{"streaming", false, nullptr, "expected boolean, got null"},
        RangeCase{"stop_sequences", Json::array({"a"}), "a", "expected array, got string \"a\""},
        RangeCase{"draft_model", "tiny-draft", "a b",
                  "must match ^[a-zA-Z0-9_\\-./@:]*$, got \"a b\""},
        RangeCase{"model", "org/model@v1:q4", "", "must have at least 1 character, got \"\""},
        RangeCase{"model", "m", "../etc/passwd", "must not contain \"..\", got \"../etc/passwd\""},
        RangeCase{"model", "m", "a;rm -rf /",
                  "must match ^[a-zA-Z0-9_\\-./@:]+$, got \"a;rm -rf /\""},
        RangeCase{"model", std::string(512, 'm'), std::string(513, 'm'),
                  "must have at most 512 characters, got 513"}));

TEST(GeneratorParamsSchema, TemperatureMessageIsExactlyTheOriginalFormat) {
  EXPECT_EQ(error_of(body_with("temperature", 5)),
            "Validation error on field 'temperature': must be >= 0 and <= 2, got 5");
  auto r = schema::schema_of<GeneratorParams>().parse(body_with("temperature", 5));
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidParams);
}

TEST(GeneratorParamsSchema, RequiredFields) {
  EXPECT_EQ(error_of(Json{{"prompt", "x"}}), msg("model", "is required"));
  EXPECT_EQ(error_of(Json{{"model", "m"}}), msg("prompt", "is required"));
  EXPECT_EQ(error_of(Json::array()), "Validation error: expected object, got array");
}

TEST(GeneratorParamsSchema, UnknownFieldsAreNamedWithASuggestion) {
  EXPECT_EQ(error_of(body_with("tempreature", 1)),
            msg("tempreature", "unknown field (did you mean 'temperature'?)"));
  std::string far = error_of(body_with("images", Json::array()));
  EXPECT_EQ(far.rfind(msg("images", "unknown field (known fields: model, prompt, max_tokens"), 0),
            0u)
      << far;
  // camelCase from the original is not silently accepted either.
  EXPECT_EQ(error_of(body_with("maxTokens", 5)),
            msg("maxTokens", "unknown field (did you mean 'max_tokens'?)"));
}

TEST(GeneratorParamsSchema, AllErrorsAreCollectedInDocumentOrder) {
  Json body = body_with("temperature", 5);
  body["top_p"] = 0;
  body["bogus"] = true;
  EXPECT_EQ(error_of(body),
            msg("bogus",
                "unknown field (known fields: model, prompt, max_tokens, temperature, "
                "top_p, top_k, min_p, presence_penalty, frequency_penalty, "
                "repetition_penalty, stop_sequences, stop_token_ids, ignore_eos, seed, logprobs, "
                "top_logprobs, streaming, structured, multimodal, draft_model)") +
                "; " + msg("temperature", "must be >= 0 and <= 2, got 5") + "; " +
                msg("top_p", "must be > 0 and <= 1, got 0"));
}

TEST(GeneratorParamsSchema, ArrayItemsHaveIndexedPaths) {
  EXPECT_EQ(error_of(body_with("stop_sequences", Json::array({"ok", ""}))),
            msg("stop_sequences[1]", "must have at least 1 character, got \"\""));
  EXPECT_EQ(error_of(body_with("stop_sequences", Json::array({std::string(257, 'x')}))),
            msg("stop_sequences[0]", "must have at most 256 characters, got 257"));
  EXPECT_EQ(error_of(body_with("stop_sequences", Json(std::vector<std::string>(17, "s")))),
            msg("stop_sequences", "must have at most 16 items, got 17"));
  EXPECT_EQ(error_of(body_with("stop_sequences", Json(std::vector<std::string>(16, "s")))), "");
  EXPECT_EQ(error_of(body_with("stop_token_ids", Json::array({1, -2, 3}))),
            msg("stop_token_ids[1]", "must be >= 0, got -2"));
  EXPECT_EQ(error_of(body_with("stop_token_ids", Json(std::vector<int>(129, 1)))),
            msg("stop_token_ids", "must have at most 128 items, got 129"));
  EXPECT_EQ(error_of(body_with("stop_token_ids", Json::array({"1"}))),
            msg("stop_token_ids[0]", "expected integer, got string \"1\""));
}

TEST(GeneratorParamsSchema, NestedObjectsHaveDottedPaths) {
  EXPECT_EQ(
      error_of(body_with("structured", Json{{"schema", {{"type", "object"}}}, {"format", "xml"}})),
      msg("structured.format", "must be one of \"json\", \"yaml\", got \"xml\""));
  EXPECT_EQ(
      error_of(body_with("structured", Json{{"format", "json"}})),
      msg("structured.schema", "exactly one of schema, regex and grammar must be given, got 0"));
  EXPECT_EQ(error_of(body_with("structured", Json{{"schema", "{}"}})),
            msg("structured.schema", "expected object, got string \"{}\""));
  // The protocol's ceiling; the configured limit (model.limits.max_schema_bytes) is the engine's.
  Json big = {{"description", std::string(1 << 20, 'x')}};
  EXPECT_EQ(error_of(body_with("structured", Json{{"schema", big}})),
            msg("structured.schema", "must be at most 1048576 bytes serialized, got 1048594"));
  EXPECT_EQ(error_of(body_with("multimodal", Json{{"images", Json::array()}})),
            msg("multimodal.images", "must have at least 1 item, got 0"));
  EXPECT_EQ(
      error_of(body_with("multimodal", Json{{"images", {"a"}}, {"image_format", "gif"}, {"x", 1}})),
      msg("multimodal.x", "unknown field (known fields: images, image_format)") + "; " +
          msg("multimodal.image_format",
              "must be one of \"base64\", \"url\", \"path\", got \"gif\""));
}

TEST(GeneratorParamsSchema, PromptOneOfVariants) {
  auto parse = [](Json prompt) {
    return schema::schema_of<GeneratorParams>().parse(body_with("prompt", prompt));
  };
  auto text = parse("hi");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(std::get<std::string>(text->prompt), "hi");

  auto tmpl = parse(Json{{"template", "Hello {{ name }}"}, {"variables", {{"name", "Ada"}}}});
  ASSERT_TRUE(tmpl.ok()) << tmpl.status().message();
  const auto& t = std::get<PromptTemplate>(tmpl->prompt);
  EXPECT_EQ(t.template_text, "Hello {{ name }}");
  EXPECT_EQ(*render_prompt_template(t), "Hello Ada");

  auto tokens = parse(Json{{"tokens", {1, 2, 3}}});
  ASSERT_TRUE(tokens.ok());
  EXPECT_EQ(std::get<PromptTokens>(tokens->prompt).tokens, (std::vector<int32_t>{1, 2, 3}));

  EXPECT_EQ(error_of(body_with("prompt", 42)),
            msg("prompt",
                "expected string | object with 'template' | object with 'tokens', got integer"));
  EXPECT_EQ(error_of(body_with("prompt", Json{{"text", "x"}})),
            msg("prompt",
                "expected string | object with 'template' | object with 'tokens', got object with "
                "keys \"text\""));
  EXPECT_EQ(error_of(body_with("prompt", Json{{"tokens", Json::array()}})),
            msg("prompt.tokens", "must have at least 1 item, got 0"));
  EXPECT_EQ(error_of(body_with("prompt", Json{{"tokens", {1, -1}}})),
            msg("prompt.tokens[1]", "must be >= 0, got -1"));
  EXPECT_EQ(error_of(body_with("prompt", Json{{"template", "x"}, {"tokens", {1}}})),
            msg("prompt.tokens", "unknown field (known fields: template, variables)"));
  EXPECT_EQ(
      error_of(body_with("prompt", Json{{"template", "Hi {{who}}"}, {"variables", {{"x", "y"}}}})),
      msg("prompt.variables", "template uses {{who}} but variables has no 'who'"));
  EXPECT_EQ(error_of(body_with("prompt", Json{{"template", "Hi"}, {"variables", {{"x", 1}}}})),
            msg("prompt.variables.x", "expected string, got integer 1"));
  EXPECT_EQ(error_of(body_with("prompt", std::string(limits::kMaxPromptChars + 1, 'a'))),
            msg("prompt", "must have at most 1048576 characters, got 1048577"));
}

TEST(GeneratorParamsSchema, TopLogprobsNeedsLogprobs) {
  EXPECT_EQ(error_of(body_with("top_logprobs", 5)),
            msg("top_logprobs", "requires logprobs to be true, got 5"));
  Json ok = body_with("top_logprobs", 20);
  ok["logprobs"] = true;
  EXPECT_EQ(error_of(ok), "");
}

TEST(GeneratorParamsSchema, CppStructValidationUsesTheSameRules) {
  GeneratorParams p;
  p.model = "m";
  p.prompt = std::string("hi");
  EXPECT_TRUE(validate_options(p).ok());
  p.temperature = 5.0;
  EXPECT_EQ(validate_options(p).message(), msg("temperature", "must be >= 0 and <= 2, got 5"));
  p.temperature = std::nan("");
  EXPECT_EQ(validate_options(p).message(), msg("temperature", "must be a finite number, got nan"));
  p.temperature = std::numeric_limits<double>::infinity();
  EXPECT_FALSE(validate_options(p).ok());
  p.temperature.reset();
  p.structured =
      StructuredOutput{.schema = JsonText{"not json"}, .format = StructuredFormat::kJson};
  EXPECT_EQ(validate_options(p).message(),
            msg("structured.schema", "expected object, got string \"not json\""));
  p.structured->schema.text = R"({"type":"object"})";
  EXPECT_TRUE(validate_options(p).ok());
  p.structured->regex = "[a-z]+";
  EXPECT_EQ(
      validate_options(p).message(),
      msg("structured.schema", "exactly one of schema, regex and grammar must be given, got 2"));
  p.structured = StructuredOutput{};
  EXPECT_EQ(
      validate_options(p).message(),
      msg("structured.schema", "exactly one of schema, regex and grammar must be given, got 0"));
  p.structured->grammar = "root ::= \"a\"";
  EXPECT_TRUE(validate_options(p).ok());
  p.structured.reset();
  p.prompt = PromptTokens{};
  EXPECT_EQ(validate_options(p).message(),
            msg("prompt.tokens", "must have at least 1 item, got 0"));
  p.prompt = PromptTemplate{"{{a}}{{b}}", {{"a", "1"}}};
  EXPECT_EQ(validate_options(p).message(),
            msg("prompt.variables", "template uses {{b}} but variables has no 'b'"));
}

TEST(GeneratorParamsSchema, JsonRoundTrip) {
  GeneratorParams p;
  p.model = "org/model";
  p.prompt = PromptTemplate{"Hi {{x}}", {{"x", "y"}}};
  p.max_tokens = 7;
  p.temperature = 0.0;
  p.top_p = 0.9;
  p.top_k = 40;
  p.min_p = 0.05;
  p.presence_penalty = -1.5;
  p.frequency_penalty = 0.5;
  p.repetition_penalty = 1.1;
  p.stop_sequences = {"\n\n", "END"};
  p.stop_token_ids = {2, 7};
  p.seed = 4294967295u;
  p.logprobs = true;
  p.top_logprobs = 3;
  p.streaming = true;  // logprobs needs it
  p.structured = StructuredOutput{.schema = JsonText{R"({"type":"object"})"},
                                  .format = StructuredFormat::kYaml};
  p.multimodal = MultimodalInput{{"/tmp/a.png"}, ImageFormat::kPath};
  p.draft_model = "draft";
  ASSERT_TRUE(validate_options(p).ok()) << validate_options(p).message();
  nlohmann::json j = options_to_json(p);
  auto back = parse_options<GeneratorParams>(j);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(options_to_json(*back), j);
  EXPECT_EQ(back->seed, 4294967295u);
  EXPECT_EQ(back->structured->format, StructuredFormat::kYaml);
  EXPECT_EQ(back->structured->schema.text, R"({"type":"object"})");
  EXPECT_EQ(back->multimodal->image_format, ImageFormat::kPath);
  EXPECT_EQ(std::get<PromptTemplate>(back->prompt).variables.at("x"), "y");
  EXPECT_EQ(j["stop_sequences"][0], "\n\n");
}

TEST(GeneratorParamsSchema, AbsentFieldsKeepDefaults) {
  auto p = parse_options_text<GeneratorParams>(R"({"model":"m","prompt":"x"})");
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->temperature.has_value());
  EXPECT_FALSE(p->seed.has_value());
  EXPECT_TRUE(p->streaming);
  EXPECT_EQ(options_to_json(*p), (nlohmann::json{{"model", "m"},
                                                 {"prompt", "x"},
                                                 {"stop_sequences", nlohmann::json::array()},
                                                 {"stop_token_ids", nlohmann::json::array()},
                                                 {"ignore_eos", false},
                                                 {"logprobs", false},
                                                 {"top_logprobs", 0},
                                                 {"streaming", true},
                                                 {"draft_model", ""}}));
}

TEST(GeneratorParamsSchema, BadJsonTextIsAParseError) {
  auto p = parse_options_text<GeneratorParams>(R"({"model": "m",)");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), ErrorCode::kParseError);
  EXPECT_NE(p.status().message().find("invalid JSON at byte"), std::string::npos);
}

TEST(GeneratorParamsSchema, JsonSchemaExportShape) {
  Json s = schema::schema_of<GeneratorParams>().json_schema();
  EXPECT_EQ(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
  EXPECT_EQ(s["type"], "object");
  EXPECT_EQ(s["additionalProperties"], false);
  EXPECT_EQ(s["required"], Json({"model", "prompt"}));
  const Json& t = s["properties"]["temperature"];
  EXPECT_EQ(t["type"], "number");
  EXPECT_EQ(t["minimum"], 0);
  EXPECT_EQ(t["maximum"], 2);
  EXPECT_EQ(t["default"], 0.7);
  EXPECT_EQ(s["properties"]["top_p"]["exclusiveMinimum"], 0);
  EXPECT_FALSE(s["properties"]["top_p"].contains("minimum"));
  EXPECT_EQ(s["properties"]["max_tokens"]["type"], "integer");
  EXPECT_EQ(s["properties"]["stop_token_ids"]["items"]["minimum"], 0);
  EXPECT_EQ(s["properties"]["prompt"]["oneOf"].size(), 3u);
  EXPECT_EQ(s["properties"]["prompt"]["oneOf"][2]["required"], Json({"tokens"}));
  EXPECT_EQ(s["properties"]["structured"]["properties"]["format"]["enum"], Json({"json", "yaml"}));
  EXPECT_EQ(s["properties"]["model"]["not"]["pattern"], "\\.\\.");
  EXPECT_FALSE(s["properties"]["seed"].contains("default"));
}

TEST(LoadModelOptionsSchema, Rules) {
  auto err = [](Json body) {
    auto r = parse_options<LoadModelOptions>(nlohmann::json(body));
    return r.ok() ? "" : r.status().message();
  };
  EXPECT_EQ(err({{"model", "m"}, {"local_path", "/models/qwen"}, {"context_length", 1}}), "");
  EXPECT_EQ(err({{"local_path", "/x"}}), msg("model", "is required"));
  EXPECT_EQ(err({{"model", "m"}, {"local_path", "models/qwen"}}),
            msg("local_path", "must match ^(/.*)?$, got \"models/qwen\""));
  EXPECT_EQ(err({{"model", "m"}, {"local_path", "/models/../etc"}}),
            msg("local_path", "must not contain \"..\", got \"/models/../etc\""));
  EXPECT_EQ(err({{"model", "m"}, {"local_path", "/home/~x"}}),
            msg("local_path", "must not contain \"~\", got \"/home/~x\""));
  // Long values are bounded by their length before any pattern runs.
  EXPECT_EQ(err({{"model", "m"}, {"local_path", "/" + std::string(4095, 'a')}}), "");
  EXPECT_EQ(err({{"model", "m"}, {"local_path", "/" + std::string(4096, 'a')}}),
            msg("local_path", "must have at most 4096 characters, got 4097"));
  EXPECT_EQ(err({{"model", "m"}, {"context_length", 0}}),
            msg("context_length", "must be >= 1 and <= 1000000, got 0"));
  EXPECT_EQ(err({{"model", "m"}, {"context_length", 1000000}}), "");
  EXPECT_EQ(err({{"model", "m"}, {"context_length", 1000001}}),
            msg("context_length", "must be >= 1 and <= 1000000, got 1000001"));
  EXPECT_EQ(err({{"model", "m"}, {"quantization", "int3"}}),
            msg("quantization", "must be one of \"none\", \"int8\", \"int4\", got \"int3\""));
  EXPECT_EQ(err({{"model", "m"}, {"revision", std::string(257, 'r')}}),
            msg("revision", "must have at most 256 characters, got 257"));
  EXPECT_EQ(err({{"model", "m"}, {"draft", "yes"}}),
            msg("draft", "expected boolean, got string \"yes\""));
  EXPECT_EQ(err({{"model", "m"}, {"localPath", "/x"}}),
            msg("localPath", "unknown field (did you mean 'local_path'?)"));

  LoadModelOptions o;
  o.model = "m";
  o.context_length = 4096;
  auto back = parse_options<LoadModelOptions>(options_to_json(o));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->dtype, ModelDtype::kAuto);
  EXPECT_EQ(back->context_length, 4096);
  EXPECT_EQ(back->revision, "main");
}

TEST(GeneratorOptionsSchema, Rules) {
  auto err = [](Json body) {
    auto r = parse_options<GeneratorOptions>(nlohmann::json(body));
    return r.ok() ? "" : r.status().message();
  };
  EXPECT_EQ(
      err({{"priority", "background"}, {"timeout_ms", 86400000}, {"stream_id", "req-1.a:b_c"}}),
      "");
  EXPECT_EQ(
      err({{"priority", "high"}}),
      msg("priority", "must be one of \"urgent\", \"default\", \"background\", got \"high\""));
  EXPECT_EQ(err({{"timeout_ms", -1}}), msg("timeout_ms", "must be >= 0 and <= 86400000, got -1"));
  EXPECT_EQ(err({{"timeout_ms", 86400001}}),
            msg("timeout_ms", "must be >= 0 and <= 86400000, got 86400001"));
  EXPECT_EQ(err({{"stream_id", "a b"}}),
            msg("stream_id", "must match ^[A-Za-z0-9_.:\\-]*$, got \"a b\""));
  EXPECT_EQ(err({{"stream_id", std::string(129, 's')}}),
            msg("stream_id", "must have at most 128 characters, got 129"));
  auto parsed = parse_options<GeneratorOptions>(nlohmann::json{{"priority", "urgent"}});
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->priority, Priority::kUrgent);
}

TEST(EngineOptionsSchema, Rules) {
  auto err = [](Json body) {
    auto r = parse_options<EngineOptions>(nlohmann::json(body));
    return r.ok() ? "" : r.status().message();
  };
  EXPECT_EQ(err({{"device", "cuda"},
                 {"device_index", 63},
                 {"num_threads", 4096},
                 {"runtime", "in_process"}}),
            "");
  EXPECT_EQ(err({{"device", "metal"}}),
            msg("device", "must be one of \"auto\", \"cpu\", \"cuda\", got \"metal\""));
  EXPECT_EQ(err({{"device_index", 64}}), msg("device_index", "must be >= 0 and <= 63, got 64"));
  EXPECT_EQ(err({{"num_threads", -1}}), msg("num_threads", "must be >= 0 and <= 4096, got -1"));
  EXPECT_EQ(err({{"pythonPath", "/usr/bin/python"}}),
            msg("pythonPath",
                "unknown field (known fields: config_path, "
                "env_overrides, device, device_index, "
                "num_threads, runtime, worker_path, telemetry)"));
  EngineOptions o;
  o.num_threads = 5000;
  EXPECT_EQ(validate_options(o).message(),
            msg("num_threads", "must be >= 0 and <= 4096, got 5000"));
}

TEST(PromptTemplate, RenderReplacesEveryPlaceholder) {
  EXPECT_EQ(*render_prompt_template({"{{a}}-{{ b }}-{{a}}", {{"a", "x"}, {"b", "y"}}}), "x-y-x");
  EXPECT_EQ(*render_prompt_template({"no vars", {}}), "no vars");
  EXPECT_EQ(*render_prompt_template({"open {{ only", {}}), "open {{ only");
  auto missing = render_prompt_template({"{{who}}", {}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kInvalidParams);
  EXPECT_EQ(missing.status().message(),
            msg("prompt.variables", "template uses {{who}} but variables has no 'who'"));
}

}  // namespace
}  // namespace mlxs

namespace mlxs {
namespace {

// Fields of features this build does not have yet: the default is accepted, anything else is
// refused with an error naming the field (never accepted and ignored). One test per field.
std::string unavailable(const std::string& field, const std::string& feature,
                        const std::string& default_value, const std::string& got) {
  return msg(field, "not available in this build yet (" + feature +
                        "); leave it unset or at its default " + default_value + ", got " + got);
}

template <class T>
std::string refusal_of(const T& options) {
  Status s = validate_options(options);
  EXPECT_TRUE(s.ok() || s.code() == ErrorCode::kInvalidParams) << s.to_string();
  return s.message();
}

TEST(RefusedField, EngineOptionsRuntimeWorker) {
  EngineOptions o;
  EXPECT_EQ(refusal_of(o), "");
  o.runtime = RuntimeMode::kWorker;
  EXPECT_EQ(refusal_of(o),
            unavailable("runtime", "the worker process", "\"in_process\"", "\"worker\""));
}

TEST(RefusedField, EngineOptionsWorkerPath) {
  EngineOptions o;
  o.worker_path = "/usr/bin/w";
  EXPECT_EQ(refusal_of(o),
            unavailable("worker_path", "the worker process", "\"\"", "\"/usr/bin/w\""));
}

TEST(RefusedField, EngineOptionsTelemetry) {
  EngineOptions o;
  o.telemetry = true;
  EXPECT_EQ(refusal_of(o), unavailable("telemetry", "an engine telemetry switch", "false", "true"));
}

TEST(RefusedField, EngineOptionsDeviceIndexWithTheCpu) {
  EngineOptions o;
  o.device = Device::kCpu;
  o.device_index = 1;
  EXPECT_EQ(refusal_of(o),
            msg("device_index", "selects a GPU, so it must be 0 with device cpu, got 1"));
  o.device = Device::kCuda;
  EXPECT_EQ(refusal_of(o), "");
}

LoadModelOptions load_options() {
  LoadModelOptions o;
  o.model = "m";
  return o;
}

TEST(RefusedField, LoadModelOptionsDraft) {
  LoadModelOptions o = load_options();
  EXPECT_EQ(refusal_of(o), "");
  o.draft = true;
  EXPECT_EQ(refusal_of(o), unavailable("draft", "speculative decoding", "false", "true"));
}

TEST(RefusedField, LoadModelOptionsRevision) {
  LoadModelOptions o = load_options();
  o.revision = "v2";
  EXPECT_EQ(refusal_of(o), unavailable("revision", "checkpoint revisions", "\"main\"", "\"v2\""));
}

TEST(RefusedField, LoadModelOptionsQuantization) {
  LoadModelOptions o = load_options();
  o.quantization = Quantization::kInt8;
  EXPECT_EQ(refusal_of(o),
            unavailable("quantization", "load-time quantization", "\"none\"", "\"int8\""));
}

TEST(RefusedField, LoadModelOptionsDtype) {
  LoadModelOptions o = load_options();
  o.dtype = ModelDtype::kFloat16;
  EXPECT_EQ(refusal_of(o),
            unavailable("dtype", "a chosen compute dtype", "\"auto\"", "\"float16\""));
}

TEST(RefusedField, GeneratorParamsLogprobsWithoutStreaming) {
  GeneratorParams p;
  p.model = "m";
  p.prompt = "x";
  p.logprobs = true;
  EXPECT_EQ(refusal_of(p), "");
  p.streaming = false;
  EXPECT_EQ(refusal_of(p), msg("logprobs",
                               "requires streaming to be true (each token's log-probability "
                               "comes in its own chunk), got streaming false"));
}

}  // namespace
}  // namespace mlxs
