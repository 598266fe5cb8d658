// The in-process Engine: validates at the boundary, resolves prompts to tokens, and hands
// requests to the model's runner thread. JSON never reaches here: callers pass native structs.
#include <omp.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <shared_mutex>
#include <utility>

#include "api/config.h"
#include "api/option_schemas.h"
#include "backend/make_backend.h"
#include "engine/chat_format.h"
#include "engine/generation_defaults.h"
#include "engine/model_runner.h"
#include "engine/structured_output.h"
#include "mlxs/engine.h"
#include "model/gguf_model.h"

namespace mlxs {
namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// streaming: every chunk as the engine thread pushes it. Not streaming: token chunks are drained
// from the stream as they come (so backpressure never pauses the request) and joined into one
// final TokenChunk, returned just before the closing metadata or error chunk.
class LocalGenerator final : public Generator {
 public:
  LocalGenerator(std::shared_ptr<Stream> stream, CancelToken cancel, bool streaming)
      : stream_(std::move(stream)), cancel_(std::move(cancel)), streaming_(streaming) {}
  ~LocalGenerator() override {
    stream_->set_listener(nullptr);
    if (!stream_->finished()) cancel();
  }
  const std::string& stream_id() const override { return stream_->id(); }
  std::optional<Chunk> next(std::chrono::milliseconds timeout) override {
    if (closing_) return std::exchange(closing_, std::nullopt);
    if (stream_->finished()) return std::nullopt;
    if (streaming_) return stream_->pop(timeout);
    return next_joined(timeout);
  }
  bool done() const override { return stream_->finished() && !closing_; }
  void cancel() override {
    cancel_.cancel();
    stream_->abandon();
  }
  void set_listener(std::function<void()> notify) override {
    stream_->set_listener(std::move(notify));
  }

 private:
  std::optional<Chunk> next_joined(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      auto chunk = stream_->pop(std::max(left, std::chrono::milliseconds(0)));
      if (!chunk) return std::nullopt;
      if (auto* t = std::get_if<TokenChunk>(&*chunk)) {
        joined_.text += t->text;
        joined_.token_id = t->token_id;
        has_tokens_ = true;
        continue;
      }
      if (!has_tokens_) return chunk;
      closing_ = std::move(chunk);
      joined_.is_final = true;
      has_tokens_ = false;
      return Chunk(std::move(joined_));
    }
  }

  std::shared_ptr<Stream> stream_;
  CancelToken cancel_;
  const bool streaming_;
  TokenChunk joined_;             // not streaming: the text so far
  bool has_tokens_ = false;       // joined_ holds at least one token
  std::optional<Chunk> closing_;  // not streaming: the metadata or error after joined_
};

sched::Priority to_sched(Priority p) {
  switch (p) {
    case Priority::kUrgent:
      return sched::Priority::kUrgent;
    case Priority::kBackground:
      return sched::Priority::kBackground;
    default:
      return sched::Priority::kDefault;
  }
}

// The event listeners. call() runs them under the lock, so removing one (a Subscription's
// reset) waits for a call in progress and the listener is never called after.
class ListenerRegistry : public std::enable_shared_from_this<ListenerRegistry> {
 public:
  Subscription add(EventListener listener) {
    int id;
    {
      std::lock_guard<std::mutex> lock(mu_);
      id = next_id_++;
      listeners_[id] = std::move(listener);
    }
    return Subscription([weak = weak_from_this(), id] {
      if (auto self = weak.lock()) self->remove(id);
    });
  }
  void call(const Event& e) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, l] : listeners_) l(e);
  }

 private:
  void remove(int id) {
    std::lock_guard<std::mutex> lock(mu_);
    listeners_.erase(id);
  }

  std::mutex mu_;
  std::map<int, EventListener> listeners_;  // guarded by mu_
  int next_id_ = 1;                         // guarded by mu_
};

class LocalEngine final : public Engine {
 public:
  LocalEngine(EngineOptions options, Config config)
      : options_(std::move(options)),
        config_(std::move(config)),
        grammars_(size_t(config_.structured.compile_cache_entries),
                  json_schema_options(config_.structured)),
        started_(EngineClock::now()) {}
  ~LocalEngine() override { dispose(); }

  Result<ModelHandle> load_model(const LoadModelOptions& o) override {
    MLXS_RETURN_IF_ERROR(validate_options(o));
    MLXS_ASSIGN_OR_RETURN(std::string dir, resolve_dir(o));
    MLXS_ASSIGN_OR_RETURN(GenerationDefaults defaults, read_generation_defaults(dir));
    MLXS_RETURN_IF_ERROR(make_room_for(o.model));
    // This thread loads the weights and warms the model up; the engine thread sets its own.
    if (num_threads() > 0) omp_set_num_threads(num_threads());
    MLXS_ASSIGN_OR_RETURN(auto backend, make_backend(config_.backend, options_.device_index));
    auto runner = ModelRunner::start(o.model, dir, std::move(backend),
                                     runner_config_of(config_, num_threads()), o.context_length,
                                     [this](EventPayload p) { emit(std::move(p)); });
    if (!runner.ok()) {
      emit(ErrorEvent{runner.status().code(), runner.status().message(), "load_model"});
      return runner.status();
    }
    auto chat = ChatFormat::load(o.model, dir, (*runner)->tokenizer(), file_access());
    if (!chat.ok()) return chat.status();
    ModelHandle h = handle_of(**runner, dir, o.draft);
    h.has_chat_template = chat->has_template();
    h.end_of_turn_ids = chat->end_of_turn_ids();
    h.chat_template_renders_tools = chat->renders_tools();
    h.tool_call_format = chat->tool_call_format();
    std::shared_ptr<const structured::TokenVocabulary> vocab;
    if ((*runner)->tokenizer()) {
      vocab = structured::TokenVocabulary::from_tokenizer(*(*runner)->tokenizer());
    }
    {
      std::unique_lock lock(mu_);
      handles_[o.model] = h;
      chat_formats_[o.model] = std::make_shared<const ChatFormat>(std::move(*chat));
      defaults_[o.model] = std::move(defaults);
      if (vocab) vocabs_[o.model] = std::move(vocab);
      runners_[o.model] = std::move(*runner);
    }
    emit(ModelLoadedEvent{o.model, h.context_length, o.draft});
    return h;
  }

  Status unload_model(const std::string& id) override {
    std::unique_ptr<ModelRunner> runner;
    {
      std::unique_lock lock(mu_);
      if (!runners_.count(id)) return not_loaded(id);
      runner = take_runner(id);
    }
    runner.reset();  // joins its thread; live requests end cancelled
    emit(ModelUnloadedEvent{id});
    emit(ModelInvalidatedEvent{id, InvalidationReason::kUnload});
    return {};
  }

  std::vector<ModelHandle> list_models() const override {
    std::shared_lock lock(mu_);
    std::vector<ModelHandle> out;
    for (const auto& [id, h] : handles_) out.push_back(h);
    return out;
  }

  Result<ModelHandle> get_model_info(const std::string& id) const override {
    std::shared_lock lock(mu_);
    auto it = handles_.find(id);
    if (it == handles_.end()) return not_loaded(id);
    return it->second;
  }

  Result<std::unique_ptr<Generator>> create_generator(const GeneratorParams& in,
                                                      const GeneratorOptions& opts,
                                                      CancelToken cancel) override {
    MLXS_RETURN_IF_ERROR(validate_options(in));
    MLXS_RETURN_IF_ERROR(validate_options(opts));
    MLXS_RETURN_IF_ERROR(check_limits(in));
    if (in.multimodal) return unavailable("multimodal", "multimodal input");
    if (!in.draft_model.empty()) return unavailable("draft_model", "speculative decoding");
    std::optional<structured::GrammarPtr> grammar;
    if (in.structured) {  // compiled here, on the caller's thread, before any lock
      MLXS_ASSIGN_OR_RETURN(grammar, grammars_.get(*in.structured));
    }
    std::shared_lock lock(mu_);
    auto it = runners_.find(in.model);
    if (it == runners_.end()) return not_loaded(in.model);
    ModelRunner& runner = *it->second;
    const GenerationDefaults& model_defaults = defaults_.at(in.model);
    std::unique_ptr<TokenConstraint> constraint;
    if (grammar) {
      auto vocab = vocabs_.find(in.model);
      if (vocab == vocabs_.end()) {
        return error(ErrorCode::kInvalidParams,
                     "Validation error on field 'structured': model '" + in.model +
                         "' has no tokenizer, which structured output needs");
      }
      constraint = make_grammar_constraint(std::move(*grammar), vocab->second);
    }
    GeneratorParams p =
        apply_sampling_defaults(apply_generation_defaults(in, model_defaults), config_.sampling);
    auto r = std::make_unique<Request>();
    MLXS_ASSIGN_OR_RETURN(r->prompt, resolve_prompt(runner, p.prompt));
    if (!in.max_tokens) p.max_tokens = default_max_tokens(runner, r->prompt.size());
    fill_request(runner, p, opts, std::move(cancel), *r);
    r->constraint = std::move(constraint);
    if (!p.ignore_eos) {
      for (int32_t eos : model_defaults.eos_token_ids) r->stop_token_ids.push_back(eos);
    }
    MLXS_RETURN_IF_ERROR(runner.check_admission(*r));
    if (active_streams() >= config_.stream_registry.max_active_streams) {
      return error(ErrorCode::kCapacityExceeded,
                   "too many active streams (stream_registry.max_active_streams = " +
                       std::to_string(config_.stream_registry.max_active_streams) + ")");
    }
    auto gen = std::make_unique<LocalGenerator>(r->stream, r->cancel, p.streaming);
    streams_.fetch_add(1);
    runner.submit(std::move(r));
    return std::unique_ptr<Generator>(std::move(gen));
  }

  Result<GenerateResult> generate(const GeneratorParams& params,
                                  const GeneratorOptions& options) override {
    GeneratorParams streamed = params;  // the result is whole either way; this keeps every id
    streamed.streaming = true;
    MLXS_ASSIGN_OR_RETURN(auto gen, create_generator(streamed, options, {}));
    GenerateResult out;
    while (!gen->done()) {
      auto chunk = gen->next(std::chrono::milliseconds(100));
      if (!chunk) continue;
      if (auto* t = std::get_if<TokenChunk>(&*chunk)) {
        out.text += t->text;
        out.token_ids.push_back(t->token_id);
      } else if (auto* m = std::get_if<MetadataChunk>(&*chunk)) {
        out.stats = *m;
      } else if (auto* e = std::get_if<ErrorChunk>(&*chunk)) {
        return error(e->code, e->message);
      }
    }
    return out;
  }

  Result<TokenizeResult> tokenize(const std::string& model, const std::string& text,
                                  bool add_special_tokens) const override {
    std::shared_lock lock(mu_);
    MLXS_ASSIGN_OR_RETURN(const Tokenizer* tok, tokenizer_of(model));
    MLXS_RETURN_IF_ERROR(check_prompt_chars(text));
    TokenizeResult r;
    MLXS_ASSIGN_OR_RETURN(r.tokens, tok->encode(text, add_special_tokens));
    for (int32_t id : r.tokens) r.token_strings.push_back(tok->id_to_token(id));
    return r;
  }

  Result<std::string> detokenize(const std::string& model,
                                 const std::vector<int32_t>& ids) const override {
    std::shared_lock lock(mu_);
    MLXS_ASSIGN_OR_RETURN(const Tokenizer* tok, tokenizer_of(model));
    for (int32_t id : ids) {
      if (id < 0 || size_t(id) >= tok->vocab_size()) {
        return error(
            ErrorCode::kInvalidParams,
            "token id " + std::to_string(id) + " is outside the vocabulary of '" + model + "'");
      }
    }
    return tok->decode(ids);
  }

  Result<std::string> apply_chat_template(const std::string& model,
                                          const std::vector<ChatMessage>& messages,
                                          const std::vector<ToolDefinition>& tools) const override {
    std::shared_ptr<const ChatFormat> format;
    {
      std::shared_lock lock(mu_);
      auto it = chat_formats_.find(model);
      if (it == chat_formats_.end()) return not_loaded(model);
      format = it->second;
    }
    return format->render(messages, tools);  // unlocked: a slow template holds up no load or unload
  }

  HealthStatus health_check() const override {
    HealthStatus h;
    h.uptime_s = std::chrono::duration<double>(EngineClock::now() - started_).count();
    h.active_streams = active_streams();
    std::shared_lock lock(mu_);
    h.loaded_models = int32_t(runners_.size());
    if (disposed_) {
      h.status = HealthState::kUnhealthy;
      h.detail = "engine disposed";
    }
    for (const auto& [id, r] : runners_) {
      std::string s = r->breaker_state();
      if (s != "closed" && h.status == HealthState::kHealthy) {
        h.status = HealthState::kDegraded;
        h.detail = "model '" + id + "' circuit breaker " + s;
      }
    }
    return h;
  }

  RuntimeInfo runtime_info() const override {
    RuntimeInfo info;
    info.version = "0.1.0";
    info.backend = "cpu";
    info.num_threads = num_threads() > 0 ? num_threads() : omp_get_max_threads();
    info.breaker_state = "closed";
    const GrammarCache::Stats grammars = grammars_.stats();
    info.grammar_cache_hits = grammars.hits;
    info.grammar_cache_misses = grammars.misses;
    std::shared_lock lock(mu_);
    for (const auto& [id, r] : runners_) {
      info.backend = r->backend_name();
      info.models.push_back(r->stats());
      info.num_threads = info.models.back().num_threads;
      if (r->breaker_state() != "closed") info.breaker_state = r->breaker_state();
    }
    return info;
  }

  Subscription subscribe(EventListener listener) override {
    return listeners_->add(std::move(listener));
  }

  void dispose() override {
    std::map<std::string, std::unique_ptr<ModelRunner>> runners;
    {
      std::unique_lock lock(mu_);
      if (disposed_) return;
      disposed_ = true;
      runners.swap(runners_);
      handles_.clear();
    }
    runners.clear();
    emit(RuntimeStatusEvent{RuntimeStatus::kStopped, RuntimeStatus::kReady});
  }

  void emit(EventPayload p) {
    // Every stream ends with exactly one completed event (errors included): release its slot.
    if (std::holds_alternative<GenerationCompletedEvent>(p)) streams_.fetch_sub(1);
    listeners_->call(Event{now_ms(), std::move(p)});
  }

 private:
  static Status not_loaded(const std::string& id) {
    return error(ErrorCode::kModelNotLoaded, "model '" + id + "' is not loaded");
  }
  static Status unavailable(const std::string& field, const std::string& feature) {
    return error(ErrorCode::kInvalidParams, "Validation error on field '" + field + "': " +
                                                feature + " is not available in this build yet");
  }

  ModelFileAccess file_access() const {
    ModelFileAccess access;
    access.allow_outside = config_.model.allow_files_outside_model_dir;
    return access;
  }

  // CPU compute threads: EngineOptions::num_threads (`--threads`), else backend.cpu.threads;
  // 0 = OpenMP's default.
  int num_threads() const {
    return options_.num_threads > 0 ? options_.num_threads : config_.backend.cpu.threads;
  }

  Status check_limits(const GeneratorParams& p) const {
    if (p.structured) {
      const StructuredOutput& s = *p.structured;
      const int64_t most = config_.model.limits.max_schema_bytes;
      const size_t got = s.schema.text.size() + s.regex.size() + s.grammar.size();
      if (int64_t(got) > most) {
        return error(ErrorCode::kInvalidParams,
                     "Validation error on field 'structured': its schema, regex or grammar must "
                     "be at most " +
                         std::to_string(most) + " bytes (model.limits.max_schema_bytes), got " +
                         std::to_string(got));
      }
    }
    const int32_t most = config_.model.limits.max_generation_tokens;
    if (p.max_tokens && *p.max_tokens > most) {
      return error(ErrorCode::kInvalidParams,
                   "Validation error on field 'max_tokens': must be <= " + std::to_string(most) +
                       " (model.limits.max_generation_tokens), got " +
                       std::to_string(*p.max_tokens));
    }
    return {};
  }

  // Before any tokenizing: the cost of a prompt is bounded by the limit, not by the body size.
  Status check_prompt_chars(const std::string& text) const {
    const int64_t most = config_.model.limits.max_prompt_chars;
    if (int64_t(text.size()) <= most) return {};
    return error(ErrorCode::kInvalidParams,
                 "Validation error on field 'prompt': must be at most " + std::to_string(most) +
                     " chars (model.limits.max_prompt_chars), got " + std::to_string(text.size()));
  }

  // An unset max_tokens: sampling.max_tokens, cut to the context the prompt leaves (at least 1,
  // so a prompt that fills the context is refused by admission with the context's message).
  int32_t default_max_tokens(const ModelRunner& runner, size_t num_prompt_tokens) const {
    const int64_t left = int64_t(runner.max_model_len()) - int64_t(num_prompt_tokens);
    return int32_t(std::max<int64_t>(1, std::min<int64_t>(config_.sampling.max_tokens, left)));
  }

  // Room for model `id` under model.max_loaded_models: when full, unloads the least recently
  // used model with no request in flight (CapacityExceeded when every model is busy). The model
  // goes before the new one loads, so its memory is free for it; a load that then fails leaves
  // one model fewer. Idle is decided under the exclusive lock, which create_generator holds
  // shared until it has submitted: no request can reach the model once it is chosen.
  Status make_room_for(const std::string& id) {
    std::unique_ptr<ModelRunner> victim;
    std::string victim_id;
    {
      std::unique_lock lock(mu_);
      if (runners_.count(id)) {
        return error(ErrorCode::kInvalidParams, "model '" + id + "' is already loaded");
      }
      if (int(runners_.size()) < config_.model.max_loaded_models) return {};
      const ModelRunner* lru = nullptr;
      for (const auto& [name, r] : runners_) {
        if (r->num_in_flight() == 0 && (!lru || r->last_used() < lru->last_used())) lru = r.get();
      }
      if (!lru) {
        return error(ErrorCode::kCapacityExceeded,
                     "already " + std::to_string(runners_.size()) +
                         " models loaded (model.max_loaded_models) and each has requests in "
                         "flight; retry when one is idle, or unload one");
      }
      victim_id = lru->id();
      victim = take_runner(victim_id);
    }
    victim.reset();  // nothing in flight: no request is cancelled
    emit(ModelUnloadedEvent{victim_id});
    emit(ModelInvalidatedEvent{victim_id, InvalidationReason::kEvicted});
    return {};
  }

  // Removes model `id` (loaded) from the registry; mu_ held exclusively.
  std::unique_ptr<ModelRunner> take_runner(const std::string& id) {
    auto it = runners_.find(id);
    std::unique_ptr<ModelRunner> runner = std::move(it->second);
    runners_.erase(it);
    handles_.erase(id);
    defaults_.erase(id);
    chat_formats_.erase(id);
    vocabs_.erase(id);
    return runner;
  }

  // The model folder: local_path, else the id itself if it is a folder, else the first
  // search directory holding it; it must lie inside a trusted directory when any is set.
  Result<std::string> resolve_dir(const LoadModelOptions& o) const {
    namespace fs = std::filesystem;
    std::error_code ec;
    // A model is a folder, or a GGUF file (model/gguf_model.h).
    auto is_model = [&](const std::string& p) {
      return fs::is_directory(p, ec) || !find_gguf_model(p).empty();
    };
    std::string dir = o.local_path;
    if (dir.empty() && is_model(o.model)) dir = o.model;
    for (const auto& root : config_.model.search_directories) {
      if (!dir.empty()) break;
      if (is_model((fs::path(root) / o.model).string())) dir = (fs::path(root) / o.model).string();
    }
    if (dir.empty() || !is_model(dir)) {
      return error(ErrorCode::kModelLoadError,
                   "model '" + o.model + "': no model folder found (give local_path, or put it " +
                       "under a model.search_directories entry)");
    }
    std::string canon = fs::weakly_canonical(dir, ec).string();
    const auto& trusted = config_.model.trusted_model_directories;
    if (!trusted.empty() && std::none_of(trusted.begin(), trusted.end(), [&](const std::string& t) {
          std::string root = fs::weakly_canonical(t, ec).string();
          return canon.compare(0, root.size(), root) == 0 &&
                 (canon.size() == root.size() || canon[root.size()] == '/');
        })) {
      return error(ErrorCode::kModelLoadError,
                   "model folder '" + canon + "' is outside model.trusted_model_directories");
    }
    return canon;
  }

  ModelHandle handle_of(const ModelRunner& r, const std::string& dir, bool draft) const {
    ModelHandle h;
    h.id = r.id();
    h.local_path = dir;
    h.context_length = r.max_model_len();
    h.draft = draft;
    h.architecture = r.model_config().architecture;
    h.num_parameters = r.model_config().num_parameters();
    h.dtype = dtype_name(r.model_config().dtype);
    h.vocab_size = r.model_config().vocab_size;
    h.backend = r.backend_name();
    return h;
  }

  Result<const Tokenizer*> tokenizer_of(const std::string& model) const {
    auto it = runners_.find(model);
    if (it == runners_.end()) return not_loaded(model);
    if (!it->second->tokenizer()) {
      return error(ErrorCode::kTokenizerError, "model '" + model + "' has no tokenizer.json");
    }
    return it->second->tokenizer();
  }

  Result<std::vector<int32_t>> resolve_prompt(const ModelRunner& runner,
                                              const Prompt& prompt) const {
    if (auto* t = std::get_if<PromptTokens>(&prompt)) {
      for (int32_t id : t->tokens) {
        if (id >= runner.model_config().vocab_size) {
          return error(ErrorCode::kInvalidParams,
                       "Validation error on field 'prompt.tokens': token id " + std::to_string(id) +
                           " is outside the vocabulary (size " +
                           std::to_string(runner.model_config().vocab_size) + ")");
        }
      }
      if (t->tokens.empty()) {
        return error(ErrorCode::kInvalidParams,
                     "Validation error on field 'prompt.tokens': must not be empty");
      }
      return t->tokens;
    }
    std::string text;
    if (auto* s = std::get_if<std::string>(&prompt)) {
      text = *s;
    } else {
      MLXS_ASSIGN_OR_RETURN(text, render_prompt_template(std::get<PromptTemplate>(prompt)));
    }
    MLXS_RETURN_IF_ERROR(check_prompt_chars(text));
    if (!runner.tokenizer()) {
      return error(ErrorCode::kTokenizerError,
                   "model '" + runner.id() + "' has no tokenizer.json; give the prompt as tokens");
    }
    MLXS_ASSIGN_OR_RETURN(std::vector<int32_t> ids, runner.tokenizer()->encode(text, true));
    if (ids.empty()) {
      return error(ErrorCode::kInvalidParams,
                   "Validation error on field 'prompt': encodes to no tokens");
    }
    return ids;
  }

  void fill_request(const ModelRunner& runner, const GeneratorParams& p, const GeneratorOptions& o,
                    CancelToken cancel, Request& r) {
    r.id = next_id_.fetch_add(1);
    r.stream_id = o.stream_id.empty() ? "gen-" + std::to_string(r.id) : o.stream_id;
    r.model_id = p.model;
    r.max_tokens = *p.max_tokens;
    SamplingParams& s = r.sampling;
    s.temperature = float(*p.temperature);
    s.top_k = *p.top_k;
    s.top_p = float(*p.top_p);
    s.min_p = float(*p.min_p);
    s.presence_penalty = float(*p.presence_penalty);
    s.frequency_penalty = float(*p.frequency_penalty);
    s.repetition_penalty = float(*p.repetition_penalty);
    s.seed = p.seed ? uint64_t(*p.seed)
                    : std::random_device{}() | uint64_t(std::random_device{}()) << 32;
    s.top_logprobs = p.top_logprobs;
    r.logprobs = p.logprobs;
    r.stop_sequences = p.stop_sequences;
    r.stop_token_ids = p.stop_token_ids;
    if (!p.ignore_eos) {
      for (int eos : runner.model_config().eos_token_ids) r.stop_token_ids.push_back(eos);
      if (runner.tokenizer()) {
        for (int32_t eos : runner.tokenizer()->eos_ids()) r.stop_token_ids.push_back(eos);
      }
    }
    r.priority = to_sched(o.priority);
    r.submitted = EngineClock::now();
    const int64_t timeout =
        o.timeout_ms > 0 ? o.timeout_ms : config_.stream_registry.default_timeout_ms;
    if (timeout > 0) r.deadline = r.submitted + std::chrono::milliseconds(timeout);
    r.cancel = std::move(cancel);
    r.stream = std::make_shared<Stream>(r.stream_id, size_t(config_.stream_registry.buffer_chunks));
    r.history.add_prompt(r.prompt);
    if (runner.tokenizer()) {
      r.detokenizer =
          std::make_unique<Detokenizer>(*runner.tokenizer(), /*skip_special_tokens=*/true);
    }
    r.stop = std::make_unique<StopMatcher>(r.stop_sequences);
  }

  int active_streams() const { return streams_.load(); }

  EngineOptions options_;
  Config config_;
  GrammarCache grammars_;
  EngineClock::time_point started_;
  mutable std::shared_mutex mu_;
  std::map<std::string, std::unique_ptr<ModelRunner>> runners_;  // guarded by mu_
  std::map<std::string, ModelHandle> handles_;                   // guarded by mu_
  std::map<std::string, GenerationDefaults> defaults_;           // guarded by mu_
  bool disposed_ = false;                                        // guarded by mu_
  // Guarded by mu_; a renderer copies the pointer out and renders unlocked.
  std::map<std::string, std::shared_ptr<const ChatFormat>> chat_formats_;
  // The tokenizer's vocabulary as bytes, for constrained decoding; models with a tokenizer.
  std::map<std::string, std::shared_ptr<const structured::TokenVocabulary>> vocabs_;
  // Shared with the Subscriptions it hands out, which may outlive the engine.
  std::shared_ptr<ListenerRegistry> listeners_ = std::make_shared<ListenerRegistry>();
  std::atomic<uint64_t> next_id_{1};
  std::atomic<int> streams_{0};
};

}  // namespace

Result<std::unique_ptr<Engine>> create_engine(const EngineOptions& options) {
  MLXS_RETURN_IF_ERROR(validate_options(options));
  EnvMap env = options.env_overrides ? process_environment() : EnvMap{};
  MLXS_ASSIGN_OR_RETURN(Config config, load_config(options.config_path, env));
  // The caller's explicit choices (serve --device, --threads) take precedence over the file.
  if (options.device != Device::kAuto) config.backend.device = options.device;
  if (options.num_threads > 0) config.backend.cpu.threads = options.num_threads;
  MLXS_RETURN_IF_ERROR(check_backend_device(config.backend));
  if (options.num_threads > 0) omp_set_num_threads(options.num_threads);
  auto engine = std::make_unique<LocalEngine>(options, std::move(config));
  engine->emit(RuntimeStatusEvent{RuntimeStatus::kReady, RuntimeStatus::kStarting});
  return std::unique_ptr<Engine>(std::move(engine));
}

}  // namespace mlxs
