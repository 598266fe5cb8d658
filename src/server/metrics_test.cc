#include "server/metrics.h"

#include <gtest/gtest.h>

namespace mlxs::server {
namespace {

TEST(Histogram, CumulativeBuckets) {
  Histogram h({0.1, 1});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  std::string out;
  h.render("x", &out);
  EXPECT_NE(out.find("x_bucket{le=\"0.1\"} 1\n"), std::string::npos);
  EXPECT_NE(out.find("x_bucket{le=\"1\"} 2\n"), std::string::npos);
  EXPECT_NE(out.find("x_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(out.find("x_count 3\n"), std::string::npos);
  EXPECT_NE(out.find("x_sum 5.55\n"), std::string::npos);
}

TEST(Metrics, ExpositionHasEngineAndServerSeries) {
  Metrics m;
  m.record_http("/v1/completions", 200);
  m.record_http("/v1/completions", 200);
  m.record_error("ValidationError");
  m.record_ttft(0.02);
  RuntimeInfo info;
  ModelStats s;
  s.model_id = "default";
  s.kv_blocks_used = 5;
  s.kv_blocks_total = 20;
  s.kv_block_size = 16;
  s.kv_cache_bytes = 3276800;
  s.prefix_hits = 3;
  s.prefix_misses = 1;
  s.draft_tokens_proposed = 40;
  s.draft_tokens_accepted = 10;
  s.speculative_steps = 20;
  info.models.push_back(s);
  std::string text = m.render(info, HealthStatus{});
  EXPECT_NE(text.find("mlxs_kv_blocks_used{model=\"default\"} 5\n"), std::string::npos);
  EXPECT_NE(text.find("mlxs_kv_cache_usage_ratio{model=\"default\"} 0.25\n"), std::string::npos);
  EXPECT_NE(text.find("mlxs_kv_blocks_free{model=\"default\"} 15\n"), std::string::npos);
  EXPECT_NE(text.find("mlxs_kv_cache_capacity_tokens{model=\"default\"} 320\n"), std::string::npos);
  EXPECT_NE(text.find("mlxs_kv_cache_size_bytes{model=\"default\"} 3276800\n"), std::string::npos);
  EXPECT_NE(text.find("mlxs_prefix_cache_hit_rate{model=\"default\"} 0.75\n"), std::string::npos);
  EXPECT_NE(text.find("mlxs_draft_tokens_accepted_total{model=\"default\"} 10\n"),
            std::string::npos);
  EXPECT_NE(text.find("mlxs_speculative_acceptance_rate{model=\"default\"} 0.25\n"),
            std::string::npos);
  EXPECT_NE(text.find("mlxs_speculative_mean_accepted_length{model=\"default\"} 0.5\n"),
            std::string::npos);
  EXPECT_NE(text.find("mlxs_http_requests_total{route=\"/v1/completions\",status=\"200\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("mlxs_request_errors_total{code=\"ValidationError\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE mlxs_time_to_first_token_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("mlxs_time_to_first_token_seconds_count 1\n"), std::string::npos);
}

}  // namespace
}  // namespace mlxs::server
