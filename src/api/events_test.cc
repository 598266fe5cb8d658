#include "mlxs/events.h"

#include <gtest/gtest.h>

namespace mlxs {
namespace {

TEST(Events, NamesAreTheOriginalsAndRoundTrip) {
  const char* expected[] = {
      "model:loaded",       "model:unloaded",   "model:invalidated",    "error",
      "generation:started", "generation:token", "generation:completed", "runtime:status"};
  for (int i = 0; i < kNumEventTypes; ++i) {
    auto type = static_cast<EventType>(i);
    EXPECT_STREQ(event_name(type), expected[i]);
    EXPECT_EQ(event_type_from_name(expected[i]), type);
  }
  EXPECT_EQ(event_type_from_name("model:reloaded"), std::nullopt);
}

TEST(Events, TypeFollowsThePayload) {
  Event e{123, GenerationCompletedEvent{"s1", MetadataChunk{}}};
  EXPECT_EQ(e.type(), EventType::kGenerationCompleted);
  e.payload = RuntimeStatusEvent{RuntimeStatus::kReady, RuntimeStatus::kStarting};
  EXPECT_EQ(e.type(), EventType::kRuntimeStatus);
  e.payload = ModelLoadedEvent{"m", 4096, false};
  EXPECT_EQ(e.type(), EventType::kModelLoaded);
}

TEST(Chunks, FinishReasonNames) {
  EXPECT_STREQ(finish_reason_name(FinishReason::kStop), "stop");
  EXPECT_STREQ(finish_reason_name(FinishReason::kLength), "length");
  EXPECT_STREQ(finish_reason_name(FinishReason::kCancelled), "cancelled");
  EXPECT_STREQ(finish_reason_name(FinishReason::kTimeout), "timeout");
  EXPECT_STREQ(finish_reason_name(FinishReason::kError), "error");
}

}  // namespace
}  // namespace mlxs
