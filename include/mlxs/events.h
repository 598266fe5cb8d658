// Engine events: what a listener registered on the engine is told, in the order it happens. The
// eight event names are the original mlx-serving's (`model:loaded`, ...); here every one of them
// is emitted. Listeners run on the engine's threads and must not block.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "mlxs/chunk.h"
#include "mlxs/status.h"

namespace mlxs {

enum class EventType {
  kModelLoaded,          // "model:loaded"
  kModelUnloaded,        // "model:unloaded"
  kModelInvalidated,     // "model:invalidated"
  kError,                // "error"
  kGenerationStarted,    // "generation:started"
  kGenerationToken,      // "generation:token"
  kGenerationCompleted,  // "generation:completed"
  kRuntimeStatus,        // "runtime:status"
};

inline constexpr int kNumEventTypes = 8;

// The original's event name, e.g. "model:loaded".
const char* event_name(EventType type);
// The EventType named `name`, or nullopt for an unknown name.
std::optional<EventType> event_type_from_name(std::string_view name);

struct ModelLoadedEvent {
  std::string model_id;
  int32_t context_length = 0;
  bool draft = false;
};

struct ModelUnloadedEvent {
  std::string model_id;
};

// kEvicted: unloaded to make room for another model (model.max_loaded_models).
enum class InvalidationReason { kWorkerRestart, kUnload, kError, kEvicted };

// A model's state was lost (its worker restarted, or it failed); handles to it are stale.
struct ModelInvalidatedEvent {
  std::string model_id;
  InvalidationReason reason = InvalidationReason::kError;
};

struct ErrorEvent {
  ErrorCode code = ErrorCode::kInternalError;
  std::string message;
  std::string context;  // where it happened, e.g. "circuit_breaker", "load_model"
};

struct GenerationStartedEvent {
  std::string stream_id;
  std::string model_id;
  int32_t prompt_tokens = 0;
};

struct GenerationTokenEvent {
  std::string stream_id;
  int32_t token_id = 0;
  std::string text;
  std::optional<double> logprob;
};

struct GenerationCompletedEvent {
  std::string stream_id;
  MetadataChunk stats;
};

enum class RuntimeStatus { kStarting, kReady, kError, kStopped };

struct RuntimeStatusEvent {
  RuntimeStatus status = RuntimeStatus::kStarting;
  std::optional<RuntimeStatus> previous;
};

using EventPayload = std::variant<ModelLoadedEvent, ModelUnloadedEvent, ModelInvalidatedEvent,
                                  ErrorEvent, GenerationStartedEvent, GenerationTokenEvent,
                                  GenerationCompletedEvent, RuntimeStatusEvent>;

struct Event {
  int64_t timestamp_ms = 0;  // milliseconds since the Unix epoch
  EventPayload payload;

  // The payload's type; the variant's alternatives are in EventType order.
  EventType type() const { return static_cast<EventType>(payload.index()); }
};

// Called for every event the listener subscribed to; runs on an engine thread, must not block.
using EventListener = std::function<void(const Event&)>;

}  // namespace mlxs
