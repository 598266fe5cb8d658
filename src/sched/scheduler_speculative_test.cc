// The scheduler's side of speculative decoding: proposals scheduled within the budget, the
// request's length and the free blocks; verified tokens appended; rejected K/V rolled back.
#include <gtest/gtest.h>

#include "sched/scheduler.h"
#include "sched/scheduler_test_support.h"

namespace mlxs::sched {
namespace {

using test_support::make;
using test_support::prompt_of;
using test_support::small_config;

// Prefills sequence `id` (prompt 1..6) and resolves its first token, 50: 7 tokens, 6 computed.
void prefill(Scheduler& s, SeqId id, int max_tokens) {
  ASSERT_TRUE(s.add(Sequence(id, prompt_of(6), max_tokens)).ok());
  SchedulerOutput out = s.schedule();
  std::vector<SampledToken> t(out.seqs.size());
  for (size_t i = 0; i < out.seqs.size(); ++i) t[i].token = -1;
  s.update(out, t);
  ASSERT_TRUE(s.resolve_placeholder(id, 50).ok());
}

const ScheduledSeq& only(const SchedulerOutput& out) {
  MLXS_CHECK(out.seqs.size() == 1);
  return out.seqs[0];
}

TEST(SchedulerSpeculative, ProposalsFollowTheLastTokenAndAcceptedOnesKeepTheirKv) {
  Scheduler s = make(small_config());  // blocks of 4 tokens
  prefill(s, 1, 20);
  const int free_before = s.block_pool().num_free();
  SchedulerOutput out = s.schedule({{1, {60, 61, 62}}});
  const ScheduledSeq& seq = only(out);
  EXPECT_EQ(seq.start_pos, 6);
  EXPECT_EQ(seq.num_new_tokens, 4);
  EXPECT_EQ(seq.num_proposals, 3);
  EXPECT_TRUE(seq.needs_logits);
  EXPECT_EQ(out.token_ids, (std::vector<int32_t>{50, 60, 61, 62}));
  EXPECT_EQ(out.positions, (std::vector<int32_t>{6, 7, 8, 9}));
  EXPECT_EQ(seq.block_table.size(), 3u);  // 10 tokens of KV
  EXPECT_EQ(s.block_pool().num_free(), free_before - 1);
  s.update(out, std::vector<SampledToken>{{-1}});
  EXPECT_EQ(s.find(1)->num_computed_tokens, 7);
  // Two proposals accepted, then the model's own 70.
  auto r = s.resolve_placeholder(1, std::vector<int32_t>{60, 61, 70});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->num_kept, 3);
  EXPECT_FALSE(r->finished);
  const Sequence* q = s.find(1);
  EXPECT_EQ(q->tokens, (std::vector<int32_t>{1, 2, 3, 4, 5, 6, 50, 60, 61, 70}));
  EXPECT_EQ(q->num_computed_tokens, 9);
  EXPECT_EQ(q->block_table.size(), 3u);
  // The next step computes 70 alone.
  SchedulerOutput next = s.schedule();
  EXPECT_EQ(only(next).start_pos, 9);
  EXPECT_EQ(next.token_ids, (std::vector<int32_t>{70}));
}

TEST(SchedulerSpeculative, RejectedProposalsGiveTheirBlocksBack) {
  Scheduler s = make(small_config());
  prefill(s, 1, 20);
  const int free_before = s.block_pool().num_free();
  SchedulerOutput out = s.schedule({{1, {60, 61, 62, 63, 64, 65}}});  // KV up to 13 tokens
  EXPECT_EQ(only(out).block_table.size(), 4u);
  EXPECT_EQ(s.block_pool().num_free(), free_before - 2);
  s.update(out, std::vector<SampledToken>{{-1}});
  auto r = s.resolve_placeholder(1, std::vector<int32_t>{77});  // none accepted
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->num_kept, 1);
  EXPECT_EQ(s.find(1)->num_computed_tokens, 7);
  EXPECT_EQ(s.find(1)->block_table.size(), 2u);
  EXPECT_EQ(s.block_pool().num_free(), free_before);
  // More verified tokens than proposals + 1 is a bug of the caller.
  SchedulerOutput again = s.schedule({{1, {1}}});
  s.update(again, std::vector<SampledToken>{{-1}});
  EXPECT_EQ(s.resolve_placeholder(1, std::vector<int32_t>{1, 2, 3}).status().code(),
            ErrorCode::kInternalError);
}

TEST(SchedulerSpeculative, ProposalsAreTrimmedToTheBudgetTheLengthAndTheFreeBlocks) {
  SchedulerConfig c = small_config();
  c.max_num_batched_tokens = 8;
  Scheduler s = make(c);
  prefill(s, 1, 4);  // one output so far: 3 more allowed, so at most 2 proposals
  SchedulerOutput out = s.schedule({{1, {60, 61, 62, 63}}});
  EXPECT_EQ(only(out).num_proposals, 2);
  s.update(out, std::vector<SampledToken>{{-1}});
  // Both accepted and the model's own: the third output reaches max_tokens (4 with 50).
  auto r = s.resolve_placeholder(1, std::vector<int32_t>{60, 61, 9});
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->finished);
  EXPECT_EQ(r->finished->reason, FinishReason::kLength);
  EXPECT_EQ(r->finished->num_output_tokens, 4);
  EXPECT_EQ(s.block_pool().num_used(), 0);

  // The budget: 8 tokens for two decodes leaves 6 proposals in all.
  Scheduler b = make(c);
  ASSERT_TRUE(b.add(Sequence(1, prompt_of(3), 30)).ok());
  ASSERT_TRUE(b.add(Sequence(2, prompt_of(3), 30)).ok());
  SchedulerOutput first = b.schedule();
  b.update(first, std::vector<SampledToken>{{-1}, {-2}});
  ASSERT_TRUE(b.resolve_placeholder(1, 50).ok());
  ASSERT_TRUE(b.resolve_placeholder(2, 50).ok());
  SchedulerOutput two = b.schedule({{1, {1, 2, 3, 4, 5}}, {2, {1, 2, 3, 4, 5}}});
  ASSERT_EQ(two.seqs.size(), 2u);
  EXPECT_EQ(two.seqs[0].num_proposals, 5);
  EXPECT_EQ(two.seqs[1].num_proposals, 1);
  EXPECT_EQ(two.num_tokens(), c.max_num_batched_tokens);
}

TEST(SchedulerSpeculative, AProposalTakesOnlyFreeBlocksAndNeverPreempts) {
  SchedulerConfig c = small_config();
  c.num_blocks = 3;  // 12 tokens
  Scheduler s = make(c);
  ASSERT_TRUE(s.add(Sequence(1, prompt_of(3), 6)).ok());  // one block
  ASSERT_TRUE(s.add(Sequence(2, prompt_of(5), 2)).ok());  // two blocks
  SchedulerOutput first = s.schedule();
  ASSERT_EQ(first.seqs.size(), 2u);
  s.update(first, std::vector<SampledToken>{{-1}, {-2}});
  ASSERT_TRUE(s.resolve_placeholder(1, 50).ok());  // 4 tokens: its block is full
  ASSERT_TRUE(s.resolve_placeholder(2, 50).ok());
  EXPECT_EQ(s.block_pool().num_free(), 0);
  SchedulerOutput out = s.schedule({{1, {60, 61, 62}}});
  ASSERT_EQ(out.seqs.size(), 2u);
  EXPECT_EQ(out.seqs[0].num_proposals, 0);
  EXPECT_TRUE(out.preempted.empty());
}

TEST(SchedulerSpeculative, AStopTokenAmongTheVerifiedEndsTheSequenceThere) {
  Scheduler t = make(small_config());
  Sequence seq(3, prompt_of(6), 20);
  seq.stop_token_ids = {2};
  ASSERT_TRUE(t.add(std::move(seq)).ok());
  SchedulerOutput p = t.schedule();
  t.update(p, std::vector<SampledToken>{{-1}});
  ASSERT_TRUE(t.resolve_placeholder(3, 50).ok());
  SchedulerOutput v = t.schedule({{3, {60, 2, 62}}});
  t.update(v, std::vector<SampledToken>{{-1}});
  auto r = t.resolve_placeholder(3, std::vector<int32_t>{60, 2, 62, 63});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->num_kept, 2);
  ASSERT_TRUE(r->finished);
  EXPECT_EQ(r->finished->reason, FinishReason::kStop);
  EXPECT_EQ(r->finished->num_output_tokens, 3);  // 50, 60, 2
  EXPECT_EQ(t.num_live(), 0);
  EXPECT_EQ(t.block_pool().num_used(), 0);
}

TEST(SchedulerSpeculative, ProposalsAreIgnoredForPrefillsAndUnknownLastTokens) {
  Scheduler s = make(small_config());
  ASSERT_TRUE(s.add(Sequence(1, prompt_of(6), 20)).ok());
  SchedulerOutput out = s.schedule({{1, {60, 61}}});  // a prefill
  EXPECT_EQ(only(out).num_proposals, 0);
  s.update(out, std::vector<SampledToken>{{-1}});
  SchedulerOutput next = s.schedule({{1, {60, 61}}});  // its last token is a placeholder
  EXPECT_EQ(only(next).num_proposals, 0);
}

}  // namespace
}  // namespace mlxs::sched
