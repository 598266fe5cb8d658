#include "sched/scheduler.h"

#include <gtest/gtest.h>

#include <numeric>

#include "sched/scheduler_test_support.h"
#include "util/check.h"

namespace mlxs::sched {
namespace {

using test_support::make;
using test_support::prompt_of;
using test_support::small_config;

// Samples token 1000 + position for every sequence that needs logits; no stops.
std::vector<SampledToken> sample_all(const SchedulerOutput& out) {
  std::vector<SampledToken> r(out.seqs.size());
  for (size_t i = 0; i < r.size(); ++i) r[i].token = 1000 + out.seqs[i].context_len();
  return r;
}

std::vector<FinishedSeq> step(Scheduler& s, SchedulerOutput* out_copy = nullptr) {
  SchedulerOutput out = s.schedule();
  std::vector<FinishedSeq> f = s.update(out, sample_all(out));
  if (out_copy) *out_copy = std::move(out);
  return f;
}

TEST(Scheduler, RefusesInvalidRequestsAtAdd) {
  Scheduler s = make(small_config());
  ASSERT_TRUE(s.add(Sequence(1, prompt_of(4), 4)).ok());
  EXPECT_EQ(s.add(Sequence(1, prompt_of(4), 4)).code(), ErrorCode::kInvalidParams);
  EXPECT_EQ(s.add(Sequence(2, {}, 4)).code(), ErrorCode::kInvalidParams);
  EXPECT_EQ(s.add(Sequence(3, prompt_of(4), 0)).code(), ErrorCode::kInvalidParams);
  const Status too_long = s.add(Sequence(4, prompt_of(60), 5));
  EXPECT_EQ(too_long.code(), ErrorCode::kInvalidParams);
  EXPECT_NE(too_long.message().find("got 60 + 5 = 65"), std::string::npos) << too_long.message();
  EXPECT_EQ(s.num_live(), 1);
}

TEST(Scheduler, RefusesRequestLargerThanThePool) {
  SchedulerConfig c = small_config();
  c.num_blocks = 4;  // 16 tokens of KV
  Scheduler s = make(c);
  // 10 + 7 - 1 = 16 KV tokens: exactly fits.
  EXPECT_TRUE(s.add(Sequence(1, prompt_of(10), 7)).ok());
  const Status st = s.add(Sequence(2, prompt_of(10), 8));
  EXPECT_EQ(st.code(), ErrorCode::kCapacityExceeded);
  EXPECT_NE(st.message().find("needs 5 KV blocks"), std::string::npos) << st.message();
}

TEST(Scheduler, PrefillThenDecodeIsOnePath) {
  Scheduler s = make(small_config());
  ASSERT_TRUE(s.add(Sequence(7, prompt_of(10), 3)).ok());
  SchedulerOutput out = s.schedule();
  ASSERT_EQ(out.seqs.size(), 1u);
  const ScheduledSeq& p = out.seqs[0];
  EXPECT_EQ(p.num_new_tokens, 10);
  EXPECT_EQ(p.start_pos, 0);
  EXPECT_TRUE(p.needs_logits);
  ASSERT_EQ(p.block_table.size(), 3u);
  EXPECT_EQ(out.token_ids, prompt_of(10));
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(out.positions[size_t(i)], i);
    EXPECT_EQ(out.slot_mapping[size_t(i)], p.block_table[size_t(i / 4)] * 4 + i % 4);
  }
  EXPECT_TRUE(s.update(out, sample_all(out)).empty());
  const Sequence* seq = s.find(7);
  ASSERT_NE(seq, nullptr);
  EXPECT_EQ(seq->num_tokens(), 11);
  EXPECT_EQ(seq->num_computed_tokens, 10);
  EXPECT_EQ(seq->tokens.back(), 1010);

  out = s.schedule();  // decode: the sampled token at position 10
  ASSERT_EQ(out.seqs.size(), 1u);
  EXPECT_EQ(out.seqs[0].num_new_tokens, 1);
  EXPECT_EQ(out.token_ids, std::vector<int32_t>{1010});
  EXPECT_EQ(out.positions, std::vector<int32_t>{10});
  EXPECT_TRUE(s.update(out, sample_all(out)).empty());
  std::vector<FinishedSeq> f = step(s);  // third output: max_tokens reached
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].id, 7u);
  EXPECT_EQ(f[0].reason, FinishReason::kLength);
  EXPECT_EQ(f[0].num_output_tokens, 3);
  EXPECT_EQ(s.find(7), nullptr);
  EXPECT_EQ(s.block_pool().num_free(), 16);
}

TEST(Scheduler, StopTokenIdFinishesWithStop) {
  Scheduler s = make(small_config());
  Sequence seq(1, prompt_of(3), 10);
  seq.stop_token_ids = {5, 9};
  ASSERT_TRUE(s.add(std::move(seq)).ok());
  SchedulerOutput out = s.schedule();
  EXPECT_TRUE(s.update(out, std::vector<SampledToken>{{4}}).empty());  // not a stop id
  out = s.schedule();
  std::vector<FinishedSeq> f = s.update(out, std::vector<SampledToken>{{9}});
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].reason, FinishReason::kStop);
  EXPECT_EQ(f[0].num_output_tokens, 2);
  EXPECT_EQ(s.find(1), nullptr);
  EXPECT_EQ(s.block_pool().num_free(), 16);
}

// A placeholder's stop id is known when it is resolved: the scheduler ends the sequence then,
// and the step in flight that planned it again is applied without it.
TEST(Scheduler, ResolvingAPlaceholderToAStopIdEndsTheSequence) {
  Scheduler s = make(small_config());
  Sequence seq(1, prompt_of(3), 10);
  seq.stop_token_ids = {7};
  ASSERT_TRUE(s.add(std::move(seq)).ok());
  SchedulerOutput out = s.schedule();
  ASSERT_TRUE(s.update(out, std::vector<SampledToken>{{-1}}).empty());
  SchedulerOutput next = s.schedule();  // planned with the placeholder
  Result<std::optional<FinishedSeq>> f = s.resolve_placeholder(1, 6);
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->has_value());  // goes on
  ASSERT_TRUE(s.update(next, std::vector<SampledToken>{{-1}}).empty());
  next = s.schedule();
  f = s.resolve_placeholder(1, 7);
  ASSERT_TRUE(f.ok() && f->has_value());
  EXPECT_EQ((*f)->reason, FinishReason::kStop);
  EXPECT_EQ((*f)->num_output_tokens, 2);
  EXPECT_EQ(s.find(1), nullptr);
  EXPECT_TRUE(s.update(next, std::vector<SampledToken>{{-1}}).empty());  // skipped
  EXPECT_EQ(s.block_pool().num_free(), 16);
  EXPECT_EQ(s.resolve_placeholder(1, 7).status().code(), ErrorCode::kNotFound);
}

// A sequence that reaches max_tokens on a placeholder is released at once and reported when
// the token is known: kLength, or kStop when that last token is a stop id.
TEST(Scheduler, LengthOnAPlaceholderIsReportedWhenResolved) {
  for (int32_t last : {4, 7}) {
    Scheduler s = make(small_config());
    Sequence seq(1, prompt_of(3), 1);
    seq.stop_token_ids = {7};
    ASSERT_TRUE(s.add(std::move(seq)).ok());
    SchedulerOutput out = s.schedule();
    EXPECT_TRUE(s.update(out, std::vector<SampledToken>{{-1}}).empty());
    EXPECT_EQ(s.find(1), nullptr);  // released: never scheduled again
    EXPECT_EQ(s.block_pool().num_free(), 16);
    EXPECT_TRUE(s.schedule().empty());
    EXPECT_EQ(s.add(Sequence(1, prompt_of(2), 1)).code(), ErrorCode::kInvalidParams);  // in use
    Result<std::optional<FinishedSeq>> f = s.resolve_placeholder(1, last);
    ASSERT_TRUE(f.ok() && f->has_value());
    EXPECT_EQ((*f)->reason, last == 7 ? FinishReason::kStop : FinishReason::kLength);
    EXPECT_EQ((*f)->num_output_tokens, 1);
    EXPECT_EQ(s.resolve_placeholder(1, last).status().code(), ErrorCode::kNotFound);  // once
  }
}

// Aborting a sequence that awaits its last token forgets it: nothing is reported later.
TEST(Scheduler, AbortForgetsASequenceAwaitingItsLastToken) {
  Scheduler s = make(small_config());
  ASSERT_TRUE(s.add(Sequence(1, prompt_of(3), 1)).ok());
  SchedulerOutput out = s.schedule();
  EXPECT_TRUE(s.update(out, std::vector<SampledToken>{{-1}}).empty());
  EXPECT_TRUE(s.abort(1).ok());
  EXPECT_EQ(s.resolve_placeholder(1, 4).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(s.abort(1).code(), ErrorCode::kNotFound);
}

TEST(Scheduler, ChunkedPrefillSamplesOnlyAtTheEnd) {
  SchedulerConfig c = small_config();
  c.max_num_batched_tokens = 4;
  Scheduler s = make(c);
  ASSERT_TRUE(s.add(Sequence(1, prompt_of(10), 2)).ok());
  std::vector<int> chunks;
  std::vector<bool> logits;
  for (int i = 0; i < 3; ++i) {
    SchedulerOutput out;
    step(s, &out);
    ASSERT_EQ(out.seqs.size(), 1u);
    chunks.push_back(out.seqs[0].num_new_tokens);
    logits.push_back(out.seqs[0].needs_logits);
    EXPECT_EQ(out.seqs[0].start_pos, i * 4);
  }
  EXPECT_EQ(chunks, (std::vector<int>{4, 4, 2}));
  EXPECT_EQ(logits, (std::vector<bool>{false, false, true}));
  EXPECT_EQ(s.find(1)->num_output_tokens(), 1);
}

TEST(Scheduler, DecodeFirstThenAdmissionWithinBudget) {
  SchedulerConfig c = small_config();
  c.max_num_batched_tokens = 6;
  Scheduler s = make(c);
  ASSERT_TRUE(s.add(Sequence(1, prompt_of(4), 8)).ok());
  step(s);  // seq 1 prefilled
  ASSERT_TRUE(s.add(Sequence(2, prompt_of(8, 50), 8)).ok());
  SchedulerOutput out;
  step(s, &out);
  ASSERT_EQ(out.seqs.size(), 2u);
  EXPECT_EQ(out.seqs[0].id, 1u);
  EXPECT_EQ(out.seqs[0].num_new_tokens, 1);
  EXPECT_EQ(out.seqs[1].id, 2u);
  EXPECT_EQ(out.seqs[1].num_new_tokens, 5);  // a chunk: 6 - 1 budget left
  EXPECT_FALSE(out.seqs[1].needs_logits);
}

TEST(Scheduler, MaxNumSeqsLimitsAdmission) {
  SchedulerConfig c = small_config();
  c.max_num_seqs = 2;
  Scheduler s = make(c);
  for (SeqId id = 1; id <= 3; ++id) ASSERT_TRUE(s.add(Sequence(id, prompt_of(2), 4)).ok());
  SchedulerOutput out;
  step(s, &out);
  EXPECT_EQ(out.seqs.size(), 2u);
  EXPECT_EQ(s.waiting_ids(), std::vector<SeqId>{3});
}

TEST(Scheduler, PriorityClassesOrderAdmission) {
  SchedulerConfig c = small_config();
  c.max_num_seqs = 1;
  Scheduler s = make(c);
  ASSERT_TRUE(s.add(Sequence(1, prompt_of(2), 1, Priority::kBackground, 0.0)).ok());
  ASSERT_TRUE(s.add(Sequence(2, prompt_of(2), 1, Priority::kDefault, 0.0)).ok());
  ASSERT_TRUE(s.add(Sequence(3, prompt_of(2), 1, Priority::kUrgent, 0.0)).ok());
  std::vector<SeqId> order;
  for (int i = 0; i < 3; ++i) order.push_back(step(s).at(0).id);
  EXPECT_EQ(order, (std::vector<SeqId>{3, 2, 1}));
}

TEST(Scheduler, AgeingLetsOldBackgroundWorkOvertakeNewerDefault) {
  // Intervals of 30 s (rate 1/30 per second) and of about 30 years (rate ~0).
  for (int64_t interval_ms : {int64_t(30'000), int64_t(1) << 40}) {
    const double rate = 1000.0 / double(interval_ms);
    SchedulerConfig c = small_config();
    c.max_num_seqs = 1;
    c.ageing_interval_ms = interval_ms;
    Scheduler s = make(c);
    ASSERT_TRUE(s.add(Sequence(1, prompt_of(2), 1, Priority::kBackground, 0.0)).ok());
    ASSERT_TRUE(s.add(Sequence(2, prompt_of(2), 1, Priority::kDefault, 40.0)).ok());
    // Rank at t = 40: background 2 - 40 r, default 1: background wins iff r > 1/40.
    EXPECT_EQ(step(s).at(0).id, rate > 1.0 / 40 ? 1u : 2u) << "rate " << rate;
  }
}

TEST(Scheduler, HeadOfLineRequestIsNotOvertakenWhenItDoesNotFit) {
  SchedulerConfig c = small_config();
  c.num_blocks = 6;
  Scheduler s = make(c);
  ASSERT_TRUE(s.add(Sequence(1, prompt_of(12), 4)).ok());  // 3 blocks, 4 at the end
  step(s);
  ASSERT_TRUE(s.add(Sequence(2, prompt_of(16, 100), 1)).ok());  // 4 blocks: 3 free
  ASSERT_TRUE(s.add(Sequence(3, prompt_of(2, 200), 1)).ok());   // would fit, must wait
  SchedulerOutput out;
  step(s, &out);
  ASSERT_EQ(out.seqs.size(), 1u);
  EXPECT_EQ(out.seqs[0].id, 1u);
  EXPECT_EQ(s.waiting_ids(), (std::vector<SeqId>{2, 3}));
}

TEST(Scheduler, PrefixCacheHitsSkipComputedBlocks) {
  Scheduler s = make(small_config());
  ASSERT_TRUE(s.add(Sequence(1, prompt_of(12), 1)).ok());
  ASSERT_EQ(step(s).size(), 1u);  // finished; its 3 full blocks stay cached
  EXPECT_EQ(s.block_pool().num_cached(), 3);
  std::vector<int32_t> p = prompt_of(8);
  p.push_back(77);
  ASSERT_TRUE(s.add(Sequence(2, p, 1)).ok());
  SchedulerOutput out = s.schedule();
  ASSERT_EQ(out.seqs.size(), 1u);
  EXPECT_EQ(out.seqs[0].start_pos, 8);
  EXPECT_EQ(out.seqs[0].num_new_tokens, 1);
  EXPECT_EQ(out.token_ids, std::vector<int32_t>{77});
  // Seq 1's lookup missed both blocks it could reuse; seq 2's hit both of its own.
  EXPECT_EQ(s.block_pool().num_prefix_hits(), 2);
  EXPECT_EQ(s.block_pool().num_prefix_misses(), 2);
}

TEST(Scheduler, FullPromptHitStillComputesItsLastToken) {
  Scheduler s = make(small_config());
  ASSERT_TRUE(s.add(Sequence(1, prompt_of(8), 1)).ok());
  step(s);
  ASSERT_TRUE(s.add(Sequence(2, prompt_of(8), 1)).ok());
  SchedulerOutput out = s.schedule();
  // Only one of the two blocks can be reused: the last block is recomputed for the logits.
  EXPECT_EQ(out.seqs.at(0).start_pos, 4);
  EXPECT_EQ(out.seqs.at(0).num_new_tokens, 4);
  EXPECT_TRUE(out.seqs.at(0).needs_logits);
  // Writes never go to a cached block.
  for (int32_t slot : out.slot_mapping) EXPECT_FALSE(s.block_pool().is_cached(slot / 4));
}

// A pipelined engine applies a step with a placeholder for the token it samples, schedules the
// next step with that placeholder, and gives the real token before the next update().
TEST(Scheduler, PlaceholderIsScheduledThenResolvedAndOnlyThenHashed) {
  Scheduler s = make(small_config());  // block size 4
  ASSERT_TRUE(s.add(Sequence(1, prompt_of(3), 4)).ok());
  SchedulerOutput out = s.schedule();
  std::vector<SampledToken> r(1);
  r[0].token = -1;
  ASSERT_TRUE(s.update(out, r).empty());
  EXPECT_EQ(s.find(1)->tokens, (std::vector<int32_t>{1, 2, 3, -1}));
  out = s.schedule();
  EXPECT_EQ(out.token_ids, std::vector<int32_t>{-1});  // the model reads it on the device
  EXPECT_EQ(s.resolve_placeholder(1, -7).status().code(), ErrorCode::kInternalError);
  ASSERT_TRUE(s.resolve_placeholder(1, 50).ok());
  EXPECT_EQ(s.resolve_placeholder(1, 51).status().code(), ErrorCode::kInternalError);  // none
  EXPECT_EQ(s.resolve_placeholder(9, 51).status().code(), ErrorCode::kNotFound);
  ASSERT_TRUE(s.update(out, r).empty());  // computes [1, 2, 3, 50]: block 0 is full
  EXPECT_EQ(s.block_pool().num_cached(), 1);
  // The block was hashed with the resolved token: a prompt starting 1, 2, 3, 50 hits it.
  ASSERT_TRUE(s.add(Sequence(2, {1, 2, 3, 50, 9}, 1)).ok());
  ASSERT_TRUE(s.resolve_placeholder(1, 60).ok());
  out = s.schedule();
  ASSERT_EQ(out.seqs.size(), 2u);
  EXPECT_EQ(out.seqs[1].id, 2u);
  EXPECT_EQ(out.seqs[1].start_pos, 4);
}

// A sequence that loses its blocks while its last token is a placeholder recomputes it (the
// model reads it on the device) and does not hash the block that holds it.
TEST(Scheduler, RecomputedPlaceholderIsNotHashed) {
  SchedulerConfig c = small_config();
  c.max_num_seqs = 1;
  Scheduler s = make(c);
  ASSERT_TRUE(s.add(Sequence(1, prompt_of(3), 8)).ok());
  SchedulerOutput out = s.schedule();
  std::vector<SampledToken> r(1);
  r[0].token = -1;
  s.update(out, r);
  ASSERT_TRUE(s.pause(1).ok());
  ASSERT_TRUE(s.add(Sequence(2, prompt_of(2, 100), 8)).ok());
  out = s.schedule();
  ASSERT_EQ(out.seqs.at(0).id, 2u);
  s.update(out, sample_all(out));
  ASSERT_TRUE(s.resume(1).ok());  // no room to run: its blocks are released
  ASSERT_TRUE(s.find(1)->block_table.empty());
  ASSERT_TRUE(s.abort(2).ok());
  out = s.schedule();
  ASSERT_EQ(out.seqs.size(), 1u);
  EXPECT_EQ(out.seqs[0].start_pos, 0);
  EXPECT_EQ(out.token_ids, (std::vector<int32_t>{1, 2, 3, -1}));
  EXPECT_TRUE(s.find(1)->block_hashes.empty());
}

TEST(Scheduler, LiveSequencesShareCachedBlocks) {
  Scheduler s = make(small_config());
  ASSERT_TRUE(s.add(Sequence(1, prompt_of(9), 8)).ok());
  step(s);
  ASSERT_TRUE(s.add(Sequence(2, prompt_of(9), 8)).ok());
  step(s);
  const Sequence* a = s.find(1);
  const Sequence* b = s.find(2);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->block_table[0], b->block_table[0]);
  EXPECT_EQ(a->block_table[1], b->block_table[1]);
  EXPECT_NE(a->block_table[2], b->block_table[2]);
  EXPECT_EQ(s.block_pool().refcount(a->block_table[0]), 2);
}

TEST(Scheduler, PressurePreemptsTheNewestRunningSequence) {
  SchedulerConfig c = small_config();
  c.num_blocks = 4;
  c.prefix_caching = false;
  Scheduler s = make(c);
  ASSERT_TRUE(s.add(Sequence(1, prompt_of(4), 8)).ok());
  ASSERT_TRUE(s.add(Sequence(2, prompt_of(4, 100), 8)).ok());
  step(s);  // both prefilled: 2 blocks, then each grows into a second block
  step(s);
  EXPECT_EQ(s.block_pool().num_free(), 0);
  // Tokens 6..8 fit; at 9 tokens both need a third block: seq 2 (newest) is preempted.
  SchedulerOutput out;
  for (int i = 0; i < 4 && out.preempted.empty(); ++i) step(s, &out);
  EXPECT_EQ(out.preempted, std::vector<SeqId>{2});
  const Sequence* victim = s.find(2);
  ASSERT_NE(victim, nullptr);
  EXPECT_EQ(victim->status, SeqStatus::kPreempted);
  EXPECT_EQ(victim->num_computed_tokens, 0);
  EXPECT_TRUE(victim->block_table.empty());
  EXPECT_EQ(s.running_ids(), std::vector<SeqId>{1});
  // Seq 1 runs to completion; then seq 2 is recomputed, prompt and outputs alike.
  for (int i = 0; i < 10 && s.find(1); ++i) step(s);
  ASSERT_EQ(s.find(1), nullptr);
  const int known = s.find(2)->num_tokens();
  out = s.schedule();
  ASSERT_EQ(out.seqs.size(), 1u);
  EXPECT_EQ(out.seqs[0].start_pos, 0);
  EXPECT_EQ(out.seqs[0].num_new_tokens, known);
  EXPECT_TRUE(out.seqs[0].needs_logits);
}

TEST(Scheduler, UrgentRequestIsNotTheVictim) {
  SchedulerConfig c = small_config();
  c.num_blocks = 4;
  c.prefix_caching = false;
  Scheduler s = make(c);
  ASSERT_TRUE(s.add(Sequence(1, prompt_of(4), 8, Priority::kBackground)).ok());
  ASSERT_TRUE(s.add(Sequence(2, prompt_of(4, 100), 8, Priority::kUrgent)).ok());
  SchedulerOutput out;
  for (int i = 0; i < 8 && out.preempted.empty(); ++i) step(s, &out);
  EXPECT_EQ(out.preempted, std::vector<SeqId>{1});
}

TEST(Scheduler, PausedSequenceIsSkippedAndPreemptedFirst) {
  SchedulerConfig c = small_config();
  c.num_blocks = 4;
  c.prefix_caching = false;
  Scheduler s = make(c);
  ASSERT_TRUE(s.add(Sequence(1, prompt_of(4), 8)).ok());
  ASSERT_TRUE(s.add(Sequence(2, prompt_of(4, 100), 12)).ok());
  step(s);
  ASSERT_TRUE(s.pause(1).ok());
  EXPECT_EQ(s.find(1)->status, SeqStatus::kPaused);
  SchedulerOutput out;
  step(s, &out);
  ASSERT_EQ(out.seqs.size(), 1u);
  EXPECT_EQ(out.seqs[0].id, 2u);
  EXPECT_EQ(s.find(1)->block_table.size(), 1u);  // its KV stays while there is room
  // Seq 2 grows until it needs the paused sequence's block: the paused one is the victim
  // although it is the older.
  for (int i = 0; i < 10 && out.preempted.empty(); ++i) step(s, &out);
  EXPECT_EQ(out.preempted, std::vector<SeqId>{1});
  EXPECT_EQ(s.find(1)->status, SeqStatus::kPaused);
  EXPECT_TRUE(s.find(1)->block_table.empty());
  ASSERT_TRUE(s.resume(1).ok());
  EXPECT_EQ(s.find(1)->status, SeqStatus::kPreempted);  // waits to be recomputed
}

TEST(Scheduler, PausedBlocksYieldToAWaitingRequest) {
  SchedulerConfig c = small_config();
  c.num_blocks = 4;
  Scheduler s = make(c);
  ASSERT_TRUE(s.add(Sequence(1, prompt_of(12), 4)).ok());
  step(s);
  ASSERT_TRUE(s.pause(1).ok());
  ASSERT_TRUE(s.add(Sequence(2, prompt_of(8, 100), 2)).ok());  // needs 2 of the 1 free block
  SchedulerOutput out = s.schedule();
  EXPECT_EQ(out.preempted, std::vector<SeqId>{1});
  ASSERT_EQ(out.seqs.size(), 1u);
  EXPECT_EQ(out.seqs[0].id, 2u);
  EXPECT_TRUE(s.find(1)->block_table.empty());
  EXPECT_EQ(s.find(1)->status, SeqStatus::kPaused);
}

TEST(Scheduler, ResumeWhenFullReleasesKvAndWaits) {
  SchedulerConfig c = small_config();
  c.max_num_seqs = 1;
  Scheduler s = make(c);
  ASSERT_TRUE(s.add(Sequence(1, prompt_of(4), 8)).ok());
  step(s);
  ASSERT_TRUE(s.pause(1).ok());
  ASSERT_TRUE(s.add(Sequence(2, prompt_of(4, 100), 8)).ok());
  step(s);  // seq 2 takes the only running slot
  ASSERT_TRUE(s.resume(1).ok());
  EXPECT_EQ(s.find(1)->status, SeqStatus::kPreempted);
  EXPECT_TRUE(s.find(1)->block_table.empty());
  EXPECT_EQ(s.running_ids(), std::vector<SeqId>{2});
}

TEST(Scheduler, ResumeWithKvReturnsToRunning) {
  Scheduler s = make(small_config());
  ASSERT_TRUE(s.add(Sequence(1, prompt_of(4), 8)).ok());
  step(s);
  ASSERT_TRUE(s.pause(1).ok());
  EXPECT_TRUE(s.schedule().empty());
  ASSERT_TRUE(s.resume(1).ok());
  EXPECT_EQ(s.running_ids(), std::vector<SeqId>{1});
  SchedulerOutput out = s.schedule();
  ASSERT_EQ(out.seqs.size(), 1u);
  EXPECT_EQ(out.seqs[0].num_new_tokens, 1);
  EXPECT_EQ(s.pause(99).code(), ErrorCode::kNotFound);
}

TEST(Scheduler, AbortFreesBlocksAndSkipsTheInFlightStep) {
  Scheduler s = make(small_config());
  ASSERT_TRUE(s.add(Sequence(1, prompt_of(9), 8)).ok());
  ASSERT_TRUE(s.add(Sequence(2, prompt_of(5, 50), 8)).ok());
  SchedulerOutput out = s.schedule();
  ASSERT_EQ(out.seqs.size(), 2u);
  EXPECT_EQ(s.block_pool().num_used(), 5);
  ASSERT_TRUE(s.abort(1, FinishReason::kTimeout).ok());
  EXPECT_EQ(s.block_pool().num_used(), 2);
  EXPECT_TRUE(s.update(out, sample_all(out)).empty());
  EXPECT_EQ(s.find(1), nullptr);
  EXPECT_EQ(s.find(2)->num_output_tokens(), 1);
  EXPECT_EQ(s.abort(1).code(), ErrorCode::kNotFound);
}

TEST(Scheduler, ConfigValidationNamesTheField) {
  SchedulerConfig c = small_config();
  c.max_num_seqs = 0;
  Result<Scheduler> s = Scheduler::create(c);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(), "scheduler.max_num_seqs must be >= 1, got 0");
}

TEST(Scheduler, RefusesAConfigWhoseKvGeometryWasNotFilledIn) {
  Result<Scheduler> s = Scheduler::create(SchedulerConfig{});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(), "scheduler.num_blocks must be >= 1, got 0");
}

}  // namespace
}  // namespace mlxs::sched
