#include "runtime/stop_matcher.h"

#include <gtest/gtest.h>

namespace mlxs {
namespace {

// Feeds `pieces` and returns everything emitted, and whether a stop matched.
std::pair<std::string, bool> run(std::vector<std::string> stops, std::vector<std::string> pieces) {
  StopMatcher m(std::move(stops));
  std::string out;
  for (const auto& p : pieces) {
    bool stopped = false;
    out += m.feed(p, &stopped);
    if (stopped) return {out, true};
  }
  return {out + m.flush(), false};
}

TEST(StopMatcher, StopSplitAcrossTokensIsNotEmitted) {
  auto [text, stopped] = run({"END"}, {"Hello E", "N", "D and more"});
  EXPECT_TRUE(stopped);
  EXPECT_EQ(text, "Hello ");
}

TEST(StopMatcher, HeldBackTextIsReleasedWhenItStopsMatching) {
  StopMatcher m({"\n\nUser:"});
  bool stopped = false;
  EXPECT_EQ(m.feed("Hi\n", &stopped), "Hi");
  EXPECT_EQ(m.feed("\nUs", &stopped), "");
  EXPECT_EQ(m.feed("ually", &stopped), "\n\nUsually");
  EXPECT_FALSE(stopped);
}

TEST(StopMatcher, EarliestOfSeveralStopsWins) {
  auto [text, stopped] = run({"world", "lo"}, {"hello world"});
  EXPECT_TRUE(stopped);
  EXPECT_EQ(text, "hel");
  StopMatcher m({"world", "lo"});
  bool hit = false;
  m.feed("hello world", &hit);
  EXPECT_EQ(m.matched(), "lo");
}

TEST(StopMatcher, NoStopsPassesEverythingThrough) {
  auto [text, stopped] = run({}, {"a", "b"});
  EXPECT_FALSE(stopped);
  EXPECT_EQ(text, "ab");
}

TEST(StopMatcher, FlushReturnsAPartialMatchAtTheEnd) {
  auto [text, stopped] = run({"STOP"}, {"the ST"});
  EXPECT_FALSE(stopped);
  EXPECT_EQ(text, "the ST");
}

}  // namespace
}  // namespace mlxs
