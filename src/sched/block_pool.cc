#include "sched/block_pool.h"

#define XXH_STATIC_LINKING_ONLY  // XXH3_state_t on the stack
#include <xxhash.h>

#include <cstring>

#include "util/check.h"

namespace mlxs::sched {

BlockHash hash_block(const BlockHash& parent, std::span<const int32_t> tokens) {
  XXH3_state_t state;
  XXH3_128bits_reset(&state);
  const uint64_t parent_words[2] = {parent.lo, parent.hi};
  XXH3_128bits_update(&state, parent_words, sizeof(parent_words));
  XXH3_128bits_update(&state, tokens.data(), tokens.size_bytes());
  const XXH128_hash_t h = XXH3_128bits_digest(&state);
  return {h.low64, h.high64};
}

BlockPool::BlockPool(int num_blocks, int block_size)
    : num_blocks_(num_blocks), block_size_(block_size), blocks_(size_t(num_blocks)) {
  MLXS_CHECK(num_blocks >= 1 && block_size >= 1);
  for (BlockId b = 0; b < num_blocks; ++b) queue_push_back(b);
}

std::vector<BlockId> BlockPool::allocate(int n) {
  MLXS_CHECK(can_allocate(n));
  std::vector<BlockId> out;
  out.reserve(size_t(n));
  for (int i = 0; i < n; ++i) {
    const BlockId b = head_;
    queue_remove(b);
    if (blocks_[size_t(b)].hash) evict(b);
    blocks_[size_t(b)].refcount = 1;
    out.push_back(b);
  }
  return out;
}

void BlockPool::free(std::span<const BlockId> blocks) {
  for (size_t i = blocks.size(); i-- > 0;) {
    Block& block = blocks_[size_t(blocks[i])];
    MLXS_CHECK(block.refcount >= 1);
    if (--block.refcount > 0) continue;
    if (block.hash) {
      queue_push_back(blocks[i]);
    } else {
      queue_push_front(blocks[i]);
    }
  }
}

std::vector<BlockId> BlockPool::find_cached_prefix(std::span<const BlockHash> hashes) const {
  std::vector<BlockId> found;
  for (const BlockHash& h : hashes) {
    auto it = cached_.find(h);
    if (it == cached_.end()) break;
    found.push_back(it->second);
  }
  return found;
}

void BlockPool::share(std::span<const BlockId> blocks) {
  for (BlockId b : blocks) {
    Block& block = blocks_[size_t(b)];
    MLXS_CHECK(block.hash.has_value());
    if (block.refcount == 0) queue_remove(b);
    ++block.refcount;
  }
}

bool BlockPool::cache(BlockId b, const BlockHash& hash) {
  Block& block = blocks_[size_t(b)];
  MLXS_CHECK(block.refcount >= 1);
  if (block.hash) {
    MLXS_CHECK(*block.hash == hash);
    return true;
  }
  if (!cached_.emplace(hash, b).second) return false;
  block.hash = hash;
  return true;
}

void BlockPool::evict(BlockId b) {
  Block& block = blocks_[size_t(b)];
  cached_.erase(*block.hash);
  block.hash.reset();
}

// --- the free queue: an intrusive doubly linked list over blocks_ ---------------------------

void BlockPool::queue_push_front(BlockId b) {
  Block& block = blocks_[size_t(b)];
  block.prev = -1;
  block.next = head_;
  if (head_ >= 0) {
    blocks_[size_t(head_)].prev = b;
  } else {
    tail_ = b;
  }
  head_ = b;
  ++num_free_;
}

void BlockPool::queue_push_back(BlockId b) {
  Block& block = blocks_[size_t(b)];
  block.next = -1;
  block.prev = tail_;
  if (tail_ >= 0) {
    blocks_[size_t(tail_)].next = b;
  } else {
    head_ = b;
  }
  tail_ = b;
  ++num_free_;
}

void BlockPool::queue_remove(BlockId b) {
  Block& block = blocks_[size_t(b)];
  if (block.prev >= 0) {
    blocks_[size_t(block.prev)].next = block.next;
  } else {
    head_ = block.next;
  }
  if (block.next >= 0) {
    blocks_[size_t(block.next)].prev = block.prev;
  } else {
    tail_ = block.prev;
  }
  block.prev = block.next = -1;
  --num_free_;
}

}  // namespace mlxs::sched
