// The model runner when its backend fails, with steps pipelined (two in flight): a step whose
// backend reports an error fails exactly the requests it carried (GenerationError, naming the
// cause) and the runner goes on serving the others; repeated failures open the circuit breaker,
// which refuses new requests until its recovery timeout, then closes after successful probes.
// The backend is the real CPU backend behind a decorator that reports injected errors
// (backend/fault_backend.h).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "backend/fault_backend.h"
#include "engine/model_runner.h"

namespace mlxs {
namespace {

using namespace std::chrono_literals;

using test_support::FaultBackend;

const std::string kModelDir = std::string(MLXS_SOURCE_DIR) + "/models/default";

struct Outcome {
  int num_tokens = 0;
  std::optional<MetadataChunk> meta;
  std::optional<ErrorChunk> error;
};

class ModelRunnerFaults : public ::testing::Test {
 protected:
  void start(sched::CircuitBreakerConfig breaker = {}) {
    auto inner = make_cpu_backend(2);
    auto fault = std::make_unique<FaultBackend>(std::move(inner));
    fault_ = fault.get();
    RunnerConfig rc;
    rc.scheduler.block_size = 16;
    rc.kv_cache_bytes = int64_t(64) << 20;
    rc.breaker = breaker;
    auto r = ModelRunner::start("m", kModelDir, std::move(fault), rc, 512, [](EventPayload) {});
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    runner_ = std::move(*r);
  }
  // Submits a greedy request of max_tokens tokens (after admission) and returns its stream.
  std::shared_ptr<Stream> submit(int max_tokens) {
    auto r = std::make_unique<Request>();
    r->id = next_id_++;
    r->stream_id = "s" + std::to_string(r->id);
    r->model_id = "m";
    r->prompt = {10, 20, 30, 40, 50};
    r->max_tokens = max_tokens;
    r->sampling.temperature = 0.f;
    r->submitted = EngineClock::now();
    r->stream = std::make_shared<Stream>(r->stream_id, 1024);
    auto stream = r->stream;
    Status admitted = runner_->check_admission(*r);
    if (!admitted.ok()) {
      last_refusal_ = admitted;
      return nullptr;
    }
    runner_->submit(std::move(r));
    return stream;
  }
  // Reads `s` to its final chunk (at most 10 s), after reading `first_tokens` token chunks
  // and calling `then` (a fault to arm mid-stream).
  static Outcome read(Stream& s, int first_tokens = 0, std::function<void()> then = {}) {
    Outcome o;
    const auto give_up = EngineClock::now() + 10s;
    bool armed = first_tokens == 0;
    if (armed && then) then();
    while (!s.finished() && EngineClock::now() < give_up) {
      auto c = s.pop(100ms);
      if (!c) continue;
      if (std::holds_alternative<TokenChunk>(*c)) {
        if (++o.num_tokens == first_tokens && then) then();
      } else if (auto* m = std::get_if<MetadataChunk>(&*c)) {
        o.meta = *m;
      } else {
        o.error = std::get<ErrorChunk>(*c);
      }
    }
    return o;
  }
  template <class Pred>
  bool eventually(Pred pred) {
    for (int i = 0; i < 400 && !pred(); ++i) std::this_thread::sleep_for(5ms);
    return pred();
  }

  FaultBackend* fault_ = nullptr;
  std::unique_ptr<ModelRunner> runner_;
  sched::SeqId next_id_ = 1;
  Status last_refusal_;
};

TEST_F(ModelRunnerFaults, AFailedStepFailsItsRequestsAndTheRunnerGoesOn) {
  start();
  auto a = submit(60);
  ASSERT_TRUE(a);
  // Fails the step in flight once `a` has streamed 5 tokens; `a` is in every step.
  Outcome oa = read(*a, 5, [&] { fault_->fail_next(1); });
  ASSERT_TRUE(oa.error) << "the stream ended without an error";
  EXPECT_EQ(oa.error->code, ErrorCode::kGenerationError);
  EXPECT_NE(oa.error->message.find("injected device fault"), std::string::npos)
      << oa.error->message;
  EXPECT_LT(oa.num_tokens, 60);
  // The runner serves the next requests in full, two at once.
  auto b = submit(12), c = submit(20);
  ASSERT_TRUE(b && c);
  Outcome ob = read(*b), oc = read(*c);
  ASSERT_TRUE(ob.meta && oc.meta) << (ob.error ? ob.error->message : "") << " / "
                                  << (oc.error ? oc.error->message : "");
  EXPECT_EQ(ob.num_tokens, 12);
  EXPECT_EQ(oc.num_tokens, 20);
  EXPECT_EQ(ob.meta->finish_reason, FinishReason::kLength);
  EXPECT_EQ(runner_->breaker_state(), "closed");
}

TEST_F(ModelRunnerFaults, RepeatedFailuresOpenTheBreakerUntilItsRecoveryTimeout) {
  sched::CircuitBreakerConfig cb;
  cb.failure_threshold = 2;
  cb.recovery_timeout_ms = 1000;
  cb.success_threshold = 2;
  start(cb);
  fault_->fail_next(1000);
  // Every step fails (a request's first step, and the step queued behind it), so two requests
  // make at least the two failures that open the breaker. (A third may still be admitted: the
  // breaker's state reaches admission once per engine loop, after the error chunk.)
  for (int i = 0; i < 2; ++i) {
    auto s = submit(30);
    if (!s) break;
    Outcome o = read(*s);
    ASSERT_TRUE(o.error);
    EXPECT_EQ(o.error->code, ErrorCode::kGenerationError);
  }
  ASSERT_TRUE(eventually([&] { return runner_->breaker_state() == "open"; }));
  EXPECT_FALSE(submit(5));
  EXPECT_EQ(last_refusal_.code(), ErrorCode::kServerError);
  EXPECT_NE(last_refusal_.message().find("circuit breaker open"), std::string::npos);
  // The device recovers; after the recovery timeout a request goes through as the probe and
  // the breaker closes after its successful steps.
  fault_->fail_next(0);
  std::this_thread::sleep_for(1050ms);
  std::shared_ptr<Stream> s;
  ASSERT_TRUE(eventually([&] { return (s = submit(8)) != nullptr; })) << last_refusal_.to_string();
  Outcome o = read(*s);
  ASSERT_TRUE(o.meta) << (o.error ? o.error->message : "no final chunk");
  EXPECT_EQ(o.num_tokens, 8);
  EXPECT_TRUE(eventually([&] { return runner_->breaker_state() == "closed"; }))
      << runner_->breaker_state();
}

}  // namespace
}  // namespace mlxs
