// Configuration loading: YAML file, MLXS_CONFIG, MLXS_<SECTION>_<KEY> overrides, and errors that
// name the file (with line) or the variable, and the key.
#include "api/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace mlxs {
namespace {

std::string write_file(const std::string& name, const std::string& text) {
  std::string path = ::testing::TempDir() + "mlxs_config_test_" + name;
  std::ofstream(path) << text;
  return path;
}

std::string error_of(const std::string& yaml, const EnvMap& env = {}) {
  auto r = load_config_text(yaml, "cfg.yaml", env);
  return r.ok() ? "" : r.status().message();
}

TEST(Config, DefaultsWithoutFileOrEnvironment) {
  auto c = load_config("", {});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->server.port, 8080);
  EXPECT_EQ(c->circuit_breaker.failure_threshold, 5);
  EXPECT_EQ(c->circuit_breaker.failure_window_ms, 60000);
  EXPECT_EQ(c->circuit_breaker.recovery_timeout_ms, 10000);
  EXPECT_EQ(c->circuit_breaker.success_threshold, 2);
  EXPECT_EQ(c->model.default_context_length, 8192);
  EXPECT_EQ(c->model.max_loaded_models, 5);
  EXPECT_TRUE(validate_config(Config{}).ok());
}

TEST(Config, LoadsAFile) {
  std::string path = write_file("ok.yaml", R"(
model:
  max_loaded_models: 2
  trusted_model_directories: [/models, /opt/models]
  limits:
    max_prompt_chars: 4096
scheduler:
  max_num_seqs: 32
kv_cache:
  block_size: 32
  memory_fraction: 0.5
  prefix_caching: false
server:
  host: 0.0.0.0
  port: 9000
  api_key: "12345"
telemetry:
  metrics: false
  json_logs: yes_this_is_a_string_not_a_bool
)");
  auto bad = load_config(path, {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(
      bad.status().message(),
      path +
          ":19: Validation error on field 'telemetry.json_logs': expected boolean, got string "
          "\"yes_this_is_a_string_not_a_bool\"");

  std::string text;
  {
    std::ifstream in(path);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  text.replace(text.find("yes_this_is_a_string_not_a_bool"), 31, "false");
  std::ofstream(path) << text;
  auto c = load_config(path, {});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->model.max_loaded_models, 2);
  EXPECT_EQ(c->model.trusted_model_directories,
            (std::vector<std::string>{"/models", "/opt/models"}));
  EXPECT_EQ(c->model.limits.max_prompt_chars, 4096);
  EXPECT_EQ(c->model.limits.max_generation_tokens, 32768);  // untouched keys keep defaults
  EXPECT_EQ(c->scheduler.max_num_seqs, 32);
  EXPECT_EQ(c->kv_cache.block_size, 32);
  EXPECT_DOUBLE_EQ(c->kv_cache.memory_fraction, 0.5);
  EXPECT_FALSE(c->kv_cache.prefix_caching);
  EXPECT_EQ(c->server.host, "0.0.0.0");
  EXPECT_EQ(c->server.port, 9000);
  EXPECT_EQ(c->server.api_key, "12345");  // quoted: stays a string
  EXPECT_FALSE(c->telemetry.metrics);
  EXPECT_FALSE(c->telemetry.json_logs);
}

TEST(Config, PathFromMlxsConfigVariable) {
  std::string path = write_file("env.yaml", "server:\n  port: 7000\n");
  auto c = load_config("", {{"MLXS_CONFIG", path}});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->server.port, 7000);
  // --config wins over MLXS_CONFIG.
  std::string other = write_file("other.yaml", "server:\n  port: 7001\n");
  EXPECT_EQ(load_config(other, {{"MLXS_CONFIG", path}})->server.port, 7001);
}

TEST(Config, EnvironmentOverridesWinOverTheFile) {
  EnvMap env = {{"MLXS_SERVER_PORT", "9001"},
                {"MLXS_MODEL_LIMITS_MAX_PROMPT_CHARS", "100"},
                {"MLXS_MODEL_TRUSTED_MODEL_DIRECTORIES", "/a,/b"},
                {"MLXS_MODEL_SEARCH_DIRECTORIES", "[/c, /d]"},
                {"MLXS_KV_CACHE_PREFIX_CACHING", "false"},
                {"MLXS_KV_CACHE_MEMORY_FRACTION", "0.25"},
                {"MLXS_TELEMETRY_METRICS", "false"},
                {"MLXS_SERVER_API_KEY", "007"},
                {"MLXS_STREAM_REGISTRY_BUFFER_CHUNKS", "8"}};
  auto c = load_config_text("server:\n  port: 9000\n", "cfg.yaml", env);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->server.port, 9001);
  EXPECT_EQ(c->model.limits.max_prompt_chars, 100);
  EXPECT_EQ(c->model.trusted_model_directories, (std::vector<std::string>{"/a", "/b"}));
  EXPECT_EQ(c->model.search_directories, (std::vector<std::string>{"/c", "/d"}));
  EXPECT_FALSE(c->kv_cache.prefix_caching);
  EXPECT_DOUBLE_EQ(c->kv_cache.memory_fraction, 0.25);
  EXPECT_FALSE(c->telemetry.metrics);
  EXPECT_EQ(c->server.api_key, "007");  // string keys take the text as is
  EXPECT_EQ(c->stream_registry.buffer_chunks, 8);
}

TEST(Config, BadEnvironmentValuesNameTheVariable) {
  EXPECT_EQ(error_of("", {{"MLXS_SERVER_PORT", "abc"}}),
            "environment variable MLXS_SERVER_PORT: Validation error on field 'server.port': "
            "expected integer, "
            "got string \"abc\"");
  EXPECT_EQ(error_of("", {{"MLXS_SERVER_PORT", "70000"}}),
            "environment variable MLXS_SERVER_PORT: Validation error on field 'server.port': must "
            "be >= 1 and "
            "<= 65535, got 70000");
  EXPECT_EQ(error_of("", {{"MLXS_SERVER_PROT", "1"}}),
            "environment variable MLXS_SERVER_PROT: Validation error on field 'server.prot': "
            "unknown field");
  std::vector<std::string> warnings;
  auto c =
      load_config_text("", "cfg.yaml", {{"MLXS_SOURCE_DIR", "/x"}, {"MLXS_CONFIG", ""}}, &warnings);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(warnings, (std::vector<std::string>{
                          "ignored environment variable MLXS_SOURCE_DIR: no config section"}));
}

TEST(Config, BadFileValuesNameTheFileLineAndKey) {
  EXPECT_EQ(
      error_of("server:\n  host: x\n  port: 70000\n"),
      "cfg.yaml:3: Validation error on field 'server.port': must be >= 1 and <= 65535, got 70000");
  EXPECT_EQ(
      error_of("server:\n  prot: 80\n"),
      "cfg.yaml:2: Validation error on field 'server.prot': unknown field (did you mean 'port'?)");
  EXPECT_EQ(
      error_of("servers:\n  port: 80\n"),
      "cfg.yaml:1: Validation error on field 'servers': unknown field (did you mean 'server'?)");
  EXPECT_EQ(
      error_of("server:\n  port: \"9000\"\n"),
      "cfg.yaml:2: Validation error on field 'server.port': expected integer, got string \"9000\"");
  EXPECT_EQ(error_of("model:\n  trusted_model_directories:\n    - /ok\n    - relative\n"),
            "cfg.yaml:4: Validation error on field 'model.trusted_model_directories[1]': must "
            "match ^/, got "
            "\"relative\"");
  EXPECT_EQ(error_of("kv_cache:\n  block_size: 24\n"),
            "cfg.yaml:2: Validation error on field 'kv_cache.block_size': must be a power of two, "
            "got 24");
  EXPECT_EQ(error_of("kv_cache:\n  memory_fraction: 0\n"),
            "cfg.yaml:2: Validation error on field 'kv_cache.memory_fraction': must be > 0 and <= "
            "1, got 0");
  EXPECT_EQ(error_of("scheduler:\n  max_num_seqs: 64\n  max_num_batched_tokens: 32\n"),
            "cfg.yaml:3: Validation error on field 'scheduler.max_num_batched_tokens': must be >= "
            "max_num_seqs "
            "(64), got 32");
  EXPECT_EQ(error_of("telemetry:\n  log_level: verbose\n"),
            "cfg.yaml:2: Validation error on field 'telemetry.log_level': must be one of "
            "\"trace\", \"debug\", "
            "\"info\", \"warn\", \"error\", \"off\", got \"verbose\"");
  EXPECT_EQ(
      error_of("sampling:\n  temperature: 5\n  top_p: 0\n"),
      "cfg.yaml:2: Validation error on field 'sampling.temperature': must be >= 0 and <= 2, got 5; "
      "cfg.yaml:3: Validation error on field 'sampling.top_p': must be > 0 and <= 1, got 0");
  EXPECT_EQ(error_of("circuit_breaker:\n  failure_threshold: 0\n"),
            "cfg.yaml:2: Validation error on field 'circuit_breaker.failure_threshold': must be >= "
            "1 and <= "
            "1000, got 0");
  EXPECT_EQ(error_of("- a\n- b\n"), "cfg.yaml: Validation error: expected object, got array");
  EXPECT_EQ(error_of("server: 5\n"),
            "cfg.yaml:1: Validation error on field 'server': expected object, got integer 5");
}

TEST(Config, BackendSectionFromFileAndEnvironment) {
  auto d = load_config("", {});
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->backend.device, Device::kAuto);
  EXPECT_EQ(d->backend.cuda.precision, CudaPrecision::kPrecise);
  EXPECT_TRUE(d->backend.cuda.graphs && d->backend.cuda.pdl && d->backend.cuda.swiglu_epilogue &&
              d->backend.cuda.attention_decode && d->backend.cuda.attention_tc);
  EXPECT_EQ(d->backend.cpu.threads, 0);
  EXPECT_EQ(d->backend.cpu.isa, "auto");
  auto c = load_config_text(
      "backend:\n  device: cpu\n  cuda:\n    precision: fast\n    pdl: false\n", "cfg.yaml",
      {{"MLXS_BACKEND_CUDA_GRAPHS", "false"},
       {"MLXS_BACKEND_CUDA_SWIGLU_EPILOGUE", "false"},
       {"MLXS_BACKEND_CUDA_ATTENTION_DECODE", "false"},
       {"MLXS_BACKEND_CUDA_ATTENTION_TC", "false"},
       {"MLXS_BACKEND_CUDA_GEMV_MAX_ROWS", "8"},
       {"MLXS_BACKEND_CPU_THREADS", "3"},
       {"MLXS_BACKEND_CPU_ISA", "avx2"}});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->backend.device, Device::kCpu);
  EXPECT_EQ(c->backend.cuda.precision, CudaPrecision::kFast);
  EXPECT_FALSE(c->backend.cuda.pdl);
  EXPECT_FALSE(c->backend.cuda.graphs);
  EXPECT_FALSE(c->backend.cuda.swiglu_epilogue);
  EXPECT_FALSE(c->backend.cuda.attention_decode);
  EXPECT_FALSE(c->backend.cuda.attention_tc);
  EXPECT_EQ(c->backend.cuda.gemv_max_rows, 8);
  EXPECT_EQ(c->backend.cpu.threads, 3);
  EXPECT_EQ(c->backend.cpu.isa, "avx2");
  EXPECT_EQ(error_of("backend:\n  cuda:\n    precision: half\n"),
            "cfg.yaml:3: Validation error on field 'backend.cuda.precision': must be one of "
            "\"precise\", \"fast\", got \"half\"");
  EXPECT_EQ(error_of("backend:\n  device: tpu\n"),
            "cfg.yaml:2: Validation error on field 'backend.device': must be one of \"auto\", "
            "\"cpu\", \"cuda\", got \"tpu\"");
}

// The environment switches of earlier versions are refused, each naming the key and the variable
// that replaced it, so a script that still sets one fails instead of running the default.
TEST(Config, RetiredEnvironmentSwitchesAreRefusedNamingTheirKey) {
  EXPECT_EQ(error_of("", {{"MLXS_CUDA_FAST", "1"}}),
            "environment variable MLXS_CUDA_FAST: Validation error on field "
            "'backend.cuda.precision': MLXS_CUDA_FAST is no longer read; set "
            "MLXS_BACKEND_CUDA_PRECISION=fast instead");
  const std::pair<const char*, const char*> retired[] = {
      {"MLXS_CUDA_GRAPHS", "backend.cuda.graphs"},
      {"MLXS_CUDA_PDL", "backend.cuda.pdl"},
      {"MLXS_CUDA_SWIGLU", "backend.cuda.swiglu_epilogue"},
      {"MLXS_ATTN_DECODE", "backend.cuda.attention_decode"},
      {"MLXS_ATTN_TC", "backend.cuda.attention_tc"}};
  for (const auto& [name, key] : retired) {
    const std::string e = error_of("", {{name, "0"}});
    EXPECT_NE(e.find(std::string("environment variable ") + name), std::string::npos) << e;
    EXPECT_NE(e.find(std::string("'") + key + "'"), std::string::npos) << e;
    EXPECT_NE(e.find(env_var_for(key)), std::string::npos) << e;
  }
}

TEST(Config, NamesTheKeyEachEnvironmentVariableSets) {
  EXPECT_EQ(config_key_for_env("MLXS_BACKEND_CUDA_PRECISION"), "backend.cuda.precision");
  EXPECT_EQ(config_key_for_env("MLXS_BACKEND_DEVICE"), "backend.device");
  EXPECT_EQ(config_key_for_env("MLXS_MODEL_LIMITS_MAX_PROMPT_CHARS"),
            "model.limits.max_prompt_chars");
  EXPECT_EQ(config_key_for_env("MLXS_SCHEDULER_MAX_NUM_SEQS"), "scheduler.max_num_seqs");
  EXPECT_EQ(config_key_for_env("MLXS_CUDA_FAST"), "");
  EXPECT_EQ(config_key_for_env("MLXS_BACKEND_CUDA_NOPE"), "");
  EXPECT_EQ(config_key_for_env("PATH"), "");
}

TEST(Config, EmptySectionsAndEmptyFileMeanDefaults) {
  auto c = load_config_text("# nothing\nserver:\nmodel:\n", "cfg.yaml", {});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->server.port, 8080);
  EXPECT_TRUE(load_config_text("", "cfg.yaml", {}).ok());
}

TEST(Config, MissingFileAndBadYaml) {
  auto missing = load_config("/nonexistent/mlxs.yaml", {});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(missing.status().message(),
            "cannot open config file '/nonexistent/mlxs.yaml': No such file or directory");
  std::string path = write_file("broken.yaml", "server:\n  port: [1, 2\n");
  auto broken = load_config(path, {});
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.status().code(), ErrorCode::kParseError);
  EXPECT_EQ(broken.status().message().rfind(path + ":", 0), 0u) << broken.status().message();
  EXPECT_NE(broken.status().message().find("YAML parse error"), std::string::npos);
}

TEST(Config, ValidateStructAndSamplingDefaults) {
  Config c;
  c.server.port = 0;
  c.kv_cache.block_size = 3;
  EXPECT_EQ(validate_config(c).message(),
            "Validation error on field 'server.port': must be >= 1 and <= 65535, got 0");
  c.server.port = 80;
  EXPECT_EQ(validate_config(c).message(),
            "Validation error on field 'kv_cache.block_size': must be a power of two, got 3");
  EXPECT_EQ(validate_config(c).code(), ErrorCode::kValidationError);

  GeneratorParams p;
  p.temperature = 0.0;
  SamplingConfig d;
  d.top_k = 40;
  GeneratorParams r = apply_sampling_defaults(p, d);
  EXPECT_EQ(*r.temperature, 0.0);  // set by the caller: kept
  EXPECT_EQ(*r.top_k, 40);
  EXPECT_EQ(*r.max_tokens, 512);
  EXPECT_EQ(*r.repetition_penalty, 1.0);
}

TEST(Config, SamplingMaxTokensMustFitMaxGenerationTokens) {
  EXPECT_EQ(error_of("model:\n  limits:\n    max_generation_tokens: 100\nsampling:\n  max_tokens: "
                     "200\n"),
            "cfg.yaml:5: Validation error on field 'sampling.max_tokens': must be <= "
            "model.limits.max_generation_tokens (100), got 200");
  EXPECT_EQ(error_of("model:\n  limits:\n    max_generation_tokens: 200\nsampling:\n  max_tokens: "
                     "200\n"),
            "");
}

TEST(Config, BackendCpuThreads) {
  auto c = load_config_text("backend:\n  cpu:\n    threads: 3\n", "cfg.yaml", {});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->backend.cpu.threads, 3);
  EXPECT_EQ(
      load_config_text("", "cfg.yaml", {{"MLXS_BACKEND_CPU_THREADS", "2"}})->backend.cpu.threads,
      2);
  EXPECT_EQ(error_of("backend:\n  cpu:\n    threads: -1\n"),
            "cfg.yaml:3: Validation error on field 'backend.cpu.threads': must be >= 0 and <= "
            "4096, got -1");
}

// Keys of features this build does not have yet: the default is accepted, any other value is
// refused with an error that names the key (from a file with its line, and from the
// environment), so that nothing is accepted and silently ignored.
struct RefusedKey {
  const char* name;   // test name
  const char* yaml;   // the key set to a non-default value
  const char* env;    // the same through the environment
  const char* value;  // the value, as the error shows it
};

class RefusedConfigKey : public ::testing::TestWithParam<RefusedKey> {};

std::string path_of(const char* env) {  // MLXS_CLUSTER_ENABLED -> cluster.enabled
  for (const char* p :
       {"model.limits.max_image_bytes", "stream_registry.slow_consumer_threshold_ms",
        "stream_registry.cleanup_interval_ms", "telemetry.log_level", "telemetry.json_logs",
        "telemetry.service_name", "cluster.enabled", "cluster.nats_url", "cluster.worker_id",
        "cluster.heartbeat_interval_ms", "cluster.offline_after_ms", "worker.max_restarts",
        "worker.startup_timeout_ms", "worker.shutdown_timeout_ms", "worker.restart_backoff_ms",
        "worker.rpc_timeout_ms", "worker.max_message_bytes"}) {
    if (env_var_for(p) == env) return p;
  }
  return "";
}

TEST_P(RefusedConfigKey, OnlyTheDefaultIsAccepted) {
  const RefusedKey& k = GetParam();
  const std::string path = path_of(k.env);
  ASSERT_FALSE(path.empty()) << k.env;
  auto from_file = load_config_text(k.yaml, "cfg.yaml", {});
  ASSERT_FALSE(from_file.ok()) << path << " was accepted";
  EXPECT_EQ(from_file.status().code(), ErrorCode::kValidationError);
  const std::string& m = from_file.status().message();
  EXPECT_NE(m.find("Validation error on field '" + path + "': not available in this build yet"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(std::string("got ") + k.value), std::string::npos) << m;
  EXPECT_EQ(m.rfind("cfg.yaml:", 0), 0u) << m;  // names the file and line
  std::string env_value = k.value;
  if (env_value.front() == '"') env_value = env_value.substr(1, env_value.size() - 2);
  auto from_env = load_config_text("", "cfg.yaml", {{k.env, env_value}});
  ASSERT_FALSE(from_env.ok()) << k.env << " was accepted";
  EXPECT_EQ(from_env.status().message().rfind(std::string("environment variable ") + k.env, 0), 0u)
      << from_env.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Config, RefusedConfigKey,
    ::testing::Values(
        RefusedKey{"ModelLimitsMaxImageBytes", "model:\n  limits:\n    max_image_bytes: 100\n",
                   "MLXS_MODEL_LIMITS_MAX_IMAGE_BYTES", "100"},
        RefusedKey{"StreamRegistrySlowConsumerThresholdMs",
                   "stream_registry:\n  slow_consumer_threshold_ms: 5\n",
                   "MLXS_STREAM_REGISTRY_SLOW_CONSUMER_THRESHOLD_MS", "5"},
        RefusedKey{"StreamRegistryCleanupIntervalMs",
                   "stream_registry:\n  cleanup_interval_ms: 5\n",
                   "MLXS_STREAM_REGISTRY_CLEANUP_INTERVAL_MS", "5"},
        RefusedKey{"TelemetryLogLevel", "telemetry:\n  log_level: debug\n",
                   "MLXS_TELEMETRY_LOG_LEVEL", "\"debug\""},
        RefusedKey{"TelemetryJsonLogs", "telemetry:\n  json_logs: true\n",
                   "MLXS_TELEMETRY_JSON_LOGS", "true"},
        RefusedKey{"TelemetryServiceName", "telemetry:\n  service_name: svc\n",
                   "MLXS_TELEMETRY_SERVICE_NAME", "\"svc\""},
        RefusedKey{"ClusterEnabled", "cluster:\n  enabled: true\n", "MLXS_CLUSTER_ENABLED", "true"},
        RefusedKey{"ClusterNatsUrl", "cluster:\n  nats_url: nats://h:1\n", "MLXS_CLUSTER_NATS_URL",
                   "\"nats://h:1\""},
        RefusedKey{"ClusterWorkerId", "cluster:\n  worker_id: w1\n", "MLXS_CLUSTER_WORKER_ID",
                   "\"w1\""},
        RefusedKey{"ClusterHeartbeatIntervalMs", "cluster:\n  heartbeat_interval_ms: 1000\n",
                   "MLXS_CLUSTER_HEARTBEAT_INTERVAL_MS", "1000"},
        RefusedKey{"ClusterOfflineAfterMs", "cluster:\n  offline_after_ms: 20000\n",
                   "MLXS_CLUSTER_OFFLINE_AFTER_MS", "20000"},
        RefusedKey{"WorkerMaxRestarts", "worker:\n  max_restarts: 1\n", "MLXS_WORKER_MAX_RESTARTS",
                   "1"},
        RefusedKey{"WorkerStartupTimeoutMs", "worker:\n  startup_timeout_ms: 7\n",
                   "MLXS_WORKER_STARTUP_TIMEOUT_MS", "7"},
        RefusedKey{"WorkerShutdownTimeoutMs", "worker:\n  shutdown_timeout_ms: 7\n",
                   "MLXS_WORKER_SHUTDOWN_TIMEOUT_MS", "7"},
        RefusedKey{"WorkerRestartBackoffMs", "worker:\n  restart_backoff_ms: 7\n",
                   "MLXS_WORKER_RESTART_BACKOFF_MS", "7"},
        RefusedKey{"WorkerRpcTimeoutMs", "worker:\n  rpc_timeout_ms: 7\n",
                   "MLXS_WORKER_RPC_TIMEOUT_MS", "7"},
        RefusedKey{"WorkerMaxMessageBytes", "worker:\n  max_message_bytes: 2048\n",
                   "MLXS_WORKER_MAX_MESSAGE_BYTES", "2048"}),
    [](const ::testing::TestParamInfo<RefusedKey>& info) { return std::string(info.param.name); });

TEST(Config, EnvVarNames) {
  EXPECT_EQ(env_var_for("server.port"), "MLXS_SERVER_PORT");
  EXPECT_EQ(env_var_for("model.limits.max_prompt_chars"), "MLXS_MODEL_LIMITS_MAX_PROMPT_CHARS");
}

// docs/configuration.md is generated; this fails when a schema changed and the doc was not
// regenerated (`./build/cpu/mlx-serving config-docs -o docs/configuration.md`).
TEST(Config, DocumentationIsUpToDate) {
  std::ifstream in(std::string(MLXS_SOURCE_DIR) + "/docs/configuration.md");
  ASSERT_TRUE(in) << "docs/configuration.md is missing";
  std::string text(std::istreambuf_iterator<char>(in), {});
  EXPECT_EQ(text, config_reference_markdown());
  for (const char* key :
       {"`server.port`", "`kv_cache.block_size`", "`circuit_breaker.failure_threshold`",
        "`cluster.nats_url`", "`model.limits.max_prompt_chars`", "MLXS_SCHEDULER_MAX_NUM_SEQS"}) {
    EXPECT_NE(text.find(key), std::string::npos) << key;
  }
}

}  // namespace
}  // namespace mlxs
