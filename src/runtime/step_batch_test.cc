// The step builder against the backend's attention contract, from a real scheduler's plan and
// from hand-made sequences.
#include "runtime/step_batch.h"

#include <gtest/gtest.h>

#include <numeric>

#include "sched/scheduler.h"
#include "sched/scheduler_test_support.h"
#include "util/check.h"

namespace mlxs {
namespace {

using namespace sched;

using test_support::make;
using test_support::prompt_of;
using test_support::small_config;

// One step of `s`, every sequence that needs logits sampling 1000 + its context length.
void step(Scheduler& s) {
  SchedulerOutput out = s.schedule();
  std::vector<sched::SampledToken> r(out.seqs.size());
  for (size_t i = 0; i < r.size(); ++i) r[i].token = 1000 + out.seqs[i].context_len();
  (void)s.update(out, r);
}

TEST(StepBatch, FromThePlanMatchesTheAttentionContract) {
  Scheduler s = make(small_config());
  ASSERT_TRUE(s.add(Sequence(1, prompt_of(6), 4)).ok());
  step(s);
  ASSERT_TRUE(s.add(Sequence(2, prompt_of(3, 40), 4)).ok());
  SchedulerOutput out = s.schedule();  // seq 1 decodes 1 token, seq 2 prefills 3
  StepBatch b = make_step_batch(out, 128);
  const AttentionBatch& a = b.attention;
  EXPECT_EQ(a.num_seqs, 2);
  EXPECT_EQ(a.block_size, 4);
  EXPECT_EQ(a.sliding_window, 128);
  EXPECT_EQ(a.query_start, (std::vector<int32_t>{0, 1, 4}));
  EXPECT_EQ(a.context_len, (std::vector<int32_t>{7, 3}));
  ASSERT_EQ(a.max_blocks_per_seq, 2);
  EXPECT_EQ(a.block_tables[2], out.seqs[1].block_table[0]);
  EXPECT_EQ(a.block_tables[3], -1);
  EXPECT_EQ(a.positions, (std::vector<int32_t>{6, 0, 1, 2}));
  EXPECT_EQ(b.token_ids, (std::vector<int32_t>{1006, 40, 41, 42}));
  EXPECT_EQ(b.sample_rows, (std::vector<int32_t>{0, 3}));
  // Each row's position = context_len - q_len + i (the backend's contract).
  for (int q = 0; q < a.num_seqs; ++q) {
    const int q_len = a.query_start[size_t(q) + 1] - a.query_start[size_t(q)];
    for (int i = 0; i < q_len; ++i) {
      EXPECT_EQ(a.positions[size_t(a.query_start[size_t(q)] + i)],
                a.context_len[size_t(q)] - q_len + i);
    }
  }
}

// The builder's positions and slot mapping are the scheduler's own (one rule, two places that
// must agree: the scheduler plans the KV writes, the builder hands them to the backend).
TEST(StepBatch, PositionsAndSlotsAreTheSchedulersOwn) {
  Scheduler s = make(small_config());
  ASSERT_TRUE(s.add(Sequence(1, prompt_of(9), 4)).ok());
  ASSERT_TRUE(s.add(Sequence(2, prompt_of(2, 50), 4)).ok());
  for (int i = 0; i < 4; ++i) {
    SchedulerOutput out = s.schedule();
    if (out.empty()) break;
    StepBatch b = make_step_batch(out);
    EXPECT_EQ(b.attention.positions, out.positions);
    EXPECT_EQ(b.attention.slot_mapping, out.slot_mapping);
    EXPECT_EQ(b.token_ids, out.token_ids);
    std::vector<sched::SampledToken> r(out.seqs.size());
    for (auto& x : r) x.token = 7;
    (void)s.update(out, r);
  }
}

TEST(StepBatch, HandMadeSequencesAndTheAttentionOnlyForm) {
  const std::vector<int32_t> table_a = {3, 5}, table_b = {9};
  const std::vector<int32_t> new_a = {11}, new_b = {20, 21, 22};
  const std::vector<SeqStep> seqs = {{table_a, 5, new_a, true}, {table_b, 0, new_b, false}};
  StepBatch b = make_step_batch(seqs, 4, 0);
  EXPECT_EQ(b.token_ids, (std::vector<int32_t>{11, 20, 21, 22}));
  EXPECT_EQ(b.attention.positions, (std::vector<int32_t>{5, 0, 1, 2}));
  EXPECT_EQ(b.attention.slot_mapping, (std::vector<int32_t>{5 * 4 + 1, 36, 37, 38}));
  EXPECT_EQ(b.attention.query_start, (std::vector<int32_t>{0, 1, 4}));
  EXPECT_EQ(b.attention.context_len, (std::vector<int32_t>{6, 3}));
  EXPECT_EQ(b.attention.block_tables, (std::vector<int32_t>{3, 5, 9, -1}));
  EXPECT_EQ(b.sample_rows, (std::vector<int32_t>{0}));
  std::vector<int32_t> tokens;
  AttentionBatch a = make_attention_batch(seqs, 4, 0, &tokens);
  EXPECT_EQ(tokens, b.token_ids);
  EXPECT_EQ(a.slot_mapping, b.attention.slot_mapping);
}

}  // namespace
}  // namespace mlxs
