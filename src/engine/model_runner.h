// One loaded model and the thread that runs it: step = schedule -> forward -> sample -> update.
// The runner is the wiring: the thread, the inbox, the circuit breaker and the stats, around
// three units that do the work: the scheduler (sched/scheduler.h: what runs, and when a
// sequence ends), the step pipeline (runtime/step_pipeline.h: plan, begin and end a step on the
// model) and the step output (runtime/step_output.h: tokens to text to the request's stream).
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
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>

#include "api/config.h"
#include "backend/backend.h"
#include "engine/kv_pool.h"
#include "mlxs/engine.h"
#include "model/decoder.h"
#include "runtime/request.h"
#include "runtime/speculator.h"
#include "runtime/step_output.h"
#include "runtime/step_pipeline.h"
#include "sched/circuit_breaker.h"
#include "sched/scheduler.h"
#include "tokenizer/tokenizer.h"

namespace mlxs {

struct RunnerConfig {
  // The scheduler section, with block_size and prefix_caching from kv_cache (block_size must be
  // set); num_blocks (when <= 0) and max_model_len are filled in at load.
  sched::SchedulerConfig scheduler;
  // When scheduler.num_blocks <= 0 the pool is sized from memory (engine/kv_pool.h): this share
  // of a device backend's free memory, or this many bytes of host memory (0 = the default).
  double kv_memory_fraction = 0.9;
  int64_t cpu_kv_cache_bytes = 0;
  size_t stream_buffer_tokens = 64;  // backpressure threshold per stream
  sched::CircuitBreakerConfig breaker;
  // OpenMP threads of the engine thread (set there before the first step: OpenMP's thread count
  // is per thread, so the loading thread's setting does not reach it); 0 = OpenMP's default.
  int num_threads = 0;
  int default_context_length = 8192;  // when config.json has no max_position_embeddings
  ModelFileAccess file_access;        // model.allow_files_outside_model_dir
  SpeculatorConfig speculative;       // the speculative section
};

// The runner's share of the engine configuration (scheduler, kv_cache, stream_registry,
// circuit_breaker, model.default_context_length); `num_threads` as resolved by the engine.
RunnerConfig runner_config_of(const Config& config, int num_threads);

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
  // InvalidParams (longer than the context), ServerError (circuit breaker open and within its
  // recovery timeout; after it, the request is admitted as the probe).
  Status check_admission(const Request& r);
  // Queues `r` for the engine thread (after check_admission).
  void submit(std::unique_ptr<Request> r);
  ModelStats stats() const;
  std::string breaker_state() const;
  // Requests submitted and not yet finished (queued, running or paused). Any thread.
  int num_in_flight() const { return num_in_flight_.load(); }
  // When a request was last submitted (the load time before the first). Any thread.
  EngineClock::time_point last_used() const { return last_used_.load(); }

 private:
  ModelRunner() = default;
  // The pool under engine/kv_pool.h's policy, for block tables of `table_blocks` blocks and
  // blocks of `block_bytes` bytes. On a device backend, runs the largest steps first.
  Result<KvPoolSize> size_pool(const RunnerConfig& config, int table_blocks, int64_t block_bytes);
  void wire();
  void loop();
  bool drain_inbox();
  void poll_cancellations();
  void step();
  // Hands an ended step to the output side: its tokens with the scheduler's verdicts, or, when
  // it failed, its requests fail. Returns its status.
  Status take(std::optional<EndedStep> ended);
  // Ends the step in flight, if any, and streams what is pending; returns its status.
  Status end_and_stream();
  // Answers the step's breaker_.allow(): success or failure.
  void record_outcome(const Status& s);
  // Fails every request of `out` with s's message (the backend failed the step).
  void fail_step(const sched::SchedulerOutput& out, const Status& s);
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
  std::optional<StepOutput> output_;      // the live requests
  std::optional<StepPipeline> pipeline_;  // the step in flight
  std::optional<Speculator> speculator_;  // proposals for the next step
  sched::CircuitBreaker breaker_;

  // inbox: the only state shared with other threads
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Request>> inbox_;  // guarded by mu_
  std::vector<sched::SeqId> resumes_;           // guarded by mu_
  ModelStats stats_;                            // guarded by mu_ (copied out by stats())
  std::string breaker_state_ = "closed";        // guarded by mu_
  EngineClock::time_point breaker_open_until_;  // end of the open state's timeout; guarded by mu_
  int num_queued_ = 0;                          // inbox + waiting; guarded by mu_
  bool stop_ = false;                           // guarded by mu_
  std::atomic<int> num_in_flight_{0};
  std::atomic<EngineClock::time_point> last_used_{EngineClock::time_point{}};
  std::thread thread_;
};

}  // namespace mlxs
