#include "sched/scheduler.h"

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <utility>

#include "util/check.h"

namespace mlxs::sched {
namespace {

bool is_stop_token(const std::vector<int32_t>& stop_token_ids, int32_t token) {
  return token >= 0 &&
         std::find(stop_token_ids.begin(), stop_token_ids.end(), token) != stop_token_ids.end();
}

Status invalid(const std::string& field, const std::string& rule, double got) {
  return error(ErrorCode::kInvalidParams,
               fmt::format("scheduler.{} must be {}, got {}", field, rule, got));
}

}  // namespace

Status validate(const SchedulerConfig& c) {
  if (c.num_blocks < 1) return invalid("num_blocks", ">= 1", c.num_blocks);
  if (c.block_size < 1) return invalid("block_size", ">= 1", c.block_size);
  if (c.max_num_batched_tokens < 1) {
    return invalid("max_num_batched_tokens", ">= 1", c.max_num_batched_tokens);
  }
  if (c.max_num_seqs < 1) return invalid("max_num_seqs", ">= 1", c.max_num_seqs);
  if (c.max_model_len < 2) return invalid("max_model_len", ">= 2", c.max_model_len);
  if (c.ageing_interval_ms < 1) return invalid("ageing_interval_ms", ">= 1", c.ageing_interval_ms);
  if (c.max_waiting_requests < 0) {
    return invalid("max_waiting_requests", ">= 0", c.max_waiting_requests);
  }
  return {};
}

Result<Scheduler> Scheduler::create(const SchedulerConfig& config) {
  MLXS_RETURN_IF_ERROR(validate(config));
  return Scheduler(config);
}

Scheduler::Scheduler(const SchedulerConfig& config)
    : config_(config), pool_(config.num_blocks, config.block_size) {}

// --- admission of requests ------------------------------------------------------------------

Status Scheduler::add(Sequence seq) {
  const std::string what = "request " + std::to_string(seq.id);
  if (seqs_.count(seq.id) || unresolved_.count(seq.id)) {
    return error(ErrorCode::kInvalidParams, what + ": id is already in use by a live request");
  }
  if (seq.num_prompt_tokens < 1 || seq.num_output_tokens() != 0) {
    return error(ErrorCode::kInvalidParams, what + ": prompt must have >= 1 token and no " +
                                                "outputs, got " + std::to_string(seq.num_tokens()));
  }
  if (seq.max_tokens < 1) {
    return error(ErrorCode::kInvalidParams,
                 what + ": max_tokens must be >= 1, got " + std::to_string(seq.max_tokens));
  }
  const int64_t total = int64_t(seq.num_prompt_tokens) + seq.max_tokens;
  if (total > config_.max_model_len) {
    return error(ErrorCode::kInvalidParams,
                 what + ": prompt tokens + max_tokens must be <= the model context length " +
                     std::to_string(config_.max_model_len) + ", got " +
                     std::to_string(seq.num_prompt_tokens) + " + " +
                     std::to_string(seq.max_tokens) + " = " + std::to_string(total));
  }
  // The last sampled token is never fed back, so the KV peaks at total - 1 tokens.
  const int num_kv_blocks = blocks_for(int(total - 1));
  if (num_kv_blocks > config_.num_blocks) {
    return error(ErrorCode::kCapacityExceeded,
                 what + ": needs " + std::to_string(num_kv_blocks) + " KV blocks of " +
                     std::to_string(config_.block_size) + " tokens for " +
                     std::to_string(total - 1) + " tokens, but the whole pool has " +
                     std::to_string(config_.num_blocks));
  }
  if (!config_.chunked_prefill && total - 1 > config_.max_num_batched_tokens) {
    return error(ErrorCode::kCapacityExceeded,
                 what +
                     ": without chunked prefill prompt + max_tokens - 1 must be <= "
                     "max_num_batched_tokens " +
                     std::to_string(config_.max_num_batched_tokens) + ", got " +
                     std::to_string(total - 1));
  }
  seq.status = SeqStatus::kWaiting;
  seq.finish_reason.reset();
  seq.num_computed_tokens = 0;
  seq.block_table.clear();
  seq.num_cached_blocks = 0;
  seq.arrival_seq = next_arrival_seq_++;
  const SeqId id = seq.id;
  Sequence& stored = seqs_.emplace(id, std::move(seq)).first->second;
  waiting_.insert(key(stored));
  return {};
}

// --- one step's plan ------------------------------------------------------------------------

SchedulerOutput Scheduler::schedule(const Proposals& proposals) {
  SchedulerOutput out;
  out.block_size = config_.block_size;
  int budget = config_.max_num_batched_tokens;
  const std::vector<QueueKey> running(running_.begin(), running_.end());
  for (const QueueKey& k : running) {
    if (budget == 0 || int(out.seqs.size()) >= config_.max_num_seqs) break;
    Sequence& seq = seqs_.at(k.id);
    if (seq.status != SeqStatus::kRunning) continue;  // preempted as a victim above
    const int n = std::min(seq.num_uncomputed_tokens(), budget);
    if (!reserve_blocks(seq, n, out)) continue;
    std::span<const int32_t> proposed;
    if (auto p = proposals.find(seq.id);
        p != proposals.end() && n == 1 && seq.num_uncomputed_tokens() == 1) {
      const int wanted = std::min(int(p->second.size()), num_proposals_allowed(seq, budget - n));
      proposed = std::span(p->second).first(size_t(reserve_proposal_blocks(seq, wanted)));
    }
    emit(seq, n, out, proposed);
    budget -= n + int(proposed.size());
  }
  // Admitting while others were just preempted would thrash: wait for blocks to come back.
  if (out.preempted.empty()) admit_waiting(budget, out);
  return out;
}

// Grows seq's block table to cover num_new_tokens more tokens, preempting victims as needed.
// False when seq itself had to be preempted.
bool Scheduler::reserve_blocks(Sequence& seq, int num_new_tokens, SchedulerOutput& out) {
  const int num_needed =
      blocks_for(seq.num_computed_tokens + num_new_tokens) - int(seq.block_table.size());
  while (!pool_.can_allocate(num_needed)) {
    Sequence* victim = pick_victim(seq);
    if (victim == nullptr) victim = &seq;
    out.preempted.push_back(victim->id);
    preempt(*victim);
    if (victim == &seq) return false;
  }
  for (BlockId b : pool_.allocate(std::max(num_needed, 0))) seq.block_table.push_back(b);
  return true;
}

// Proposals a decode sequence may compute with `budget` tokens left: each step appends at most
// proposals + 1 tokens, which must fit max_tokens and the context, and its last known token
// must not be a placeholder (proposals follow a known token).
int Scheduler::num_proposals_allowed(const Sequence& seq, int budget) const {
  if (seq.tokens.back() < 0) return 0;
  const int outputs_left = seq.max_tokens - seq.num_output_tokens();
  const int context_left = config_.max_model_len - seq.num_tokens();
  return std::max(0, std::min({budget, outputs_left - 1, context_left - 1}));
}

// Grows seq's block table for up to `num_wanted` proposals from free blocks only (a proposal
// never preempts); returns how many proposals fit.
int Scheduler::reserve_proposal_blocks(Sequence& seq, int num_wanted) {
  const int have = int(seq.block_table.size()) * config_.block_size;
  const int end = seq.num_computed_tokens + seq.num_uncomputed_tokens();
  const int fits = have - end + pool_.num_free() * config_.block_size;
  const int k = std::max(0, std::min(num_wanted, fits));
  const int num_needed = blocks_for(end + k) - int(seq.block_table.size());
  for (BlockId b : pool_.allocate(std::max(num_needed, 0))) seq.block_table.push_back(b);
  return k;
}

// A paused sequence holding blocks (worst rank first), else the worst-ranked running sequence
// ranked after `seq` (so not yet planned this step), else null.
Sequence* Scheduler::pick_victim(const Sequence& seq) {
  if (Sequence* paused = paused_victim()) return paused;
  if (running_.empty()) return nullptr;
  const QueueKey& worst = *running_.rbegin();
  if (!(key(seq) < worst)) return nullptr;
  return &seqs_.at(worst.id);
}

// The worst-ranked paused sequence that holds blocks, or null.
Sequence* Scheduler::paused_victim() {
  for (auto it = paused_.rbegin(); it != paused_.rend(); ++it) {
    Sequence& candidate = seqs_.at(it->id);
    if (!candidate.block_table.empty()) return &candidate;
  }
  return nullptr;
}

void Scheduler::preempt(Sequence& seq) {
  release_blocks(seq);
  ++seq.num_preemptions;
  ++num_preemptions_;
  if (seq.status == SeqStatus::kRunning) move(seq, SeqStatus::kPreempted);
}

void Scheduler::admit_waiting(int budget, SchedulerOutput& out) {
  while (!waiting_.empty() && budget > 0 && int(running_.size()) < config_.max_num_seqs &&
         int(out.seqs.size()) < config_.max_num_seqs) {
    Sequence& seq = seqs_.at(waiting_.begin()->id);
    const int before = out.num_tokens();
    if (!try_admit(seq, budget, out)) break;
    budget -= out.num_tokens() - before;
  }
}

// Admits seq if the blocks of all its known tokens fit after prefix-cache hits, preempting
// paused sequences' blocks if that makes them fit (a paused consumer never blocks the others);
// plans its first chunk of at most `budget` tokens.
bool Scheduler::try_admit(Sequence& seq, int budget, SchedulerOutput& out) {
  MLXS_CHECK(seq.block_table.empty() && seq.num_computed_tokens == 0);
  int num_queried = 0;
  if (config_.prefix_caching) {
    ensure_block_hashes(seq);
    // At least one token must be computed to produce logits.
    num_queried =
        std::min(int(seq.block_hashes.size()), (seq.num_tokens() - 1) / config_.block_size);
  }
  const std::span<const BlockHash> queried = std::span(seq.block_hashes).first(size_t(num_queried));
  const std::vector<BlockId> hits = pool_.find_cached_prefix(queried);
  const int num_hit = int(hits.size());
  const int num_computed = num_hit * config_.block_size;
  const int n = std::min(seq.num_tokens() - num_computed, budget);
  if (n < seq.num_tokens() - num_computed && !config_.chunked_prefill) return false;
  // Preempting only frees blocks (never evicts), so `hits` stay valid.
  while (!pool_.can_allocate(num_blocks_to_admit(seq, hits))) {
    Sequence* victim = paused_victim();
    if (victim == nullptr) return false;
    out.preempted.push_back(victim->id);
    preempt(*victim);
  }

  pool_.record_lookup(num_hit, num_queried - num_hit);
  pool_.share(hits);
  seq.block_table = hits;
  seq.num_cached_blocks = num_hit;
  seq.num_computed_tokens = num_computed;
  for (BlockId b : pool_.allocate(blocks_for(num_computed + n) - num_hit)) {
    seq.block_table.push_back(b);
  }
  move(seq, SeqStatus::kRunning);
  emit(seq, n, out);
  return true;
}

// Free blocks admitting seq takes, counting all its known tokens: new blocks, plus the cached
// hits that sit in the free queue (sharing takes them out of it).
int Scheduler::num_blocks_to_admit(const Sequence& seq, std::span<const BlockId> hits) const {
  int num_hits_free = 0;
  for (BlockId b : hits) num_hits_free += pool_.refcount(b) == 0;
  return blocks_for(seq.num_tokens()) - int(hits.size()) + num_hits_free;
}

void Scheduler::emit(const Sequence& seq, int num_new_tokens, SchedulerOutput& out,
                     std::span<const int32_t> proposals) const {
  const int bs = config_.block_size;
  ScheduledSeq s;
  s.id = seq.id;
  s.token_begin = out.num_tokens();
  s.num_new_tokens = num_new_tokens + int(proposals.size());
  s.num_proposals = int(proposals.size());
  s.start_pos = seq.num_computed_tokens;
  s.needs_logits = s.start_pos + num_new_tokens == seq.num_tokens();
  s.block_table = seq.block_table;
  MLXS_CHECK(int(s.block_table.size()) == blocks_for(s.context_len()));
  for (int pos = s.start_pos; pos < s.context_len(); ++pos) {
    const int j = pos - seq.num_tokens();  // >= 0: a proposal
    out.token_ids.push_back(j < 0 ? seq.tokens[size_t(pos)] : proposals[size_t(j)]);
    out.positions.push_back(pos);
    out.slot_mapping.push_back(seq.block_table[size_t(pos / bs)] * bs + pos % bs);
  }
  out.seqs.push_back(std::move(s));
}

// --- applying a step ------------------------------------------------------------------------

std::vector<FinishedSeq> Scheduler::update(const SchedulerOutput& out,
                                           std::span<const SampledToken> tokens) {
  MLXS_CHECK(tokens.size() == out.seqs.size());
  std::vector<FinishedSeq> finished;
  for (size_t i = 0; i < out.seqs.size(); ++i) {
    auto it = seqs_.find(out.seqs[i].id);
    if (it == seqs_.end()) continue;  // aborted since schedule()
    Sequence& seq = it->second;
    if (!apply_result(seq, out.seqs[i], tokens[i])) continue;
    const FinishedSeq f{seq.id, *seq.finish_reason, seq.num_prompt_tokens, seq.num_output_tokens()};
    if (seq.tokens.back() < 0) {
      unresolved_[seq.id] = {f, std::move(seq.stop_token_ids)};  // reported when resolved
    } else {
      finished.push_back(f);
    }
    forget(it);
  }
  return finished;
}

// Applies one sequence's step; true when it finished (finish_reason set).
bool Scheduler::apply_result(Sequence& seq, const ScheduledSeq& planned,
                             const SampledToken& sampled) {
  // Its blocks may have been released since schedule() (resume() under max_num_seqs): then the
  // computed K/V are gone and only the sampled token is kept.
  // Proposals count as computed once resolve_placeholder() accepts them.
  if (!seq.block_table.empty() && seq.num_computed_tokens == planned.start_pos) {
    seq.num_computed_tokens = planned.context_len() - planned.num_proposals;
    cache_full_blocks(seq);
  }
  seq.num_unresolved_proposals = planned.num_proposals;
  if (!planned.needs_logits) return false;
  MLXS_CHECK(sampled.token >= 0 || seq.tokens.back() >= 0);  // one placeholder at a time
  seq.tokens.push_back(sampled.token);
  if (is_stop_token(seq.stop_token_ids, sampled.token)) {
    seq.finish_reason = FinishReason::kStop;
  } else if (seq.num_output_tokens() >= seq.max_tokens ||
             seq.num_tokens() >= config_.max_model_len) {
    seq.finish_reason = FinishReason::kLength;
  }
  return seq.finish_reason.has_value();
}

void Scheduler::cache_full_blocks(Sequence& seq) {
  if (!config_.prefix_caching) return;
  const int num_full = seq.num_computed_tokens / config_.block_size;
  if (num_full <= seq.num_cached_blocks) return;
  ensure_block_hashes(seq);
  MLXS_CHECK(int(seq.block_hashes.size()) >= num_full);  // computed tokens are never placeholders
  for (int i = seq.num_cached_blocks; i < num_full; ++i) {
    pool_.cache(seq.block_table[size_t(i)], seq.block_hashes[size_t(i)]);
  }
  seq.num_cached_blocks = num_full;
}

void Scheduler::ensure_block_hashes(Sequence& seq) const {
  const size_t bs = size_t(config_.block_size);
  const size_t num_full = seq.tokens.size() / bs;
  while (seq.block_hashes.size() < num_full) {
    const size_t i = seq.block_hashes.size();
    const auto block = std::span(seq.tokens).subspan(i * bs, bs);
    if (block.back() < 0) break;  // a placeholder (only ever the last token) is not hashed
    const BlockHash parent = i == 0 ? BlockHash{} : seq.block_hashes[i - 1];
    seq.block_hashes.push_back(hash_block(parent, block));
  }
}

Result<std::optional<FinishedSeq>> Scheduler::resolve_placeholder(SeqId id, int32_t token) {
  MLXS_ASSIGN_OR_RETURN(Resolution r, resolve_placeholder(id, std::span(&token, 1)));
  return r.finished;
}

Result<Resolution> Scheduler::resolve_placeholder(SeqId id, std::span<const int32_t> tokens) {
  const std::string what = "resolve_placeholder: request " + std::to_string(id);
  if (tokens.empty()) return error(ErrorCode::kInternalError, what + ": no token");
  for (int32_t token : tokens) {
    if (token < 0) {
      return error(ErrorCode::kInternalError,
                   what + ": " + std::to_string(token) + " is no token id");
    }
  }
  if (auto u = unresolved_.find(id); u != unresolved_.end()) {
    if (tokens.size() != 1) {
      return error(ErrorCode::kInternalError, what + " ended by length: one token expected");
    }
    FinishedSeq f = u->second.finished;
    if (is_stop_token(u->second.stop_token_ids, tokens[0])) f.reason = FinishReason::kStop;
    unresolved_.erase(u);
    return Resolution{1, f};
  }
  auto it = seqs_.find(id);
  if (it == seqs_.end()) return error(ErrorCode::kNotFound, what + " is not live");
  Sequence& seq = it->second;
  if (seq.tokens.back() >= 0) return error(ErrorCode::kInternalError, what + " has no placeholder");
  const int num_proposals = std::exchange(seq.num_unresolved_proposals, 0);
  if (int(tokens.size()) > num_proposals + 1) {
    return error(ErrorCode::kInternalError, what + ": " + std::to_string(tokens.size()) +
                                                " tokens for " + std::to_string(num_proposals) +
                                                " proposals");
  }
  seq.tokens.pop_back();
  Resolution r;
  for (int32_t token : tokens) {
    seq.tokens.push_back(token);
    ++r.num_kept;
    if (is_stop_token(seq.stop_token_ids, token)) {
      seq.finish_reason = FinishReason::kStop;
    } else if (r.num_kept > 1 && (seq.num_output_tokens() >= seq.max_tokens ||
                                  seq.num_tokens() >= config_.max_model_len)) {
      seq.finish_reason = FinishReason::kLength;  // (the first token's length update() checked)
    }
    if (seq.finish_reason) break;
  }
  if (seq.finish_reason) {
    r.finished =
        FinishedSeq{id, *seq.finish_reason, seq.num_prompt_tokens, seq.num_output_tokens()};
    forget(it);
    return r;
  }
  // The accepted proposals' K/V are the sequence's; the rejected ones' blocks go back.
  if (num_proposals > 0 && !seq.block_table.empty()) {
    seq.num_computed_tokens += r.num_kept - 1;
    trim_blocks(seq);
    cache_full_blocks(seq);
  }
  return r;
}

// --- cancel, backpressure -------------------------------------------------------------------

Status Scheduler::abort(SeqId id, FinishReason reason) {
  if (unresolved_.erase(id)) return {};
  auto it = seqs_.find(id);
  if (it == seqs_.end()) {
    return error(ErrorCode::kNotFound, "abort: request " + std::to_string(id) + " is not live");
  }
  it->second.finish_reason = reason;
  forget(it);
  return {};
}

Status Scheduler::pause(SeqId id) {
  auto it = seqs_.find(id);
  if (it == seqs_.end()) {
    return error(ErrorCode::kNotFound, "pause: request " + std::to_string(id) + " is not live");
  }
  if (it->second.status != SeqStatus::kPaused) move(it->second, SeqStatus::kPaused);
  return {};
}

Status Scheduler::resume(SeqId id) {
  auto it = seqs_.find(id);
  if (it == seqs_.end()) {
    return error(ErrorCode::kNotFound, "resume: request " + std::to_string(id) + " is not live");
  }
  Sequence& seq = it->second;
  if (seq.status != SeqStatus::kPaused) return {};
  if (!seq.block_table.empty() && int(running_.size()) < config_.max_num_seqs) {
    move(seq, SeqStatus::kRunning);
    return {};
  }
  if (!seq.block_table.empty()) {
    release_blocks(seq);
    ++seq.num_preemptions;
    ++num_preemptions_;
  }
  move(seq, seq.num_preemptions > 0 ? SeqStatus::kPreempted : SeqStatus::kWaiting);
  return {};
}

// --- small helpers --------------------------------------------------------------------------

const Sequence* Scheduler::find(SeqId id) const {
  auto it = seqs_.find(id);
  return it == seqs_.end() ? nullptr : &it->second;
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats s;
  s.num_waiting = int(waiting_.size());
  s.num_running = int(running_.size());
  s.num_paused = int(paused_.size());
  s.num_free_blocks = pool_.num_free();
  s.num_used_blocks = pool_.num_used();
  s.num_cached_blocks = pool_.num_cached();
  s.num_prefix_hits = pool_.num_prefix_hits();
  s.num_prefix_misses = pool_.num_prefix_misses();
  s.num_preemptions = num_preemptions_;
  return s;
}

std::vector<SeqId> Scheduler::ids_of(const Queue& q) {
  std::vector<SeqId> ids;
  ids.reserve(q.size());
  for (const QueueKey& k : q) ids.push_back(k.id);
  return ids;
}

Scheduler::QueueKey Scheduler::key(const Sequence& seq) const {
  const double rank = double(seq.priority) + ageing_rate() * seq.arrival_time_s;
  return {rank, seq.arrival_seq, seq.id};
}

Scheduler::Queue& Scheduler::queue_of(const Sequence& seq) {
  switch (seq.status) {
    case SeqStatus::kRunning:
      return running_;
    case SeqStatus::kPaused:
      return paused_;
    default:
      return waiting_;
  }
}

int Scheduler::blocks_for(int num_tokens) const {
  return (num_tokens + config_.block_size - 1) / config_.block_size;
}

// Frees a finished sequence's blocks and drops it from its queue and the live set.
void Scheduler::forget(std::unordered_map<SeqId, Sequence>::iterator it) {
  Sequence& seq = it->second;
  release_blocks(seq);
  queue_of(seq).erase(key(seq));
  seqs_.erase(it);
}

// Frees seq's blocks: the K/V of its computed tokens are gone (cached ones stay findable).
void Scheduler::release_blocks(Sequence& seq) {
  pool_.free(seq.block_table);
  seq.block_table.clear();
  seq.num_computed_tokens = 0;
  seq.num_cached_blocks = 0;
}

// Frees the blocks past seq's computed tokens (the rejected proposals' K/V).
void Scheduler::trim_blocks(Sequence& seq) {
  const size_t keep = size_t(blocks_for(seq.num_computed_tokens));
  if (seq.block_table.size() <= keep) return;
  pool_.free(std::span(seq.block_table).subspan(keep));
  seq.block_table.resize(keep);
}

// Moves seq between queues. A waiting sequence never holds blocks.
void Scheduler::move(Sequence& seq, SeqStatus to) {
  const size_t erased = queue_of(seq).erase(key(seq));
  MLXS_CHECK(erased == 1);
  seq.status = to;
  MLXS_CHECK(!queue_of(seq).count(key(seq)));
  queue_of(seq).insert(key(seq));
  MLXS_CHECK(to == SeqStatus::kRunning || to == SeqStatus::kPaused || seq.block_table.empty());
}

}  // namespace mlxs::sched
