// Generator::set_listener (the asynchronous consumer's wake-up, used by the HTTP server) and the
// regression test for the active-stream slot that a failed request used to keep forever.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "mlxs/engine.h"

namespace mlxs {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<Engine> engine_with(const std::string& id) {
  EngineOptions o;
  o.env_overrides = false;
  auto e = create_engine(o);
  EXPECT_TRUE(e.ok());
  LoadModelOptions lo;
  lo.model = id;
  lo.local_path = std::string(MLXS_SOURCE_DIR) + "/models/default";
  EXPECT_TRUE((*e)->load_model(lo).ok());
  return std::move(*e);
}

GeneratorParams params(const std::string& model, int max_tokens) {
  GeneratorParams p;
  p.model = model;
  p.prompt = std::string("Call me Ishmael.");
  p.max_tokens = max_tokens;
  p.temperature = 0.0;
  return p;
}

// Every chunk is announced: pulling with next(0ms) only after a notification gets them all.
TEST(GeneratorListener, NotifiesForEveryChunkAndNoPollingIsNeeded) {
  auto engine = engine_with("default");
  auto gen = engine->create_generator(params("default", 12));
  ASSERT_TRUE(gen.ok());
  std::atomic<int> notified{0};
  (*gen)->set_listener([&] { notified.fetch_add(1); });
  int tokens = 0, seen = 0;
  bool meta = false;
  while (!(*gen)->done()) {
    while (notified.load() == seen) std::this_thread::sleep_for(1ms);  // wait for a wake-up
    seen = notified.load();
    while (auto c = (*gen)->next(0ms)) {
      if (std::holds_alternative<TokenChunk>(*c)) ++tokens;
      if (std::holds_alternative<MetadataChunk>(*c)) meta = true;
    }
  }
  EXPECT_EQ(tokens, 12);
  EXPECT_TRUE(meta);
}

// Regression: a request that ended in an error chunk (here: its model was unloaded mid-way) kept
// its slot in stream_registry.max_active_streams, so enough failures locked the engine out.
TEST(GeneratorListener, FailedRequestsReleaseTheirStreamSlot) {
  auto engine = engine_with("victim");
  auto gen = engine->create_generator(params("victim", 2000));
  ASSERT_TRUE(gen.ok());
  ASSERT_TRUE((*gen)->next(30s).has_value());  // running
  ASSERT_TRUE(engine->unload_model("victim").ok());
  bool error = false;
  while (!(*gen)->done()) {
    auto c = (*gen)->next(5s);
    if (c && std::holds_alternative<ErrorChunk>(*c)) error = true;
  }
  EXPECT_TRUE(error);
  EXPECT_EQ(engine->health_check().active_streams, 0);
}

}  // namespace
}  // namespace mlxs
