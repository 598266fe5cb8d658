// The Engine: the public facade of mlx-serving. One interface, two implementations: the local
// engine (models run in this process, one engine thread per model) and, later, a remote runtime
// behind JSON-RPC that implements the same verbs.
//
// Thread safety: every method may be called from any thread. Generators are single-consumer.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mlxs/chunk.h"
#include "mlxs/events.h"
#include "mlxs/options.h"
#include "mlxs/status.h"

namespace mlxs {

enum class ModelState { kLoading, kReady, kFailed };

// How a model writes a tool call, detected from its chat template (see ChatFormat):
// kLlama3Json: {"name": ..., "parameters": {...}} (Llama 3.1/3.2, optionally after
// <|python_tag|>); kHermes: <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>, one
// block per call (Qwen2.5, Qwen3, Hermes); kMistral: [TOOL_CALLS][{"name": ..., "arguments":
// {...}}, ...]; kNone: none of these (no template, or one whose tool format is not known).
enum class ToolCallFormat { kNone, kLlama3Json, kHermes, kMistral };

// An event listener's registration (Engine::subscribe). Destroying it, or reset(), unsubscribes
// and waits out a call of the listener in progress, so a listener never outlives what it
// captures; a test that returns early cannot leave a callback pointing at its dead stack frame.
// Move-only. Safe to destroy after the engine (it then does nothing); not from inside its own
// listener (that would wait for itself).
class Subscription {
 public:
  Subscription() = default;
  explicit Subscription(std::function<void()> unsubscribe) : unsubscribe_(std::move(unsubscribe)) {}
  Subscription(Subscription&& other) noexcept : unsubscribe_(std::move(other.unsubscribe_)) {
    other.unsubscribe_ = nullptr;
  }
  Subscription& operator=(Subscription&& other) noexcept {
    if (this != &other) {
      reset();
      unsubscribe_ = std::move(other.unsubscribe_);
      other.unsubscribe_ = nullptr;
    }
    return *this;
  }
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;
  ~Subscription() { reset(); }

  // Unsubscribes now (idempotent).
  void reset() {
    if (!unsubscribe_) return;
    auto f = std::move(unsubscribe_);
    unsubscribe_ = nullptr;
    f();
  }
  bool active() const { return static_cast<bool>(unsubscribe_); }

 private:
  std::function<void()> unsubscribe_;
};

struct ModelHandle {
  std::string id;
  std::string local_path;
  ModelState state = ModelState::kReady;
  int32_t context_length = 0;
  bool draft = false;
  // From config.json: architecture, parameters, dtype, vocab size, backend.
  std::string architecture;
  int64_t num_parameters = 0;
  std::string dtype;
  int32_t vocab_size = 0;
  std::string backend;
  // From tokenizer_config.json and the vocabulary: whether the model has a chat template (else
  // it serves completions only, see Engine::apply_chat_template), and the ids of the
  // single-token end-of-turn markers it defines (<|im_end|>, <|eot_id|>, ...), which end an
  // assistant turn.
  bool has_chat_template = false;
  std::vector<int32_t> end_of_turn_ids;
  // Tool calling through the chat template (ChatFormat, src/engine/chat_format.h): whether the
  // template renders the `tools` variable, and the tool-call format its model writes.
  bool chat_template_renders_tools = false;
  ToolCallFormat tool_call_format = ToolCallFormat::kNone;
};

// A call of a tool, as an assistant message of a conversation carries it.
struct ToolCall {
  std::string id;      // the caller's id of the call; tool messages answer it
  std::string name;    // the function's name
  JsonText arguments;  // a JSON object
};

// A tool (a function) the model may call, for Engine::apply_chat_template.
struct ToolDefinition {
  std::string name;
  std::string description;
  JsonText parameters;  // a JSON Schema object
};

// One message of a conversation, for Engine::apply_chat_template.
struct ChatMessage {
  std::string role;  // "system", "user", "assistant" or "tool"
  std::string content;
  std::vector<ToolCall> tool_calls = {};  // assistant: the calls it made
  std::string tool_call_id = {};          // tool: the call this result answers
  std::string name = {};                  // tool: the function that was called
};

// A cancellation flag shared between a caller and the engine. Copies share the flag.
class CancelToken {
 public:
  CancelToken() : flag_(std::make_shared<std::atomic<bool>>(false)) {}
  void cancel() const { flag_->store(true, std::memory_order_relaxed); }
  bool cancelled() const { return flag_->load(std::memory_order_relaxed); }

 private:
  std::shared_ptr<std::atomic<bool>> flag_;
};

// A running generation: pull its chunks in order. Token chunks, then one metadata chunk
// (always last on success, cancellation and timeout), or one error chunk. Destroying the
// generator cancels the request. Single consumer; cancel() may be called from any thread.
class Generator {
 public:
  virtual ~Generator() = default;
  virtual const std::string& stream_id() const = 0;
  // Blocks until the next chunk or until `timeout` passes (nullopt then, and also after the
  // final chunk was returned: check done()).
  virtual std::optional<Chunk> next(std::chrono::milliseconds timeout) = 0;
  // True once the final chunk (metadata or error) has been returned by next().
  virtual bool done() const = 0;
  virtual void cancel() = 0;
  // For asynchronous consumers: `notify` is called (on an engine thread, so it must not block
  // nor call next()) each time a chunk becomes available, and once at registration when chunks
  // are already waiting. Pull the chunks with next(0ms) from your own thread. Empty = none.
  virtual void set_listener(std::function<void()> notify) = 0;
};

struct GenerateResult {
  std::string text;
  std::vector<int32_t> token_ids;
  MetadataChunk stats;
};

struct TokenizeResult {
  std::vector<int32_t> tokens;
  std::vector<std::string> token_strings;
};

enum class HealthState { kHealthy, kDegraded, kUnhealthy };

struct HealthStatus {
  HealthState status = HealthState::kHealthy;
  double uptime_s = 0;
  int32_t active_streams = 0;
  int32_t loaded_models = 0;
  std::string detail;  // why, when not healthy
};

// Per-model counters for /metrics and runtime info.
struct ModelStats {
  std::string model_id;
  int32_t num_running = 0, num_waiting = 0, num_paused = 0;
  int32_t kv_blocks_used = 0, kv_blocks_total = 0;
  int32_t kv_block_size = 0;   // tokens per block: the pool holds kv_blocks_total * this tokens
  int64_t kv_cache_bytes = 0;  // K and V of every layer, all blocks
  int64_t prefix_hits = 0, prefix_misses = 0, preemptions = 0;
  int64_t prompt_tokens = 0, generated_tokens = 0, requests_finished = 0;
  int64_t steps = 0;
  // Speculative decoding, finished requests: proposals verified, accepted, verification steps.
  int64_t draft_tokens_proposed = 0, draft_tokens_accepted = 0, speculative_steps = 0;
  int32_t num_threads = 0;  // OpenMP threads of the model's engine thread (omp_get_max_threads)
};

struct RuntimeInfo {
  std::string version;
  std::string backend;      // "cpu" or "cuda"
  int32_t num_threads = 0;  // CPU compute threads per model (see ModelStats::num_threads)
  std::vector<ModelStats> models;
  std::string breaker_state;  // circuit breaker around the model runners
  // The structured-output compile cache (structured.compile_cache_entries): requests whose
  // grammar was found compiled, and those compiled.
  int64_t grammar_cache_hits = 0;
  int64_t grammar_cache_misses = 0;
};

class Engine {
 public:
  virtual ~Engine() = default;

  // Loads a model folder (Hugging Face layout) and starts its engine thread.
  virtual Result<ModelHandle> load_model(const LoadModelOptions& options) = 0;
  // Stops the model's thread (in-flight generations end with a Cancelled error chunk).
  virtual Status unload_model(const std::string& id) = 0;
  virtual std::vector<ModelHandle> list_models() const = 0;
  virtual Result<ModelHandle> get_model_info(const std::string& id) const = 0;

  // Validates `params` and queues the request; chunks arrive through the generator. Errors
  // that are known before queueing (validation, unknown model, capacity) come back here.
  virtual Result<std::unique_ptr<Generator>> create_generator(const GeneratorParams& params,
                                                              const GeneratorOptions& options = {},
                                                              CancelToken cancel = {}) = 0;
  // Runs a generation to its end and returns its text and stats.
  virtual Result<GenerateResult> generate(const GeneratorParams& params,
                                          const GeneratorOptions& options = {}) = 0;

  virtual Result<TokenizeResult> tokenize(const std::string& model, const std::string& text,
                                          bool add_special_tokens = true) const = 0;
  virtual Result<std::string> detokenize(const std::string& model,
                                         const std::vector<int32_t>& ids) const = 0;
  // The prompt text for `messages` in the model's chat template, ending with the generation
  // prompt (transformers' apply_chat_template with add_generation_prompt=True). `tools`, when not
  // empty, is the template's `tools` variable ([{type: function, function: {name, description,
  // parameters}}]); assistant tool calls become `tool_calls` [{id, type: function, function:
  // {name, arguments (an object)}}] and tool messages carry `tool_call_id` and `name`, as
  // transformers passes them. kInvalidRequest when the model has no chat template, the template
  // raises, or a tool's parameters or a call's arguments are not a JSON object; kModelNotLoaded.
  virtual Result<std::string> apply_chat_template(
      const std::string& model, const std::vector<ChatMessage>& messages,
      const std::vector<ToolDefinition>& tools = {}) const = 0;

  virtual HealthStatus health_check() const = 0;
  virtual RuntimeInfo runtime_info() const = 0;

  // Registers a listener for every event until the returned Subscription is destroyed or reset.
  // When that returns, the listener is not running and never runs again.
  [[nodiscard]] virtual Subscription subscribe(EventListener listener) = 0;

  // Stops every model thread; pending generations end cancelled. Idempotent.
  virtual void dispose() = 0;
};

// The in-process engine (CPU, or CUDA when built with it and asked for).
Result<std::unique_ptr<Engine>> create_engine(const EngineOptions& options = {});

}  // namespace mlxs
