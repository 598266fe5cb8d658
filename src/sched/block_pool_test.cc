#include "sched/block_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace mlxs::sched {
namespace {

std::vector<int32_t> iota_tokens(int n, int32_t first) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) t[size_t(i)] = first + i;
  return t;
}

TEST(BlockPool, AllocateAndFreeKeepCounts) {
  BlockPool pool(8, 4);
  EXPECT_EQ(pool.num_free(), 8);
  EXPECT_TRUE(pool.can_allocate(8));
  EXPECT_FALSE(pool.can_allocate(9));
  std::vector<BlockId> a = pool.allocate(3);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(pool.num_free(), 5);
  EXPECT_EQ(pool.num_used(), 3);
  for (BlockId b : a) EXPECT_EQ(pool.refcount(b), 1);
  std::vector<BlockId> rest = pool.allocate(5);
  EXPECT_FALSE(pool.can_allocate(1));
  // All ids distinct and in range.
  std::vector<BlockId> all = a;
  all.insert(all.end(), rest.begin(), rest.end());
  std::sort(all.begin(), all.end());
  for (int i = 0; i < 8; ++i) EXPECT_EQ(all[size_t(i)], i);
  pool.free(a);
  EXPECT_EQ(pool.num_free(), 3);
  EXPECT_EQ(pool.num_used(), 5);
}

TEST(BlockPool, HashChainsDependOnParentAndTokens) {
  const std::vector<int32_t> t = iota_tokens(4, 10);
  const BlockHash h1 = hash_block({}, t);
  EXPECT_EQ(h1, hash_block({}, t));
  EXPECT_FALSE(h1 == hash_block(h1, t));  // same tokens, different prefix
  std::vector<int32_t> t2 = t;
  t2[3] = 99;
  EXPECT_FALSE(h1 == hash_block({}, t2));
}

TEST(BlockPool, SharedCachedBlockNeedsEveryReferenceFreed) {
  BlockPool pool(4, 4);
  const BlockHash h = hash_block({}, iota_tokens(4, 0));
  const BlockId b = pool.allocate(1)[0];
  EXPECT_TRUE(pool.cache(b, h));
  const std::vector<BlockHash> hashes = {h};
  std::vector<BlockId> found = pool.find_cached_prefix(hashes);
  ASSERT_EQ(found, std::vector<BlockId>{b});
  pool.share(found);
  EXPECT_EQ(pool.refcount(b), 2);
  pool.free(found);
  EXPECT_EQ(pool.refcount(b), 1);
  EXPECT_EQ(pool.num_free(), 3);
  pool.free(found);
  EXPECT_EQ(pool.num_free(), 4);
  // Still findable after its last reference is gone; sharing takes it off the free queue.
  found = pool.find_cached_prefix(hashes);
  ASSERT_EQ(found, std::vector<BlockId>{b});
  pool.share(found);
  EXPECT_EQ(pool.refcount(b), 1);
  EXPECT_EQ(pool.num_free(), 3);
}

TEST(BlockPool, FindStopsAtFirstMiss) {
  BlockPool pool(4, 2);
  const BlockHash h0 = hash_block({}, iota_tokens(2, 0));
  const BlockHash h1 = hash_block(h0, iota_tokens(2, 2));
  const BlockHash h2 = hash_block(h1, iota_tokens(2, 4));
  std::vector<BlockId> blocks = pool.allocate(3);
  pool.cache(blocks[0], h0);
  pool.cache(blocks[2], h2);  // h1 is missing: h2 must not be reached
  const std::vector<BlockHash> hashes = {h0, h1, h2};
  EXPECT_EQ(pool.find_cached_prefix(hashes), std::vector<BlockId>{blocks[0]});
  pool.record_lookup(1, 2);
  EXPECT_EQ(pool.num_prefix_hits(), 1);
  EXPECT_EQ(pool.num_prefix_misses(), 2);
}

TEST(BlockPool, DuplicateContentStaysUncached) {
  BlockPool pool(4, 2);
  const BlockHash h = hash_block({}, iota_tokens(2, 0));
  std::vector<BlockId> blocks = pool.allocate(2);
  EXPECT_TRUE(pool.cache(blocks[0], h));
  EXPECT_FALSE(pool.cache(blocks[1], h));
  EXPECT_TRUE(pool.is_cached(blocks[0]));
  EXPECT_FALSE(pool.is_cached(blocks[1]));
  EXPECT_EQ(pool.num_cached(), 1);
}

TEST(BlockPool, UncachedFreeBlocksAreReusedBeforeCachedOnes) {
  BlockPool pool(3, 2);
  std::vector<BlockId> blocks = pool.allocate(3);
  const BlockHash h = hash_block({}, iota_tokens(2, 0));
  pool.cache(blocks[0], h);
  pool.free(blocks);
  // Two uncached blocks come first; the cached one survives until the third allocation.
  std::vector<BlockId> two = pool.allocate(2);
  EXPECT_EQ(std::count(two.begin(), two.end(), blocks[0]), 0);
  EXPECT_TRUE(pool.is_cached(blocks[0]));
  EXPECT_EQ(pool.allocate(1)[0], blocks[0]);
  EXPECT_FALSE(pool.is_cached(blocks[0]));
  EXPECT_EQ(pool.num_cached(), 0);
  const std::vector<BlockHash> hashes = {h};
  EXPECT_TRUE(pool.find_cached_prefix(hashes).empty());
}

TEST(BlockPool, EvictsLeastRecentlyFreedFirst) {
  BlockPool pool(3, 1);
  std::vector<BlockId> b = pool.allocate(3);
  std::vector<BlockHash> h;
  for (int i = 0; i < 3; ++i) {
    h.push_back(hash_block({}, iota_tokens(1, i)));
    pool.cache(b[size_t(i)], h.back());
  }
  // Freed in the order 1, 0, 2: eviction follows that order.
  pool.free(std::vector<BlockId>{b[1]});
  pool.free(std::vector<BlockId>{b[0]});
  pool.free(std::vector<BlockId>{b[2]});
  EXPECT_EQ(pool.allocate(1)[0], b[1]);
  EXPECT_EQ(pool.allocate(1)[0], b[0]);
  EXPECT_TRUE(pool.is_cached(b[2]));
}

TEST(BlockPool, ChainTailIsEvictedBeforeItsHead) {
  BlockPool pool(2, 1);
  std::vector<BlockId> chain = pool.allocate(2);
  const BlockHash h0 = hash_block({}, iota_tokens(1, 0));
  pool.cache(chain[0], h0);
  pool.cache(chain[1], hash_block(h0, iota_tokens(1, 1)));
  pool.free(chain);  // one sequence's table, head first
  EXPECT_EQ(pool.allocate(1)[0], chain[1]);
  EXPECT_TRUE(pool.is_cached(chain[0]));
}

}  // namespace
}  // namespace mlxs::sched
