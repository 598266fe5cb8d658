// Property tests of the scheduler and its block pool: random arrivals, steps, stops, aborts,
// pauses and resumes (between steps and between schedule() and update()), with every invariant
// checked after every operation, and a drain at the end that must finish every request.
//
// A shadow KV cache records which (token, position) each step writes to each slot; every planned
// step must then read, for each context position, the K/V of exactly that sequence's token at
// that position. This catches wrong prefix hits, writes into shared blocks and blocks reused
// while still referenced.
//
// Deterministic: a fixed seed and case count, unless RC_PARAMS is set in the environment
// (e.g. RC_PARAMS="seed=7 max_success=5000" to search harder).
#include <gtest/gtest.h>
#include <rapidcheck.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "sched/scheduler.h"

namespace mlxs::sched {
namespace {

constexpr int kMaxModelLen = 64;

// Runs `property` under rapidcheck; a counterexample (shrunk) fails the current gtest. The seed
// and case count are fixed, so a failure reproduces on every run (RC_PARAMS is not consulted:
// the only environment reads are the config loader's); change them here to explore further.
template <class Property>
void check_property(const char* name, Property property) {
  rc::detail::TestParams params = rc::detail::configuration().testParams;
  params.seed = 20240611;
  params.maxSuccess = 200;
  rc::detail::TestMetadata metadata;
  metadata.id = name;
  metadata.description = name;
  const rc::detail::TestResult result = rc::detail::checkTestable(property, metadata, params);
  if (!result.template is<rc::detail::SuccessResult>()) {
    std::ostringstream message;
    rc::detail::printResultMessage(result, message);
    FAIL() << message.str();
  }
}

// What the random histories exercised, summed over all cases (checked to be non-trivial).
struct Coverage {
  int64_t num_steps = 0;
  int64_t num_finished = 0;
  int64_t num_preemptions = 0;
  int64_t num_prefix_hits = 0;
  int64_t num_chunked = 0;  // planned chunks that did not reach the end of the known tokens
};

SchedulerConfig gen_config() {
  SchedulerConfig c;
  c.block_size = *rc::gen::element(1, 2, 4, 8);
  c.num_blocks = *rc::gen::inRange(kMaxModelLen / c.block_size / 2, 48);
  c.max_num_batched_tokens = *rc::gen::inRange(1, 48);
  c.max_num_seqs = *rc::gen::inRange(1, 8);
  c.max_model_len = kMaxModelLen;
  // Ageing rates of about 0, 0.1 and 1 priority class per second.
  c.ageing_interval_ms = *rc::gen::element<int64_t>(int64_t(1) << 40, 10'000, 1'000);
  c.prefix_caching = *rc::gen::weightedElement<bool>({{3, true}, {1, false}});
  c.chunked_prefill = *rc::gen::weightedElement<bool>({{3, true}, {1, false}});
  return c;
}

// Prompts share prefixes of a few fixed token strings, so the prefix cache gets hits.
std::vector<int32_t> gen_prompt() {
  static const std::vector<int32_t> kBases[3] = {
      {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20},
      {1, 2, 3, 4, 9, 9, 9, 9, 8, 8, 8, 8, 7, 7, 7, 7, 6, 6, 6, 6},
      {5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5}};
  const auto& base = kBases[*rc::gen::inRange(0, 3)];
  std::vector<int32_t> p(base.begin(), base.begin() + *rc::gen::inRange(0, 21));
  const int num_suffix = *rc::gen::inRange(p.empty() ? 1 : 0, 12);
  for (int i = 0; i < num_suffix; ++i) p.push_back(*rc::gen::inRange(0, 4));
  return p;
}

class Harness {
 public:
  Harness(const SchedulerConfig& c, Coverage& coverage)
      : c_(c),
        s_(std::move(Scheduler::create(c)).value()),
        kv_(size_t(c.num_blocks) * size_t(c.block_size), -1),
        coverage_(coverage) {}

  ~Harness() {
    coverage_.num_preemptions += s_.stats().num_preemptions;
    coverage_.num_prefix_hits += s_.stats().num_prefix_hits;
  }

  void add() {
    const int max_tokens = *rc::gen::inRange(1, 16);
    const auto priority = Priority(*rc::gen::inRange(0, 3));
    now_ += *rc::gen::inRange(0, 4);
    std::vector<int32_t> prompt = gen_prompt();
    const int kv_tokens = int(prompt.size()) + max_tokens - 1;
    const bool fits = int(prompt.size()) + max_tokens <= c_.max_model_len &&
                      (kv_tokens + c_.block_size - 1) / c_.block_size <= c_.num_blocks &&
                      (c_.chunked_prefill || kv_tokens <= c_.max_num_batched_tokens);
    const SeqId id = next_id_++;
    Sequence seq(id, std::move(prompt), max_tokens, priority, now_);
    if (*rc::gen::inRange(0, 2) == 0) seq.stop_token_ids = {3};  // sampled 1 time in 4
    const Status st = s_.add(std::move(seq));
    RC_ASSERT(st.ok() == fits);
    if (st.ok()) live_.insert(id);
  }

  void add_duplicate() {
    if (live_.empty()) return;
    const Status st = s_.add(Sequence(pick_live(), {1, 2}, 1));
    RC_ASSERT(st.code() == ErrorCode::kInvalidParams);
  }

  // Alternates schedule() (with the checks of the plan and the simulated forward) and update().
  void step() {
    if (in_flight_) {
      apply_update();
    } else {
      plan();
    }
  }

  void abort() {
    if (live_.empty()) return;
    const SeqId id = pick_live();
    RC_ASSERT(s_.abort(id).ok());
    RC_ASSERT(s_.find(id) == nullptr);
    finish(id);
  }

  void pause() {
    if (!live_.empty()) RC_ASSERT(s_.pause(pick_live()).ok());
  }

  void resume() {
    if (!live_.empty()) RC_ASSERT(s_.resume(pick_live()).ok());
  }

  // Pauses a random live request and never resumes it; returns its id (0 if none is live).
  SeqId pause_forever() {
    if (live_.empty()) return 0;
    const SeqId id = pick_live();
    RC_ASSERT(s_.pause(id).ok());
    return id;
  }

  // Steps until only `paused` requests are left: paused consumers never block the others.
  void run_others_to_completion(const std::set<SeqId>& paused) {
    auto others_left = [&] {
      return std::any_of(live_.begin(), live_.end(), [&](SeqId id) { return !paused.count(id); });
    };
    for (int i = 0; i < 20000 && others_left(); ++i) {
      step();
      check_between_ops();
    }
    RC_ASSERT(!others_left());
  }

  // Resumes everything and steps until no request is left.
  void drain() {
    for (SeqId id : live_) RC_ASSERT(s_.resume(id).ok());
    for (int i = 0; i < 20000 && !live_.empty(); ++i) {
      step();
      check_between_ops();
    }
    RC_ASSERT(live_.empty());
    RC_ASSERT(s_.num_live() == 0);
    RC_ASSERT(s_.block_pool().num_used() == 0);
  }

  // Invariants that hold after every operation.
  void check_between_ops() const {
    check_queues();
    check_refcounts();
    for (SeqId id : live_) check_sequence(*s_.find(id));
  }

 private:
  SeqId pick_live() {
    auto it = live_.begin();
    std::advance(it, *rc::gen::inRange(0, int(live_.size())));
    return *it;
  }

  void finish(SeqId id) {
    ++coverage_.num_finished;
    RC_ASSERT(live_.erase(id) == 1u);  // reported once, and only for a live request
    RC_ASSERT(finished_.insert(id).second);
  }

  void plan() {
    SchedulerOutput out = s_.schedule();
    ++coverage_.num_steps;
    for (const ScheduledSeq& p : out.seqs) coverage_.num_chunked += !p.needs_logits;
    check_plan(out);
    simulate_forward(out);
    in_flight_ = std::move(out);
  }

  void apply_update() {
    std::vector<SampledToken> results(in_flight_->seqs.size());
    for (SampledToken& r : results) r.token = *rc::gen::inRange(0, 4);
    for (const FinishedSeq& f : s_.update(*in_flight_, results)) {
      RC_ASSERT(f.reason == FinishReason::kStop || f.reason == FinishReason::kLength);
      finish(f.id);
    }
    in_flight_.reset();
  }

  void check_plan(const SchedulerOutput& out) const {
    RC_ASSERT(out.num_tokens() <= c_.max_num_batched_tokens);
    RC_ASSERT(int(out.seqs.size()) <= c_.max_num_seqs);
    RC_ASSERT(out.positions.size() == out.token_ids.size());
    RC_ASSERT(out.slot_mapping.size() == out.token_ids.size());
    std::set<SeqId> ids;
    std::set<int32_t> slots(out.slot_mapping.begin(), out.slot_mapping.end());
    RC_ASSERT(slots.size() == out.slot_mapping.size());  // no two writes to one slot
    int row = 0;
    for (const ScheduledSeq& p : out.seqs) {
      RC_ASSERT(ids.insert(p.id).second);
      RC_ASSERT(p.token_begin == row);
      RC_ASSERT(p.num_new_tokens >= 1);
      row += p.num_new_tokens;
      check_planned_seq(p, out);
    }
    RC_ASSERT(row == out.num_tokens());
    for (SeqId id : out.preempted) {
      RC_ASSERT(live_.count(id) == 1u);
      RC_ASSERT(ids.count(id) == 0u);
    }
  }

  void check_planned_seq(const ScheduledSeq& p, const SchedulerOutput& out) const {
    const Sequence* seq = s_.find(p.id);
    RC_ASSERT(seq != nullptr);
    RC_ASSERT(seq->status == SeqStatus::kRunning);
    RC_ASSERT(p.start_pos == seq->num_computed_tokens);
    RC_ASSERT(p.context_len() <= seq->num_tokens());
    RC_ASSERT(p.needs_logits == (p.context_len() == seq->num_tokens()));
    RC_ASSERT(p.block_table == seq->block_table);
    RC_ASSERT(int(p.block_table.size()) == blocks_for(p.context_len()));
    const int bs = c_.block_size;
    for (int i = 0; i < p.num_new_tokens; ++i) {
      const size_t row = size_t(p.token_begin + i);
      const int pos = p.start_pos + i;
      RC_ASSERT(out.positions[row] == pos);
      RC_ASSERT(out.token_ids[row] == seq->tokens[size_t(pos)]);
      const BlockId block = p.block_table[size_t(pos / bs)];
      RC_ASSERT(out.slot_mapping[row] == block * bs + pos % bs);
      // Writes go only to blocks this sequence owns alone and that are not in the cache.
      RC_ASSERT(s_.block_pool().refcount(block) == 1);
      RC_ASSERT(!s_.block_pool().is_cached(block));
    }
    // Every context position the step attends to holds this sequence's K/V.
    for (int pos = 0; pos < p.start_pos; ++pos) {
      const int32_t slot = p.block_table[size_t(pos / bs)] * bs + pos % bs;
      RC_ASSERT(kv_[size_t(slot)] == encode(seq->tokens[size_t(pos)], pos));
    }
  }

  void simulate_forward(const SchedulerOutput& out) {
    for (size_t t = 0; t < out.token_ids.size(); ++t) {
      kv_[size_t(out.slot_mapping[t])] = encode(out.token_ids[t], out.positions[t]);
    }
  }

  // Every live request sits in exactly one queue, the one its status names.
  void check_queues() const {
    std::map<SeqId, int> where;
    for (SeqId id : s_.waiting_ids()) where[id] += 1;
    for (SeqId id : s_.running_ids()) where[id] += 10;
    for (SeqId id : s_.paused_ids()) where[id] += 100;
    RC_ASSERT(where.size() == live_.size());
    RC_ASSERT(s_.num_live() == int(live_.size()));
    RC_ASSERT(int(s_.running_ids().size()) <= c_.max_num_seqs);
    for (SeqId id : live_) {
      const Sequence* seq = s_.find(id);
      RC_ASSERT(seq != nullptr);
      const int expected = seq->status == SeqStatus::kRunning  ? 10
                           : seq->status == SeqStatus::kPaused ? 100
                                                               : 1;
      RC_ASSERT(seq->status != SeqStatus::kFinished);
      RC_ASSERT(where[id] == expected);
    }
  }

  // free + used == total, and each block's refcount is the number of tables holding it.
  void check_refcounts() const {
    const BlockPool& pool = s_.block_pool();
    std::vector<int> refs(size_t(c_.num_blocks), 0);
    for (SeqId id : live_) {
      for (BlockId b : s_.find(id)->block_table) ++refs[size_t(b)];
    }
    int num_zero = 0;
    for (BlockId b = 0; b < c_.num_blocks; ++b) {
      RC_ASSERT(pool.refcount(b) == refs[size_t(b)]);
      num_zero += refs[size_t(b)] == 0;
    }
    RC_ASSERT(pool.num_free() == num_zero);
    RC_ASSERT(pool.num_free() + pool.num_used() == c_.num_blocks);
  }

  void check_sequence(const Sequence& seq) const {
    RC_ASSERT(seq.num_computed_tokens < seq.num_tokens());
    RC_ASSERT(seq.num_output_tokens() < seq.max_tokens);
    std::set<BlockId> distinct(seq.block_table.begin(), seq.block_table.end());
    RC_ASSERT(distinct.size() == seq.block_table.size());
    if (seq.status == SeqStatus::kWaiting || seq.status == SeqStatus::kPreempted) {
      RC_ASSERT(seq.block_table.empty());
    }
    if (in_flight_) return;  // blocks of the planned chunk are allocated ahead of update()
    RC_ASSERT(int(seq.block_table.size()) == blocks_for(seq.num_computed_tokens));
  }

  int blocks_for(int n) const { return (n + c_.block_size - 1) / c_.block_size; }
  static int32_t encode(int32_t token, int pos) { return token * 4096 + pos; }

  SchedulerConfig c_;
  Scheduler s_;
  std::vector<int32_t> kv_;  // shadow KV cache: encode(token, position) per slot
  std::set<SeqId> live_;
  std::set<SeqId> finished_;
  std::optional<SchedulerOutput> in_flight_;
  SeqId next_id_ = 1;
  double now_ = 0.0;
  Coverage& coverage_;
};

enum class Op { kAdd, kAddDuplicate, kStep, kAbort, kPause, kResume };

void random_history(Coverage& coverage) {
  Harness h(gen_config(), coverage);
  const int num_ops = *rc::gen::inRange(1, 160);
  for (int i = 0; i < num_ops; ++i) {
    const Op op = *rc::gen::weightedElement<Op>({{6, Op::kAdd},
                                                 {1, Op::kAddDuplicate},
                                                 {14, Op::kStep},
                                                 {1, Op::kAbort},
                                                 {2, Op::kPause},
                                                 {2, Op::kResume}});
    switch (op) {
      case Op::kAdd:
        h.add();
        break;
      case Op::kAddDuplicate:
        h.add_duplicate();
        break;
      case Op::kStep:
        h.step();
        break;
      case Op::kAbort:
        h.abort();
        break;
      case Op::kPause:
        h.pause();
        break;
      case Op::kResume:
        h.resume();
        break;
    }
    h.check_between_ops();
  }
  h.drain();
}

void history_with_stuck_consumers(Coverage& coverage) {
  Harness h(gen_config(), coverage);
  std::set<SeqId> paused;
  const int num_ops = *rc::gen::inRange(1, 80);
  for (int i = 0; i < num_ops; ++i) {
    const int op = *rc::gen::inRange(0, 8);
    if (op < 3) {
      h.add();
    } else if (op == 3) {
      paused.insert(h.pause_forever());
    } else {
      h.step();
    }
    h.check_between_ops();
  }
  h.run_others_to_completion(paused);
  h.drain();
}

// The histories must reach the interesting paths, or the invariants prove little.
void expect_rich(const Coverage& c) {
  EXPECT_GT(c.num_steps, 1000);
  EXPECT_GT(c.num_finished, 500);
  EXPECT_GT(c.num_preemptions, 50);
  EXPECT_GT(c.num_prefix_hits, 50);
  EXPECT_GT(c.num_chunked, 50);
}

TEST(SchedulerProperty, RandomOperationsKeepEveryInvariant) {
  Coverage coverage;
  check_property("RandomOperationsKeepEveryInvariant", [&] { random_history(coverage); });
  expect_rich(coverage);
}

TEST(SchedulerProperty, PausedRequestsNeverBlockTheOthers) {
  Coverage coverage;
  check_property("PausedRequestsNeverBlockTheOthers",
                 [&] { history_with_stuck_consumers(coverage); });
  expect_rich(coverage);
}

}  // namespace
}  // namespace mlxs::sched
