// The engine's configuration: one struct per section, loaded from a YAML file and MLXS_*
// environment variables, validated by the same schema layer as the API options.
//
// Sources, later wins: built-in defaults (the member initializers below), the YAML file (path from
// --config, else the MLXS_CONFIG environment variable, else none), then environment overrides
// MLXS_<SECTION>_<KEY> (e.g. MLXS_SERVER_PORT=9000, MLXS_MODEL_LIMITS_MAX_PROMPT_CHARS=4096).
// An override's value is read as a YAML scalar of the key's type; string keys take the text as is;
// list keys take "a,b,c" or a YAML flow list "[a, b]". Environment variables whose section is not
// a config section are ignored (reported as warnings), since other tools share the MLXS_ prefix.
//
// Errors: kValidationError listing every issue, each prefixed by where the value came from:
//   /etc/mlxs.yaml:12: Validation error on field 'server.port': must be >= 1 and <= 65535, got
//   70000 environment variable MLXS_SERVER_PORT: Validation error on field 'server.port': expected
//   ...
// A file that is missing is kNotFound; YAML that does not parse is kParseError (file:line:column).
// docs/configuration.md is generated from the schema (`mlx-serving config-docs`).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "api/schema_binding.h"
#include "mlxs/options.h"
#include "mlxs/status.h"
#include "sched/circuit_breaker.h"
#include "sched/scheduler.h"

namespace mlxs {

struct ModelLimitsConfig {
  int32_t max_generation_tokens = 32768;  // a request's max_tokens above this is refused
  int64_t max_prompt_chars = 1048576;
  int64_t max_image_bytes = 10 * 1024 * 1024;  // one decoded image
  int64_t max_schema_bytes = 32768;            // a structured-output schema, serialized
};

struct ModelConfig {
  int32_t default_context_length = 8192;  // when the model config names none
  int32_t max_loaded_models = 5;
  // local_path must lie inside one of these (absolute paths); empty = any directory.
  std::vector<std::string> trusted_model_directories;
  // A model folder's files must resolve inside it (util/model_files.h) unless this is set.
  bool allow_files_outside_model_dir = false;
  // Where a model id without local_path is looked up: <dir>/<model id>.
  std::vector<std::string> search_directories;
  ModelLimitsConfig limits;
};

// The scheduler and circuit breaker sections bind the scheduler's own types (one type, one set
// of defaults: their member initializers in src/sched/).
using SchedulerConfig = sched::SchedulerConfig;
using CircuitBreakerConfig = sched::CircuitBreakerConfig;

// How the pool is sized: src/engine/kv_pool.h.
struct KvCacheConfig {
  int32_t block_size = 16;  // tokens per KV block, a power of two
  int32_t num_blocks = 0;   // 0 = derive from memory_fraction (device) or cpu_memory_bytes (CPU)
  // Of the device memory free after the weights and the largest step's activations.
  double memory_fraction = 0.9;
  // KV bytes on the CPU backend; 0 = a quarter of RAM, at most half of what is available.
  int64_t cpu_memory_bytes = 0;
  bool prefix_caching = true;
};

struct StreamRegistryConfig {
  int32_t buffer_chunks = 64;  // per stream; a full buffer pauses only that stream
  int32_t max_active_streams = 256;
  int64_t default_timeout_ms = 300000;
  int64_t slow_consumer_threshold_ms = 1000;
  int64_t cleanup_interval_ms = 60000;
};

// Defaults for the GeneratorParams a request leaves unset.
struct SamplingConfig {
  int32_t max_tokens = 512;
  double temperature = 0.7;
  double top_p = 1.0;
  int32_t top_k = 0;
  double min_p = 0.0;
  double presence_penalty = 0.0;
  double frequency_penalty = 0.0;
  double repetition_penalty = 1.0;
};

// Constrained decoding (docs/structured-output.md).
struct StructuredConfig {
  // Compiled grammars kept for reuse, keyed by the request's schema, regex or grammar text.
  int32_t compile_cache_entries = 256;
  // false: JSON from a schema is compact (no whitespace between tokens); true: up to
  // json_max_whitespace bytes of JSON whitespace are allowed in each gap.
  bool json_any_whitespace = false;
  int32_t json_max_whitespace = 16;
};

struct ServerConfig {
  std::string host = "127.0.0.1";
  int32_t port = 8080;
  std::string api_key;  // empty = no authentication
  int64_t max_body_bytes = 8 * 1024 * 1024;
  int32_t max_json_depth = 64;  // nesting of arrays/objects in a request body
  int64_t shutdown_deadline_ms = 10000;
  int32_t max_streams_per_connection = 64;  // generators (n) one connection holds at once
  int64_t write_timeout_ms = 30000;         // a write unfinished this long drops the client
  int32_t tokenizer_threads = 2;  // render chat templates and tokenize off the I/O threads
  int32_t io_threads = 2;         // threads running the sockets (serve --io-threads wins)
  bool log_requests = true;       // one line per request on stderr (serve --quiet: false)
  int64_t max_response_bytes = 64 * 1024 * 1024;  // a non-streamed response's largest body
  int32_t responses_store_size = 1000;  // Responses API: stored responses (previous_response_id)
};

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError, kOff };

struct TelemetryConfig {
  LogLevel log_level = LogLevel::kInfo;
  bool json_logs = false;
  bool metrics = true;  // Prometheus /metrics
  std::string service_name = "mlx-serving";
};

struct ClusterConfig {
  bool enabled = false;
  std::string nats_url = "nats://127.0.0.1:4222";
  std::string worker_id;  // empty = generated at start
  int64_t heartbeat_interval_ms = 5000;
  int64_t offline_after_ms = 15000;
};

struct WorkerConfig {
  int32_t max_restarts = 3;
  int64_t startup_timeout_ms = 30000;
  int64_t shutdown_timeout_ms = 5000;
  int64_t restart_backoff_ms = 1000;  // times the attempt number
  int64_t rpc_timeout_ms = 300000;
  int64_t max_message_bytes = 1024 * 1024;
};

// How CUDA linear layers take their activations. kPrecise: f32-precise activations (a hi + lo bf16
// split on the tensor cores) and an f32 KV cache, so results match the CPU reference up to
// summation order and a seeded stream does not change with the batch. kFast: bf16 activations
// and a bf16 KV cache (what the benchmarks run; about twice the sequences per GiB of KV).
enum class CudaPrecision { kPrecise, kFast };

// The CPU backend. Every OpenMP compute thread of the process is bounded by `threads`: the
// engine thread of each model applies it before its first step (OpenMP's thread count is per
// thread, so setting it only where the engine is created would leave the model's thread on all
// cores). EngineOptions::num_threads (`--threads`), when > 0, wins over this key.
struct CpuBackendConfig {
  int32_t threads = 0;  // 0 = OpenMP's default (OMP_NUM_THREADS, else one per core)
  // Kernel family of the matrix products: auto, scalar, avx2, avx512, avx512bf16. auto = the most
  // capable exact one the CPU has (avx512bf16 rounds activations to bf16: opt-in only,
  // docs/cpu.md); a family the CPU lacks is refused when the configuration is loaded.
  std::string isa = "auto";
};

struct CudaBackendConfig {
  CudaPrecision precision = CudaPrecision::kPrecise;
  bool graphs = true;            // record decode steps as CUDA graphs and replay them
  bool pdl = true;               // programmatic dependent launch (Hopper)
  bool swiglu_epilogue = true;   // SwiGLU fused into the GEMV of interleaved gate/up weights
  bool attention_decode = true;  // the decode-step attention kernel (one query row per sequence)
  bool attention_tc = true;      // prefill attention on tensor cores (bf16 KV cache)
  // Linear layers with at most this many rows use the GEMV kernel (at most 8), more use cuBLAS.
  // H200 sweep (bench/gpu/logs/run2_ours.log): GEMV wins clearly at 1 row (o_proj 12.3 vs
  // 16.2 us), ties at 2, loses from 4 (gate_up 94.7 vs 62.0 us; f32 FMAs and x re-reads).
  int32_t gemv_max_rows = 2;
};

struct BackendConfig {
  Device device = Device::kAuto;  // auto = CUDA when built and a GPU is present, else the CPU
  CpuBackendConfig cpu;
  CudaBackendConfig cuda;
};

struct Config {
  BackendConfig backend;
  ModelConfig model;
  SchedulerConfig scheduler;
  KvCacheConfig kv_cache;
  StreamRegistryConfig stream_registry;
  SamplingConfig sampling;
  StructuredConfig structured;
  CircuitBreakerConfig circuit_breaker;
  ServerConfig server;
  TelemetryConfig telemetry;
  ClusterConfig cluster;
  WorkerConfig worker;
};

using EnvMap = std::map<std::string, std::string>;

// A copy of this process's environment (only the MLXS_ variables).
EnvMap process_environment();

// The configuration from `path` (empty: env["MLXS_CONFIG"], else defaults only) and the
// MLXS_<SECTION>_<KEY> variables of `env`. Ignored variables are appended to `warnings` if given.
Result<Config> load_config(const std::string& path, const EnvMap& env,
                           std::vector<std::string>* warnings = nullptr);

// Same, from YAML text; `source_name` names it in messages (e.g. the file path).
Result<Config> load_config_text(std::string_view yaml, const std::string& source_name,
                                const EnvMap& env, std::vector<std::string>* warnings = nullptr);

// Ok, or kValidationError naming every field of `config` out of range.
Status validate_config(const Config& config);

// `params` with every unset sampling field taken from `defaults`.
GeneratorParams apply_sampling_defaults(GeneratorParams params, const SamplingConfig& defaults);

// "MLXS_MODEL_LIMITS_MAX_PROMPT_CHARS" for "model.limits.max_prompt_chars".
std::string env_var_for(std::string_view path);

// docs/configuration.md: every key with type, default, range, environment variable and meaning.
std::string config_reference_markdown();

// The environment variable MLXS_<SECTION>_<KEY> `name` sets, as a dotted path
// ("backend.cuda.precision"), or "" when it names no key.
std::string config_key_for_env(const std::string& name);

namespace schema {
template <>
struct EnumTable<CudaPrecision> {
  static constexpr std::array<std::pair<CudaPrecision, const char*>, 2> kEntries{
      {{CudaPrecision::kPrecise, "precise"}, {CudaPrecision::kFast, "fast"}}};
};

template <>
struct EnumTable<LogLevel> {
  static constexpr std::array<std::pair<LogLevel, const char*>, 6> kEntries{
      {{LogLevel::kTrace, "trace"},
       {LogLevel::kDebug, "debug"},
       {LogLevel::kInfo, "info"},
       {LogLevel::kWarn, "warn"},
       {LogLevel::kError, "error"},
       {LogLevel::kOff, "off"}}};
};

template <>
const Schema<Config>& schema_of<Config>();
template <>
const Schema<BackendConfig>& schema_of<BackendConfig>();
template <>
const Schema<CpuBackendConfig>& schema_of<CpuBackendConfig>();
template <>
const Schema<CudaBackendConfig>& schema_of<CudaBackendConfig>();
template <>
const Schema<ModelConfig>& schema_of<ModelConfig>();
template <>
const Schema<ModelLimitsConfig>& schema_of<ModelLimitsConfig>();
template <>
const Schema<SchedulerConfig>& schema_of<SchedulerConfig>();
template <>
const Schema<KvCacheConfig>& schema_of<KvCacheConfig>();
template <>
const Schema<StreamRegistryConfig>& schema_of<StreamRegistryConfig>();
template <>
const Schema<SamplingConfig>& schema_of<SamplingConfig>();
template <>
const Schema<StructuredConfig>& schema_of<StructuredConfig>();
template <>
const Schema<CircuitBreakerConfig>& schema_of<CircuitBreakerConfig>();
template <>
const Schema<ServerConfig>& schema_of<ServerConfig>();
template <>
const Schema<TelemetryConfig>& schema_of<TelemetryConfig>();
template <>
const Schema<ClusterConfig>& schema_of<ClusterConfig>();
template <>
const Schema<WorkerConfig>& schema_of<WorkerConfig>();
}  // namespace schema

}  // namespace mlxs
