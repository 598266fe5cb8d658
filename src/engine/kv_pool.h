// How many KV blocks a model's pool gets. Policy, first rule that applies:
//
// 1. kv_cache.num_blocks > 0: exactly that many; nothing is measured.
// 2. A backend with device memory of its own (CUDA): kv_cache.memory_fraction of the device
//    memory that is free once the weights are loaded and the largest step's activations and
//    step buffers are allocated (ModelRunner runs that step on a one-block cache first).
//    A share of *free* memory, not vLLM's share of *total* memory: several models may share one
//    GPU (model.max_loaded_models), and each load then takes its share of what the others left;
//    the rest, (1 - fraction) of it, is the headroom for what grows later (CUDA graphs, sampling
//    buffers of the largest batch, block tables widened for long sequences, the allocator).
// 3. Host memory (the CPU backend): kv_cache.cpu_memory_bytes, or when it is 0, a quarter of
//    physical memory but at most half of the memory available once the weights are loaded:
//    the weights, the OS and a second model need the rest, and a busy machine must not swap.
// 4. Never more than max_num_seqs sequences of max_model_len tokens need: a larger pool could
//    only ever hold prefix-cache blocks, and it keeps tiny test models' pools tiny.
// 5. A budget smaller than one sequence of max_model_len tokens is refused (kModelLoadError
//    naming the keys to change), since a request of the full context could never run.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "backend/backend.h"
#include "mlxs/status.h"

namespace mlxs {

struct KvPoolInputs {
  int64_t bytes_per_block = 0;  // K and V of every layer for block_size tokens
  int block_size = 16;
  int max_model_len = 0;  // tokens of the longest sequence
  int max_num_seqs = 1;
  // Rule 2 when set: the device's memory after the weights and the largest step.
  std::optional<MemoryInfo> device;
  double memory_fraction = 0.9;
  // Rule 3 otherwise: the host's memory after the weights; cpu_memory_bytes 0 = the default.
  MemoryInfo host;
  int64_t cpu_memory_bytes = 0;
};

struct KvPoolSize {
  int num_blocks = 0;
  int64_t budget_bytes = 0;  // what rules 2 or 3 allowed, before rule 4's bound
  std::string basis;         // how the budget was chosen, for the startup log
};

// The pool for `in` under rules 2-5 (rule 1 is the caller's), or kModelLoadError.
Result<KvPoolSize> size_kv_pool(const KvPoolInputs& in);

// MemTotal and MemAvailable of /proc/meminfo (zeros when it cannot be read).
MemoryInfo host_memory();

// "1.5 GiB", "512.0 MiB": bytes for people.
std::string format_bytes(int64_t bytes);

}  // namespace mlxs
