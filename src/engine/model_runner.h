// One loaded model and the thread that runs it: step = schedule -> forward -> sample -> update.
//
// Threads: the engine thread owns the scheduler, the model and every Request; other threads
// talk to it only through the inbox (submit, resume), the lock between them. Cancellation and
// timeouts are polled once per step, so a cancelled request's KV blocks are freed within one
// step.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "backend/backend.h"
#include "engine/request.h"
#include "mlxs/engine.h"
#include "model/decoder.h"
#include "sched/circuit_breaker.h"
#include "sched/scheduler.h"
#include "tokenizer/tokenizer.h"

namespace mlxs {

struct RunnerConfig {
  sched::SchedulerConfig scheduler;           // num_blocks and max_model_len are filled in at load
  int64_t kv_cache_bytes = int64_t(1) << 30;  // KV memory when scheduler.num_blocks <= 0
  size_t stream_buffer_tokens = 64;           // backpressure threshold per stream
  int max_waiting_requests = 4096;  // beyond this, new requests are refused (CapacityExceeded)
  sched::CircuitBreakerConfig breaker;
  int num_threads = 0;
  bool overlap_steps = true;  // host work runs while the backend computes the step
};

using EventSink = std::function<void(EventPayload)>;

class ModelRunner {
 public:
  // Loads `dir` on a new backend and starts the engine thread.
  static Result<std::unique_ptr<ModelRunner>> start(const std::string& id, const std::string& dir,
                                                    std::unique_ptr<Backend> backend,
                                                    RunnerConfig config,
                                                    std::optional<int> context_length,
                                                    EventSink events);
  // Stops the thread; live requests end with a Cancelled error chunk.
  ~ModelRunner();

  const std::string& id() const { return id_; }
  const ModelArch& model_config() const { return model_->config(); }
  const Tokenizer* tokenizer() const { return tokenizer_.get(); }
  int max_model_len() const { return config_.scheduler.max_model_len; }
  std::string backend_name() const { return backend_->name(); }

  // Refusals known before queueing: CapacityExceeded (queue full, KV can never fit),
  // InvalidParams (longer than the context), ServerError (circuit breaker open).
  Status check_admission(const Request& r);
  // Queues `r` for the engine thread (after check_admission).
  void submit(std::unique_ptr<Request> r);
  ModelStats stats() const;
  std::string breaker_state() const;

 private:
  ModelRunner() = default;
  void loop();
  bool drain_inbox();
  void poll_cancellations();
  void step();
  // A sampled token of request r (sequence id): counts it, adds it to the penalty history and
  // queues it for flush_pending(). True when it is a stop token.
  bool account_token(Request& r, const SampleResult& s, sched::SeqId id);
  // Sends the queued tokens of the last step to their streams (detokenized, stop strings
  // matched), then finishes the requests that step ended.
  void flush_pending();
  struct PendingToken {
    sched::SeqId id;
    SampleResult sample;
    bool stop_token;  // one of the request's stop ids
    bool last;        // the request's final token (stop id, max_tokens or the context length)
  };
  // Pushes p's chunk to r's stream; true when it completed a stop string.
  bool emit_token(Request& r, const PendingToken& p);
  void apply_pending_pauses();
  void finish(Request& r, FinishReason reason);
  void fail(Request& r, ErrorCode code, const std::string& message);
  void apply_backpressure(Request& r);
  void wake();

  std::string id_;
  RunnerConfig config_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<KvCache> cache_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::optional<sched::Scheduler> scheduler_;
  EventSink events_;

  // engine thread
  std::unordered_map<sched::SeqId, std::unique_ptr<Request>> live_;
  sched::CircuitBreaker breaker_;
  // Accounted but not yet streamed (see step()): the last step's tokens and finished requests,
  // and backpressure pauses waiting for the step in flight to end.
  std::vector<PendingToken> pending_tokens_;
  std::vector<std::pair<sched::SeqId, FinishReason>> pending_finishes_;
  std::vector<sched::SeqId> pending_pauses_;
  bool step_in_flight_ = false;

  // inbox: the only state shared with other threads
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Request>> inbox_;  // guarded by mu_
  std::vector<sched::SeqId> resumes_;           // guarded by mu_
  ModelStats stats_;                            // guarded by mu_ (copied out by stats())
  std::string breaker_state_ = "closed";        // guarded by mu_
  int num_queued_ = 0;                          // inbox + waiting; guarded by mu_
  bool stop_ = false;                           // guarded by mu_
  std::thread thread_;
};

}  // namespace mlxs
