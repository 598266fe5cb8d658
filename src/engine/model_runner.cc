#include "engine/model_runner.h"

#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <future>

#include "model/gguf_model.h"
#include "model/gguf_tokenizer.h"
#include "sched/scheduler_output.h"
#include "util/check.h"

namespace mlxs {
RunnerConfig runner_config_of(const Config& config, int num_threads) {
  RunnerConfig rc;
  rc.scheduler = config.scheduler;
  rc.scheduler.block_size = config.kv_cache.block_size;
  rc.scheduler.num_blocks = config.kv_cache.num_blocks;
  rc.scheduler.prefix_caching = config.kv_cache.prefix_caching;
  rc.kv_memory_fraction = config.kv_cache.memory_fraction;
  rc.cpu_kv_cache_bytes = config.kv_cache.cpu_memory_bytes;
  rc.stream_buffer_tokens = size_t(config.stream_registry.buffer_chunks);
  rc.breaker = config.circuit_breaker;
  rc.num_threads = num_threads;
  rc.default_context_length = config.model.default_context_length;
  rc.file_access.allow_outside = config.model.allow_files_outside_model_dir;
  return rc;
}

Result<std::unique_ptr<ModelRunner>> ModelRunner::start(
    const std::string& id, const std::string& dir, std::unique_ptr<Backend> backend,
    RunnerConfig config, std::optional<int> context_length, EventSink events) {
  std::unique_ptr<ModelRunner> r(new ModelRunner());
  r->id_ = id;
  r->events_ = std::move(events);
  r->backend_ = std::move(backend);
  MLXS_ASSIGN_OR_RETURN(r->model_, Model::load(dir, *r->backend_, config.file_access));
  const ModelArch& mc = r->model_->config();
  // A folder without tokenizer.json takes token ids only; one whose tokenizer.json is broken
  // fails the load (it used to be dropped in silence, and every text request then failed with
  // a misleading "no tokenizer").
  if (const std::string gguf = find_gguf_model(dir); !gguf.empty()) {
    MLXS_ASSIGN_OR_RETURN(auto file, GgufFile::open(gguf, config.file_access));
    if (file->has("tokenizer.ggml.model")) {
      MLXS_ASSIGN_OR_RETURN(r->tokenizer_, gguf_tokenizer(*file));
    }
  } else if (model_file_exists(dir, "tokenizer.json")) {
    MLXS_ASSIGN_OR_RETURN(r->tokenizer_, Tokenizer::load(dir, config.file_access));
  }
  sched::SchedulerConfig& sc = config.scheduler;
  MLXS_CHECK(sc.block_size > 0);  // the caller fills in kv_cache.block_size
  const int model_len =
      mc.max_position_embeddings > 0 ? mc.max_position_embeddings : config.default_context_length;
  sc.max_model_len = std::min(context_length.value_or(model_len), model_len);
  const int blocks_per_seq = (sc.max_model_len + sc.block_size - 1) / sc.block_size;
  // Block tables cross to the device at their sized width every step, so they are sized for at
  // most 1024 blocks at load; longer sequences widen them on demand (the backend doubles the
  // width and re-records the graphs as they are next used).
  const int table_blocks = std::min(blocks_per_seq, 1024);
  const DType kv_dtype = r->backend_->kv_dtype();
  const int64_t block_bytes = int64_t(KvCache::bytes_per_block(mc, sc.block_size, kv_dtype));
  std::string basis = "kv_cache.num_blocks";
  if (sc.num_blocks <= 0) {
    MLXS_ASSIGN_OR_RETURN(KvPoolSize pool, r->size_pool(config, table_blocks, block_bytes));
    sc.num_blocks = pool.num_blocks;
    basis = pool.basis;
  }
  MLXS_ASSIGN_OR_RETURN(r->cache_,
                        KvCache::create(*r->backend_, mc, sc.num_blocks, sc.block_size, kv_dtype));
  const int64_t pool_bytes = int64_t(sc.num_blocks) * block_bytes;
  std::fprintf(stderr,
               "model %s: KV pool %d blocks of %d tokens = %lld tokens, %s (%s, %s); "
               "max_num_seqs %d, max_num_batched_tokens %d, context %d\n",
               id.c_str(), sc.num_blocks, sc.block_size,
               static_cast<long long>(sc.num_blocks) * sc.block_size,
               format_bytes(pool_bytes).c_str(), dtype_name(kv_dtype), basis.c_str(),
               sc.max_num_seqs, sc.max_num_batched_tokens, sc.max_model_len);
  MLXS_ASSIGN_OR_RETURN(sched::Scheduler s, sched::Scheduler::create(sc));
  r->scheduler_.emplace(std::move(s));
  // Graph backends: every decode-step graph (one per batch-size bucket) is recorded now, with
  // step buffers sized for the largest step, instead of at the first steps of each size.
  int num_graphs = 0;
  MLXS_RETURN_IF_ERROR(r->model_->warm_up(*r->cache_, sc.max_num_seqs, table_blocks,
                                          sc.max_num_batched_tokens, &num_graphs));
  r->breaker_ = sched::CircuitBreaker(config.breaker);
  r->config_ = config;
  r->wire();
  r->stats_.model_id = id;
  r->stats_.kv_blocks_total = sc.num_blocks;
  r->stats_.kv_block_size = sc.block_size;
  r->stats_.kv_cache_bytes = pool_bytes;
  r->last_used_ = EngineClock::now();
  std::promise<void> threads_set;
  r->thread_ = std::thread([p = r.get(), &threads_set] {
    if (p->config_.num_threads > 0) omp_set_num_threads(p->config_.num_threads);
    {
      std::lock_guard<std::mutex> lock(p->mu_);
      p->stats_.num_threads = omp_get_max_threads();
    }
    threads_set.set_value();
    p->loop();
  });
  threads_set.get_future().wait();  // stats report the engine thread's count from the start
  return r;
}

Result<KvPoolSize> ModelRunner::size_pool(const RunnerConfig& config, int table_blocks,
                                          int64_t block_bytes) {
  const sched::SchedulerConfig& sc = config.scheduler;
  KvPoolInputs in;
  in.bytes_per_block = block_bytes;
  in.block_size = sc.block_size;
  in.max_model_len = sc.max_model_len;
  in.max_num_seqs = sc.max_num_seqs;
  in.memory_fraction = config.kv_memory_fraction;
  in.cpu_memory_bytes = config.cpu_kv_cache_bytes;
  if (backend_->device_memory()) {
    // The largest steps run once on a one-block cache, so the memory left counts the
    // activations and step buffers as well as the weights.
    MLXS_ASSIGN_OR_RETURN(
        std::unique_ptr<KvCache> probe,
        KvCache::create(*backend_, model_->config(), 1, sc.block_size, backend_->kv_dtype()));
    MLXS_RETURN_IF_ERROR(model_->reserve_step_buffers(*probe, sc.max_num_seqs, table_blocks,
                                                      sc.max_num_batched_tokens));
    probe.reset();
    in.device = backend_->device_memory();
    if (!in.device) return error(ErrorCode::kModelLoadError, "cannot query the device's memory");
  } else {
    in.host = host_memory();
  }
  return size_kv_pool(in);
}

ModelRunner::~ModelRunner() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (!output_) return;  // the load failed
  const std::string unloaded = "model '" + id_ + "' was unloaded";
  for (auto& req : inbox_) output_->fail(*req, ErrorCode::kCancelled, unloaded);
  output_->fail_all(ErrorCode::kCancelled, unloaded);
}

Status ModelRunner::check_admission(const Request& r) {
  const auto& sc = config_.scheduler;
  const int64_t total = int64_t(r.prompt.size()) + r.max_tokens;
  if (total > sc.max_model_len) {
    return error(ErrorCode::kInvalidParams,
                 "prompt (" + std::to_string(r.prompt.size()) + " tokens) + max_tokens (" +
                     std::to_string(r.max_tokens) + ") exceeds the context length of model '" +
                     id_ + "' (" + std::to_string(sc.max_model_len) + ")");
  }
  const int64_t blocks = (total - 1 + sc.block_size - 1) / sc.block_size;
  if (blocks > sc.num_blocks) {
    // Waiting would not help: this is bad input for this deployment, not a busy server.
    return error(ErrorCode::kInvalidParams, "prompt + max_tokens need " + std::to_string(blocks) +
                                                " KV blocks but model '" + id_ + "' has " +
                                                std::to_string(sc.num_blocks) +
                                                " in all: lower max_tokens or shorten the prompt");
  }
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = EngineClock::now();
  if (breaker_state_ == "open" && now < breaker_open_until_) {
    // Past the recovery timeout a request is admitted: its first step is the half-open probe
    // (the breaker only moves on when there is work to try).
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(breaker_open_until_ - now);
    return error(ErrorCode::kServerError, "model '" + id_ +
                                              "' is failing (circuit breaker open, retry in " +
                                              std::to_string(ms.count()) + " ms)");
  }
  if (num_queued_ >= config_.scheduler.max_waiting_requests) {
    return error(ErrorCode::kCapacityExceeded, "model '" + id_ +
                                                   "' is busy: " + std::to_string(num_queued_) +
                                                   " requests already waiting");
  }
  return {};
}

void ModelRunner::submit(std::unique_ptr<Request> r) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++num_queued_;
    inbox_.push_back(std::move(r));
  }
  num_in_flight_.fetch_add(1);
  last_used_ = EngineClock::now();
  cv_.notify_one();
}

void ModelRunner::wake() {
  cv_.notify_one();
}

ModelStats ModelRunner::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

std::string ModelRunner::breaker_state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return breaker_state_;
}

// The output side and the pipeline around the scheduler (after it exists, before the thread).
void ModelRunner::wire() {
  StepOutput::Hooks hooks;
  hooks.events = events_;
  hooks.resume = [this](sched::SeqId id) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      resumes_.push_back(id);
    }
    wake();
  };
  hooks.ended = [this](const Request& r, bool finished) {
    num_in_flight_.fetch_sub(1);
    if (!finished) return;
    std::lock_guard<std::mutex> lock(mu_);
    stats_.prompt_tokens += int64_t(r.prompt.size());
    stats_.generated_tokens += r.num_generated;
    ++stats_.requests_finished;
  };
  output_.emplace(id_, tokenizer_.get(), *scheduler_, std::move(hooks));
  pipeline_.emplace(*model_, *cache_, *scheduler_, config_.scheduler.overlap_steps,
                    [this](sched::SeqId id) -> const Request* { return output_->find(id); });
}

// --- engine thread ----------------------------------------------------------------------

void ModelRunner::loop() {
  for (;;) {
    if (!drain_inbox()) {
      (void)take(pipeline_->end());  // the device is done with the cache before it is freed
      return;
    }
    poll_cancellations();
    const auto s = scheduler_->stats();
    const bool runnable = s.num_running + s.num_waiting > 0;
    // An open breaker holds the batch (live requests keep their deadlines) until its recovery
    // timeout; then one step runs as the half-open probe.
    const bool ran = runnable && breaker_.allow(EngineClock::now());
    if (ran) step();
    {
      std::lock_guard<std::mutex> lock(mu_);
      const auto bs = breaker_.state();
      const auto now = EngineClock::now();
      breaker_open_until_ = now + breaker_.retry_after(now);
      breaker_state_ = bs == sched::BreakerState::kOpen       ? "open"
                       : bs == sched::BreakerState::kHalfOpen ? "half_open"
                                                              : "closed";
      const auto st = scheduler_->stats();
      stats_.num_running = st.num_running;
      stats_.num_waiting = st.num_waiting;
      stats_.num_paused = st.num_paused;
      stats_.kv_blocks_used = st.num_used_blocks;
      stats_.prefix_hits = st.num_prefix_hits;
      stats_.prefix_misses = st.num_prefix_misses;
      stats_.preemptions = st.num_preemptions;
      num_queued_ = int(inbox_.size()) + st.num_waiting;
    }
    if (!ran) {
      // The last step begun, ended without a step after it: its failure still counts.
      if (!end_and_stream().ok()) breaker_.record_failure(EngineClock::now());
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(10),
                   [&] { return stop_ || !inbox_.empty() || !resumes_.empty(); });
    }
  }
}

// Moves new requests into the scheduler and applies resumes. False when stopping.
bool ModelRunner::drain_inbox() {
  std::deque<std::unique_ptr<Request>> fresh;
  std::vector<sched::SeqId> resumes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return false;
    fresh.swap(inbox_);
    resumes.swap(resumes_);
  }
  for (auto& r : fresh) {
    const double arrival = std::chrono::duration<double>(r->submitted.time_since_epoch()).count();
    sched::Sequence seq(r->id, r->prompt, r->max_tokens, r->priority, arrival);
    seq.stop_token_ids = r->stop_token_ids;
    Status s = scheduler_->add(std::move(seq));
    if (!s.ok()) {
      output_->fail(*r, s.code(), s.message());
      continue;
    }
    output_->add(std::move(r));
  }
  for (sched::SeqId id : resumes) {
    Request* r = output_->find(id);
    if (r == nullptr || !r->paused) continue;
    r->paused = false;
    (void)scheduler_->resume(id);
  }
  return true;
}

void ModelRunner::poll_cancellations() {
  for (auto [id, reason] : output_->expired(EngineClock::now())) {
    (void)scheduler_->abort(id, reason);
    output_->finish(id, reason);
  }
}

// Runs one step; the caller's breaker_.allow() is answered by exactly one record_outcome().
//
// Pipelined (runtime/step_pipeline.h): the step planned here (N + 1) is begun before the step
// in flight (N) is ended when it can be, so the device goes from one to the next without
// waiting for the host; then, while N + 1 runs, the host streams N's tokens (detokenize, stop
// strings, chunks, finishes) and applies N + 1's plan to the scheduler. A backpressure pause
// decided while N + 1 runs is applied after N + 1's plan. With scheduler.overlap_steps false
// every step is ended before the next is planned and its tokens are streamed after it.
void ModelRunner::step() {
  sched::SchedulerOutput out = scheduler_->schedule();
  if (out.empty()) {
    record_outcome(end_and_stream());  // nothing to run is no failure
    return;
  }
  StepPlan plan = pipeline_->plan(std::move(out));
  output_->mark_scheduled(plan.out);
  std::vector<EndedStep> ended = pipeline_->advance(std::move(plan));
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.steps;
  }
  Status s;
  for (EndedStep& e : ended) {
    Status t = take(std::move(e));
    if (s.ok()) s = t;
  }
  if (pipeline_->in_flight() == nullptr) {  // the plan never ran
    output_->flush(false);
    output_->apply_pauses();
    record_outcome(s);
    return;
  }
  output_->flush(true);  // host work while the backend runs the step
  for (const sched::FinishedSeq& f : pipeline_->apply_in_flight()) {
    output_->add_finish(f.id, f.reason);
  }
  output_->apply_pauses();
  if (!pipeline_->overlap_steps()) {
    // One step at a time: end it now and stream its tokens before planning the next.
    Status e = end_and_stream();
    if (s.ok()) s = e;
  }
  record_outcome(s);
}

Status ModelRunner::take(std::optional<EndedStep> ended) {
  if (!ended) return {};
  if (!ended->status.ok()) {
    fail_step(ended->plan.out, ended->status);
    return ended->status;
  }
  for (const EndedStep::Seq& seq : ended->seqs) {
    if (!seq.error.ok()) {
      output_->fail(seq.id, ErrorCode::kGenerationError, seq.error.message());
      continue;
    }
    for (int j = 0; j < seq.num_tokens; ++j) {
      const bool last = j + 1 == seq.num_tokens;
      output_->add_token(seq.id, ended->sampled[size_t(seq.first_row + j)],
                         last ? seq.finish : std::nullopt);
    }
  }
  return {};
}

Status ModelRunner::end_and_stream() {
  Status s = take(pipeline_->end());
  output_->flush(false);
  output_->apply_pauses();
  return s;
}

void ModelRunner::record_outcome(const Status& s) {
  if (s.ok()) {
    breaker_.record_success(EngineClock::now());
  } else {
    breaker_.record_failure(EngineClock::now());
  }
}

void ModelRunner::fail_step(const sched::SchedulerOutput& out, const Status& s) {
  for (const auto& seq : out.seqs) {
    (void)scheduler_->abort(seq.id);
    output_->fail(seq.id, ErrorCode::kGenerationError, s.message());
  }
  events_(ErrorEvent{ErrorCode::kGenerationError, s.message(), "model_runner:" + id_});
}

}  // namespace mlxs
