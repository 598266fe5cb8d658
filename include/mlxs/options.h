// Option structs of the public API: what a caller fills in to create the engine, load a model and
// start a generation. Field names are the original mlx-serving's, in C++ style (maxTokens ->
// max_tokens). Every struct has one declarative schema (src/api/option_schemas.h) that validates
// it, parses it from JSON and exports it as JSON Schema; the ranges noted here are that schema's.
// Plain data: no invariants are enforced by the types themselves, so validate before use.
// A field marked "not available in this build yet" is refused (InvalidParams naming it) unless it
// keeps its default: nothing is accepted and then ignored.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace mlxs {

// Where the engine runs its models.
enum class Device { kAuto, kCpu, kCuda };

// kInProcess: models run inside this process. kWorker: a child worker process behind JSON-RPC
// (not available in this build yet).
enum class RuntimeMode { kInProcess, kWorker };

struct EngineOptions {
  // YAML configuration file. Empty: the MLXS_CONFIG environment variable, else built-in defaults.
  std::string config_path;
  // Apply MLXS_<SECTION>_<KEY> environment overrides on top of the file.
  bool env_overrides = true;
  Device device = Device::kAuto;
  int32_t device_index = 0;  // 0..63, which GPU when device is kCuda or kAuto; 0 with kCpu
  // OpenMP compute threads, 0..4096, applied on every model's engine thread (where the model
  // runs); 0 = the config's backend.cpu.threads (whose 0 = OMP_NUM_THREADS, else one per core).
  int32_t num_threads = 0;
  RuntimeMode runtime = RuntimeMode::kInProcess;  // kWorker: not available in this build yet
  std::string worker_path;  // for kWorker; not available in this build yet (must stay empty)
  bool telemetry = false;   // not available in this build yet (events always reach subscribers)
};

enum class Quantization { kNone, kInt8, kInt4 };
enum class ModelDtype { kAuto, kFloat32, kFloat16, kBfloat16 };

struct LoadModelOptions {
  // Model id (required): 1..512 chars of [a-zA-Z0-9_\-./@:], no "..". Also the name the model is
  // served under; with no local_path it is resolved under the configured model directories.
  std::string model;
  // Absolute directory in Hugging Face layout (config.json, *.safetensors, tokenizer.json);
  // at most 4096 chars, no ".." or "~".
  std::string local_path;
  // The next four are not available in this build yet: only their defaults are accepted.
  bool draft = false;             // load as a draft model for speculative decoding
  std::string revision = "main";  // checkpoint revision; a local folder loads as it is
  Quantization quantization = Quantization::kNone;
  ModelDtype dtype = ModelDtype::kAuto;  // compute dtype; kAuto = the backend's
  // Context length, 1..1,000,000, at most the model's; unset = the model config's
  // max_position_embeddings, else the configured model.default_context_length.
  std::optional<int32_t> context_length;
  bool trust_remote_code = false;  // accepted for compatibility; no model code is ever executed
};

// A prompt given as a template: "{{name}}" in `template_text` is replaced by variables["name"].
struct PromptTemplate {
  std::string template_text;  // JSON: "template"
  std::map<std::string, std::string> variables;
};

// A prompt given as token ids of the model's vocabulary (each >= 0).
struct PromptTokens {
  std::vector<int32_t> tokens;
};

// JSON: a string | {"template": ..., "variables": {...}} | {"tokens": [...]}.
using Prompt = std::variant<std::string, PromptTemplate, PromptTokens>;

// A JSON document kept as its serialized text: the engine never parses JSON itself.
struct JsonText {
  std::string text;
  bool operator==(const JsonText&) const = default;
};

enum class StructuredFormat { kJson, kYaml };

// Constrained decoding: while decoding, only tokens that keep the output a prefix of a match
// may be drawn, and the model's EOS only where the output is a complete match
// (docs/structured-output.md). Exactly one of `schema`, `regex` and `grammar` is set.
struct StructuredOutput {
  JsonText schema;      // a JSON Schema object; at most model.limits.max_schema_bytes serialized
  std::string regex;    // a regular expression the whole output matches
  std::string grammar;  // a GBNF grammar (llama.cpp's notation), start rule `root`
  // With `schema`: the syntax of the output. yaml is refused (not available in this build).
  StructuredFormat format = StructuredFormat::kJson;
};

enum class ImageFormat { kBase64, kUrl, kPath };

struct MultimodalInput {
  std::vector<std::string> images;  // 1..16 images, each as `image_format` says
  ImageFormat image_format = ImageFormat::kBase64;
};

// One generation request. An unset sampling optional takes, in order: the model folder's
// generation_config.json (temperature, top_p, top_k, repetition_penalty; its eos_token_id
// stops unless ignore_eos), then the configured `sampling` section (docs/configuration.md). The
// model author's values come before the operator's defaults because they were chosen for that
// model, while the config's apply to every model the server loads; a request always wins. Unset
// max_tokens is sampling.max_tokens, cut to the context the prompt leaves.
struct GeneratorParams {
  std::string model;                        // id of a loaded model (required)
  Prompt prompt;                            // required; text at most 1,048,576 chars
  std::optional<int32_t> max_tokens;        // 1..100000, at most model.limits.max_generation_tokens
  std::optional<double> temperature;        // 0..2; 0 = greedy
  std::optional<double> top_p;              // (0, 1]; 1 = off
  std::optional<int32_t> top_k;             // >= 0; 0 = off
  std::optional<double> min_p;              // 0..1; 0 = off
  std::optional<double> presence_penalty;   // -2..2; 0 = off
  std::optional<double> frequency_penalty;  // -2..2; 0 = off
  std::optional<double> repetition_penalty;  // > 0 and <= 10; 1 = off
  std::vector<std::string> stop_sequences;   // at most 16, each 1..256 chars; never emitted
  std::vector<int32_t> stop_token_ids;       // at most 128, each >= 0 (besides the EOS ids)
  // true: the model's EOS ids do not end the generation (stop_token_ids and stop_sequences
  // still do): benchmarks that need exact output lengths (vLLM's and llama.cpp's `ignore_eos`).
  bool ignore_eos = false;
  std::optional<uint32_t> seed;  // same seed and params -> same output
  bool logprobs = false;         // report the log-probability of each sampled token
  int32_t top_logprobs = 0;      // 0..20 most likely alternatives per token; needs logprobs
  // true: token chunks as they come. false: one TokenChunk with the whole text (token_id the last
  // token's, no logprobs), then the metadata chunk.
  bool streaming = true;
  std::optional<StructuredOutput> structured;  // constrained decoding; unset = none
  // The next two are not available in this build yet: set, they are refused (InvalidParams).
  std::optional<MultimodalInput> multimodal;
  std::string draft_model;  // id of a loaded draft model for speculative decoding; empty = none
};

enum class Priority { kUrgent, kDefault, kBackground };

// How one generator runs (not what it generates). The cancel token is added with the engine.
struct GeneratorOptions {
  // Caller's id for the stream (1..128 chars of [A-Za-z0-9_.:-]); empty = the engine assigns one.
  std::string stream_id;
  // Whole-request deadline in milliseconds, 0..86,400,000; 0 = stream_registry.default_timeout_ms.
  int64_t timeout_ms = 0;
  Priority priority = Priority::kDefault;
};

}  // namespace mlxs
