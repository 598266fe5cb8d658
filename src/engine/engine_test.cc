// The engine on the embedded default model: the failures the original had, as tests. Batch
// invariance, seeded sampling under any batch, stops across tokens, backpressure, cancellation,
// timeouts, admission control, validation and events.
#include "mlxs/engine.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>
#include <thread>

#include "api/config.h"
#include "backend/make_backend.h"
#include "engine/engine_test_support.h"
#include "model/decoder.h"
#include "model/random_model.h"
#include "runtime/step_batch.h"
#include "tests/golden/logit_tolerance.h"

namespace mlxs {
namespace {

using namespace std::chrono_literals;

const std::string kModelDir = std::string(MLXS_SOURCE_DIR) + "/models/default";

using test_support::Collected;
using test_support::drain;

class EngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // The environment's MLXS_ variables apply (none in CI), so the GPU machine can run these
    // tests in each CUDA mode (MLXS_BACKEND_CUDA_PRECISION=fast, bench/gpu/verify_main.sh).
    EngineOptions o;
    auto e = create_engine(o);
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    engine_ = std::move(*e).release();
    LoadModelOptions lo;
    lo.model = "default";
    lo.local_path = kModelDir;
    auto h = engine_->load_model(lo);
    ASSERT_TRUE(h.ok()) << h.status().to_string();
  }
  static void TearDownTestSuite() {
    delete engine_;
    engine_ = nullptr;
  }

  static GeneratorParams params(const std::string& prompt, int max_tokens, double temperature = 0) {
    GeneratorParams p;
    p.model = "default";
    p.prompt = prompt;
    p.max_tokens = max_tokens;
    p.temperature = temperature;
    return p;
  }
  static Collected run(const GeneratorParams& p, const GeneratorOptions& o = {}) {
    auto g = engine_->create_generator(p, o);
    EXPECT_TRUE(g.ok()) << g.status().to_string();
    return g.ok() ? drain(**g) : Collected{};
  }
  static ModelStats stats() { return engine_->runtime_info().models.at(0); }
  // Polls the engine's counters (published once per engine step) until `pred` holds or 2 s pass.
  template <class Pred>
  static bool eventually(Pred pred) {
    for (int i = 0; i < 400; ++i) {
      if (pred(stats())) return true;
      std::this_thread::sleep_for(5ms);
    }
    return pred(stats());
  }
  static int context_length() { return engine_->get_model_info("default")->context_length; }

  static Engine* engine_;
};

Engine* EngineTest::engine_ = nullptr;

// The default model's logits after `tokens`, from an exact CPU backend (f32 activations, which
// match transformers to ~1e-6: tests/golden), as the reference row of a near-tie check.
std::vector<float> exact_logits_after(const std::vector<int32_t>& tokens) {
  auto backend = make_cpu_backend(0, cpu::preferred_isa(cpu::supported_isa()));
  auto model = Model::load(kModelDir, *backend);
  EXPECT_TRUE(model.ok()) << model.status().to_string();
  if (!model.ok()) return {};
  const int bs = 16, blocks = int(tokens.size()) / bs + 1;
  auto cache = KvCache::create(*backend, (*model)->config(), blocks, bs);
  EXPECT_TRUE(cache.ok());
  std::vector<int32_t> table(static_cast<size_t>(blocks));
  std::iota(table.begin(), table.end(), 0);
  const std::vector<SeqStep> steps = {{table, 0, tokens}};
  std::vector<int32_t> flat;
  AttentionBatch b = make_attention_batch(steps, bs, 0, &flat);
  const std::vector<int32_t> last = {int32_t(tokens.size()) - 1};
  std::vector<float> logits;
  EXPECT_TRUE((*model)->forward(flat, b, last, **cache, &logits).ok());
  return logits;
}

// The tolerance of the default model (bf16 weights, 10 layers) on the CPU kernel family `isa`.
golden::LogitTolerance default_model_tolerance(cpu::Isa isa) {
  return golden::logit_tolerance(isa, DType::kBF16, /*num_layers=*/10, 0);
}

// The engine's greedy output equals transformers' (tests/fixtures/golden/default_model), within
// `tol` (tests/golden/logit_tolerance.h): identical with f32 activations; with bf16 activations
// identical up to a step where the reference's top-2 margin is a near tie, after which the
// continuations are not comparable. The reference ran all steps; the engine stops at EOS (id 0).
// `near_ties`, if given, counts the prompts that ended at a near tie.
void expect_greedy_matches_reference(Engine& engine, const golden::LogitTolerance& tol,
                                     const std::string& label, int* near_ties = nullptr) {
  std::ifstream in(std::string(MLXS_SOURCE_DIR) +
                   "/tests/fixtures/golden/default_model/reference.json");
  auto ref = nlohmann::json::parse(in);
  for (size_t i = 0; i < ref["prompts"].size(); ++i) {
    auto prompt = ref["prompts"][i].get<std::vector<int32_t>>();
    auto want = ref["greedy"][i].get<std::vector<int32_t>>();
    GeneratorParams p;
    p.model = "default";
    p.prompt = PromptTokens{prompt};
    p.max_tokens = int(want.size());
    p.temperature = 0;
    auto g = engine.create_generator(p);
    ASSERT_TRUE(g.ok()) << g.status().to_string();
    Collected c = drain(**g);
    auto eos = std::find(want.begin(), want.end(), 0);
    if (eos != want.end()) want.erase(eos + 1, want.end());
    size_t n = 0;
    while (n < want.size() && n < c.ids.size() && c.ids[n] == want[n]) ++n;
    if (n == want.size()) continue;
    ASSERT_LT(n, c.ids.size()) << "prompt " << i << ": the engine stopped after " << n;
    if (!tol.bf16_activations) {
      ADD_FAILURE() << "prompt " << i << " on " << label << ": step " << n << " gave " << c.ids[n]
                    << ", transformers " << want[n];
      continue;
    }
    std::vector<int32_t> context = prompt;
    context.insert(context.end(), want.begin(), want.begin() + ptrdiff_t(n));
    std::vector<float> row = exact_logits_after(context);
    ASSERT_FALSE(row.empty());
    const double margin = golden::top2_margin(row.data(), int(row.size()));
    const double ref_rms = golden::rms(row.data(), int(row.size()));
    EXPECT_LT(margin, tol.near_tie_margin(ref_rms))
        << "prompt " << i << " on " << label << ": step " << n << " gave " << c.ids[n]
        << ", transformers " << want[n] << " with a top-2 margin of " << margin
        << ", not a near tie";
    if (near_ties) ++*near_ties;
    std::printf(
        "[ greedy ] prompt %zu on %s: near tie at step %zu (margin %.3g = %.3g RMS, "
        "allowed below %.3g RMS)\n",
        i, label.c_str(), n, margin, margin / ref_rms, 2 * tol.logit_over_rms);
  }
}

// On the engine's default backend (the CPU's default family, or CUDA in precise mode).
TEST_F(EngineTest, GreedyMatchesTransformersOnTheDefaultModel) {
  if (engine_->runtime_info().backend == "cpu") {
    expect_greedy_matches_reference(*engine_, default_model_tolerance(cpu::default_isa()),
                                    std::string("cpu/") + cpu::isa_name(cpu::default_isa()));
  } else {
    // The fixture applies the MLXS_ variables: verify_main.sh runs it in both CUDA modes.
    auto config = load_config("", process_environment());
    ASSERT_TRUE(config.ok()) << config.status().to_string();
    if (config->backend.cuda.precision == CudaPrecision::kFast) {
      expect_greedy_matches_reference(*engine_, golden::cuda_fast_tolerance(10), "cuda/fast");
    } else {
      expect_greedy_matches_reference(*engine_, golden::LogitTolerance{false, 0, 0}, "cuda");
    }
  }
}

// On every CPU kernel family, chosen through the config key backend.cpu.isa.
class EngineGreedyTest : public ::testing::TestWithParam<cpu::Isa> {};

TEST_P(EngineGreedyTest, MatchesTransformersOnTheDefaultModel) {
  const cpu::Isa isa = GetParam();
  if (!cpu::isa_supported(isa)) {
    GTEST_SKIP() << "this CPU lacks " << cpu::isa_name(isa) << " (it supports up to "
                 << cpu::isa_name(cpu::supported_isa()) << ")";
  }
  const std::string path = ::testing::TempDir() + "engine_isa_" + cpu::isa_name(isa) + ".yaml";
  std::ofstream(path) << "backend:\n  cpu:\n    isa: " << cpu::isa_name(isa) << "\n";
  EngineOptions o;
  o.config_path = path;
  o.env_overrides = false;
  o.device = Device::kCpu;
  auto engine = create_engine(o);
  std::filesystem::remove(path);
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  LoadModelOptions lo;
  lo.model = "default";
  lo.local_path = kModelDir;
  ASSERT_TRUE((*engine)->load_model(lo).ok());
  int near_ties = 0;
  expect_greedy_matches_reference(**engine, default_model_tolerance(isa),
                                  std::string("cpu/") + cpu::isa_name(isa), &near_ties);
  // The key reaches the kernels: bf16 activations end prompt 3 at its step-3 near tie (rounding
  // is deterministic), which the exact families never do.
  if (default_model_tolerance(isa).bf16_activations) EXPECT_GT(near_ties, 0);
}

INSTANTIATE_TEST_SUITE_P(Isas, EngineGreedyTest, ::testing::ValuesIn(cpu::kAllIsas),
                         [](const auto& info) { return std::string(cpu::isa_name(info.param)); });

// backend.cpu.isa naming no family, or one this CPU lacks, is refused when the engine is created,
// naming the key.
TEST(EngineConfig, AnUnknownOrUnsupportedCpuFamilyIsRefused) {
  std::vector<std::pair<std::string, std::string>> cases = {
      {"avx1024", "must match ^(auto|scalar|avx2|avx512|avx512bf16)$, got \"avx1024\""}};
  if (!cpu::isa_supported(cpu::Isa::kAvx512Bf16)) {
    cases.push_back({"avx512bf16", "this CPU cannot run avx512bf16"});
  }
  for (const auto& [value, why] : cases) {
    const std::string path = ::testing::TempDir() + "engine_isa_refused.yaml";
    std::ofstream(path) << "backend:\n  cpu:\n    isa: " << value << "\n";
    EngineOptions o;
    o.config_path = path;
    o.env_overrides = false;
    auto engine = create_engine(o);
    std::filesystem::remove(path);
    ASSERT_FALSE(engine.ok()) << value;
    EXPECT_NE(engine.status().message().find("'backend.cpu.isa'"), std::string::npos)
        << engine.status().message();
    EXPECT_NE(engine.status().message().find(why), std::string::npos) << engine.status().message();
  }
}

TEST_F(EngineTest, SixtyFourConcurrentGreedyStreamsMatchTheirSoloRuns) {
  const char* starts[] = {"It is a truth", "Call me Ishmael.",   "In the beginning",
                          "The LORD said", "Emma Woodhouse",     "A man",
                          "She was",       "And it came to pass"};
  std::vector<GeneratorParams> ps;
  for (int i = 0; i < 64; ++i) ps.push_back(params(starts[i % 8], 8 + (i * 7) % 25));
  std::vector<std::vector<int32_t>> solo;
  for (int i = 0; i < 8; ++i) solo.push_back(run(params(starts[i], 40)).ids);
  std::vector<std::unique_ptr<Generator>> gens;
  for (auto& p : ps) {
    auto g = engine_->create_generator(p);
    ASSERT_TRUE(g.ok());
    gens.push_back(std::move(*g));
  }
  for (int i = 0; i < 64; ++i) {
    Collected c = drain(*gens[size_t(i)]);
    const auto& s = solo[size_t(i % 8)];
    ASSERT_LE(c.ids.size(), s.size());
    EXPECT_EQ(c.ids, std::vector<int32_t>(s.begin(), s.begin() + ptrdiff_t(c.ids.size())))
        << "stream " << i;
  }
}

TEST_F(EngineTest, SeededSamplingIsReproducibleUnderAnyBatch) {
  GeneratorParams p = params("Call me Ishmael.", 24, 1.0);
  p.seed = 1234;
  p.top_p = 0.9;
  Collected alone = run(p);
  // Same request among 15 others with different seeds and lengths.
  std::vector<std::unique_ptr<Generator>> others;
  for (int i = 0; i < 15; ++i) {
    GeneratorParams q = params("In the beginning", 5 + i, 1.0);
    q.seed = uint32_t(i);
    auto g = engine_->create_generator(q);
    ASSERT_TRUE(g.ok());
    others.push_back(std::move(g).value());
  }
  Collected crowded = run(p);
  for (auto& g : others) drain(*g);
  EXPECT_EQ(alone.ids, crowded.ids);
  GeneratorParams other_seed = p;
  other_seed.seed = 99;
  EXPECT_NE(run(other_seed).ids, alone.ids);
}

TEST_F(EngineTest, StopSequenceSplitAcrossTokensEndsTheStreamAndIsNotEmitted) {
  Collected full = run(params("It is a truth universally acknowledged, that", 30));
  // "good fortune" spans several tokens in the greedy continuation.
  ASSERT_NE(full.text.find("good fortune"), std::string::npos) << full.text;
  GeneratorParams p = params("It is a truth universally acknowledged, that", 30);
  p.stop_sequences = {"d fortu"};
  Collected c = run(p);
  EXPECT_EQ(c.text, full.text.substr(0, full.text.find("d fortu")));
  ASSERT_TRUE(c.meta);
  EXPECT_EQ(c.meta->finish_reason, FinishReason::kStop);
  EXPECT_EQ(c.meta->stop_sequence, "d fortu");
  // The stop string is found while the next step runs (step() overlaps the two): the token
  // computed meanwhile is neither streamed nor counted.
  EXPECT_EQ(c.ids,
            std::vector<int32_t>(full.ids.begin(), full.ids.begin() + ptrdiff_t(c.ids.size())));
  EXPECT_EQ(c.meta->tokens_generated, int32_t(c.ids.size()));
}

// A stop string completed by the last token max_tokens allows still ends with reason stop.
TEST_F(EngineTest, StopSequenceOnTheLastAllowedTokenReportsStop) {
  GeneratorParams p = params("It is a truth universally acknowledged, that", 30);
  p.stop_sequences = {"d fortu"};
  Collected first = run(p);
  ASSERT_TRUE(first.meta);
  ASSERT_EQ(first.meta->finish_reason, FinishReason::kStop);
  p.max_tokens = int32_t(first.ids.size());
  Collected c = run(p);
  ASSERT_TRUE(c.meta);
  EXPECT_EQ(c.meta->finish_reason, FinishReason::kStop);
  EXPECT_EQ(c.text, first.text);
  EXPECT_EQ(c.ids, first.ids);
}

TEST_F(EngineTest, StopTokenIdEndsTheStream) {
  Collected full = run(params("Call me Ishmael.", 20));
  ASSERT_GE(full.ids.size(), 5u);
  GeneratorParams p = params("Call me Ishmael.", 20);
  p.stop_token_ids = {full.ids[4]};
  Collected c = run(p);
  auto first = std::find(full.ids.begin(), full.ids.end(), full.ids[4]);
  EXPECT_EQ(c.ids, std::vector<int32_t>(full.ids.begin(), first + 1));
  EXPECT_EQ(c.meta->finish_reason, FinishReason::kStop);
}

// A stop token that is also the last token max_tokens allows reports stop, not length.
TEST_F(EngineTest, StopTokenOnTheLastAllowedTokenReportsStop) {
  Collected full = run(params("Call me Ishmael.", 20));
  ASSERT_GE(full.ids.size(), 5u);
  GeneratorParams p = params("Call me Ishmael.", 20);
  p.stop_token_ids = {full.ids[4]};
  const auto first = std::find(full.ids.begin(), full.ids.end(), full.ids[4]);
  p.max_tokens = int32_t(first - full.ids.begin() + 1);
  Collected c = run(p);
  ASSERT_TRUE(c.meta);
  EXPECT_EQ(c.meta->finish_reason, FinishReason::kStop);
  EXPECT_EQ(c.ids, std::vector<int32_t>(full.ids.begin(), first + 1));
}

TEST_F(EngineTest, ASlowConsumerIsPausedAndDoesNotBlockTheOthers) {
  auto slow = engine_->create_generator(params("Emma Woodhouse", 200));
  ASSERT_TRUE(slow.ok());
  // While nobody reads `slow`, its buffer fills and it is paused; other requests complete.
  for (int i = 0; i < 3; ++i) {
    Collected c = run(params("The LORD said", 40));
    ASSERT_TRUE(c.meta) << (c.error ? c.error->message : "no metadata chunk");
    EXPECT_EQ(c.meta->finish_reason, FinishReason::kLength);
  }
  std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(eventually([](const ModelStats& s) { return s.num_paused == 1; }));
  Collected c = drain(**slow);  // reading resumes it
  EXPECT_EQ(c.ids.size(), 200u);
}

TEST_F(EngineTest, CancellationFreesTheKvCacheWithinAStep) {
  ASSERT_TRUE(eventually([](const ModelStats& s) { return s.num_running + s.num_waiting == 0; }));
  const int before = stats().kv_blocks_used;
  auto g = engine_->create_generator(params("And it came to pass", context_length() - 16));
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  ASSERT_TRUE((*g)->next(5000ms).has_value());  // it is running
  EXPECT_TRUE(eventually([&](const ModelStats& s) { return s.kv_blocks_used > before; }));
  (*g)->cancel();
  EXPECT_TRUE(eventually([&](const ModelStats& s) { return s.kv_blocks_used == before; }))
      << stats().kv_blocks_used << " blocks used, " << before << " before";
}

TEST_F(EngineTest, TimeoutEndsTheStreamWithTimeout) {
  GeneratorOptions o;
  o.timeout_ms = 30;
  auto g = engine_->create_generator(params("A man", context_length() - 16), o);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  Collected c = drain(**g);
  ASSERT_TRUE(c.meta);
  EXPECT_EQ(c.meta->finish_reason, FinishReason::kTimeout);
}

TEST_F(EngineTest, RequestLongerThanTheContextIsRefusedUpFront) {
  auto g = engine_->create_generator(params("A man", context_length()));
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), ErrorCode::kInvalidParams);
  EXPECT_NE(g.status().message().find("exceeds the context length"), std::string::npos);
}

using test_support::engine_with_config;

// A request that can never fit the KV pool is refused as bad input (not as a busy server), and
// one that fits waits for blocks: with a 6-block pool (96 tokens) two 60-token requests run one
// after the other.
TEST(EngineKvPool, NeverFitsIsInvalidAndFittingRequestsWaitForBlocks) {
  auto e = engine_with_config("small_pool", "kv_cache:\n  num_blocks: 6\n  block_size: 16\n");
  ASSERT_TRUE(e);
  GeneratorParams p;
  p.model = "default";
  p.prompt = "Call me Ishmael.";
  p.temperature = 0;
  p.max_tokens = 200;
  auto too_big = e->create_generator(p);
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.status().code(), ErrorCode::kInvalidParams);
  EXPECT_NE(too_big.status().message().find("KV blocks"), std::string::npos);
  p.max_tokens = 60;
  p.stop_token_ids = {};
  auto a = e->create_generator(p), b = e->create_generator(p);
  ASSERT_TRUE(a.ok() && b.ok());
  Collected ca = drain(**a), cb = drain(**b);
  ASSERT_TRUE(ca.meta && cb.meta);
  EXPECT_EQ(ca.ids, cb.ids);
}

// kv_cache.cpu_memory_bytes sizes the CPU pool (the old pool was a fixed 1 GiB whatever the
// configuration said), and a budget below one sequence of the context is refused at load.
TEST(EngineKvPool, CpuMemoryBytesSizesThePoolAndTooLittleIsRefused) {
  auto load = [](const std::string& name, int64_t bytes) -> Result<RuntimeInfo> {
    const std::string cfg = ::testing::TempDir() + "/" + name + ".yaml";
    std::ofstream(cfg) << "kv_cache:\n  cpu_memory_bytes: " << bytes << "\n";
    EngineOptions o;
    o.env_overrides = false;
    o.config_path = cfg;
    o.device = Device::kCpu;
    MLXS_ASSIGN_OR_RETURN(auto e, create_engine(o));
    LoadModelOptions lo;
    lo.model = "default";
    lo.local_path = kModelDir;
    MLXS_RETURN_IF_ERROR(e->load_model(lo).status());
    return e->runtime_info();
  };
  // f32 K and V of 10 layers, 2 heads of 64, 16 tokens: 163,840 bytes a block; the context is
  // 2,048 tokens, 128 blocks.
  const int64_t block = 163840;
  auto info = load("pool_200", 200 * block);
  ASSERT_TRUE(info.ok()) << info.status().to_string();
  const ModelStats& m = info->models.at(0);
  EXPECT_EQ(m.kv_blocks_total, 200);
  EXPECT_EQ(m.kv_block_size, 16);
  EXPECT_EQ(m.kv_cache_bytes, 200 * block);
  auto refused = load("pool_127", 127 * block);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kModelLoadError);
  EXPECT_NE(refused.status().message().find("kv_cache.cpu_memory_bytes"), std::string::npos)
      << refused.status().message();
}

// Pipelined steps (scheduler.overlap_steps, the default: step N + 1 planned with placeholders
// and begun before step N ends) give every stream exactly what one step at a time gives, under
// a KV pool small enough to preempt: greedy, seeded sampling, penalties (which wait for the
// previous step), top_logprobs (sampled on the host), stop tokens, stop strings, lengths.
TEST(EnginePipeline, OverlappedStepsGiveTheSameStreamsAsOneStepAtATime) {
  auto start = [](bool overlap) {
    return engine_with_config(
        std::string("pipeline_") + (overlap ? "on" : "off"),
        std::string(
            "kv_cache:\n  num_blocks: 10\n  block_size: 16\nscheduler:\n  overlap_steps: ") +
            (overlap ? "true" : "false") + "\n");
  };
  const char* starts[] = {"It is a truth universally acknowledged, that", "Call me Ishmael.",
                          "In the beginning", "Emma Woodhouse, handsome, clever, and rich,"};
  std::vector<GeneratorParams> ps;
  for (int i = 0; i < 16; ++i) {
    GeneratorParams p;
    p.model = "default";
    p.prompt = std::string(starts[i % 4]);
    p.max_tokens = 30 + (i * 5) % 41;  // 3 to 5 blocks each: 3 at a time overflow 10
    p.temperature = i % 4 == 0 ? 0.0 : 0.9;
    p.seed = uint32_t(100 + i);
    p.stop_token_ids = {};
    if (i % 5 == 1) p.repetition_penalty = 1.3, p.presence_penalty = 0.5;
    if (i % 7 == 2) p.logprobs = true, p.top_logprobs = 3;
    if (i % 6 == 3) p.stop_sequences = {"the"};
    if (i % 8 == 5) p.stop_token_ids = {13, 11};  // "." and "," in the embedded tokenizer or not
    ps.push_back(p);
  }
  auto run_all = [&](Engine& e) {
    std::vector<std::unique_ptr<Generator>> gens;
    for (const auto& p : ps) {
      auto g = e.create_generator(p);
      EXPECT_TRUE(g.ok()) << g.status().to_string();
      if (g.ok()) gens.push_back(std::move(*g));
    }
    std::vector<Collected> out;
    for (auto& g : gens) out.push_back(drain(*g));
    return out;
  };
  auto overlapped = start(true);
  auto serial = start(false);
  ASSERT_TRUE(overlapped && serial);
  std::vector<Collected> a = run_all(*overlapped), b = run_all(*serial);
  ASSERT_EQ(a.size(), ps.size());
  ASSERT_EQ(b.size(), ps.size());
  for (size_t i = 0; i < ps.size(); ++i) {
    ASSERT_TRUE(a[i].meta && b[i].meta) << "stream " << i;
    EXPECT_EQ(a[i].ids, b[i].ids) << "stream " << i;
    EXPECT_EQ(a[i].text, b[i].text) << "stream " << i;
    EXPECT_EQ(a[i].meta->finish_reason, b[i].meta->finish_reason) << "stream " << i;
    EXPECT_EQ(a[i].meta->tokens_generated, int32_t(a[i].ids.size())) << "stream " << i;
  }
  EXPECT_GT(overlapped->runtime_info().models.at(0).preemptions, 0) << "the pool never filled";
}

// Without a usable GPU, device cuda (asked for by the caller or by backend.device in the file)
// is refused when the engine is created, naming backend.device; device auto runs on the CPU.
TEST(EngineDevice, CudaWithoutAGpuIsRefusedAtCreationAndAutoFallsBackToTheCpu) {
  BackendConfig cuda_config;
  cuda_config.device = Device::kCuda;
  if (check_backend_device(cuda_config).ok()) GTEST_SKIP() << "a GPU is present";
  EngineOptions o;
  o.env_overrides = false;
  o.device = Device::kCuda;
  auto cuda = create_engine(o);
  ASSERT_FALSE(cuda.ok());
  EXPECT_EQ(cuda.status().code(), ErrorCode::kInvalidParams);
  EXPECT_NE(cuda.status().message().find("'backend.device': cuda was asked for"), std::string::npos)
      << cuda.status().message();
  const std::string cfg = ::testing::TempDir() + "/device_cuda.yaml";
  std::ofstream(cfg) << "backend:\n  device: cuda\n";
  EngineOptions from_file;
  from_file.env_overrides = false;
  from_file.config_path = cfg;
  auto refused = create_engine(from_file);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("backend.device"), std::string::npos);
  LoadModelOptions lo;
  lo.model = "default";
  lo.local_path = kModelDir;
  o.device = Device::kAuto;
  auto automatic = create_engine(o);
  ASSERT_TRUE(automatic.ok());
  auto h = (*automatic)->load_model(lo);
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  EXPECT_EQ(h->backend, "cpu");
}

TEST_F(EngineTest, ValidationNamesFieldRuleAndValue) {
  GeneratorParams p = params("x", 5);
  p.temperature = 5;
  auto g = engine_->create_generator(p);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find(
                "Validation error on field 'temperature': must be >= 0 and <= 2, got 5"),
            std::string::npos)
      << g.status().message();
  p = params("x", 5);
  p.model = "nope";
  EXPECT_EQ(engine_->create_generator(p).status().code(), ErrorCode::kModelNotLoaded);
}

TEST_F(EngineTest, PromptTemplateAndTokensGiveTheSameOutputAsText) {
  GeneratorParams t = params("", 10);
  t.prompt = PromptTemplate{"Call me {{name}}.", {{"name", "Ishmael"}}};
  auto ids = engine_->tokenize("default", "Call me Ishmael.");
  ASSERT_TRUE(ids.ok());
  GeneratorParams k = params("", 10);
  k.prompt = PromptTokens{ids->tokens};
  Collected a = run(params("Call me Ishmael.", 10)), b = run(t), c = run(k);
  EXPECT_EQ(a.ids, b.ids);
  EXPECT_EQ(a.ids, c.ids);
  auto text = engine_->detokenize("default", a.ids);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, a.text);
}

TEST_F(EngineTest, PrefixCacheHitsAreReported) {
  std::string prompt =
      "It is a truth universally acknowledged, that a single man in possession of "
      "a good fortune, must be in want of a wife. However little known the "
      "feelings or views of such a man may be";
  Collected first = run(params(prompt, 4)), second = run(params(prompt, 4));
  ASSERT_TRUE(first.meta && second.meta);
  const int n = second.meta->prompt_tokens;
  EXPECT_GE(n, 32);
  // Every full block of the prompt but the one holding its last token comes from the cache.
  EXPECT_EQ(second.meta->cached_prompt_tokens, (n - 1) / 16 * 16);
  EXPECT_EQ(first.ids, second.ids);
}

TEST_F(EngineTest, LogprobsAndTopLogprobsAreReported) {
  GeneratorParams p = params("Call me Ishmael.", 4);
  p.logprobs = true;
  p.top_logprobs = 3;
  auto g = engine_->create_generator(p);
  ASSERT_TRUE(g.ok());
  int seen = 0;
  while (!(*g)->done()) {
    auto chunk = (*g)->next(5000ms);
    if (!chunk) continue;
    if (auto* t = std::get_if<TokenChunk>(&*chunk)) {
      ASSERT_TRUE(t->logprob.has_value());
      ASSERT_EQ(t->top_logprobs.size(), 3u);
      EXPECT_EQ(t->top_logprobs[0].token_id, t->token_id);  // greedy: the best one
      EXPECT_NEAR(t->top_logprobs[0].logprob, *t->logprob, 1e-6);
      EXPECT_LE(*t->logprob, 0.0);
      ++seen;
    }
  }
  EXPECT_EQ(seen, 4);
}

TEST_F(EngineTest, EveryEventIsEmitted) {
  std::mutex mu;
  std::set<EventType> seen;
  Subscription sub = engine_->subscribe([&](const Event& e) {
    std::lock_guard<std::mutex> lock(mu);
    seen.insert(e.type());
  });
  LoadModelOptions lo;
  lo.model = "draft";
  lo.local_path = std::string(MLXS_SOURCE_DIR) + "/models/draft";
  ASSERT_TRUE(engine_->load_model(lo).ok());
  GeneratorParams p = params("Call me", 3);
  p.model = "draft";
  run(p);
  ASSERT_TRUE(engine_->unload_model("draft").ok());
  lo.model = "broken";
  lo.local_path = std::string(MLXS_SOURCE_DIR) + "/tests";
  EXPECT_FALSE(engine_->load_model(lo).ok());
  sub.reset();
  for (EventType t :
       {EventType::kModelLoaded, EventType::kModelUnloaded, EventType::kModelInvalidated,
        EventType::kError, EventType::kGenerationStarted, EventType::kGenerationToken,
        EventType::kGenerationCompleted}) {
    EXPECT_TRUE(seen.count(t)) << event_name(t);
  }
}

// Regression: subscribe() returned a bare id, and a test that returned before unsubscribing
// left a callback pointing at its dead stack frame (the next test's events aborted the binary).
// The Subscription unsubscribes when it goes out of scope, early return or not.
TEST_F(EngineTest, ASubscriptionEndsWithItsScope) {
  auto calls = std::make_shared<std::atomic<int>>(0);
  {
    int on_this_frame = 0;
    Subscription sub = engine_->subscribe([&on_this_frame, calls](const Event&) {
      ++on_this_frame;
      ++*calls;
    });
    run(params("Call me", 2));
    EXPECT_GT(on_this_frame, 0);
  }
  const int after_scope = calls->load();
  run(params("Call me", 2));
  EXPECT_EQ(calls->load(), after_scope);
  // Moved, the registration follows its new owner; reset() ends it at once.
  Subscription outer;
  {
    Subscription inner = engine_->subscribe([calls](const Event&) { ++*calls; });
    outer = std::move(inner);
  }
  run(params("Call me", 2));
  EXPECT_GT(calls->load(), after_scope);
  outer.reset();
  EXPECT_FALSE(outer.active());
  const int after_reset = calls->load();
  run(params("Call me", 2));
  EXPECT_EQ(calls->load(), after_reset);
}

// A Subscription may outlive its engine: destroying it then does nothing.
TEST(EngineSubscription, OutlivingTheEngineIsSafe) {
  Subscription sub;
  {
    auto engine = create_engine({});
    ASSERT_TRUE(engine.ok());
    sub = (*engine)->subscribe([](const Event&) {});
    EXPECT_TRUE(sub.active());
  }
  sub.reset();
  EXPECT_FALSE(sub.active());
}

TEST_F(EngineTest, HealthAndRuntimeInfo) {
  HealthStatus h = engine_->health_check();
  EXPECT_EQ(h.status, HealthState::kHealthy);
  EXPECT_GE(h.loaded_models, 1);
  RuntimeInfo info = engine_->runtime_info();
  EXPECT_EQ(info.backend, engine_->get_model_info("default")->backend);
  EXPECT_GT(info.models.at(0).kv_blocks_total, 0);
}

// ignore_eos: the model's EOS id no longer ends the generation, stop_token_ids still do. A
// random model of 8 tokens whose EOS is id 3 draws it within a few steps at temperature 1.
TEST(EngineIgnoreEos, TheModelsEosDoesNotStopButStopTokenIdsDo) {
  const std::string dir = ::testing::TempDir() + "/mlxs_ignore_eos_" + std::to_string(::getpid());
  auto arch = random_model_config("tiny-llama");
  ASSERT_TRUE(arch.ok());
  arch->vocab_size = 8;
  arch->eos_token_ids = {3};
  ASSERT_TRUE(write_random_model(*arch, DType::kF32, dir, 11).ok());
  EngineOptions o;
  o.env_overrides = false;
  o.device = Device::kCpu;
  auto e = create_engine(o);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  LoadModelOptions lo;
  lo.model = "tiny";
  lo.local_path = dir;
  ASSERT_TRUE((*e)->load_model(lo).ok());
  auto run = [&](bool ignore_eos, std::vector<int32_t> stop_ids) {
    GeneratorParams p;
    p.model = "tiny";
    p.prompt = PromptTokens{{1, 2, 4, 5}};
    p.max_tokens = 64;
    p.temperature = 1;
    p.seed = 5;
    p.ignore_eos = ignore_eos;
    p.stop_token_ids = std::move(stop_ids);
    auto g = (*e)->create_generator(p);
    EXPECT_TRUE(g.ok()) << g.status().to_string();
    return g.ok() ? drain(**g) : Collected{};
  };
  Collected stopped = run(false, {});
  ASSERT_TRUE(stopped.meta);
  EXPECT_EQ(stopped.meta->finish_reason, FinishReason::kStop);
  ASSERT_FALSE(stopped.ids.empty());
  EXPECT_EQ(stopped.ids.back(), 3);
  EXPECT_LT(stopped.ids.size(), 64u);
  Collected full = run(true, {});
  ASSERT_TRUE(full.meta);
  EXPECT_EQ(full.meta->finish_reason, FinishReason::kLength);
  ASSERT_EQ(full.ids.size(), 64u);
  EXPECT_TRUE(std::equal(stopped.ids.begin(), stopped.ids.end(), full.ids.begin()));
  Collected by_id = run(true, {3});  // an explicit stop id still stops
  EXPECT_EQ(by_id.ids, stopped.ids);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mlxs
