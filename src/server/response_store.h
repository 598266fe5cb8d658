// The Responses API's memory: responses created with `store` (the default), each with the
// conversation that led to it and its answer, so that a later request can continue it with
// `previous_response_id` and GET /v1/responses/{id} can return it. Bounded: at most `capacity`
// responses (server.responses_store_size); the oldest goes first. In memory only: a restart
// forgets them. Thread-safe.
#pragma once

#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "mlxs/engine.h"

namespace mlxs::server {

struct StoredResponse {
  std::string model;
  std::vector<ChatMessage> conversation;  // the input (instructions excluded) and the answer
  nlohmann::json response;                // the response object as it was returned
};

class ResponseStore {
 public:
  // 0: nothing is kept (previous_response_id is then always unknown).
  explicit ResponseStore(size_t capacity) : capacity_(capacity) {}

  // Keeps `r` under `id`, dropping the oldest when full.
  void put(const std::string& id, StoredResponse r);
  std::optional<StoredResponse> get(const std::string& id) const;
  size_t capacity() const { return capacity_; }
  size_t size() const;

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, StoredResponse> by_id_;  // GUARDED_BY(mu_)
  std::deque<std::string> order_;                          // oldest first; GUARDED_BY(mu_)
};

}  // namespace mlxs::server
