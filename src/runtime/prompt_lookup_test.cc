#include "runtime/prompt_lookup.h"

#include <gtest/gtest.h>

namespace mlxs {
namespace {

using V = std::vector<int32_t>;

TEST(PromptLookup, ProposesWhatFollowedTheLatestOccurrenceOfTheLongestSuffix) {
  // "1 2 3" recurs at 0 and 5; the suffix "2 3" (n = 2) matches the latest, at 6.
  const V tokens = {1, 2, 3, 4, 5, 1, 2, 3, 9, 9, 2, 3};
  EXPECT_EQ(prompt_lookup(tokens, 2, 1, 3), (V{9, 9}));
  EXPECT_EQ(prompt_lookup(tokens, 8, 1, 3), (V{9, 9, 2, 3}));  // never past the end
  // With n = 3 only: "9 2 3" does not recur.
  EXPECT_TRUE(prompt_lookup(tokens, 4, 3, 3).empty());
}

TEST(PromptLookup, LongerSuffixesWinOverLaterShorterOnes) {
  // Suffix "7 8": "7 8" at 0 (then 1); "8" alone recurs later at 4 (then 2).
  const V tokens = {7, 8, 1, 0, 8, 2, 7, 8};
  EXPECT_EQ(prompt_lookup(tokens, 1, 1, 2), (V{1}));
  EXPECT_EQ(prompt_lookup(tokens, 1, 1, 1), (V{2}));
}

TEST(PromptLookup, NothingToProposeOnShortOrUniqueSequences) {
  EXPECT_TRUE(prompt_lookup(V{}, 4, 1, 3).empty());
  EXPECT_TRUE(prompt_lookup(V{5}, 4, 1, 3).empty());
  EXPECT_TRUE(prompt_lookup(V{1, 2, 3, 4}, 4, 1, 3).empty());
  EXPECT_TRUE(prompt_lookup(V{1, 2, 1, 2}, 0, 1, 3).empty());
  // A run of one token proposes more of it.
  EXPECT_EQ(prompt_lookup(V{4, 4, 4}, 3, 1, 3), (V{4}));
}

}  // namespace
}  // namespace mlxs
