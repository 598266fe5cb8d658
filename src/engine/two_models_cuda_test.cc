// Two models on one GPU, each on its own CUDA backend: a device error injected into one model's
// step (a real launch error, backend/fault_backend.h) fails only that model's step and
// requests; the other model's steps, interleaved with them, all succeed and decode exactly what
// that model decodes alone. Once on one thread (the steps of both models begun and ended in an
// interleaved order, so an error left pending by one is there when the other checks), once
// with two model runners serving requests at the same time. Skipped without a GPU.
#include <gtest/gtest.h>

#include <numeric>
#include <thread>

#include "backend/fault_backend.h"
#include "backend/make_backend.h"
#include "engine/model_runner.h"
#include "model/test_model.h"

namespace mlxs {
namespace {

using namespace std::chrono_literals;
using test_support::FaultBackend;

constexpr int kBlock = 16;
constexpr int kBlocksPerSeq = 8;  // 128 tokens
constexpr int kSteps = 24;

// A backend on GPU 0 in the fast (bf16) mode; an error without a GPU.
Result<std::unique_ptr<Backend>> fast_gpu() {
  BackendConfig c;
  c.device = Device::kCuda;
  c.cuda.precision = CudaPrecision::kFast;
  return make_backend(c);
}

// One sequence decoded greedily on a model, step by step (begin and end called separately),
// in blocks [first_block, first_block + kBlocksPerSeq) of the model's cache.
class Decoding {
 public:
  Decoding(test_support::LoadedModel& l, int first_block, std::vector<int32_t> prompt)
      : l_(l), pending_(std::move(prompt)) {
    table_.resize(kBlocksPerSeq);
    std::iota(table_.begin(), table_.end(), first_block);
  }
  Status begin() {
    SeqStep st{table_, num_cached_, pending_};
    std::vector<int32_t> flat;
    AttentionBatch b = make_attention_batch(std::span(&st, 1), kBlock, 0, &flat);
    const std::vector<int32_t> rows = {int32_t(flat.size()) - 1};
    return l_.model->begin_step(Model::StepKind::kGreedy, flat, b, rows, *l_.cache, nullptr);
  }
  // Ends the step; on success the sequence advances by the sampled token, on failure it stays
  // where it was, so the same step runs again (its K/V writes are the same).
  Status end() {
    std::vector<int32_t> next;
    Status s = l_.model->end_step(&next, nullptr, nullptr);
    if (!s.ok()) return s;
    num_cached_ += int(pending_.size());
    pending_ = next;
    tokens_.push_back(next.at(0));
    return s;
  }
  const std::vector<int32_t>& tokens() const { return tokens_; }

 private:
  test_support::LoadedModel& l_;
  std::vector<int32_t> table_;
  int num_cached_ = 0;
  std::vector<int32_t> pending_;
  std::vector<int32_t> tokens_;
};

std::vector<int32_t> decode_alone(test_support::LoadedModel& l, int first_block,
                                  const std::vector<int32_t>& prompt) {
  Decoding d(l, first_block, prompt);
  for (int i = 0; i < kSteps; ++i) {
    EXPECT_TRUE(d.begin().ok());
    EXPECT_TRUE(d.end().ok());
  }
  return d.tokens();
}

TEST(CudaTwoModels, InterleavedStepsOnOneThreadKeepEachBackendsErrors) {
  auto a_gpu = fast_gpu();
  if (!a_gpu.ok()) GTEST_SKIP() << a_gpu.status().to_string();
  auto b_gpu = fast_gpu();
  ASSERT_TRUE(b_gpu.ok()) << b_gpu.status().to_string();
  auto fault = std::make_unique<FaultBackend>(std::move(*a_gpu));
  FaultBackend* a_fault = fault.get();
  const int num_blocks = 2 * kBlocksPerSeq;
  test_support::LoadedModel a = test_support::load_test_model(
      std::move(fault), test_support::write_test_model("tiny-llama", DType::kBF16, "mlxs_two_a", 5),
      num_blocks, kBlock, DType::kBF16);
  test_support::LoadedModel b = test_support::load_test_model(
      std::move(*b_gpu),
      test_support::write_test_model("tiny-llama", DType::kBF16, "mlxs_two_b", 6), num_blocks,
      kBlock, DType::kBF16);
  ASSERT_TRUE(a.cache && b.cache);
  const int V = a.model->config().vocab_size;
  const std::vector<int32_t> prompt_a = test_support::test_prompt(9, 1, V),
                             prompt_b = test_support::test_prompt(7, 2, V);
  // Each model alone, in blocks [0, kBlocksPerSeq) of its cache.
  const std::vector<int32_t> alone_a = decode_alone(a, 0, prompt_a);
  const std::vector<int32_t> alone_b = decode_alone(b, 0, prompt_b);
  ASSERT_EQ(int(alone_b.size()), kSteps);

  // Interleaved in the other blocks: A begun, B begun, B ended, A ended. A's step 5 carries the
  // injected launch error; it is pending in A's slot while B's step ends.
  Decoding da(a, kBlocksPerSeq, prompt_a), db(b, kBlocksPerSeq, prompt_b);
  int a_failures = 0;
  for (int i = 0; i < kSteps; ++i) {
    if (i == 5) a_fault->break_next_step();
    ASSERT_TRUE(da.begin().ok());
    ASSERT_TRUE(db.begin().ok());
    const Status sb = db.end();
    EXPECT_TRUE(sb.ok()) << "step " << i << " of B took: " << sb.to_string();
    const Status sa = da.end();
    if (i == 5) {
      ASSERT_FALSE(sa.ok()) << "A's injected error was not reported by A";
      EXPECT_NE(sa.message().find("cudaLaunchKernelEx"), std::string::npos) << sa.message();
      ++a_failures;
      ASSERT_TRUE(da.begin().ok());  // A runs the failed step again; its slot is empty now
      ASSERT_TRUE(da.end().ok());
    } else {
      EXPECT_TRUE(sa.ok()) << "step " << i << " of A: " << sa.to_string();
    }
  }
  EXPECT_EQ(a_failures, 1);
  EXPECT_EQ(db.tokens(), alone_b);
  EXPECT_EQ(da.tokens(), alone_a);
}

// --- two model runners (two engine threads) ------------------------------------------------

const std::string kModelDir = std::string(MLXS_SOURCE_DIR) + "/models/default";

struct Outcome {
  std::vector<int32_t> ids;
  std::optional<MetadataChunk> meta;
  std::optional<ErrorChunk> error;
};

std::unique_ptr<ModelRunner> start_runner(const std::string& id, std::unique_ptr<Backend> b) {
  RunnerConfig rc;
  rc.scheduler.block_size = 16;
  rc.scheduler.num_blocks = 256;  // 4,096 tokens each: two models share the GPU
  auto r = ModelRunner::start(id, kModelDir, std::move(b), rc, 512, [](EventPayload) {});
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? std::move(*r) : nullptr;
}

std::shared_ptr<Stream> submit(ModelRunner& runner, sched::SeqId id, int max_tokens) {
  auto r = std::make_unique<Request>();
  r->id = id;
  r->stream_id = "s" + std::to_string(id);
  r->model_id = runner.id();
  r->prompt = {10, 20, 30, 40, 50};
  r->max_tokens = max_tokens;
  r->sampling.temperature = 0.f;
  r->submitted = EngineClock::now();
  r->stream = std::make_shared<Stream>(r->stream_id, 1024);
  auto stream = r->stream;
  EXPECT_TRUE(runner.check_admission(*r).ok());
  runner.submit(std::move(r));
  return stream;
}

// Reads `s` to its final chunk (at most 30 s); `then` runs after `first_tokens` tokens.
Outcome read(Stream& s, int first_tokens = -1, const std::function<void()>& then = {}) {
  Outcome o;
  const auto give_up = EngineClock::now() + 30s;
  while (!s.finished() && EngineClock::now() < give_up) {
    auto c = s.pop(100ms);
    if (!c) continue;
    if (auto* t = std::get_if<TokenChunk>(&*c)) {
      o.ids.push_back(t->token_id);
      if (int(o.ids.size()) == first_tokens && then) then();
    } else if (auto* m = std::get_if<MetadataChunk>(&*c)) {
      o.meta = *m;
    } else {
      o.error = std::get<ErrorChunk>(*c);
    }
  }
  return o;
}

TEST(CudaTwoModels, AnInjectedErrorOnOneRunnerFailsOnlyItsRequests) {
  auto a_gpu = fast_gpu();
  if (!a_gpu.ok()) GTEST_SKIP() << a_gpu.status().to_string();
  auto b_gpu = fast_gpu();
  ASSERT_TRUE(b_gpu.ok()) << b_gpu.status().to_string();
  auto fault = std::make_unique<FaultBackend>(std::move(*a_gpu));
  FaultBackend* a_fault = fault.get();
  auto a = start_runner("a", std::move(fault));
  auto b = start_runner("b", std::move(*b_gpu));
  ASSERT_TRUE(a && b);
  constexpr int kLong = 200;
  const Outcome b_alone = read(*submit(*b, 1, kLong));
  ASSERT_TRUE(b_alone.meta) << (b_alone.error ? b_alone.error->message : "no final chunk");

  // Both models generate at once; A's step fails once A has streamed 5 tokens, while B is still
  // generating.
  auto sa = submit(*a, 2, kLong);
  auto sb = submit(*b, 3, kLong);
  int b_tokens_at_fault = -1;
  Outcome ob;
  std::thread b_reader([&] { ob = read(*sb); });
  Outcome oa = read(*sa, 5, [&] {
    b_tokens_at_fault = sb->finished() ? kLong : 0;
    a_fault->break_next_step();
  });
  b_reader.join();
  ASSERT_TRUE(oa.error) << "A's stream ended without an error";
  EXPECT_EQ(oa.error->code, ErrorCode::kGenerationError);
  EXPECT_NE(oa.error->message.find("cudaLaunchKernelEx"), std::string::npos) << oa.error->message;
  EXPECT_LT(b_tokens_at_fault, kLong) << "B had finished before the fault: nothing interleaved";
  ASSERT_TRUE(ob.meta) << (ob.error ? ob.error->message : "B's stream ended without a final chunk");
  EXPECT_EQ(ob.ids, b_alone.ids);
  EXPECT_EQ(b->breaker_state(), "closed");
  // A goes on serving: its slot was emptied by the failed step.
  const Outcome again = read(*submit(*a, 4, 20));
  ASSERT_TRUE(again.meta) << (again.error ? again.error->message : "no final chunk");
  EXPECT_EQ(int(again.ids.size()), 20);
}

}  // namespace
}  // namespace mlxs
