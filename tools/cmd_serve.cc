// `mlx-serving serve [--model DIR]... [--host H] [--port P] [--config FILE] [--api-key KEY]`:
// loads the models and serves the OpenAI- and Anthropic-compatible HTTP API until SIGINT or
// SIGTERM (graceful: in-flight work finishes or is cancelled within server.shutdown_deadline_ms,
// then exit 0). Prints `listening on HOST:PORT` on stdout once ready (--port 0 picks a free
// port). Flags override the config file's `server` section.
#include <sys/resource.h>

#include <cstdio>
#include <filesystem>

#include "api/config.h"
#include "cli.h"
#include "mlxs/engine.h"
#include "server/http_server.h"

namespace {

struct Args {
  std::vector<std::string> models;
  std::string host, config, api_key, device = "auto";
  int port = -1, threads = 0, io_threads = 0;
  bool quiet = false;
};

int fail(const mlxs::Status& s) {
  std::fprintf(stderr, "serve: %s\n", s.to_string().c_str());
  return 1;
}

// One socket per client: lift the soft descriptor limit (often 1024) to the hard limit.
void raise_fd_limit() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

int run(const Args& a) {
  using namespace mlxs;
  raise_fd_limit();
  EnvMap env = process_environment();
  auto config = load_config(a.config, env);
  if (!config.ok()) return fail(config.status());
  server::ServerOptions so;
  so.host = a.host.empty() ? config->server.host : a.host;
  so.port = a.port >= 0 ? a.port : config->server.port;
  so.api_key = a.api_key.empty() ? config->server.api_key : a.api_key;
  so.max_body_bytes = config->server.max_body_bytes;
  so.max_json_depth = config->server.max_json_depth;
  so.shutdown_deadline_ms = config->server.shutdown_deadline_ms;
  so.max_streams_per_connection = config->server.max_streams_per_connection;
  so.write_timeout_ms = config->server.write_timeout_ms;
  so.tokenizer_threads = config->server.tokenizer_threads;
  so.max_response_bytes = config->server.max_response_bytes;
  so.responses_store_size = config->server.responses_store_size;
  so.io_threads = a.io_threads > 0 ? a.io_threads : config->server.io_threads;
  so.log_requests = config->server.log_requests && !a.quiet;
  so.metrics = config->telemetry.metrics;

  auto engine = create_engine(cli::engine_options(a.config, a.threads, a.device));
  if (!engine.ok()) return fail(engine.status());
  std::vector<server::ServedModel> served;
  std::vector<std::string> dirs =
      a.models.empty() ? std::vector<std::string>{"models/default"} : a.models;
  for (const auto& dir : dirs) {
    LoadModelOptions lo;
    auto path = std::filesystem::absolute(dir).lexically_normal();
    if (path.filename().empty()) path = path.parent_path();
    lo.model = path.filename().string();
    lo.local_path = path.string();
    auto handle = (*engine)->load_model(lo);
    if (!handle.ok()) return fail(handle.status());
    served.push_back(server::served_model_of(*handle));
    std::fprintf(stderr, "serve: model '%s' from %s (context %d)\n", lo.model.c_str(),
                 lo.local_path.c_str(), handle->context_length);
  }
  server::HttpServer http(**engine, served, so);
  auto port = http.listen();
  if (!port.ok()) return fail(port.status());
  std::printf("listening on %s:%d\n", so.host.c_str(), *port);
  std::fflush(stdout);
  http.run();
  (*engine)->dispose();
  std::fprintf(stderr, "serve: stopped\n");
  return 0;
}

mlxs::cli::CommandRegistrar reg(
    "serve", "Serve models over an OpenAI- and Anthropic-compatible HTTP API", [](CLI::App& app) {
      auto a = std::make_shared<Args>();
      app.add_option("--model", a->models,
                     "Model folder or .gguf file (repeatable; default models/default)");
      app.add_option("--host", a->host, "Address to bind (default: server.host, 127.0.0.1)");
      app.add_option("--port", a->port, "Port (default: server.port, 8080; 0 = any free port)")
          ->check(CLI::Range(0, 65535));
      app.add_option("--config", a->config, "YAML configuration file");
      app.add_option("--api-key", a->api_key,
                     "Require this key (Authorization: Bearer or x-api-key)");
      app.add_option("--threads", a->threads,
                     "CPU compute threads of every model (0 = backend.cpu.threads, whose 0 = all)");
      app.add_option("--io-threads", a->io_threads, "HTTP I/O threads (default: server.io_threads)")
          ->check(CLI::Range(1, 64));
      app.add_option("--device", a->device, "auto, cpu or cuda")
          ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
      app.add_flag("--quiet", a->quiet, "No per-request log lines (as server.log_requests: false)");
      return [a] { return run(*a); };
    });

}  // namespace
