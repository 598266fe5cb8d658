// KV memory as a pool of fixed-size blocks, with reference counts and a prefix cache.
//
// A block holds the K/V of `block_size` consecutive tokens of one sequence. A FULL block whose
// K/V are computed can be registered in the prefix cache under a BlockHash chained from its
// parent block's hash and its own tokens, so that equal prefixes map to equal hash chains.
// Another sequence with the same prefix then shares the block (refcount + 1) instead of
// recomputing it. A block whose refcount drops to 0 goes to the free queue; if it is cached it
// stays findable there until the pool needs the space, evicted least recently freed first.
//
// Not thread-safe: one owner (the scheduler) calls it from one thread.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

namespace mlxs::sched {

using BlockId = int32_t;

// 128-bit hash of a block's tokens and of every token before them (through `parent`).
struct BlockHash {
  uint64_t lo = 0;
  uint64_t hi = 0;
  friend bool operator==(const BlockHash&, const BlockHash&) = default;
};

struct BlockHashHasher {
  size_t operator()(const BlockHash& h) const {
    return size_t(h.lo ^ (h.hi * 0x9e3779b97f4a7c15ull));
  }
};

// Hash of a full block: XXH3-128 of parent's 16 bytes followed by the tokens (int32 each).
// The first block of a sequence uses the default (zero) parent.
BlockHash hash_block(const BlockHash& parent, std::span<const int32_t> tokens);

class BlockPool {
 public:
  // A pool of `num_blocks` blocks of `block_size` tokens; both must be >= 1 (MLXS_CHECK).
  BlockPool(int num_blocks, int block_size);

  int num_blocks() const { return num_blocks_; }
  int block_size() const { return block_size_; }
  // Blocks with refcount 0 (in the free queue), cached or not: what allocate() can hand out.
  int num_free() const { return num_free_; }
  // Blocks with refcount >= 1. Always num_free() + num_used() == num_blocks().
  int num_used() const { return num_blocks_ - num_free_; }
  // Blocks registered in the prefix cache (in use or free).
  int num_cached() const { return int(cached_.size()); }

  // True when allocate(n) would succeed (n <= num_free()).
  bool can_allocate(int n) const { return n >= 0 && n <= num_free_; }
  // n blocks with refcount 1, taken from the front of the free queue: never-cached blocks
  // first, then cached ones in LRU order (which drops them from the cache).
  // Requires can_allocate(n) (MLXS_CHECK).
  std::vector<BlockId> allocate(int n);
  // Drops one reference from each block. Blocks reaching refcount 0 join the free queue:
  // uncached ones at the front (reused first), cached ones at the back, last block of `blocks`
  // first so that a chain's tail is evicted before its head. Each block must be in use.
  void free(std::span<const BlockId> blocks);

  // --- prefix cache -----------------------------------------------------------------------
  // The longest run of leading `hashes` found in the cache, as block ids, WITHOUT taking
  // references or counting (a lookup may be retried until the request is admitted).
  std::vector<BlockId> find_cached_prefix(std::span<const BlockHash> hashes) const;
  // Counts one admitted lookup for metrics: `num_hits` blocks found, `num_misses` not found.
  void record_lookup(int num_hits, int num_misses) {
    num_prefix_hits_ += num_hits;
    num_prefix_misses_ += num_misses;
  }
  // Takes one reference on each block (found by find_cached_prefix); a free one leaves the
  // free queue. Call right after find_cached_prefix, before any allocate().
  void share(std::span<const BlockId> blocks);
  // Registers an in-use, full, computed block under `hash`. If the hash is already cached
  // (another copy of the same content) the block stays unregistered; returns whether it was.
  // A block already registered keeps its hash (MLXS_CHECK that it is the same).
  bool cache(BlockId block, const BlockHash& hash);

  int refcount(BlockId block) const { return blocks_[size_t(block)].refcount; }
  bool is_cached(BlockId block) const { return blocks_[size_t(block)].hash.has_value(); }
  // Lifetime prefix-cache counters, in blocks, for /metrics.
  int64_t num_prefix_hits() const { return num_prefix_hits_; }
  int64_t num_prefix_misses() const { return num_prefix_misses_; }

 private:
  struct Block {
    int refcount = 0;
    std::optional<BlockHash> hash;  // set while registered in cached_
    BlockId prev = -1;              // free-queue links (valid while refcount == 0)
    BlockId next = -1;
  };

  void queue_push_front(BlockId b);
  void queue_push_back(BlockId b);
  void queue_remove(BlockId b);
  void evict(BlockId b);

  int num_blocks_;
  int block_size_;
  std::vector<Block> blocks_;
  BlockId head_ = -1;  // free queue: allocation takes from head, cached frees go to tail
  BlockId tail_ = -1;
  int num_free_ = 0;
  std::unordered_map<BlockHash, BlockId, BlockHashHasher> cached_;
  int64_t num_prefix_hits_ = 0;
  int64_t num_prefix_misses_ = 0;
};

}  // namespace mlxs::sched
