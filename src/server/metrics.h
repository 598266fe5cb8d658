// Server-side telemetry in the Prometheus text exposition format (version 0.0.4), written by
// hand: counters by label, fixed-bucket histograms, and the engine's per-model gauges.
//
// Thread safety: every method may be called from any thread (one mutex; updates are a few
// additions, far below the cost of one engine step).
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "mlxs/engine.h"

namespace mlxs::server {

// Cumulative histogram with fixed upper bounds (seconds). Not thread-safe by itself.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  // Appends `name_bucket{le=...}`, `name_sum` and `name_count` lines.
  void render(const std::string& name, std::string* out) const;
  int64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<int64_t> counts_;  // one per bound, not cumulative
  double sum_ = 0;
  int64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();
  // One finished HTTP exchange: route ("/v1/chat/completions", or "other") and status code.
  void record_http(const std::string& route, int status);
  // One error response or failed generation, by engine error code name ("ValidationError").
  void record_error(const std::string& code);
  void record_ttft(double seconds);
  void record_inter_token(double seconds);
  void record_e2e(double seconds);
  void add_connection(int delta);
  void add_active_request(int delta);

  // The whole exposition: the server's counters and histograms plus `info`'s per-model stats.
  std::string render(const RuntimeInfo& info, const HealthStatus& health) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> http_;  // guarded by mu_
  std::map<std::string, int64_t> errors_;                // guarded by mu_
  Histogram ttft_, itl_, e2e_;                           // guarded by mu_
  int64_t connections_ = 0, active_requests_ = 0;        // guarded by mu_
};

}  // namespace mlxs::server
