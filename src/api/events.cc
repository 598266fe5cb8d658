// Names of the public enums in include/mlxs/events.h and chunk.h.
#include "mlxs/events.h"

#include <array>

#include "mlxs/chunk.h"

namespace mlxs {
namespace {

constexpr std::array<const char*, kNumEventTypes> kEventNames = {
    "model:loaded",       "model:unloaded",   "model:invalidated",    "error",
    "generation:started", "generation:token", "generation:completed", "runtime:status",
};
static_assert(std::variant_size_v<EventPayload> == kNumEventTypes);

}  // namespace

const char* event_name(EventType type) {
  return kEventNames[static_cast<size_t>(type)];
}

std::optional<EventType> event_type_from_name(std::string_view name) {
  for (size_t i = 0; i < kEventNames.size(); ++i) {
    if (name == kEventNames[i]) return static_cast<EventType>(i);
  }
  return std::nullopt;
}

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kTimeout:
      return "timeout";
    case FinishReason::kError:
      return "error";
  }
  return "error";
}

}  // namespace mlxs
