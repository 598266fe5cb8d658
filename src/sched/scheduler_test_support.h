// Test support for the scheduler and the step builder: small configurations and prompts.
#pragma once

#include <cstdint>
#include <numeric>
#include <vector>

#include "sched/scheduler.h"
#include "util/check.h"

namespace mlxs::sched::test_support {

// n consecutive token ids starting at `first`.
inline std::vector<int32_t> prompt_of(int n, int32_t first = 1) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), first);
  return t;
}

inline Scheduler make(SchedulerConfig c) {
  Result<Scheduler> s = Scheduler::create(c);
  MLXS_CHECK(s.ok());
  return std::move(s).value();
}

// 16 blocks of 4 tokens, 8 sequences, 64 tokens per step and per sequence.
inline SchedulerConfig small_config() {
  SchedulerConfig c;
  c.num_blocks = 16;
  c.block_size = 4;
  c.max_num_batched_tokens = 64;
  c.max_num_seqs = 8;
  c.max_model_len = 64;
  return c;
}

}  // namespace mlxs::sched::test_support
