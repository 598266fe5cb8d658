// The serving benchmark suite behind `mlx-serving bench-decode --backend cuda`: batch-1 decode
// against the memory roofline, time to first token, and decode throughput under concurrency.
#pragma once

#include <string>
#include <vector>

namespace mlxs::bench {

struct SuiteArgs {
  std::string model;
  std::string backend = "cuda";
  std::string kv_dtype = "bf16";
  int decode_steps = 128;               // batch-1 decode steps timed (median reported)
  int context = 512;                    // prompt before the batch-1 decode
  std::vector<int> ttft = {512, 2048};  // prompt lengths for time to first token
  std::vector<int> concurrency = {8, 32, 64, 128, 256};
  int in_len = 512, out_len = 128;  // per sequence, for the concurrency runs
  int prefill_budget = 8192;        // tokens per prefill step in the concurrency runs
  bool per_op = true;               // time each op class in isolation (eager launches)
  bool sweep = false;               // GEMV vs cuBLAS for 1..16 rows
  bool quick = false;               // only (a)
  bool graphs = true;
  bool pipelined = true;  // decode step i + 1 queued before step i ends (as the engine runs)
};

// Runs the suite and prints its table; returns the process exit code.
int run_suite(const SuiteArgs& a);

}  // namespace mlxs::bench
