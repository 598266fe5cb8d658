// The HTTP/1.1 front of mlx-serving: OpenAI-, Anthropic- and Ollama-compatible routes over
// Boost.Beast, on a small pool of I/O threads. One strand per connection (server/session.h);
// requests on a connection are answered in order (keep-alive and pipelining safe). The routes are a
// table (server/route_table.h), each generation API a dialect object (server/dialect.h).
// Generations are consumed asynchronously: the engine's listener wakes the connection, which pulls
// chunks without blocking and stops pulling while the socket is backed up (so a slow client pauses
// only its own stream).
//
// The bodies of the generation and tokenizer routes are parsed (JSON, chat template, tokenizing)
// on a pool of tokenizer_threads, never on an I/O thread; the connection resumes on its strand.
//
// A client that disconnects (seen by a read kept pending on its socket, also for non-streaming
// requests) has its generators cancelled at once; the engine frees its KV within one step.
// Shutdown (SIGINT/SIGTERM or shutdown()): stop accepting, let in-flight work finish until
// shutdown_deadline_ms, then cancel what is left (streams end cleanly), then return from run().
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mlxs/engine.h"
#include "server/generation_request.h"

namespace mlxs::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;      // 0 = any free port (listen() returns it)
  std::string api_key;  // empty = no authentication on /v1/* and the tokenizer routes
  int64_t max_body_bytes = 8 * 1024 * 1024;
  int max_json_depth = 64;              // deeper request bodies get a 400 before they are parsed
  int max_streams_per_connection = 64;  // generators (n) one connection may hold at once
  int64_t write_timeout_ms = 30000;     // a write that cannot finish this long drops the client
  int64_t shutdown_deadline_ms = 10000;
  int io_threads = 2;
  int tokenizer_threads = 2;  // parse generation/tokenizer requests off the I/O threads
  int64_t max_response_bytes = 64 * 1024 * 1024;  // a non-streamed generation response's cap
  int responses_store_size = 1000;  // responses kept for previous_response_id (0: none)
  bool handle_signals = true;       // SIGINT / SIGTERM start a graceful shutdown
  bool log_requests = true;         // one JSON line per request on stderr
  bool metrics = true;              // serve /metrics (telemetry.metrics); false: 404
};

class HttpServer {
 public:
  // `engine` must outlive the server; `models` are the loaded models it serves
  // (served_model_of each one's handle).
  HttpServer(Engine& engine, std::vector<ServedModel> models, ServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens, and from then on catches SIGINT/SIGTERM (when handle_signals). Returns
  // the bound port, or kServerError naming the address.
  Result<int> listen();
  // Serves on options.io_threads threads (this one included) until shutdown has completed.
  void run();
  // Starts a graceful shutdown; returns at once. Thread-safe, idempotent.
  void shutdown();

  struct Impl;  // defined in http_server.cc

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace mlxs::server
