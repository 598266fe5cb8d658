// The configuration's schema: one declaration per section. Defaults are the structs' member
// initializers (config.h); the original's values where it had the key.
#include "api/config.h"

#include <fmt/format.h>

#include "api/option_schemas.h"
#include "backend/cpu/cpu_features.h"

namespace mlxs {
namespace schema {
namespace {

constexpr double kDayMs = 86400000;

bool is_power_of_two(int64_t v) {
  return v > 0 && (v & (v - 1)) == 0;
}

}  // namespace

template <>
const Schema<CpuBackendConfig>& schema_of<CpuBackendConfig>() {
  static const Schema<CpuBackendConfig> s = [] {
    Schema<CpuBackendConfig> s("CpuBackendConfig", "The CPU backend.");
    s.field("threads", &CpuBackendConfig::threads,
            "OpenMP compute threads of every model's engine thread (the whole process's CPU "
            "compute); 0 = OpenMP's default (OMP_NUM_THREADS, else one per core); `serve "
            "--threads N` (EngineOptions.num_threads) > 0 wins")
        .range(0, 4096);
    s.field("isa", &CpuBackendConfig::isa,
            "kernel family of the matrix products: auto, scalar, avx2, avx512 or avx512bf16; auto "
            "= the most capable exact family this CPU has (avx512 or less); avx512bf16 rounds "
            "activations to bf16 (faster only where vdpbf16ps is, less accurate: docs/cpu.md); a "
            "family this CPU lacks is refused")
        .pattern("^(auto|scalar|avx2|avx512|avx512bf16)$");
    s.refine("isa", [](const CpuBackendConfig& c) {
      return cpu::isa_choice_error(c.isa, cpu::supported_isa());
    });
    return s;
  }();
  return s;
}

template <>
const Schema<CudaBackendConfig>& schema_of<CudaBackendConfig>() {
  static const Schema<CudaBackendConfig> s = [] {
    Schema<CudaBackendConfig> s("CudaBackendConfig", "The CUDA backend.");
    s.field("precision", &CudaBackendConfig::precision,
            "precise: f32-precise activations (hi + lo bf16 halves on the tensor cores) and an f32 "
            "KV cache, matching the CPU reference up to summation order, seeded streams the same "
            "under any batch; fast: bf16 activations and a bf16 KV cache (twice the sequences per "
            "GiB of KV; what the benchmarks run)");
    s.field("graphs", &CudaBackendConfig::graphs,
            "record decode steps as CUDA graphs (batch padded to a bucket) and replay them");
    s.field("pdl", &CudaBackendConfig::pdl,
            "programmatic dependent launch: a kernel's launch and prologue overlap the previous "
            "kernel's tail (Hopper)");
    s.field("swiglu_epilogue", &CudaBackendConfig::swiglu_epilogue,
            "interleave gate/up weights at load so SwiGLU runs in the GEMV's epilogue (decode)");
    s.field("attention_decode", &CudaBackendConfig::attention_decode,
            "the decode-step attention kernel (one query row per sequence); false = the general "
            "paged-attention kernel");
    s.field("attention_tc", &CudaBackendConfig::attention_tc,
            "prefill attention on tensor cores (bf16 KV cache, head dim 64 or 128); false = the "
            "CUDA-core kernel");
    s.field("gemv_max_rows", &CudaBackendConfig::gemv_max_rows,
            "linear layers with at most this many rows run on the GEMV kernel, more on cuBLAS; "
            "0 = cuBLAS always (quantized weights: their GEMV up to 8 rows unless 0)")
        .range(0, 8);
    return s;
  }();
  return s;
}

template <>
const Schema<BackendConfig>& schema_of<BackendConfig>() {
  static const Schema<BackendConfig> s = [] {
    Schema<BackendConfig> s("BackendConfig", "Where and how models run.");
    s.field("device", &BackendConfig::device,
            "auto = CUDA when this build has it and a GPU is present, else the CPU; cuda is "
            "refused at start when either is missing. An EngineOptions.device (serve --device) "
            "other than auto takes precedence");
    s.field("cpu", &BackendConfig::cpu, "the CPU backend");
    s.field("cuda", &BackendConfig::cuda, "the CUDA backend");
    return s;
  }();
  return s;
}

template <>
const Schema<ModelLimitsConfig>& schema_of<ModelLimitsConfig>() {
  static const Schema<ModelLimitsConfig> s = [] {
    Schema<ModelLimitsConfig> s("ModelLimitsConfig", "Per-request limits.");
    s.field("max_generation_tokens", &ModelLimitsConfig::max_generation_tokens,
            "a request whose max_tokens is above this is refused (InvalidParams, HTTP 400); "
            "at least sampling.max_tokens")
        .range(1, 1000000);
    s.field("max_prompt_chars", &ModelLimitsConfig::max_prompt_chars,
            "longest prompt text (bytes), checked before it is tokenized; a chat prompt is "
            "counted after its template is applied")
        .range(1, 1 << 30);
    s.field("max_image_bytes", &ModelLimitsConfig::max_image_bytes,
            "largest decoded image. Not available in this build yet: only the default is accepted")
        .range(1, 1 << 30);
    s.field("max_schema_bytes", &ModelLimitsConfig::max_schema_bytes,
            "largest structured-output schema (serialized), regex or grammar of a request, in "
            "bytes")
        .range(1, int64_t(limits::kMaxSchemaBytes));
    s.unavailable("max_image_bytes", &ModelLimitsConfig::max_image_bytes, "multimodal input");
    return s;
  }();
  return s;
}

template <>
const Schema<ModelConfig>& schema_of<ModelConfig>() {
  static const Schema<ModelConfig> s = [] {
    Schema<ModelConfig> s("ModelConfig", "Model loading.");
    s.field("default_context_length", &ModelConfig::default_context_length,
            "context length of a model whose config.json has no max_position_embeddings")
        .range(1, limits::kMaxContextLength);
    s.field("max_loaded_models", &ModelConfig::max_loaded_models,
            "models held at once; loading one more unloads the least recently used model that has "
            "no request in flight, and is refused (CapacityExceeded) when every one is busy")
        .range(1, 64);
    s.field("allow_files_outside_model_dir", &ModelConfig::allow_files_outside_model_dir,
            "read model files whose real path lies outside the model folder (symlinks, index "
            "entries such as ../x.safetensors), e.g. a Hugging Face cache snapshot whose files "
            "link to ../../blobs; false = such a load fails naming the file");
    s.field("trusted_model_directories", &ModelConfig::trusted_model_directories,
            "a local_path must lie inside one of these; empty = any directory")
        .max_items(64)
        .items()
        .min_length(1)
        .max_length(limits::kMaxPathChars)
        .pattern("^/")
        .forbid("..");
    s.field("search_directories", &ModelConfig::search_directories,
            "where a model id without local_path is looked up, as <dir>/<id>")
        .max_items(64)
        .items()
        .min_length(1)
        .max_length(limits::kMaxPathChars)
        .pattern("^/");
    s.field("limits", &ModelConfig::limits, "per-request limits");
    return s;
  }();
  return s;
}

template <>
const Schema<SchedulerConfig>& schema_of<SchedulerConfig>() {
  static const Schema<SchedulerConfig> s = [] {
    Schema<SchedulerConfig> s("SchedulerConfig", "Continuous batching.");
    s.field("max_num_seqs", &SchedulerConfig::max_num_seqs, "sequences running in one step")
        .range(1, 4096);
    s.field("max_num_batched_tokens", &SchedulerConfig::max_num_batched_tokens,
            "tokens computed in one step (prefill chunks plus decodes); at least max_num_seqs")
        .range(1, 1 << 20);
    s.field("max_waiting_requests", &SchedulerConfig::max_waiting_requests,
            "requests queued beyond this are refused with CapacityExceeded")
        .range(0, 1 << 20);
    s.field("ageing_interval_ms", &SchedulerConfig::ageing_interval_ms,
            "a waiting request rises one priority class per interval, so background work is never "
            "starved")
        .range(1, kDayMs);
    s.field("chunked_prefill", &SchedulerConfig::chunked_prefill,
            "split long prompts across steps so decodes keep flowing");
    s.field("overlap_steps", &SchedulerConfig::overlap_steps,
            "pipeline the steps: plan and queue step N+1 while step N runs on the device, so the "
            "device never waits for the host; false = one step at a time (A/B measurements)");
    s.refine("max_num_batched_tokens", [](const SchedulerConfig& c) -> std::optional<std::string> {
      if (c.max_num_batched_tokens >= c.max_num_seqs) return std::nullopt;
      return fmt::format("must be >= max_num_seqs ({}), got {}", c.max_num_seqs,
                         c.max_num_batched_tokens);
    });
    return s;
  }();
  return s;
}

template <>
const Schema<KvCacheConfig>& schema_of<KvCacheConfig>() {
  static const Schema<KvCacheConfig> s = [] {
    Schema<KvCacheConfig> s("KvCacheConfig", "The paged KV cache.");
    s.field("block_size", &KvCacheConfig::block_size, "tokens per KV block, a power of two")
        .range(1, 256);
    s.field("num_blocks", &KvCacheConfig::num_blocks,
            "blocks in the pool; 0 = derive from memory_fraction (CUDA) or cpu_memory_bytes "
            "(CPU), never more than max_num_seqs sequences of the context length need")
        .range(0, 1 << 24);
    s.field("memory_fraction", &KvCacheConfig::memory_fraction,
            "share of the device memory free after the weights and the largest step's "
            "activations given to the KV pool (CUDA); the rest is headroom for graphs and "
            "buffers that grow later")
        .greater_than(0)
        .max(1);
    s.field("cpu_memory_bytes", &KvCacheConfig::cpu_memory_bytes,
            "bytes of RAM for the KV pool on the CPU backend; 0 = a quarter of physical memory "
            "(or of the container's limit), at most half of the memory available after the "
            "weights")
        .min(0);
    s.field("prefix_caching", &KvCacheConfig::prefix_caching,
            "share full blocks of identical prompt prefixes between requests");
    s.refine("block_size", [](const KvCacheConfig& c) -> std::optional<std::string> {
      if (is_power_of_two(c.block_size)) return std::nullopt;
      return fmt::format("must be a power of two, got {}", c.block_size);
    });
    return s;
  }();
  return s;
}

template <>
const Schema<StreamRegistryConfig>& schema_of<StreamRegistryConfig>() {
  static const Schema<StreamRegistryConfig> s = [] {
    Schema<StreamRegistryConfig> s("StreamRegistryConfig", "Live streams and backpressure.");
    s.field("buffer_chunks", &StreamRegistryConfig::buffer_chunks,
            "chunks buffered per stream; a full buffer pauses only that stream")
        .range(1, 1 << 16);
    s.field("max_active_streams", &StreamRegistryConfig::max_active_streams,
            "streams open at once; more are refused with CapacityExceeded")
        .range(1, 1 << 20);
    s.field("default_timeout_ms", &StreamRegistryConfig::default_timeout_ms,
            "deadline of a request that gives no timeout_ms")
        .range(1, kDayMs);
    s.field("slow_consumer_threshold_ms", &StreamRegistryConfig::slow_consumer_threshold_ms,
            "a stream paused this long is reported as a slow consumer. Not available in this "
            "build yet: only the default is accepted")
        .range(1, kDayMs);
    s.field("cleanup_interval_ms", &StreamRegistryConfig::cleanup_interval_ms,
            "how often finished streams nobody read are reclaimed. Not available in this build "
            "yet (a stream is reclaimed when its generator is destroyed): only the default is "
            "accepted")
        .range(1, kDayMs);
    s.unavailable("slow_consumer_threshold_ms", &StreamRegistryConfig::slow_consumer_threshold_ms,
                  "slow-consumer reports");
    s.unavailable("cleanup_interval_ms", &StreamRegistryConfig::cleanup_interval_ms,
                  "periodic stream cleanup");
    return s;
  }();
  return s;
}

template <>
const Schema<StructuredConfig>& schema_of<StructuredConfig>() {
  static const Schema<StructuredConfig> s = [] {
    Schema<StructuredConfig> s("StructuredConfig",
                               "Constrained decoding: JSON Schema, regex and GBNF grammars.");
    s.field("compile_cache_entries", &StructuredConfig::compile_cache_entries,
            "compiled grammars kept for reuse (least recently used go first); 0 = compile "
            "every request's")
        .range(0, 100000);
    s.field("json_any_whitespace", &StructuredConfig::json_any_whitespace,
            "false: JSON from a schema is compact; true: JSON whitespace is allowed between "
            "tokens, at most json_max_whitespace bytes per gap");
    s.field("json_max_whitespace", &StructuredConfig::json_max_whitespace,
            "most whitespace bytes per gap when json_any_whitespace")
        .range(1, 256);
    return s;
  }();
  return s;
}

template <>
const Schema<SamplingConfig>& schema_of<SamplingConfig>() {
  static const Schema<SamplingConfig> s = [] {
    Schema<SamplingConfig> s("SamplingConfig",
                             "Defaults for the sampling fields a request leaves unset.");
    s.field("max_tokens", &SamplingConfig::max_tokens, "tokens to generate")
        .range(1, limits::kMaxTokens);
    s.field("temperature", &SamplingConfig::temperature, "0 = greedy")
        .range(0, limits::kMaxTemperature);
    s.field("top_p", &SamplingConfig::top_p, "nucleus mass; 1 = off").greater_than(0).max(1);
    s.field("top_k", &SamplingConfig::top_k, "0 = off").min(0);
    s.field("min_p", &SamplingConfig::min_p, "0 = off").range(0, 1);
    s.field("presence_penalty", &SamplingConfig::presence_penalty, "0 = off")
        .range(-limits::kMaxPenalty, limits::kMaxPenalty);
    s.field("frequency_penalty", &SamplingConfig::frequency_penalty, "0 = off")
        .range(-limits::kMaxPenalty, limits::kMaxPenalty);
    s.field("repetition_penalty", &SamplingConfig::repetition_penalty, "1 = off")
        .greater_than(0)
        .max(limits::kMaxRepetitionPenalty);
    return s;
  }();
  return s;
}

template <>
const Schema<CircuitBreakerConfig>& schema_of<CircuitBreakerConfig>() {
  static const Schema<CircuitBreakerConfig> s = [] {
    Schema<CircuitBreakerConfig> s("CircuitBreakerConfig",
                                   "Around the model runner and the worker process.");
    s.field("failure_threshold", &CircuitBreakerConfig::failure_threshold,
            "failures within failure_window_ms that open the circuit")
        .range(1, 1000);
    s.field("failure_window_ms", &CircuitBreakerConfig::failure_window_ms,
            "window failures are counted in")
        .range(1, kDayMs);
    s.field("recovery_timeout_ms", &CircuitBreakerConfig::recovery_timeout_ms,
            "open -> half-open after this")
        .range(1, kDayMs);
    s.field("half_open_max_calls", &CircuitBreakerConfig::half_open_max_calls,
            "probes in flight while half-open")
        .range(1, 100);
    s.field("success_threshold", &CircuitBreakerConfig::success_threshold,
            "half-open successes that close the circuit")
        .range(1, 100);
    return s;
  }();
  return s;
}

template <>
const Schema<ServerConfig>& schema_of<ServerConfig>() {
  static const Schema<ServerConfig> s = [] {
    Schema<ServerConfig> s("ServerConfig", "The HTTP server.");
    s.field("host", &ServerConfig::host, "address to listen on").min_length(1).max_length(255);
    s.field("port", &ServerConfig::port, "TCP port").range(1, 65535);
    s.field("api_key", &ServerConfig::api_key, "required Bearer token; empty = no authentication")
        .max_length(4096);
    s.field("max_body_bytes", &ServerConfig::max_body_bytes, "largest request body")
        .range(1024, int64_t(1) << 32);
    s.field("max_json_depth", &ServerConfig::max_json_depth,
            "deepest nesting of arrays and objects in a request body; deeper bodies get a 400 "
            "before they are parsed")
        .range(2, 1024);
    s.field("shutdown_deadline_ms", &ServerConfig::shutdown_deadline_ms,
            "on shutdown, in-flight requests get this long before they are cancelled")
        .range(0, kDayMs);
    s.field("max_streams_per_connection", &ServerConfig::max_streams_per_connection,
            "most generators one connection may hold at once (a request's `n`); more is a 400, "
            "so one client cannot take every stream_registry.max_active_streams slot")
        .range(1, 128);
    s.field("write_timeout_ms", &ServerConfig::write_timeout_ms,
            "a response write (at most about 64 KiB) that has not completed after this long (the "
            "client stopped reading) drops the connection and cancels its generation, freeing "
            "its slots")
        .range(100, kDayMs);
    s.field("tokenizer_threads", &ServerConfig::tokenizer_threads,
            "threads that parse generation and tokenizer requests (chat template, tokenizing), "
            "so that a large prompt never holds an I/O thread: /health stays prompt")
        .range(1, 256);
    s.field("io_threads", &ServerConfig::io_threads,
            "threads that run the sockets (HTTP parsing, response writes); `serve --io-threads` "
            "wins when given")
        .range(1, 64);
    s.field("log_requests", &ServerConfig::log_requests,
            "one line per request on stderr (method, path, status, duration); `serve --quiet` "
            "turns it off");
    s.field("max_response_bytes", &ServerConfig::max_response_bytes,
            "largest body of a non-streamed generation response; a request whose estimate (n x "
            "max_tokens x (1 + top_logprobs) entries) exceeds it is a 400 naming it, and a "
            "response that grows past it is cancelled with a 400. Streamed responses have no "
            "such limit")
        .range(64 * 1024, int64_t(1) << 34);
    s.field("responses_store_size", &ServerConfig::responses_store_size,
            "responses the Responses API keeps in memory (POST /v1/responses with store, the "
            "default) for previous_response_id and GET /v1/responses/{id}; the oldest goes "
            "first, a restart forgets them. 0: none kept (previous_response_id is then a 400)")
        .range(0, 1000000);
    return s;
  }();
  return s;
}

template <>
const Schema<TelemetryConfig>& schema_of<TelemetryConfig>() {
  static const Schema<TelemetryConfig> s = [] {
    Schema<TelemetryConfig> s("TelemetryConfig", "Logs and metrics.");
    s.field("log_level", &TelemetryConfig::log_level,
            "least severe level logged. Not available in this build yet: only the default is "
            "accepted");
    s.field("json_logs", &TelemetryConfig::json_logs,
            "one JSON object per log line. Not available in this build yet (request log lines "
            "are JSON already; `serve --quiet` turns them off): only the default is accepted");
    s.field("metrics", &TelemetryConfig::metrics,
            "serve Prometheus metrics at /metrics; false = /metrics answers 404");
    s.field("service_name", &TelemetryConfig::service_name,
            "name in logs and metrics. Not available in this build yet: only the default is "
            "accepted")
        .min_length(1)
        .max_length(128);
    s.unavailable("log_level", &TelemetryConfig::log_level, "log levels");
    s.unavailable("json_logs", &TelemetryConfig::json_logs, "structured logging");
    s.unavailable("service_name", &TelemetryConfig::service_name, "service names in telemetry");
    return s;
  }();
  return s;
}

template <>
const Schema<ClusterConfig>& schema_of<ClusterConfig>() {
  static const Schema<ClusterConfig> s = [] {
    Schema<ClusterConfig> s("ClusterConfig",
                            "Controller and workers over NATS. Not available in this build yet: "
                            "every key only accepts its default, so no node starts alone "
                            "believing it joined a cluster.");
    s.field("enabled", &ClusterConfig::enabled, "join a cluster");
    s.field("nats_url", &ClusterConfig::nats_url, "NATS server URL")
        .max_length(1024)
        .pattern("^(nats|tls)://[^\\s]+$");
    s.field("worker_id", &ClusterConfig::worker_id, "this worker's id; empty = generated at start")
        .max_length(128)
        .pattern("^[A-Za-z0-9_\\-]*$");
    s.field("heartbeat_interval_ms", &ClusterConfig::heartbeat_interval_ms,
            "worker heartbeat period")
        .range(100, kDayMs);
    s.field("offline_after_ms", &ClusterConfig::offline_after_ms,
            "a worker silent this long is marked offline; more than heartbeat_interval_ms")
        .range(100, kDayMs);
    const std::string feature = "clustering over NATS";
    s.unavailable("enabled", &ClusterConfig::enabled, feature);
    s.unavailable("nats_url", &ClusterConfig::nats_url, feature);
    s.unavailable("worker_id", &ClusterConfig::worker_id, feature);
    s.unavailable("heartbeat_interval_ms", &ClusterConfig::heartbeat_interval_ms, feature);
    s.unavailable("offline_after_ms", &ClusterConfig::offline_after_ms, feature);
    return s;
  }();
  return s;
}

template <>
const Schema<WorkerConfig>& schema_of<WorkerConfig>() {
  static const Schema<WorkerConfig> s = [] {
    Schema<WorkerConfig> s("WorkerConfig",
                           "The model worker process (runtime: worker). Not available in this "
                           "build yet: every key only accepts its default.");
    s.field("max_restarts", &WorkerConfig::max_restarts, "restarts before the circuit stays open")
        .range(0, 1000);
    s.field("startup_timeout_ms", &WorkerConfig::startup_timeout_ms,
            "time for a worker to become ready")
        .range(1, kDayMs);
    s.field("shutdown_timeout_ms", &WorkerConfig::shutdown_timeout_ms,
            "time to exit before it is killed")
        .range(1, kDayMs);
    s.field("restart_backoff_ms", &WorkerConfig::restart_backoff_ms,
            "delay before restart n is n times this")
        .range(0, kDayMs);
    s.field("rpc_timeout_ms", &WorkerConfig::rpc_timeout_ms, "deadline of one JSON-RPC call")
        .range(1, kDayMs);
    s.field("max_message_bytes", &WorkerConfig::max_message_bytes, "largest JSON-RPC message")
        .range(1024, int64_t(1) << 30);
    const std::string feature = "the worker process";
    s.unavailable("max_restarts", &WorkerConfig::max_restarts, feature);
    s.unavailable("startup_timeout_ms", &WorkerConfig::startup_timeout_ms, feature);
    s.unavailable("shutdown_timeout_ms", &WorkerConfig::shutdown_timeout_ms, feature);
    s.unavailable("restart_backoff_ms", &WorkerConfig::restart_backoff_ms, feature);
    s.unavailable("rpc_timeout_ms", &WorkerConfig::rpc_timeout_ms, feature);
    s.unavailable("max_message_bytes", &WorkerConfig::max_message_bytes, feature);
    return s;
  }();
  return s;
}

template <>
const Schema<Config>& schema_of<Config>() {
  static const Schema<Config> s = [] {
    Schema<Config> s("Config", "The mlx-serving configuration file.");
    s.field("backend", &Config::backend, "where and how models run");
    s.field("model", &Config::model, "model loading");
    s.field("scheduler", &Config::scheduler, "continuous batching");
    s.field("kv_cache", &Config::kv_cache, "the paged KV cache");
    s.field("stream_registry", &Config::stream_registry, "live streams and backpressure");
    s.field("sampling", &Config::sampling, "defaults for unset sampling fields");
    s.field("structured", &Config::structured, "constrained decoding (structured output)");
    s.field("circuit_breaker", &Config::circuit_breaker, "around the model runner and the worker");
    s.field("server", &Config::server, "the HTTP server");
    s.field("telemetry", &Config::telemetry, "logs and metrics");
    s.field("cluster", &Config::cluster, "controller and workers over NATS");
    s.field("worker", &Config::worker, "the model worker process");
    s.refine("sampling.max_tokens", [](const Config& c) -> std::optional<std::string> {
      if (c.sampling.max_tokens <= c.model.limits.max_generation_tokens) return std::nullopt;
      return fmt::format("must be <= model.limits.max_generation_tokens ({}), got {}",
                         c.model.limits.max_generation_tokens, c.sampling.max_tokens);
    });
    return s;
  }();
  return s;
}

}  // namespace schema

Status validate_config(const Config& config) {
  return schema::schema_of<Config>().validate_value(config, ErrorCode::kValidationError);
}

GeneratorParams apply_sampling_defaults(GeneratorParams p, const SamplingConfig& d) {
  if (!p.max_tokens) p.max_tokens = d.max_tokens;
  if (!p.temperature) p.temperature = d.temperature;
  if (!p.top_p) p.top_p = d.top_p;
  if (!p.top_k) p.top_k = d.top_k;
  if (!p.min_p) p.min_p = d.min_p;
  if (!p.presence_penalty) p.presence_penalty = d.presence_penalty;
  if (!p.frequency_penalty) p.frequency_penalty = d.frequency_penalty;
  if (!p.repetition_penalty) p.repetition_penalty = d.repetition_penalty;
  return p;
}

}  // namespace mlxs
