#include "runtime/speculator.h"

#include <gtest/gtest.h>

namespace mlxs {
namespace {

TEST(Speculator, KFollowsTheRecentAcceptanceAndStopsBelowTheMinimum) {
  SpeculatorConfig c;
  c.enabled = true;
  c.num_tokens = 6;
  c.min_acceptance_rate = 0.2;
  Speculator s(c, [](sched::SeqId) { return nullptr; });
  Request r;
  r.sampling.temperature = 0.0f;
  EXPECT_EQ(s.num_to_propose(r), 6);  // nothing measured yet: the most
  r.recent_acceptance = 0.5;
  r.recent_accepted = 1.2;
  EXPECT_EQ(s.num_to_propose(r), 3);  // one more than recently accepted, rounded up
  r.recent_accepted = 0.0;
  EXPECT_EQ(s.num_to_propose(r), 1);
  r.recent_acceptance = 0.1;  // below the minimum: off, but a probe every 16th token
  r.num_generated = 17;
  EXPECT_EQ(s.num_to_propose(r), 0);
  r.num_generated = 32;
  EXPECT_EQ(s.num_to_propose(r), 2);
  c.min_acceptance_rate = 0.0;  // always propose
  Speculator always(c, [](sched::SeqId) { return nullptr; });
  r.num_generated = 17;
  EXPECT_EQ(always.num_to_propose(r), 1);
}

TEST(Speculator, OnlyRequestsWhoseTokensSpeculationCannotChange) {
  Request r;
  r.sampling.temperature = 0.0f;
  EXPECT_TRUE(can_speculate(r));
  r.sampling.repetition_penalty = 1.1f;
  EXPECT_FALSE(can_speculate(r));
  r.sampling.repetition_penalty = 1.0f;
  r.logprobs = true;
  EXPECT_FALSE(can_speculate(r));
  r.logprobs = false;
  r.sampling.temperature = 0.7f;
  EXPECT_FALSE(can_speculate(r));
  r.sampling.top_k = 1;  // greedy again
  EXPECT_TRUE(can_speculate(r));
}

}  // namespace
}  // namespace mlxs
