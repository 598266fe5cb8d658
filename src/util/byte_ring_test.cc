#include "util/byte_ring.h"

#include <gtest/gtest.h>

#include <deque>
#include <random>
#include <utility>
#include <vector>

namespace mlxs {
namespace {

TEST(ByteRing, AllocatesInOrderAndRefusesWhenFull) {
  ByteRing r(100);
  EXPECT_EQ(r.alloc(40), 0u);
  EXPECT_EQ(r.alloc(40), 40u);
  EXPECT_FALSE(r.alloc(40).has_value());  // 20 left at the end, nothing released
  EXPECT_EQ(r.alloc(20), 80u);
  EXPECT_EQ(r.used(), 100u);
  EXPECT_FALSE(r.alloc(1).has_value());
  EXPECT_FALSE(r.alloc(101).has_value());
}

TEST(ByteRing, SkipsTheShortEndOnceEarlierSlotsAreReleased) {
  ByteRing r(100);
  ASSERT_EQ(r.alloc(30), 0u);
  const uint64_t first = r.mark();
  ASSERT_EQ(r.alloc(50), 30u);
  EXPECT_FALSE(r.alloc(30).has_value());  // 20 at the end, the start still in use
  r.release_to(first);
  EXPECT_EQ(r.alloc(30), 0u);            // skips 20 bytes at the end
  EXPECT_EQ(r.used(), 50u + 20u + 30u);  // the skipped end counts until released
  r.release_to(first);                   // an old mark changes nothing
  EXPECT_EQ(r.used(), 100u);
  r.release_all();
  EXPECT_EQ(r.used(), 0u);
  EXPECT_EQ(r.alloc(100), 0u);  // an empty ring starts over
}

// Random FIFO traffic: live slots never overlap and never cross the end.
TEST(ByteRing, LiveSlotsNeverOverlap) {
  std::mt19937 rng(7);
  ByteRing r(1000);
  struct Slot {
    uint64_t off, bytes, mark;
  };
  std::deque<Slot> live;
  for (int i = 0; i < 20000; ++i) {
    if (live.empty() || rng() % 3 != 0) {
      const uint64_t n = 1 + rng() % 300;
      auto off = r.alloc(n);
      if (!off) {
        ASSERT_FALSE(live.empty()) << "an empty ring refused " << n << " bytes";
        continue;
      }
      ASSERT_LE(*off + n, 1000u);
      for (const Slot& s : live) {
        ASSERT_TRUE(*off + n <= s.off || s.off + s.bytes <= *off)
            << "slot [" << *off << ", +" << n << ") overlaps [" << s.off << ", +" << s.bytes << ")";
      }
      live.push_back({*off, n, r.mark()});
    } else {
      r.release_to(live.front().mark);
      live.pop_front();
    }
  }
}

}  // namespace
}  // namespace mlxs
