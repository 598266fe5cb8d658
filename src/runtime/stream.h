// A generation's stream of chunks between the engine thread (producer) and the generator's
// consumer, with backpressure: the buffer holds at most `capacity` token chunks; when it is
// full the engine pauses the request (it stops being scheduled, the batch goes on), and when
// the consumer has drained it to half, the stream asks the engine to resume it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "mlxs/chunk.h"

namespace mlxs {

class Stream {
 public:
  Stream(std::string id, size_t capacity) : id_(std::move(id)), capacity_(capacity) {}

  const std::string& id() const { return id_; }

  // --- producer (engine thread) ---
  // Never blocks. A final chunk (metadata or error) closes the stream for the producer.
  void push(Chunk chunk, bool final);
  // Token chunks buffered >= capacity: the producer should pause the request.
  bool full() const;
  // If the buffer is full, marks the request paused and returns true; `resume` is then called
  // once, from the consumer's thread, when the buffer drains to capacity / 2 (or the consumer
  // abandons the stream). Returns false (and keeps nothing) when the buffer is not full.
  bool pause_if_full(std::function<void()> resume);
  // The consumer is gone (generator destroyed or cancelled).
  bool abandoned() const;
  // Registers `notify`, called on the producer's thread after every push (outside the lock). It
  // must not block; it lets an asynchronous consumer wake up instead of polling pop().
  void set_listener(std::function<void()> notify);

  // --- consumer ---
  std::optional<Chunk> pop(std::chrono::milliseconds timeout);
  bool finished() const;  // the final chunk has been popped
  void abandon();

 private:
  void notify_pending_listener();

  const std::string id_;
  const size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Chunk> buffer_;                         // guarded by mu_
  size_t num_token_chunks_ = 0;                      // guarded by mu_
  bool closed_ = false;                              // final chunk pushed; guarded by mu_
  bool final_popped_ = false;                        // guarded by mu_
  bool abandoned_ = false;                           // guarded by mu_
  std::function<void()> resume_;                     // set while paused; guarded by mu_
  std::shared_ptr<std::function<void()>> listener_;  // guarded by mu_
};

}  // namespace mlxs
