// Prompt lookup: speculative proposals without a second model. A sequence that repeats its own
// text (editing, summarising, code) often continues an earlier occurrence of its latest tokens;
// the proposal is what followed that occurrence. The model verifies the proposals in one step
// (runtime/step_pipeline.h), so a wrong guess costs compute, never correctness.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace mlxs {

// Up to `max_tokens` proposed next tokens for `tokens` (a sequence's prompt and output, all
// known): for n from max_ngram down to min_ngram, the latest earlier occurrence of its last n
// tokens that has a token after it gives the tokens that followed it (at most max_tokens, and
// never past the end). Empty when no suffix recurs. Pure function; O(|tokens| * max_ngram).
std::vector<int32_t> prompt_lookup(std::span<const int32_t> tokens, int max_tokens, int min_ngram,
                                   int max_ngram);

}  // namespace mlxs
