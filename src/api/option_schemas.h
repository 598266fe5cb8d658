// The schemas of the public option structs (include/mlxs/options.h), and the three things done
// with them: validate a struct a C++ caller filled in, parse a JSON body into one, export JSON
// Schema. Every rule lives in option_schemas.cc, declared once per struct.
//
// Errors: kInvalidParams (the original's code for Zod failures) listing every issue, each as
//   Validation error on field 'temperature': must be >= 0 and <= 2, got 5
// joined by "; "; JSON text that does not parse is kParseError.
#pragma once

#include <array>
#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>

#include "api/schema_binding.h"
#include "mlxs/options.h"
#include "mlxs/status.h"

namespace mlxs {

// Sampling ranges shared by GeneratorParams and the config's `sampling` defaults.
namespace limits {
inline constexpr double kMaxTemperature = 2.0;
inline constexpr double kMaxPenalty = 2.0;  // presence and frequency penalties: -2..2
inline constexpr double kMaxRepetitionPenalty = 10.0;
inline constexpr int32_t kMaxTokens = 100000;
inline constexpr int32_t kMaxTopLogprobs = 20;
inline constexpr int32_t kMaxContextLength = 1000000;
inline constexpr size_t kMaxPromptChars = 1048576;
inline constexpr size_t kMaxModelIdChars = 512;
inline constexpr size_t kMaxPathChars = 4096;
inline constexpr size_t kMaxStopSequences = 16;
inline constexpr size_t kMaxStopSequenceChars = 256;
inline constexpr size_t kMaxStopTokenIds = 128;
inline constexpr size_t kMaxSchemaBytes = 1 << 20;  // ceiling of model.limits.max_schema_bytes
inline constexpr size_t kMaxImages = 16;
inline constexpr const char* kModelIdPattern = "^[a-zA-Z0-9_\\-./@:]+$";
}  // namespace limits

namespace schema {

template <>
struct EnumTable<Device> {
  static constexpr std::array<std::pair<Device, const char*>, 3> kEntries{
      {{Device::kAuto, "auto"}, {Device::kCpu, "cpu"}, {Device::kCuda, "cuda"}}};
};
template <>
struct EnumTable<RuntimeMode> {
  static constexpr std::array<std::pair<RuntimeMode, const char*>, 2> kEntries{
      {{RuntimeMode::kInProcess, "in_process"}, {RuntimeMode::kWorker, "worker"}}};
};
template <>
struct EnumTable<Quantization> {
  static constexpr std::array<std::pair<Quantization, const char*>, 3> kEntries{
      {{Quantization::kNone, "none"},
       {Quantization::kInt8, "int8"},
       {Quantization::kInt4, "int4"}}};
};
template <>
struct EnumTable<ModelDtype> {
  static constexpr std::array<std::pair<ModelDtype, const char*>, 4> kEntries{
      {{ModelDtype::kAuto, "auto"},
       {ModelDtype::kFloat32, "float32"},
       {ModelDtype::kFloat16, "float16"},
       {ModelDtype::kBfloat16, "bfloat16"}}};
};
template <>
struct EnumTable<StructuredFormat> {
  static constexpr std::array<std::pair<StructuredFormat, const char*>, 2> kEntries{
      {{StructuredFormat::kJson, "json"}, {StructuredFormat::kYaml, "yaml"}}};
};
template <>
struct EnumTable<ImageFormat> {
  static constexpr std::array<std::pair<ImageFormat, const char*>, 3> kEntries{
      {{ImageFormat::kBase64, "base64"}, {ImageFormat::kUrl, "url"}, {ImageFormat::kPath, "path"}}};
};
template <>
struct EnumTable<Priority> {
  static constexpr std::array<std::pair<Priority, const char*>, 3> kEntries{
      {{Priority::kUrgent, "urgent"},
       {Priority::kDefault, "default"},
       {Priority::kBackground, "background"}}};
};

template <>
const Schema<EngineOptions>& schema_of<EngineOptions>();
template <>
const Schema<LoadModelOptions>& schema_of<LoadModelOptions>();
template <>
const Schema<PromptTemplate>& schema_of<PromptTemplate>();
template <>
const Schema<PromptTokens>& schema_of<PromptTokens>();
template <>
const Schema<StructuredOutput>& schema_of<StructuredOutput>();
template <>
const Schema<MultimodalInput>& schema_of<MultimodalInput>();
template <>
const Schema<GeneratorParams>& schema_of<GeneratorParams>();
template <>
const Schema<GeneratorOptions>& schema_of<GeneratorOptions>();

}  // namespace schema

// Ok, or kInvalidParams naming every field that breaks its schema. T is one of the option structs
// above. Thread-safe.
template <class T>
Status validate_options(const T& value) {
  return schema::schema_of<T>().validate_value(value);
}

// A JSON body as T: unknown fields, wrong types and broken ranges are kInvalidParams (all of
// them); absent fields keep T's defaults.
template <class T>
Result<T> parse_options(const nlohmann::json& body) {
  return schema::schema_of<T>().parse(schema::Json(body));
}

// JSON text as a document, or kParseError with the parser's message (it names the byte offset).
Result<schema::Json> parse_json_text(std::string_view text);

// Same as parse_options, from JSON text.
template <class T>
Result<T> parse_options_text(std::string_view text) {
  MLXS_ASSIGN_OR_RETURN(schema::Json body, parse_json_text(text));
  return schema::schema_of<T>().parse(body);
}

// `value` as JSON (the inverse of parse_options: parse_options(options_to_json(v)) == v).
template <class T>
nlohmann::json options_to_json(const T& value) {
  return nlohmann::json(schema::schema_of<T>().to_json(value));
}

// The prompt text of a template: every "{{name}}" replaced by variables["name"] (whitespace inside
// the braces is allowed). kInvalidParams naming the variable when one is missing.
Result<std::string> render_prompt_template(const PromptTemplate& prompt);

}  // namespace mlxs
