// Offsets into a circular buffer, allocated and released in order (FIFO): the bookkeeping of a
// pinned staging area whose slots are reused once the device has consumed them.
//
// Positions are byte counts that only grow; a slot's offset is its position modulo the
// capacity. An allocation never wraps around the end: when the end is too short it starts at
// offset 0 and the skipped bytes are released with it; an empty ring starts over at offset 0.
// Plain data, not thread-safe.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>

namespace mlxs {

class ByteRing {
 public:
  explicit ByteRing(uint64_t capacity) : capacity_(capacity) {}

  // The offset of `bytes` contiguous free bytes, or nullopt while they do not fit (release
  // earlier slots first; `bytes` > capacity never fits).
  std::optional<uint64_t> alloc(uint64_t bytes) {
    if (bytes > capacity_) return std::nullopt;
    if (head_ == tail_) head_ = tail_ = (head_ + capacity_ - 1) / capacity_ * capacity_;  // empty
    uint64_t pos = head_;
    const uint64_t off = pos % capacity_;
    if (off + bytes > capacity_) pos += capacity_ - off;  // skip the short end
    if (pos + bytes - tail_ > capacity_) return std::nullopt;
    head_ = pos + bytes;
    return pos % capacity_;
  }
  // The position after every slot allocated so far; release_to(mark()) frees them all.
  uint64_t mark() const { return head_; }
  // Frees every slot allocated before `mark` (a value of mark()); older marks are no-ops.
  void release_to(uint64_t mark) { tail_ = std::clamp(mark, tail_, head_); }
  void release_all() { tail_ = head_; }
  uint64_t used() const { return head_ - tail_; }  // bytes, skipped ends included
  uint64_t capacity() const { return capacity_; }

 private:
  uint64_t capacity_;
  uint64_t head_ = 0, tail_ = 0;
};

}  // namespace mlxs
