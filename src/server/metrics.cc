#include "server/metrics.h"

#include <fmt/format.h>

namespace mlxs::server {
namespace {

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void header(std::string* out, const char* name, const char* type, const char* help) {
  *out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

std::string fmt_double(double v) {
  return fmt::format("{}", v);
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size(), 0) {}

void Histogram::observe(double value) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (value <= bounds_[i]) {
      ++counts_[i];
      break;
    }
  }
  sum_ += value;
  ++count_;
}

void Histogram::render(const std::string& name, std::string* out) const {
  int64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    *out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, fmt_double(bounds_[i]), cumulative);
  }
  *out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, count_);
  *out += fmt::format("{}_sum {}\n{}_count {}\n", name, fmt_double(sum_), name, count_);
}

Metrics::Metrics()
    : ttft_({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
             20, 40, 80}),
      itl_({0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5,
            10}),
      e2e_({0.01, 0.05, 0.1, 0.3, 0.5, 0.8, 1, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 300}) {}

void Metrics::record_http(const std::string& route, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++http_[{route, status}];
}

void Metrics::record_error(const std::string& code) {
  std::lock_guard<std::mutex> lock(mu_);
  ++errors_[code];
}

void Metrics::record_ttft(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  ttft_.observe(s);
}

void Metrics::record_inter_token(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  itl_.observe(s);
}

void Metrics::record_e2e(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  e2e_.observe(s);
}

void Metrics::add_connection(int delta) {
  std::lock_guard<std::mutex> lock(mu_);
  connections_ += delta;
}

void Metrics::add_active_request(int delta) {
  std::lock_guard<std::mutex> lock(mu_);
  active_requests_ += delta;
}

std::string Metrics::render(const RuntimeInfo& info, const HealthStatus& health) const {
  std::string out;
  out.reserve(8192);
  struct Gauge {
    const char* name;
    const char* help;
    const char* type;
    double (*get)(const ModelStats&);
  };
  static const Gauge kModelSeries[] = {
      {"mlxs_num_requests_running", "Sequences in the running batch.", "gauge",
       [](const ModelStats& s) { return double(s.num_running); }},
      {"mlxs_num_requests_waiting", "Requests waiting to be scheduled.", "gauge",
       [](const ModelStats& s) { return double(s.num_waiting); }},
      {"mlxs_num_requests_paused", "Requests paused by backpressure (slow consumer).", "gauge",
       [](const ModelStats& s) { return double(s.num_paused); }},
      {"mlxs_kv_blocks_used", "KV cache blocks in use.", "gauge",
       [](const ModelStats& s) { return double(s.kv_blocks_used); }},
      {"mlxs_kv_blocks_total", "KV cache blocks in the pool.", "gauge",
       [](const ModelStats& s) { return double(s.kv_blocks_total); }},
      {"mlxs_kv_blocks_free", "KV cache blocks not in use (free or holding only a cached prefix).",
       "gauge", [](const ModelStats& s) { return double(s.kv_blocks_total - s.kv_blocks_used); }},
      {"mlxs_kv_cache_capacity_tokens", "Tokens the KV cache pool holds (blocks x block size).",
       "gauge",
       [](const ModelStats& s) { return double(s.kv_blocks_total) * double(s.kv_block_size); }},
      {"mlxs_kv_cache_size_bytes", "Memory of the KV cache pool (K and V of every layer).", "gauge",
       [](const ModelStats& s) { return double(s.kv_cache_bytes); }},
      {"mlxs_kv_cache_usage_ratio", "KV cache blocks in use over the pool size (0..1).", "gauge",
       [](const ModelStats& s) {
         return s.kv_blocks_total ? double(s.kv_blocks_used) / s.kv_blocks_total : 0.0;
       }},
      {"mlxs_prefix_cache_hits_total", "Prefix cache block lookups that hit.", "counter",
       [](const ModelStats& s) { return double(s.prefix_hits); }},
      {"mlxs_prefix_cache_misses_total", "Prefix cache block lookups that missed.", "counter",
       [](const ModelStats& s) { return double(s.prefix_misses); }},
      {"mlxs_prefix_cache_hit_rate", "Prefix cache hits over lookups since start (0..1).", "gauge",
       [](const ModelStats& s) {
         const double n = double(s.prefix_hits + s.prefix_misses);
         return n > 0 ? double(s.prefix_hits) / n : 0.0;
       }},
      {"mlxs_prompt_tokens_total", "Prompt tokens of finished requests.", "counter",
       [](const ModelStats& s) { return double(s.prompt_tokens); }},
      {"mlxs_generation_tokens_total", "Generated tokens of finished requests.", "counter",
       [](const ModelStats& s) { return double(s.generated_tokens); }},
      {"mlxs_requests_finished_total", "Generations finished (any reason).", "counter",
       [](const ModelStats& s) { return double(s.requests_finished); }},
      {"mlxs_draft_tokens_proposed_total", "Speculative proposals verified (finished requests).",
       "counter", [](const ModelStats& s) { return double(s.draft_tokens_proposed); }},
      {"mlxs_draft_tokens_accepted_total", "Speculative proposals accepted (finished requests).",
       "counter", [](const ModelStats& s) { return double(s.draft_tokens_accepted); }},
      {"mlxs_speculative_acceptance_rate",
       "Speculative proposals accepted over proposed since start (0..1).", "gauge",
       [](const ModelStats& s) {
         return s.draft_tokens_proposed
                    ? double(s.draft_tokens_accepted) / double(s.draft_tokens_proposed)
                    : 0.0;
       }},
      {"mlxs_speculative_mean_accepted_length",
       "Proposals accepted per verification step since start.", "gauge",
       [](const ModelStats& s) {
         return s.speculative_steps ? double(s.draft_tokens_accepted) / double(s.speculative_steps)
                                    : 0.0;
       }},
      {"mlxs_preemptions_total", "Sequences preempted for KV space.", "counter",
       [](const ModelStats& s) { return double(s.preemptions); }},
      {"mlxs_engine_steps_total", "Engine steps run.", "counter",
       [](const ModelStats& s) { return double(s.steps); }},
  };
  for (const auto& g : kModelSeries) {
    header(&out, g.name, g.type, g.help);
    for (const auto& m : info.models) {
      out += fmt::format("{}{{model=\"{}\"}} {}\n", g.name, escape_label(m.model_id),
                         fmt_double(g.get(m)));
    }
  }
  header(&out, "mlxs_active_streams", "gauge", "Generations the engine holds (any model).");
  out += fmt::format("mlxs_active_streams {}\n", health.active_streams);
  header(&out, "mlxs_healthy", "gauge", "1 when healthy, 0.5 degraded, 0 unhealthy.");
  out += fmt::format("mlxs_healthy {}\n", health.status == HealthState::kHealthy    ? "1"
                                          : health.status == HealthState::kDegraded ? "0.5"
                                                                                    : "0");
  std::lock_guard<std::mutex> lock(mu_);
  header(&out, "mlxs_http_connections", "gauge", "Open HTTP connections.");
  out += fmt::format("mlxs_http_connections {}\n", connections_);
  header(&out, "mlxs_http_requests_in_flight", "gauge", "HTTP requests being served.");
  out += fmt::format("mlxs_http_requests_in_flight {}\n", active_requests_);
  header(&out, "mlxs_http_requests_total", "counter", "HTTP requests by route and status.");
  for (const auto& [key, n] : http_) {
    out += fmt::format("mlxs_http_requests_total{{route=\"{}\",status=\"{}\"}} {}\n",
                       escape_label(key.first), key.second, n);
  }
  header(&out, "mlxs_request_errors_total", "counter", "Failed requests by error code.");
  for (const auto& [code, n] : errors_) {
    out += fmt::format("mlxs_request_errors_total{{code=\"{}\"}} {}\n", escape_label(code), n);
  }
  header(&out, "mlxs_time_to_first_token_seconds", "histogram",
         "Time from submission to the first generated token (engine clock).");
  ttft_.render("mlxs_time_to_first_token_seconds", &out);
  header(&out, "mlxs_inter_token_latency_seconds", "histogram",
         "Gap between consecutive tokens of a request, as the HTTP layer receives them.");
  itl_.render("mlxs_inter_token_latency_seconds", &out);
  header(&out, "mlxs_e2e_request_latency_seconds", "histogram",
         "Time from receiving a generation request to its last byte.");
  e2e_.render("mlxs_e2e_request_latency_seconds", &out);
  return out;
}

}  // namespace mlxs::server
