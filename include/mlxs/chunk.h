// What a generator stream yields: token chunks as tokens are sampled, then one metadata chunk with
// the request's statistics, or one error chunk. Shapes are the original mlx-serving's
// GeneratorChunk, with finish_reason and top log-probabilities added. Plain data.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "mlxs/status.h"

namespace mlxs {

// One alternative at a sampled position, for GeneratorParams::top_logprobs.
struct TopLogprob {
  int32_t token_id = 0;
  std::string text;      // the token's text (may be a partial UTF-8 sequence rendered as bytes)
  double logprob = 0.0;  // natural log of the probability after all logits processors
};

// One sampled token. `text` is the newly visible text: the incremental detokenizer may hold bytes
// back (incomplete UTF-8, a possible stop-sequence prefix), so it can be empty.
struct TokenChunk {
  std::string text;
  int32_t token_id = 0;
  std::optional<double> logprob;         // of the sampled token; set when logprobs was asked for
  std::vector<TopLogprob> top_logprobs;  // most likely first; top_logprobs entries when asked
  bool is_final = false;                 // the last token chunk of the stream
};

// Why a generation ended.
enum class FinishReason {
  kStop,       // EOS, a stop token id or a stop sequence
  kLength,     // max_tokens or the context length was reached
  kCancelled,  // the caller cancelled
  kTimeout,    // timeout_ms passed
  kError,      // see the error chunk
};

// "stop" | "length" | "cancelled" | "timeout" | "error".
const char* finish_reason_name(FinishReason reason);

// The statistics of one finished generation (the original's GenerationStats, in milliseconds).
struct MetadataChunk {
  int32_t tokens_generated = 0;
  int32_t prompt_tokens = 0;
  int32_t cached_prompt_tokens = 0;  // prompt tokens served from the prefix cache
  double tokens_per_second = 0.0;    // decode rate: (tokens_generated - 1) / (total - ttft)
  double time_to_first_token_ms = 0.0;
  double total_time_ms = 0.0;
  FinishReason finish_reason = FinishReason::kStop;
  // Speculative decoding (docs/speculative-decoding.md): proposals verified, those accepted
  // (among the tokens streamed), and the verification steps; all 0 without speculation.
  // Acceptance rate = accepted / proposed; mean accepted length = accepted / steps.
  int32_t draft_tokens_accepted = 0;
  int32_t draft_tokens_proposed = 0;
  int32_t speculative_steps = 0;
  std::string stop_sequence;  // the stop sequence that ended the stream, else empty
  std::string model_id;
};

struct ErrorChunk {
  ErrorCode code = ErrorCode::kGenerationError;
  std::string message;
  std::string details;  // free text (no JSON in the engine); empty when none
};

using Chunk = std::variant<TokenChunk, MetadataChunk, ErrorChunk>;

}  // namespace mlxs
