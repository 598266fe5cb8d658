#include "runtime/stream.h"

namespace mlxs {

void Stream::push(Chunk chunk, bool final) {
  std::shared_ptr<std::function<void()>> listener;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    if (std::holds_alternative<TokenChunk>(chunk)) ++num_token_chunks_;
    buffer_.push_back(std::move(chunk));
    closed_ = final;
    listener = listener_;
  }
  cv_.notify_one();
  if (listener) (*listener)();
}

void Stream::set_listener(std::function<void()> notify) {
  bool pending = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    listener_ = notify ? std::make_shared<std::function<void()>>(std::move(notify)) : nullptr;
    pending = listener_ && !buffer_.empty();
  }
  if (pending) notify_pending_listener();
}

void Stream::notify_pending_listener() {
  std::shared_ptr<std::function<void()>> listener;
  {
    std::lock_guard<std::mutex> lock(mu_);
    listener = listener_;
  }
  if (listener) (*listener)();
}

bool Stream::full() const {
  std::lock_guard<std::mutex> lock(mu_);
  return num_token_chunks_ >= capacity_;
}

bool Stream::pause_if_full(std::function<void()> resume) {
  std::lock_guard<std::mutex> lock(mu_);
  if (num_token_chunks_ < capacity_ || abandoned_) return false;
  resume_ = std::move(resume);
  return true;
}

bool Stream::abandoned() const {
  std::lock_guard<std::mutex> lock(mu_);
  return abandoned_;
}

std::optional<Chunk> Stream::pop(std::chrono::milliseconds timeout) {
  std::function<void()> resume;
  std::optional<Chunk> out;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return !buffer_.empty(); })) return std::nullopt;
    out = std::move(buffer_.front());
    buffer_.pop_front();
    if (std::holds_alternative<TokenChunk>(*out)) --num_token_chunks_;
    if (closed_ && buffer_.empty()) final_popped_ = true;
    if (resume_ && num_token_chunks_ <= capacity_ / 2) resume.swap(resume_);
  }
  if (resume) resume();
  return out;
}

bool Stream::finished() const {
  std::lock_guard<std::mutex> lock(mu_);
  return final_popped_;
}

void Stream::abandon() {
  std::function<void()> resume;
  {
    std::lock_guard<std::mutex> lock(mu_);
    abandoned_ = true;
    resume.swap(resume_);
  }
  if (resume) resume();  // wake the engine so it notices within one step
}

}  // namespace mlxs
