#include "runtime/step_inputs.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "sample/sampler.h"

namespace mlxs {
namespace {

TEST(TokenBitmask, AMaskThatAllowsOneTokenForcesItWhateverTheDraw) {
  std::vector<float> base(32);
  for (size_t i = 0; i < base.size(); ++i) base[i] = std::sin(float(i)) * 3.0f;  // 5 is unlikely
  const std::vector<uint32_t> only_5 = {1u << 5};
  SamplingParams p;
  p.temperature = 1.5f;
  p.top_logprobs = 2;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    p.seed = seed;
    std::vector<float> logits = base;
    ASSERT_TRUE(apply_token_bitmask(only_5, logits).ok());
    const SampleResult s = sample(logits, p, SamplingHistory{}, seed);
    EXPECT_EQ(s.token, 5);
    EXPECT_FLOAT_EQ(s.logprob, 0.0f);  // renormalised over the one allowed token
  }
  // Without the mask the same draws pick other tokens: the test can fail.
  int num_5 = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    p.seed = seed;
    num_5 += sample(base, p, SamplingHistory{}, seed).token == 5;
  }
  EXPECT_LT(num_5, 20);
}

TEST(TokenBitmask, AMaskThatAllowsNothingIsAnError) {
  std::vector<float> logits(8, 1.0f);
  const Status s = apply_token_bitmask(std::vector<uint32_t>{0u}, logits);
  EXPECT_EQ(s.code(), ErrorCode::kInvalidParams);
  EXPECT_NE(s.message().find("8 tokens"), std::string::npos) << s.message();
}

TEST(TokenBitmask, AllowedLogitsAreUntouched) {
  std::vector<float> logits = {1, 2, 3, 4};
  ASSERT_TRUE(apply_token_bitmask(std::vector<uint32_t>{0b1101u}, logits).ok());  // not token 1
  EXPECT_EQ(logits[0], 1);
  EXPECT_TRUE(std::isinf(logits[1]) && logits[1] < 0);
  EXPECT_EQ(logits[2], 3);
  EXPECT_EQ(logits[3], 4);
}

// Bit (id % 32) of word id / 32, across word boundaries; ids past the words are forbidden.
TEST(TokenBitmask, BitsAreCountedAcrossWordsAndMissingWordsForbid) {
  std::vector<float> logits(70, 0.5f);
  ASSERT_TRUE(apply_token_bitmask(std::vector<uint32_t>{0u, 1u << 1}, logits).ok());
  for (size_t i = 0; i < logits.size(); ++i) EXPECT_EQ(std::isinf(logits[i]), i != 33) << i;
}

// An image of 4 rows at prompt positions [2, 6), hidden size 2, cut by prefill chunks.
TEST(EmbeddingSplice, AStepGetsThePartInItsTokensRelativeToItsFirstToken) {
  const std::vector<EmbeddingSplice> prompt = {{2, 4, {0, 0, 1, 1, 2, 2, 3, 3}}};
  EXPECT_TRUE(splices_in(prompt, 0, 2, 2).empty());  // before it
  std::vector<EmbeddingSplice> part = splices_in(prompt, 0, 4, 2);
  ASSERT_EQ(part.size(), 1u);
  EXPECT_EQ(part[0].position, 2);
  EXPECT_EQ(part[0].num_rows, 2);
  EXPECT_EQ(part[0].data, (std::vector<float>{0, 0, 1, 1}));
  part = splices_in(prompt, 4, 8, 2);
  ASSERT_EQ(part.size(), 1u);
  EXPECT_EQ(part[0].position, 0);
  EXPECT_EQ(part[0].num_rows, 2);
  EXPECT_EQ(part[0].data, (std::vector<float>{2, 2, 3, 3}));
  EXPECT_TRUE(splices_in(prompt, 6, 9, 2).empty());  // after it
  EXPECT_TRUE(splices_in({}, 0, 9, 2).empty());      // the plain path
}

TEST(Proposals, TheLongestAgreeingPrefixIsAccepted) {
  EXPECT_EQ(accept_proposals({}, std::vector<int32_t>{7}), 0);  // the plain step: one token
  EXPECT_EQ(accept_proposals(std::vector<int32_t>{1, 2, 3}, std::vector<int32_t>{1, 2, 3, 4}), 3);
  EXPECT_EQ(accept_proposals(std::vector<int32_t>{1, 2, 3}, std::vector<int32_t>{1, 5, 3, 4}), 1);
  EXPECT_EQ(accept_proposals(std::vector<int32_t>{1, 2, 3}, std::vector<int32_t>{9, 2, 3, 4}), 0);
}

}  // namespace
}  // namespace mlxs
