// A request's bookkeeping inside the scheduler.
//
// Progress is two counters (vLLM v1): `tokens` holds every token known so far (prompt, then
// sampled outputs) and `num_computed_tokens` counts those whose K/V sit in the cache. Each step
// computes some of the missing ones; prefill, chunked prefill, prefix-cache hits, recompute
// after preemption and decode are the same path. Invariant between steps:
// block_table.size() == ceil(num_computed_tokens / block_size).
//
// The scheduler owns its sequences; callers read them through Scheduler::find(). Plain data,
// not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "mlxs/chunk.h"
#include "sched/block_pool.h"

namespace mlxs::sched {

using SeqId = uint64_t;

// Lower value = served first. Ageing lets a waiting request rise above younger ones.
enum class Priority : uint8_t { kUrgent = 0, kDefault = 1, kBackground = 2 };

enum class SeqStatus : uint8_t {
  kWaiting,    // queued for admission, holds no blocks
  kPreempted,  // queued for admission after its blocks were taken back (recomputed later)
  kRunning,    // admitted, holds blocks, scheduled every step while budget lasts
  kPaused,     // consumer not reading: not scheduled; keeps its blocks unless preempted
  kFinished,   // done: reported as a FinishedSeq with its reason, then forgotten (never live)
};

// Why a sequence ended: the public mlxs::FinishReason (chunk.h). The scheduler itself sets kStop
// (a stop token id was sampled) and kLength (max_tokens outputs, or the context length);
// abort() takes kCancelled, kTimeout or kStop (a stop string the engine saw in the text).
using mlxs::FinishReason;

const char* seq_status_name(SeqStatus status);

struct Sequence {
  Sequence(SeqId id, std::vector<int32_t> prompt, int max_tokens,
           Priority priority = Priority::kDefault, double arrival_time_s = 0.0)
      : id(id),
        tokens(std::move(prompt)),
        num_prompt_tokens(int(tokens.size())),
        max_tokens(max_tokens),
        priority(priority),
        arrival_time_s(arrival_time_s) {}

  int num_tokens() const { return int(tokens.size()); }
  int num_output_tokens() const { return num_tokens() - num_prompt_tokens; }
  // Tokens known but not yet in the KV cache.
  int num_uncomputed_tokens() const { return num_tokens() - num_computed_tokens; }

  SeqId id;
  std::vector<int32_t> tokens;  // prompt followed by outputs; append-only
  int num_prompt_tokens;
  int max_tokens;  // outputs allowed (>= 1)
  // Sampling one of these ends the sequence with kStop (the request's stop ids and the model's
  // end-of-sequence ids); the token is the sequence's last output.
  std::vector<int32_t> stop_token_ids;
  Priority priority;
  double arrival_time_s;  // caller's clock, seconds; drives ageing

  int num_computed_tokens = 0;
  std::vector<BlockId> block_table;  // logical block i -> physical block
  // Hashes of the full blocks of `tokens`, chained; grown lazily (tokens never change).
  std::vector<BlockHash> block_hashes;
  int num_cached_blocks = 0;  // leading block_table entries already offered to the cache
  SeqStatus status = SeqStatus::kWaiting;
  std::optional<FinishReason> finish_reason;  // set when it finishes
  int num_preemptions = 0;
  // Proposals the last update() planned, whose verdict resolve_placeholder() awaits: their
  // K/V sit past num_computed_tokens (speculative decoding).
  int num_unresolved_proposals = 0;
  uint64_t arrival_seq = 0;  // set by Scheduler::add(); breaks ties, "newest" = largest
};

}  // namespace mlxs::sched
