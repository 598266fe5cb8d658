// The model runner when its backend fails, with steps pipelined (two in flight): a step whose
// backend reports an error fails exactly the requests it carried (GenerationError, naming the
// cause) and the runner goes on serving the others; repeated failures open the circuit breaker,
// which refuses new requests until its recovery timeout, then closes after successful probes.
// The backend is the real CPU backend behind a decorator that reports injected errors
// (backend/fault_backend.h). The same decorator, playing a device of a given size, checks how the
// runner sizes the KV pool.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <unordered_map>

#include "backend/fault_backend.h"
#include "backend/make_backend.h"
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

// The KV pool sized from memory through the runner (policy: engine/kv_pool.h): on a device,
// from what is free once the largest steps ran; on the host, from the byte budget.
class ModelRunnerPool : public ::testing::Test {
 protected:
  Result<std::unique_ptr<ModelRunner>> start(RunnerConfig rc, int64_t device_bytes = 0) {
    auto fault = std::make_unique<FaultBackend>(make_cpu_backend(2));
    backend_ = fault.get();
    if (device_bytes) backend_->emulate_device(device_bytes);
    rc.scheduler.block_size = 16;
    rc.scheduler.num_blocks = 0;                // sized from memory
    rc.scheduler.max_num_batched_tokens = 256;  // keeps the largest step short on the CPU
    return ModelRunner::start("m", kModelDir, std::move(fault), rc, 512, [](EventPayload) {});
  }
  // KV bytes per block of the default model in f32: 2 x 10 layers x 16 tokens x 2 x 64.
  static constexpr int64_t kBlockBytes = int64_t(2) * 10 * 16 * 2 * 64 * 4;
  FaultBackend* backend_ = nullptr;
};

TEST_F(ModelRunnerPool, ADeviceGetsTheMemoryFractionOfWhatTheLargestStepsLeave) {
  RunnerConfig rc;
  rc.kv_memory_fraction = 0.5;
  auto r = start(rc, int64_t(512) << 20);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  // The largest prefill-shaped and decode steps ran (on a one-block cache) before the query.
  EXPECT_GE(backend_->steps_before_last_query(), 2);
  const MemoryInfo q = backend_->last_query();
  ASSERT_GT(q.free_bytes, 0);
  const ModelStats s = (*r)->stats();
  EXPECT_EQ(s.kv_blocks_total, int(int64_t(0.5 * double(q.free_bytes)) / kBlockBytes));
  EXPECT_LT(s.kv_blocks_total, 256 * 32);  // the fraction decided, not the bound of rule 4
  EXPECT_EQ(s.kv_block_size, 16);
  EXPECT_EQ(s.kv_cache_bytes, s.kv_blocks_total * kBlockBytes);
}

TEST_F(ModelRunnerPool, AFractionBelowOneSequenceIsRefusedNamingTheKey) {
  RunnerConfig rc;
  rc.kv_memory_fraction = 0.001;  // ~0.4 MiB of ~460 MiB: 2 blocks, a sequence of 512 needs 32
  auto r = start(rc, int64_t(512) << 20);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kModelLoadError);
  EXPECT_NE(r.status().message().find("raise kv_cache.memory_fraction"), std::string::npos)
      << r.status().message();
}

// On a GPU: the pool is memory_fraction of what was free before it was allocated, so it lies
// between that fraction of the memory free after the load and of the device's total.
TEST_F(ModelRunnerPool, CudaGetsTheMemoryFractionOfItsFreeMemory) {
  BackendConfig on_gpu;
  on_gpu.device = Device::kCuda;
  auto cuda = make_backend(on_gpu);
  if (!cuda.ok()) GTEST_SKIP() << "no GPU: " << cuda.status().to_string();
  RunnerConfig rc;
  rc.scheduler.block_size = 16;
  rc.scheduler.num_blocks = 0;
  rc.kv_memory_fraction = 0.01;  // below what 256 sequences of 2,048 tokens need, on any GPU
  auto r = ModelRunner::start("m", kModelDir, std::move(*cuda), rc, 2048, [](EventPayload) {});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  auto probe = make_backend(on_gpu);
  ASSERT_TRUE(probe.ok());
  const MemoryInfo after = *(*probe)->device_memory();
  const ModelStats s = (*r)->stats();
  const int64_t block = s.kv_cache_bytes / s.kv_blocks_total;
  EXPECT_LE(s.kv_cache_bytes, int64_t(0.01 * double(after.total_bytes)));
  EXPECT_GE(s.kv_cache_bytes + block, int64_t(0.01 * double(after.free_bytes)));
}

TEST_F(ModelRunnerPool, TheHostPoolFollowsTheByteBudget) {
  RunnerConfig rc;
  rc.cpu_kv_cache_bytes = 100 * kBlockBytes + 1;
  auto r = start(rc);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ((*r)->stats().kv_blocks_total, 100);
  EXPECT_EQ((*r)->stats().kv_cache_bytes, 100 * kBlockBytes);

  rc.cpu_kv_cache_bytes = 31 * kBlockBytes;  // one block short of a 512-token sequence
  r = start(rc);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("raise kv_cache.cpu_memory_bytes"), std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace mlxs
