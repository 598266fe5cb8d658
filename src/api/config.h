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
  // Where a model id without local_path is looked up: <dir>/<model id>.
  std::vector<std::string> search_directories;
  ModelLimitsConfig limits;
};

struct SchedulerConfig {
  int32_t max_num_seqs = 64;              // running sequences per step
  int32_t max_num_batched_tokens = 2048;  // tokens per step (prefill chunks + decodes)
  int32_t max_waiting_requests = 1024;    // queued beyond this are refused (CapacityExceeded)
  int64_t ageing_interval_ms = 2000;      // a waiting request rises one priority class per interval
  bool chunked_prefill = true;
  bool overlap_steps = true;  // queue step N+1 while step N runs on the device
};

struct KvCacheConfig {
  int32_t block_size = 16;       // tokens per KV block, a power of two
  int32_t num_blocks = 0;        // 0 = derive from memory_fraction
  double memory_fraction = 0.9;  // of free device memory given to the KV pool
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

struct CircuitBreakerConfig {
  int32_t failure_threshold = 5;  // failures within failure_window_ms that open it
  int64_t failure_window_ms = 60000;
  int64_t recovery_timeout_ms = 10000;  // open -> half-open
  int32_t half_open_max_calls = 1;      // probes in flight while half-open
  int32_t success_threshold = 2;        // half-open successes that close it
};

struct ServerConfig {
  std::string host = "127.0.0.1";
  int32_t port = 8080;
  std::string api_key;  // empty = no authentication
  int64_t max_body_bytes = 8 * 1024 * 1024;
  int64_t shutdown_deadline_ms = 10000;
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

// The CPU backend. Every OpenMP compute thread of the process is bounded by `threads`: the
// engine thread of each model applies it before its first step (OpenMP's thread count is per
// thread, so setting it only where the engine is created would leave the model's thread on all
// cores). EngineOptions::num_threads (`--threads`), when > 0, wins over this key.
struct CpuBackendConfig {
  int32_t threads = 0;  // 0 = OpenMP's default (OMP_NUM_THREADS, else one per core)
};

struct BackendConfig {
  CpuBackendConfig cpu;
};

struct Config {
  ModelConfig model;
  SchedulerConfig scheduler;
  KvCacheConfig kv_cache;
  StreamRegistryConfig stream_registry;
  SamplingConfig sampling;
  CircuitBreakerConfig circuit_breaker;
  ServerConfig server;
  TelemetryConfig telemetry;
  ClusterConfig cluster;
  WorkerConfig worker;
  BackendConfig backend;
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

namespace schema {
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
const Schema<CircuitBreakerConfig>& schema_of<CircuitBreakerConfig>();
template <>
const Schema<ServerConfig>& schema_of<ServerConfig>();
template <>
const Schema<TelemetryConfig>& schema_of<TelemetryConfig>();
template <>
const Schema<ClusterConfig>& schema_of<ClusterConfig>();
template <>
const Schema<WorkerConfig>& schema_of<WorkerConfig>();
template <>
const Schema<CpuBackendConfig>& schema_of<CpuBackendConfig>();
template <>
const Schema<BackendConfig>& schema_of<BackendConfig>();
}  // namespace schema

}  // namespace mlxs
