// Builds an AttentionBatch for sequences whose block tables are already known (tests, tools and
// the engine's step planner share it).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backend/backend.h"

namespace mlxs {

struct SeqStep {
  std::span<const int32_t> block_table;  // physical blocks covering num_cached + new tokens
  int num_cached = 0;                    // tokens already in the KV cache
  std::span<const int32_t> new_tokens;   // tokens computed this step
};

// Concatenates the steps' new tokens into `tokens` and fills positions, slot mapping, query
// starts, context lengths and the padded block table matrix.
AttentionBatch make_attention_batch(std::span<const SeqStep> seqs, int block_size,
                                    int sliding_window, std::vector<int32_t>* tokens);

}  // namespace mlxs
