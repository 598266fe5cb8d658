#include "engine/model_runner.h"

#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <future>

#include "runtime/step_batch.h"
#include "sched/scheduler_output.h"
#include "util/check.h"

namespace mlxs {
namespace {

double ms_between(EngineClock::time_point a, EngineClock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// Where a step's tokens are chosen: argmax on the backend, sampling on the backend, or the
// logits downloaded for the host sampler (rows that want top_logprobs alternatives).

// Greedy with nothing that needs the logits on the host (no logprobs, no penalties).
bool is_plain_greedy(const Request& r) {
  const SamplingParams& p = r.sampling;
  return (p.temperature <= 0.0f || p.top_k == 1) && !r.logprobs && p.top_logprobs == 0 &&
         p.repetition_penalty == 1.0f && p.presence_penalty == 0.0f && p.frequency_penalty == 0.0f;
}

// Penalties read the tokens generated so far, on the host.
bool needs_history(const SamplingParams& p) {
  return p.repetition_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f;
}

}  // namespace

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
  if (model_file_exists(dir, "tokenizer.json")) {
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
  for (auto& req : inbox_) fail(*req, ErrorCode::kCancelled, "model '" + id_ + "' was unloaded");
  while (!live_.empty())
    fail(*live_.begin()->second, ErrorCode::kCancelled, "model '" + id_ + "' was unloaded");
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

// --- engine thread ----------------------------------------------------------------------

void ModelRunner::loop() {
  for (;;) {
    if (!drain_inbox()) {
      (void)end_in_flight(nullptr);  // the device is done with the cache before it is freed
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
      if (!end_in_flight(nullptr).ok()) breaker_.record_failure(EngineClock::now());
      stream_pending();
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
    Status s =
        scheduler_->add(sched::Sequence(r->id, r->prompt, r->max_tokens, r->priority, arrival));
    if (!s.ok()) {
      fail(*r, s.code(), s.message());
      continue;
    }
    events_(GenerationStartedEvent{r->stream_id, id_, int32_t(r->prompt.size())});
    live_[r->id] = std::move(r);
  }
  for (sched::SeqId id : resumes) {
    auto it = live_.find(id);
    if (it == live_.end() || !it->second->paused) continue;
    it->second->paused = false;
    (void)scheduler_->resume(id);
  }
  return true;
}

void ModelRunner::poll_cancellations() {
  const auto now = EngineClock::now();
  std::vector<std::pair<sched::SeqId, FinishReason>> ended;
  for (auto& [id, r] : live_) {
    if (r->cancel.cancelled() || r->stream->abandoned())
      ended.push_back({id, FinishReason::kCancelled});
    else if (now >= r->deadline)
      ended.push_back({id, FinishReason::kTimeout});
  }
  for (auto [id, reason] : ended) {
    (void)scheduler_->abort(id, reason);
    auto it = live_.find(id);
    if (it != live_.end()) finish(*it->second, reason);
  }
}

// Runs one step; the caller's breaker_.allow() is answered by exactly one record_*().
//
// Pipeline: the step planned here (N + 1) is queued on the backend before the step in flight (N)
// is ended, so the device goes from one to the next without waiting for the host. N's sampled
// tokens are not on the host when N + 1 is planned: the scheduler holds a placeholder for each
// (-(k + 1) for N's logit row k), which the model reads on the device. Then, while N + 1 runs,
// the host ends N (its tokens replace the placeholders), streams N's tokens (detokenize, stop
// strings, chunks, finishes) and applies N + 1's plan with placeholders of its own.
// Consequences, invisible to clients: a sequence that N ends with a stop token or a stop
// string still computes one token in N + 1, which is dropped; a backpressure pause decided
// while N + 1 runs is applied after N + 1's plan. Steps whose sampling needs the previous
// token on the host (penalties) or whose predecessor left its tokens as logits (top_logprobs)
// wait for N first. With config_.scheduler.overlap_steps false every step is ended before the next
// is planned and its tokens are streamed after it.
void ModelRunner::step() {
  sched::SchedulerOutput out = scheduler_->schedule();
  if (out.empty()) {
    Status s = end_in_flight(nullptr);
    stream_pending();
    record_outcome(s);  // nothing to run is no failure
    return;
  }
  bool needs_history = false;
  StepInFlight plan = plan_step(std::move(out), &needs_history);
  const bool pipelined = config_.scheduler.overlap_steps && in_flight_ &&
                         in_flight_->kind != Kind::kLogits && !needs_history;
  Status s;
  if (!pipelined && in_flight_) {
    std::vector<int32_t> prev;
    s = end_in_flight(&prev);
    if (s.ok()) resolve_on_host(plan.out.token_ids, prev);
  }
  if (s.ok()) s = begin(plan);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.steps;
  }
  if (!s.ok()) {
    // The plan never ran: its sequences fail with the error (a placeholder of theirs cannot be
    // resolved any more), and so does the step in flight, if any.
    (void)end_in_flight(nullptr);
    fail_step(plan.out, s);
    stream_pending();
    record_outcome(s);
    return;
  }
  if (pipelined) s = end_in_flight(nullptr);  // N's tokens, while N + 1 runs
  in_flight_ = std::move(plan);
  flush_pending();  // host work while the backend runs the step
  apply_plan(*in_flight_);
  apply_pending_pauses();
  if (!config_.scheduler.overlap_steps) {
    // One step at a time: end it now and stream its tokens before planning the next.
    Status e = end_in_flight(nullptr);
    s = s.ok() ? e : s;
    stream_pending();
  }
  record_outcome(s);
}

ModelRunner::StepInFlight ModelRunner::plan_step(sched::SchedulerOutput out,
                                                 bool* needs_penalty_history) {
  StepInFlight plan;
  bool all_greedy = true, any_top_logprobs = false;
  for (int i = 0; i < int(out.seqs.size()); ++i) {
    const sched::ScheduledSeq& seq = out.seqs[size_t(i)];
    Request& r = *live_.at(seq.id);
    if (!r.scheduled) r.num_cached_prompt_tokens = seq.start_pos;  // after prefix-cache hits
    r.scheduled = true;
    if (!seq.needs_logits) continue;
    plan.seq_of_row.push_back(i);
    // The index of the token this row draws: every output so far, placeholders included.
    plan.draw_index.push_back(uint64_t(scheduler_->find(seq.id)->num_output_tokens()));
    all_greedy = all_greedy && is_plain_greedy(r);
    any_top_logprobs = any_top_logprobs || r.sampling.top_logprobs > 0;
    *needs_penalty_history = *needs_penalty_history || needs_history(r.sampling);
  }
  // Plain greedy rows take their argmax on the backend, and rows without top_logprobs are
  // sampled there: only ids (and logprobs) cross to the host. Alternatives need the logits.
  plan.kind = all_greedy ? Kind::kGreedy : any_top_logprobs ? Kind::kLogits : Kind::kSampled;
  plan.out = std::move(out);
  return plan;
}

Status ModelRunner::begin(const StepInFlight& plan) {
  StepBatch batch = make_step_batch(plan.out, model_->config().sliding_window);
  SampleBatch sampling;
  if (plan.kind == Kind::kSampled) {
    for (size_t k = 0; k < plan.seq_of_row.size(); ++k) {
      const Request& r = *live_.at(plan.out.seqs[size_t(plan.seq_of_row[k])].id);
      sampling.add_row(r.sampling, r.history, plan.draw_index[k]);
    }
  }
  return model_->begin_step(plan.kind, batch.token_ids, batch.attention, batch.sample_rows, *cache_,
                            &sampling);
}

void ModelRunner::apply_plan(const StepInFlight& plan) {
  std::vector<sched::SampleResult> results(plan.out.seqs.size());
  for (size_t k = 0; k < plan.seq_of_row.size(); ++k) {
    results[size_t(plan.seq_of_row[k])].token = -int32_t(k + 1);
  }
  for (const auto& f : scheduler_->update(plan.out, results)) {
    pending_finishes_.push_back({f.id, f.reason});
  }
}

void ModelRunner::stream_pending() {
  flush_pending();
  apply_pending_pauses();
}

void ModelRunner::record_outcome(const Status& s) {
  if (s.ok()) {
    breaker_.record_success(EngineClock::now());
  } else {
    breaker_.record_failure(EngineClock::now());
  }
}

// Placeholder -(k + 1) in `tokens` becomes prev[k] (the ended step's row k).
void ModelRunner::resolve_on_host(std::vector<int32_t>& tokens, const std::vector<int32_t>& prev) {
  for (int32_t& t : tokens) {
    if (t < 0) t = prev.at(size_t(-int64_t(t) - 1));
  }
}

Status ModelRunner::end_in_flight(std::vector<int32_t>* ids) {
  if (!in_flight_) return {};
  const StepInFlight f = std::move(*in_flight_);
  in_flight_.reset();
  std::vector<float> logits, logprobs;
  std::vector<int32_t> next;
  Status s = model_->end_step(&next, &logprobs, &logits);
  if (!s.ok()) {
    fail_step(f.out, s);
    return s;
  }
  // Rows sampled on the backend are done; the logits path samples on the host, in parallel
  // (sample() is a pure function). Rows of requests that ended meanwhile (a stop string, a
  // cancel) are skipped.
  const int V = model_->config().vocab_size;
  const size_t R = f.seq_of_row.size();
  std::vector<SampleResult> sampled(R);
#pragma omp parallel for if (f.kind == Kind::kLogits && R > 4)
  for (size_t k = 0; k < R; ++k) {
    if (f.kind != Kind::kLogits) {
      sampled[k].token = next[k];
      if (f.kind == Kind::kSampled) sampled[k].logprob = logprobs[k];
      continue;
    }
    auto it = live_.find(f.out.seqs[size_t(f.seq_of_row[k])].id);
    if (it == live_.end()) continue;
    const Request& r = *it->second;
    sampled[k] = sample(std::span(logits).subspan(k * size_t(V), size_t(V)), r.sampling, r.history,
                        f.draw_index[k]);
  }
  if (ids) ids->resize(R);
  for (size_t k = 0; k < R; ++k) {
    if (ids) (*ids)[k] = sampled[k].token;
    const sched::SeqId id = f.out.seqs[size_t(f.seq_of_row[k])].id;
    auto it = live_.find(id);
    if (it == live_.end()) continue;  // ended meanwhile; the scheduler forgot it then
    (void)scheduler_->resolve_placeholder(id, sampled[k].token);  // NotFound: ended by length
    if (account_token(*it->second, sampled[k], id)) end_sequence(id, FinishReason::kStop);
  }
  return {};
}

// Ends a live request's sequence in the scheduler for a reason the engine saw (a stop token or
// stop string); it is finished after its queued tokens are streamed.
void ModelRunner::end_sequence(sched::SeqId id, FinishReason reason) {
  for (auto& f : pending_finishes_) {
    if (f.first == id) {  // the scheduler ended it by length first: the stop wins
      f.second = reason;
      return;
    }
  }
  (void)scheduler_->abort(id, reason);
  pending_finishes_.push_back({id, reason});
}

void ModelRunner::fail_step(const sched::SchedulerOutput& out, const Status& s) {
  for (const auto& seq : out.seqs) {
    (void)scheduler_->abort(seq.id);
    auto it = live_.find(seq.id);
    if (it != live_.end()) fail(*it->second, ErrorCode::kGenerationError, s.message());
  }
  events_(ErrorEvent{ErrorCode::kGenerationError, s.message(), "model_runner:" + id_});
}

void ModelRunner::apply_pending_pauses() {
  for (sched::SeqId id : pending_pauses_) (void)scheduler_->pause(id);
  pending_pauses_.clear();
}

bool ModelRunner::account_token(Request& r, const SampleResult& s, sched::SeqId id) {
  if (r.num_generated == 0) r.first_token = EngineClock::now();
  ++r.num_generated;
  r.history.add_output(s.token);
  const bool stop_token = std::find(r.stop_token_ids.begin(), r.stop_token_ids.end(), s.token) !=
                          r.stop_token_ids.end();
  const int num_tokens = int(r.prompt.size()) + r.num_generated;
  const bool last = stop_token || r.num_generated >= r.max_tokens ||
                    num_tokens >= config_.scheduler.max_model_len;
  pending_tokens_.push_back({id, s, stop_token, last});
  return stop_token;
}

void ModelRunner::flush_pending() {
  std::vector<PendingToken> tokens;
  tokens.swap(pending_tokens_);
  for (PendingToken& p : tokens) {
    auto it = live_.find(p.id);
    if (it == live_.end()) continue;  // cancelled or failed since
    Request& r = *it->second;
    if (emit_token(r, p)) {
      // A stop string: the sequence ends one step late (the step in flight computes one more
      // token for it, dropped).
      (void)scheduler_->abort(p.id, FinishReason::kStop);
      finish(r, FinishReason::kStop);
    } else if (!p.last) {
      apply_backpressure(r);
    }
    // A final token's request is finished below, with the reason the scheduler gave.
  }
  std::vector<std::pair<sched::SeqId, FinishReason>> finishes;
  finishes.swap(pending_finishes_);
  for (auto [id, reason] : finishes) {
    auto it = live_.find(id);
    if (it != live_.end()) finish(*it->second, reason);
  }
}

bool ModelRunner::emit_token(Request& r, const PendingToken& p) {
  const int32_t token = p.sample.token;
  bool stop_text = false;
  std::string text;
  if (!p.stop_token && r.detokenizer) text = r.stop->feed(r.detokenizer->add(token), &stop_text);
  if (stop_text) r.matched_stop = r.stop->matched();
  const bool final = p.last || stop_text;
  if (final && !stop_text && r.detokenizer) {
    bool ignored = false;
    text += r.stop->feed(r.detokenizer->finish(), &ignored);
    if (!ignored) text += r.stop->flush();
  }
  TokenChunk chunk;
  chunk.text = std::move(text);
  chunk.token_id = token;
  chunk.is_final = final;
  if (r.logprobs) chunk.logprob = p.sample.logprob;
  for (const auto& t : p.sample.top) {
    std::string piece = tokenizer_ ? tokenizer_->decode(std::span(&t.token, 1)) : "";
    chunk.top_logprobs.push_back({t.token, std::move(piece), t.logprob});
  }
  events_(GenerationTokenEvent{r.stream_id, token, chunk.text, chunk.logprob});
  r.stream->push(std::move(chunk), false);
  return stop_text;
}

void ModelRunner::finish(Request& r, FinishReason reason) {
  const auto now = EngineClock::now();
  MetadataChunk m;
  m.tokens_generated = r.num_generated;
  m.prompt_tokens = int32_t(r.prompt.size());
  m.cached_prompt_tokens = r.num_cached_prompt_tokens;
  m.total_time_ms = ms_between(r.submitted, now);
  m.time_to_first_token_ms = r.num_generated ? ms_between(r.submitted, r.first_token) : 0.0;
  const double decode_ms = m.total_time_ms - m.time_to_first_token_ms;
  m.tokens_per_second =
      r.num_generated > 1 && decode_ms > 0 ? (r.num_generated - 1) * 1e3 / decode_ms : 0.0;
  m.finish_reason = reason;
  m.model_id = id_;
  m.stop_sequence = r.matched_stop;
  num_in_flight_.fetch_sub(1);
  events_(GenerationCompletedEvent{r.stream_id, m});
  r.stream->push(std::move(m), true);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.prompt_tokens += int64_t(r.prompt.size());
    stats_.generated_tokens += r.num_generated;
    ++stats_.requests_finished;
  }
  live_.erase(r.id);
}

void ModelRunner::fail(Request& r, ErrorCode code, const std::string& message) {
  // The completed event (finish_reason error) also releases the engine's active-stream slot,
  // which is counted down on generation:completed only.
  MetadataChunk m;
  m.tokens_generated = r.num_generated;
  m.prompt_tokens = int32_t(r.prompt.size());
  m.finish_reason = FinishReason::kError;
  m.model_id = id_;
  num_in_flight_.fetch_sub(1);
  events_(GenerationCompletedEvent{r.stream_id, m});
  r.stream->push(ErrorChunk{code, message, ""}, true);
  live_.erase(r.id);
}

void ModelRunner::apply_backpressure(Request& r) {
  if (r.paused) return;
  const sched::SeqId id = r.id;
  bool paused = r.stream->pause_if_full([this, id] {
    {
      std::lock_guard<std::mutex> lock(mu_);
      resumes_.push_back(id);
    }
    wake();
  });
  if (paused) {
    r.paused = true;
    // A sequence of the step in flight is paused once that step's plan is applied.
    if (in_flight_) {
      pending_pauses_.push_back(id);
    } else {
      (void)scheduler_->pause(id);
    }
  }
}

}  // namespace mlxs
