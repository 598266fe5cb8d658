// What every connection of the HTTP server shares: the engine, the served models, the options,
// the metrics, the draining flag, the request log and the Responses API's store. Thread-safe (the
// members that change are atomic, the log has its lock); it outlives every connection (each holds a
// shared_ptr).
#pragma once

#include <algorithm>
#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "mlxs/engine.h"
#include "server/generation_request.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/response_store.h"
#include "server/responses_dialect.h"

namespace mlxs::server {

class ServerContext {
 public:
  ServerContext(Engine& e, std::vector<ServedModel> m, ServerOptions o)
      : engine(e),
        models(std::move(m)),
        options(std::move(o)),
        tokenizer_pool(size_t(std::max(1, options.tokenizer_threads))),
        response_store(size_t(std::max(0, options.responses_store_size))),
        responses(response_store) {}
  virtual ~ServerContext() = default;

  Engine& engine;
  const std::vector<ServedModel> models;
  const ServerOptions options;
  Metrics metrics;
  std::atomic<bool> draining{false};
  std::atomic<uint64_t> next_request{1};
  // Parses generation and tokenizer requests (JSON, chat template, tokenizing: seconds for a
  // prompt of megabytes), so that no I/O thread waits on them (options.tokenizer_threads).
  boost::asio::thread_pool tokenizer_pool;
  // The Responses API's stored responses, and its dialect over them.
  ResponseStore response_store;
  const ResponsesDialect responses;

  const ServedModel* find_model(const std::string& id) const {
    for (const auto& m : models) {
      if (m.id == id) return &m;
    }
    return nullptr;
  }
  // One line on stderr (when options.log_requests).
  void log_line(const std::string& line) {
    if (!options.log_requests) return;
    std::lock_guard<std::mutex> lock(log_mu_);
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  // Called by connection `id` as it is destroyed.
  virtual void session_closed(uint64_t id) = 0;

 private:
  std::mutex log_mu_;
};

}  // namespace mlxs::server
