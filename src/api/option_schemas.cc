// One schema declaration per public option struct. Ranges follow the original mlx-serving (Zod
// schemas and the Python runtime's checks), tightened where the original accepted values that mean
// nothing (top_p 0, repetition_penalty 0).
#include "api/option_schemas.h"

#include <fmt/format.h>

#include "api/config.h"

namespace mlxs {
namespace schema {
namespace {

constexpr const char* kModelIdHelp = "1..512 characters of [a-zA-Z0-9_-./@:], without '..'";

template <class T>
void model_id_field(Schema<T>& s, std::string name, std::string T::*member, std::string help) {
  s.field(std::move(name), member, std::move(help) + " (" + kModelIdHelp + ")")
      .required()
      .min_length(1)
      .max_length(limits::kMaxModelIdChars)
      .pattern(limits::kModelIdPattern)
      .forbid("..");
}

// Names of the {{variables}} of a template, in order of appearance.
std::vector<std::string> template_variables(const std::string& text) {
  std::vector<std::string> names;
  size_t pos = 0;
  while ((pos = text.find("{{", pos)) != std::string::npos) {
    size_t end = text.find("}}", pos + 2);
    if (end == std::string::npos) break;
    std::string name = text.substr(pos + 2, end - pos - 2);
    size_t first = name.find_first_not_of(" \t");
    size_t last = name.find_last_not_of(" \t");
    names.push_back(first == std::string::npos ? "" : name.substr(first, last - first + 1));
    pos = end + 2;
  }
  return names;
}

std::optional<std::string> check_template_variables(const PromptTemplate& t) {
  for (const auto& name : template_variables(t.template_text)) {
    if (!t.variables.count(name)) {
      return fmt::format("template uses {{{{{}}}}} but variables has no '{}'", name, name);
    }
  }
  return std::nullopt;
}

}  // namespace

template <>
const Schema<EngineOptions>& schema_of<EngineOptions>() {
  static const Schema<EngineOptions> s = [] {
    Schema<EngineOptions> s("EngineOptions", "How the engine is created (createEngine).");
    s.field("config_path", &EngineOptions::config_path,
            "YAML configuration file; empty = the MLXS_CONFIG environment variable, else defaults")
        .max_length(limits::kMaxPathChars);
    s.field("env_overrides", &EngineOptions::env_overrides,
            "apply MLXS_<SECTION>_<KEY> environment overrides on top of the file");
    s.field("device", &EngineOptions::device, "where models run; auto = CUDA when present");
    s.field("device_index", &EngineOptions::device_index,
            "GPU index for device cuda or auto; must be 0 with device cpu")
        .range(0, 63);
    s.field("num_threads", &EngineOptions::num_threads,
            "OpenMP compute threads of every model's engine thread; 0 = the config's "
            "backend.cpu.threads")
        .range(0, 4096);
    s.field("runtime", &EngineOptions::runtime,
            "in_process: models run in this process; worker: in a supervised child process (not "
            "available in this build yet)");
    s.field("worker_path", &EngineOptions::worker_path,
            "worker executable for runtime worker; empty = this executable (not available in "
            "this build yet)")
        .max_length(limits::kMaxPathChars);
    s.field("telemetry", &EngineOptions::telemetry,
            "collect engine events and metrics (not available in this build yet: events always "
            "reach Engine::subscribe listeners, and the server's metrics follow "
            "telemetry.metrics)");
    s.refine("device_index", [](const EngineOptions& o) -> std::optional<std::string> {
      if (o.device_index == 0 || o.device != Device::kCpu) return std::nullopt;
      return fmt::format("selects a GPU, so it must be 0 with device cpu, got {}", o.device_index);
    });
    s.unavailable("runtime", &EngineOptions::runtime, "the worker process");
    s.unavailable("worker_path", &EngineOptions::worker_path, "the worker process");
    s.unavailable("telemetry", &EngineOptions::telemetry, "an engine telemetry switch");
    return s;
  }();
  return s;
}

template <>
const Schema<LoadModelOptions>& schema_of<LoadModelOptions>() {
  static const Schema<LoadModelOptions> s = [] {
    Schema<LoadModelOptions> s("LoadModelOptions", "A model to load (loadModel).");
    model_id_field(s, "model", &LoadModelOptions::model,
                   "model id, also the name it is served under");
    s.field("local_path", &LoadModelOptions::local_path,
            "absolute directory in Hugging Face layout; empty = look the id up in "
            "model.search_directories")
        .max_length(limits::kMaxPathChars)
        .pattern("^(/.*)?$")
        .forbid("..")
        .forbid("~");
    s.field("draft", &LoadModelOptions::draft,
            "load as a draft model for speculative decoding (not available in this build yet)");
    s.field("revision", &LoadModelOptions::revision,
            "checkpoint revision (not available in this build yet: a model loads from its local "
            "folder as it is, so only main is accepted)")
        .min_length(1)
        .max_length(256)
        .pattern("^[A-Za-z0-9_.\\-/]+$");
    s.field("quantization", &LoadModelOptions::quantization,
            "weight quantization to apply at load time (not available in this build yet)");
    s.field("dtype", &LoadModelOptions::dtype,
            "compute dtype; auto = the backend's (not available in this build yet: only auto)");
    s.field("context_length", &LoadModelOptions::context_length,
            "context length, at most the model's; unset = the model config's "
            "max_position_embeddings, else model.default_context_length")
        .range(1, limits::kMaxContextLength);
    s.field("trust_remote_code", &LoadModelOptions::trust_remote_code,
            "accepted for compatibility; this engine never executes model code");
    s.unavailable("draft", &LoadModelOptions::draft, "speculative decoding");
    s.unavailable("revision", &LoadModelOptions::revision, "checkpoint revisions");
    s.unavailable("quantization", &LoadModelOptions::quantization, "load-time quantization");
    s.unavailable("dtype", &LoadModelOptions::dtype, "a chosen compute dtype");
    return s;
  }();
  return s;
}

template <>
const Schema<PromptTemplate>& schema_of<PromptTemplate>() {
  static const Schema<PromptTemplate> s = [] {
    Schema<PromptTemplate> s("PromptTemplate",
                             "A prompt whose {{name}} placeholders are replaced by variables.");
    s.field("template", &PromptTemplate::template_text, "text with {{name}} placeholders")
        .required()
        .max_length(limits::kMaxPromptChars);
    s.field("variables", &PromptTemplate::variables, "placeholder values").max_items(1024);
    s.refine("variables", check_template_variables);
    return s;
  }();
  return s;
}

template <>
const Schema<PromptTokens>& schema_of<PromptTokens>() {
  static const Schema<PromptTokens> s = [] {
    Schema<PromptTokens> s("PromptTokens",
                           "A prompt given as token ids of the model's vocabulary.");
    s.field("tokens", &PromptTokens::tokens, "token ids")
        .required()
        .min_items(1)
        .max_items(limits::kMaxPromptChars)
        .items()
        .min(0);
    return s;
  }();
  return s;
}

template <>
const Schema<StructuredOutput>& schema_of<StructuredOutput>() {
  static const Schema<StructuredOutput> s = [] {
    Schema<StructuredOutput> s(
        "StructuredOutput",
        "Constrained decoding: the output must match a JSON Schema, a regular expression or a "
        "GBNF grammar (exactly one of schema, regex, grammar).");
    s.field("schema", &StructuredOutput::schema, "a JSON Schema object")
        .max_length(limits::kMaxSchemaBytes);
    s.field("regex", &StructuredOutput::regex, "a regular expression the whole output matches")
        .max_length(limits::kMaxSchemaBytes);
    s.field("grammar", &StructuredOutput::grammar, "a GBNF grammar with a `root` rule")
        .max_length(limits::kMaxSchemaBytes);
    s.field("format", &StructuredOutput::format, "output syntax of a schema");
    s.refine("schema", [](const StructuredOutput& o) -> std::optional<std::string> {
      const int set = int(!o.schema.text.empty()) + int(!o.regex.empty()) + int(!o.grammar.empty());
      if (set == 1) return std::nullopt;
      return "exactly one of schema, regex and grammar must be given, got " + std::to_string(set);
    });
    return s;
  }();
  return s;
}

template <>
const Schema<MultimodalInput>& schema_of<MultimodalInput>() {
  static const Schema<MultimodalInput> s = [] {
    Schema<MultimodalInput> s("MultimodalInput", "Images for a vision model.");
    s.field("images", &MultimodalInput::images, "images, each as image_format says")
        .required()
        .min_items(1)
        .max_items(limits::kMaxImages)
        .items()
        .min_length(1);
    s.field("image_format", &MultimodalInput::image_format, "how each image is given");
    return s;
  }();
  return s;
}

template <>
const Schema<GeneratorParams>& schema_of<GeneratorParams>() {
  static const Schema<GeneratorParams> s = [] {
    const SamplingConfig d;  // the built-in sampling defaults, documented for unset fields
    Schema<GeneratorParams> s("GeneratorParams", "One generation request (createGenerator).");
    model_id_field(s, "model", &GeneratorParams::model, "id of a loaded model");
    s.field("prompt", &GeneratorParams::prompt, "text | {template, variables} | {tokens}")
        .required()
        .variant(0)
        .max_length(limits::kMaxPromptChars);
    s.field("max_tokens", &GeneratorParams::max_tokens, "most tokens to generate")
        .range(1, limits::kMaxTokens)
        .default_doc(d.max_tokens);
    s.field("temperature", &GeneratorParams::temperature, "sampling temperature; 0 = greedy")
        .range(0, limits::kMaxTemperature)
        .default_doc(d.temperature);
    s.field("top_p", &GeneratorParams::top_p, "nucleus sampling mass; 1 = off")
        .greater_than(0)
        .max(1)
        .default_doc(d.top_p);
    s.field("top_k", &GeneratorParams::top_k, "sample among the k most likely tokens; 0 = off")
        .min(0)
        .default_doc(d.top_k);
    s.field("min_p", &GeneratorParams::min_p,
            "drop tokens below min_p times the top probability; 0 = off")
        .range(0, 1)
        .default_doc(d.min_p);
    s.field("presence_penalty", &GeneratorParams::presence_penalty,
            "penalty for tokens already generated; 0 = off")
        .range(-limits::kMaxPenalty, limits::kMaxPenalty)
        .default_doc(d.presence_penalty);
    s.field("frequency_penalty", &GeneratorParams::frequency_penalty,
            "penalty per occurrence so far; 0 = off")
        .range(-limits::kMaxPenalty, limits::kMaxPenalty)
        .default_doc(d.frequency_penalty);
    s.field("repetition_penalty", &GeneratorParams::repetition_penalty,
            "divides the logits of tokens in prompt and output; 1 = off")
        .greater_than(0)
        .max(limits::kMaxRepetitionPenalty)
        .default_doc(d.repetition_penalty);
    s.field("stop_sequences", &GeneratorParams::stop_sequences,
            "text that ends the generation (not emitted)")
        .max_items(limits::kMaxStopSequences)
        .items()
        .min_length(1)
        .max_length(limits::kMaxStopSequenceChars);
    s.field("stop_token_ids", &GeneratorParams::stop_token_ids,
            "token ids that end the generation (besides EOS)")
        .max_items(limits::kMaxStopTokenIds)
        .items()
        .min(0);
    s.field("ignore_eos", &GeneratorParams::ignore_eos,
            "the model's EOS tokens do not end the generation (exact output lengths for "
            "benchmarks); stop_token_ids and stop sequences still do");
    s.field("seed", &GeneratorParams::seed,
            "random seed; same seed and params give the same output")
        .range(0, 4294967295.0);
    s.field("logprobs", &GeneratorParams::logprobs,
            "report the log-probability of each sampled token");
    s.field("top_logprobs", &GeneratorParams::top_logprobs,
            "alternatives reported per token; needs logprobs")
        .range(0, limits::kMaxTopLogprobs);
    s.field("streaming", &GeneratorParams::streaming,
            "deliver tokens as they come; false = one token chunk with the whole text at the end");
    s.field("structured", &GeneratorParams::structured, "constrain the output to a schema");
    s.field("multimodal", &GeneratorParams::multimodal, "images for a vision model");
    s.field("draft_model", &GeneratorParams::draft_model,
            "id of a loaded draft model; empty = none")
        .max_length(limits::kMaxModelIdChars)
        .pattern("^[a-zA-Z0-9_\\-./@:]*$")
        .forbid("..");
    s.refine("top_logprobs", [](const GeneratorParams& p) -> std::optional<std::string> {
      if (p.top_logprobs > 0 && !p.logprobs) {
        return fmt::format("requires logprobs to be true, got {}", p.top_logprobs);
      }
      return std::nullopt;
    });
    s.refine("logprobs", [](const GeneratorParams& p) -> std::optional<std::string> {
      if (!p.logprobs || p.streaming) return std::nullopt;
      return std::string(
          "requires streaming to be true (each token's log-probability comes in "
          "its own chunk), got streaming false");
    });
    s.refine("prompt.variables", [](const GeneratorParams& p) -> std::optional<std::string> {
      const auto* t = std::get_if<PromptTemplate>(&p.prompt);
      return t ? check_template_variables(*t) : std::nullopt;
    });
    return s;
  }();
  return s;
}

template <>
const Schema<GeneratorOptions>& schema_of<GeneratorOptions>() {
  static const Schema<GeneratorOptions> s = [] {
    Schema<GeneratorOptions> s("GeneratorOptions",
                               "How one generator runs (createGenerator options).");
    s.field("stream_id", &GeneratorOptions::stream_id,
            "caller's stream id; empty = assigned by the engine")
        .max_length(128)
        .pattern("^[A-Za-z0-9_.:\\-]*$");
    s.field("timeout_ms", &GeneratorOptions::timeout_ms,
            "whole-request deadline in ms; 0 = stream_registry.default_timeout_ms")
        .range(0, 86400000);
    s.field("priority", &GeneratorOptions::priority,
            "scheduling class; background work is aged, never starved");
    return s;
  }();
  return s;
}

}  // namespace schema

Result<schema::Json> parse_json_text(std::string_view text) {
  try {
    return schema::Json::parse(text);
  } catch (const schema::Json::parse_error& e) {
    return Status(ErrorCode::kParseError,
                  fmt::format("invalid JSON at byte {}: {}", e.byte, e.what()));
  }
}

Result<std::string> render_prompt_template(const PromptTemplate& prompt) {
  if (auto problem = schema::check_template_variables(prompt)) {
    return Status(ErrorCode::kInvalidParams,
                  schema::Issue{"prompt.variables", *problem}.to_string());
  }
  const std::string& text = prompt.template_text;
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t open = text.find("{{", pos);
    size_t close = open == std::string::npos ? open : text.find("}}", open + 2);
    if (close == std::string::npos) break;
    out.append(text, pos, open - pos);
    std::string name = text.substr(open + 2, close - open - 2);
    size_t first = name.find_first_not_of(" \t");
    size_t last = name.find_last_not_of(" \t");
    out +=
        prompt.variables.at(first == std::string::npos ? "" : name.substr(first, last - first + 1));
    pos = close + 2;
  }
  out.append(text, pos, std::string::npos);
  return out;
}

}  // namespace mlxs
