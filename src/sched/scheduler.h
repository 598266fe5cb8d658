// The scheduler: continuous batching over a paged KV cache, as pure bookkeeping.
//
// One engine step is: out = schedule(); run the model on make_step_batch(out); sample the rows
// with needs_logits; update(out, tokens). The scheduler alone decides when a sequence ends
// because of its tokens: at its max_tokens, at the context length, or on one of its stop token
// ids (Sequence::stop_token_ids). Everything else that ends a sequence (a cancel, a timeout, a
// stop string seen in the text, a failed step) is reported to it with abort().
//
// Pipelining (runtime/step_pipeline.h): an engine may call update() before the sampled tokens
// are known, with negative placeholders the model resolves on the device; it then gives each
// real token with resolve_placeholder() before the next update(). A placeholder is only ever a
// sequence's last token, and its block is not hashed into the prefix cache until it is
// resolved. Whether a placeholder is a stop token is known only when it is resolved, so a
// sequence ended by length on a placeholder is released at once (its blocks freed, never
// scheduled again) but reported finished by resolve_placeholder(), with kStop if the token is
// a stop id, else kLength. No backend calls, no I/O, no clock, no threads:
// data in, data out. Not thread-safe: the engine loop's thread makes every call, and never calls
// schedule() twice without an update() in between (the plan of a step must be applied first).
//
// Policy, per step:
//  1. Running sequences, best rank first, each gets min(missing tokens, budget left): 1 token
//     for decode, a chunk for a prefill. A sequence that needs a block the pool lacks frees one
//     by preempting a victim: a paused sequence holding blocks first, else the worst-ranked
//     running sequence ranked after it (not yet planned this step); only when none is left it
//     preempts itself. Preemption frees every block and sends the sequence back to the waiting
//     queue with num_computed_tokens = 0 (recompute; its blocks often come back as prefix hits).
//  2. If nothing was preempted, waiting sequences are admitted best rank first while the token
//     budget and max_num_seqs allow, each only if the blocks of all its known tokens fit after
//     prefix-cache hits (paused sequences' blocks are preempted if that makes it fit); the
//     first one that does not fit stops admission (no overtaking, so a large request is not
//     starved by small ones). A prompt larger than the budget left is
//     prefilled in chunks over several steps.
//
// Speculative decoding (docs/speculative-decoding.md): schedule() may be given proposed next
// tokens for running sequences whose last token is known. A decode sequence (one missing token)
// then also computes min(k, budget left, outputs left - 1, context left - 1) proposals, whose
// blocks are taken only from free blocks (a proposal never preempts anyone: it is dropped
// instead). update() counts the last known token as computed and appends one placeholder, as on
// the plain path; resolve_placeholder() with the verified tokens (the accepted proposals and the
// model's own next token) keeps the K/V of the accepted proposals, rolls back the rest (the
// sequence's length shrinks; blocks past it return to the pool) and ends the sequence on the
// first of them that is a stop id or reaches the length, dropping those after it.
//
// Rank = priority class (urgent 0, default 1, background 2) - ageing_rate * seconds waited,
// ageing_rate = 1 / ageing_interval (in seconds).
// All ranks age at the same rate, so the order is by the static key
// class + ageing_rate * arrival_time_s, ties broken by arrival order (earlier first). With
// ageing_rate r, a request is overtaken only by better classes that arrived within 1/r (or 2/r)
// seconds after it: background work is never starved. "Newest" in the preemption rule means
// worst rank: the lowest class, then the latest arrival.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <unordered_map>
#include <vector>

#include "mlxs/status.h"
#include "sched/block_pool.h"
#include "sched/scheduler_output.h"
#include "sched/sequence.h"

namespace mlxs::sched {

// The `scheduler:` section of the configuration (src/api/config.cc binds these fields; their
// member initializers are the only defaults), and the KV geometry the model runner fills in at
// load from `kv_cache:` and the model, which no default can know.
struct SchedulerConfig {
  // --- configuration keys ---
  // Defaults measured on the GPU (bench/RESULTS.md, 2026-12-07: an 8B model, 256 streams of 512 +
  // 128 tokens on an H100): 256 / 8192 deliver 97 % of the model-level end-to-end figure, 64 /
  // 2048 about a third of it (the earlier defaults, with a fixed 1 GiB KV pool).
  int32_t max_num_seqs = 256;             // sequences running at once (and per step)
  int32_t max_num_batched_tokens = 8192;  // token budget per step (prefill chunks + decodes)
  int32_t max_waiting_requests = 1024;    // the runner refuses beyond this (CapacityExceeded)
  int64_t ageing_interval_ms = 2000;      // a waiting request rises one priority class per interval
  bool chunked_prefill = true;            // false: a prompt must fit one step's budget
  bool overlap_steps = true;              // the runner queues step N+1 while step N runs
  // --- filled in at load (0 until then; the scheduler refuses 0) ---
  int32_t num_blocks = 0;      // KV blocks in the pool
  int32_t block_size = 0;      // tokens per block (kv_cache.block_size)
  int32_t max_model_len = 0;   // context length: prompt + max_tokens must fit
  bool prefix_caching = true;  // kv_cache.prefix_caching
};

// InvalidParams naming the first field out of range, or ok.
Status validate(const SchedulerConfig& config);

// The token sampled for out.seqs[i] (same index).
struct SampledToken {
  // Required when needs_logits (else ignored): a token id, or a negative placeholder for a
  // token not yet known (see resolve_placeholder()).
  int32_t token = -1;
};

struct FinishedSeq {
  SeqId id = 0;
  FinishReason reason = FinishReason::kStop;
  int num_prompt_tokens = 0;
  int num_output_tokens = 0;
};

// Proposed next tokens per sequence for one schedule() (speculative decoding).
using Proposals = std::unordered_map<SeqId, std::vector<int32_t>>;

// What resolve_placeholder() made of the verified tokens it was given.
struct Resolution {
  int num_kept = 0;  // leading tokens appended (the rest follow the sequence's end: dropped)
  std::optional<FinishedSeq> finished;  // set when they end the sequence
};

struct SchedulerStats {
  int num_waiting = 0;  // including preempted
  int num_running = 0;
  int num_paused = 0;
  int num_free_blocks = 0;
  int num_used_blocks = 0;
  int num_cached_blocks = 0;
  int64_t num_prefix_hits = 0;    // blocks, lifetime
  int64_t num_prefix_misses = 0;  // blocks, lifetime
  int64_t num_preemptions = 0;    // lifetime
};

class Scheduler {
 public:
  // A scheduler with an empty pool of config.num_blocks blocks, or validate()'s error.
  static Result<Scheduler> create(const SchedulerConfig& config);

  // Queues `seq` (status kWaiting, no blocks). Refuses with InvalidParams a duplicate id, an
  // empty prompt, max_tokens < 1 or prompt + max_tokens > max_model_len; with CapacityExceeded
  // a request whose KV (prompt + max_tokens - 1 tokens) exceeds the whole pool, or, without
  // chunked prefill, the token budget. The scheduler owns the sequence from here on.
  Status add(Sequence seq);

  // Plans one step (see the policy above). Allocates the blocks the step writes; does not
  // advance num_computed_tokens (update() does). An empty output means nothing can run.
  // `proposals`: proposed next tokens of running sequences (see speculative decoding above);
  // those of other sequences are ignored.
  SchedulerOutput schedule(const Proposals& proposals = {});

  // Applies a step: advances num_computed_tokens by the tokens computed, registers newly full
  // blocks in the prefix cache, appends tokens[i].token for each sequence with needs_logits,
  // and finishes sequences (a stop token id, max_tokens, or the context length), freeing their
  // blocks. tokens.size() must equal out.seqs.size(). Sequences aborted since schedule() are
  // skipped (so an id must not be reused by add() while a step that planned it is in flight).
  // Returns the sequences finished by this step; they are forgotten by the scheduler. A
  // sequence ended by length on a placeholder is released now and reported by
  // resolve_placeholder().
  std::vector<FinishedSeq> update(const SchedulerOutput& out, std::span<const SampledToken> tokens);

  // Replaces the placeholder that update() appended as `id`'s last token with `token` (>= 0).
  // Returns the sequence's end when that token ends it: a stop token id (kStop: the sequence
  // is forgotten now, so the step in flight's row for it is dropped), or the length update()
  // reached on the placeholder (kLength, or kStop if the token is also a stop id); nullopt
  // when it goes on. NotFound if the id is neither live nor awaiting its last token;
  // InternalError if its last token is no placeholder or `token` is no token id.
  Result<std::optional<FinishedSeq>> resolve_placeholder(SeqId id, int32_t token);
  // The same for a step that computed proposals: `tokens` are the verified tokens, the accepted
  // proposals followed by the model's own next token (at least one; at most the step's
  // proposals + 1). The placeholder becomes tokens[0] and the others are appended, up to the
  // first that ends the sequence; the K/V of the accepted proposals are kept and the blocks past
  // the sequence's computed tokens go back to the pool.
  Result<Resolution> resolve_placeholder(SeqId id, std::span<const int32_t> tokens);

  // Ends a sequence for a reason outside its tokens: frees its blocks now and forgets it
  // (reason kCancelled or kTimeout, or kStop for a stop string the engine saw late, all
  // reported by the caller). A sequence awaiting its last token (see resolve_placeholder()) is
  // forgotten too. NotFound if the id is neither.
  Status abort(SeqId id, FinishReason reason = FinishReason::kCancelled);
  // Backpressure: a paused sequence is not scheduled; it keeps its blocks until a pressured
  // step preempts it (paused sequences are the first victims). Idempotent. NotFound if not live.
  Status pause(SeqId id);
  // Undoes pause(): back to running if it still holds blocks and max_num_seqs allows, else it
  // releases them and waits for admission. Idempotent. NotFound if not live.
  Status resume(SeqId id);

  // The live sequence `id`, or null (unknown or finished). Valid until the next mutating call.
  const Sequence* find(SeqId id) const;
  // Live ids per queue, in rank order (best first).
  std::vector<SeqId> waiting_ids() const { return ids_of(waiting_); }
  std::vector<SeqId> running_ids() const { return ids_of(running_); }
  std::vector<SeqId> paused_ids() const { return ids_of(paused_); }
  int num_live() const { return int(seqs_.size()); }
  const BlockPool& block_pool() const { return pool_; }
  const SchedulerConfig& config() const { return config_; }
  SchedulerStats stats() const;

 private:
  struct QueueKey {
    double rank;
    uint64_t arrival_seq;
    SeqId id;
    bool operator<(const QueueKey& o) const {
      return rank != o.rank ? rank < o.rank : arrival_seq < o.arrival_seq;
    }
  };
  using Queue = std::set<QueueKey>;

  Scheduler(const SchedulerConfig& config);
  static std::vector<SeqId> ids_of(const Queue& q);
  QueueKey key(const Sequence& seq) const;
  Queue& queue_of(const Sequence& seq);

  bool schedule_running(Sequence& seq, int budget, SchedulerOutput& out);
  bool reserve_blocks(Sequence& seq, int num_new_tokens, SchedulerOutput& out);
  int reserve_proposal_blocks(Sequence& seq, int num_wanted);
  int num_proposals_allowed(const Sequence& seq, int budget) const;
  Sequence* pick_victim(const Sequence& seq);
  Sequence* paused_victim();
  void preempt(Sequence& seq);
  void admit_waiting(int budget, SchedulerOutput& out);
  bool try_admit(Sequence& seq, int budget, SchedulerOutput& out);
  int num_blocks_to_admit(const Sequence& seq, std::span<const BlockId> hits) const;
  void emit(const Sequence& seq, int num_new_tokens, SchedulerOutput& out,
            std::span<const int32_t> proposals = {}) const;

  bool apply_result(Sequence& seq, const ScheduledSeq& planned, const SampledToken& sampled);
  void forget(std::unordered_map<SeqId, Sequence>::iterator it);
  void cache_full_blocks(Sequence& seq);
  void ensure_block_hashes(Sequence& seq) const;
  int blocks_for(int num_tokens) const;
  void release_blocks(Sequence& seq);
  void trim_blocks(Sequence& seq);
  void move(Sequence& seq, SeqStatus to);

  // Priority classes gained per second of waiting.
  double ageing_rate() const { return 1000.0 / double(config_.ageing_interval_ms); }

  SchedulerConfig config_;
  BlockPool pool_;
  std::unordered_map<SeqId, Sequence> seqs_;  // live sequences
  // Ended by length on a placeholder, released, awaiting resolve_placeholder(): the report,
  // and the stop ids that may still turn it into kStop.
  struct Unresolved {
    FinishedSeq finished;
    std::vector<int32_t> stop_token_ids;
  };
  std::unordered_map<SeqId, Unresolved> unresolved_;
  Queue waiting_;  // kWaiting and kPreempted; hold no blocks
  Queue running_;  // kRunning; hold blocks
  Queue paused_;   // kPaused; may hold blocks
  uint64_t next_arrival_seq_ = 0;
  int64_t num_preemptions_ = 0;
};

}  // namespace mlxs::sched
