// Speculative decoding by prompt lookup on the embedded default model: every stream is the same,
// token for token, with and without speculation (greedy streams speculate; the others share the
// batch), across stop strings, stop ids, lengths, preemption and cancellation.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "engine/engine_test_support.h"
#include "mlxs/engine.h"

namespace mlxs {
namespace {

using namespace std::chrono_literals;
using test_support::Collected;
using test_support::drain;
using test_support::engine_with_config;

std::vector<Collected> run_all(Engine& e, const std::vector<GeneratorParams>& ps) {
  std::vector<std::unique_ptr<Generator>> gens;
  for (const auto& p : ps) {
    auto g = e.create_generator(p);
    EXPECT_TRUE(g.ok()) << g.status().to_string();
    if (g.ok()) gens.push_back(std::move(*g));
  }
  std::vector<Collected> out;
  for (auto& g : gens) out.push_back(drain(*g));
  return out;
}

// Prompts that repeat themselves, so prompt lookup has something to propose.
const char* kPrompts[] = {
    "The cat sat on the mat. The cat sat on the mat. The cat sat on the",
    "one two three four five, one two three four five, one two three",
    "Call me Ishmael. Some years ago, never mind how long precisely, having little money",
    "def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b\n\ndef mul(a, b):\n",
};

std::vector<GeneratorParams> mixed_streams(int n) {
  std::vector<GeneratorParams> ps;
  for (int i = 0; i < n; ++i) {
    GeneratorParams p;
    p.model = "default";
    p.prompt = std::string(kPrompts[i % 4]);
    p.max_tokens = 20 + (i * 7) % 41;
    p.temperature = i % 5 == 4 ? 0.8 : 0.0;  // a sampled stream now and then shares the batch
    p.seed = uint32_t(7 + i);
    if (i % 6 == 1) p.stop_sequences = {"the"};
    if (i % 6 == 2) p.stop_sequences = {"sat on", "five"};
    if (i % 8 == 3) p.stop_token_ids = {13};
    if (i % 9 == 5) p.repetition_penalty = 1.2;  // greedy with a penalty: no speculation
    ps.push_back(p);
  }
  return ps;
}

void expect_same(const std::vector<Collected>& a, const std::vector<Collected>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_TRUE(a[i].meta && b[i].meta) << "stream " << i;
    EXPECT_EQ(a[i].ids, b[i].ids) << "stream " << i;
    EXPECT_EQ(a[i].text, b[i].text) << "stream " << i;
    EXPECT_EQ(a[i].meta->finish_reason, b[i].meta->finish_reason) << "stream " << i;
    EXPECT_EQ(a[i].meta->stop_sequence, b[i].meta->stop_sequence) << "stream " << i;
    EXPECT_EQ(a[i].meta->tokens_generated, b[i].meta->tokens_generated) << "stream " << i;
    EXPECT_EQ(a[i].meta->tokens_generated, int32_t(a[i].ids.size())) << "stream " << i;
  }
}

int accepted(const std::vector<Collected>& c) {
  int n = 0;
  for (const auto& x : c) n += x.meta ? x.meta->draft_tokens_accepted : 0;
  return n;
}

const std::string kSpecOn = "speculative:\n  enabled: true\n  num_tokens: 5\n";

// Under a KV pool small enough to preempt (10 blocks of 16 tokens for 16 streams of 2 to 5
// blocks each), with and without overlapped steps on the plain side.
TEST(EngineSpeculative, GreedyStreamsAreIdenticalWithAndWithoutSpeculationUnderPreemption) {
  const std::string pool = "kv_cache:\n  num_blocks: 10\n  block_size: 16\n";
  auto spec = engine_with_config("spec_on_small", pool + kSpecOn);
  auto plain = engine_with_config("spec_off_small", pool);
  ASSERT_TRUE(spec && plain);
  const std::vector<GeneratorParams> ps = mixed_streams(16);
  const std::vector<Collected> a = run_all(*spec, ps), b = run_all(*plain, ps);
  expect_same(a, b);
  EXPECT_GT(accepted(a), 0) << "nothing was accepted: the test exercises no speculation";
  EXPECT_EQ(accepted(b), 0);
  EXPECT_GT(spec->runtime_info().models.at(0).preemptions, 0) << "the pool never filled";
  for (size_t i = 0; i < ps.size(); ++i) {
    if (ps[i].temperature != 0.0 || ps[i].repetition_penalty) {
      EXPECT_EQ(a[i].meta->draft_tokens_accepted, 0) << "stream " << i << " must not speculate";
    }
  }
}

TEST(EngineSpeculative, SixtyFourConcurrentStreamsAreIdentical) {
  auto spec = engine_with_config("spec_on_64", kSpecOn);
  auto plain = engine_with_config("spec_off_64", "");
  ASSERT_TRUE(spec && plain);
  const std::vector<GeneratorParams> ps = mixed_streams(64);
  const std::vector<Collected> a = run_all(*spec, ps), b = run_all(*plain, ps);
  expect_same(a, b);
  EXPECT_GT(accepted(a), 0);
}

// speculative.force_rejection (benchmarks): nearly every proposal is rejected, nothing changes.
TEST(EngineSpeculative, ForcedRejectionChangesNoOutput) {
  auto spec = engine_with_config("spec_reject",
                                 kSpecOn + "  force_rejection: true\n  min_acceptance_rate: 0\n");
  auto plain = engine_with_config("spec_reject_plain", "");
  ASSERT_TRUE(spec && plain);
  const std::vector<GeneratorParams> ps = mixed_streams(6);
  const std::vector<Collected> a = run_all(*spec, ps), b = run_all(*plain, ps);
  expect_same(a, b);
  int generated = 0;
  for (const auto& c : a) generated += int(c.ids.size());
  EXPECT_LT(accepted(a) * 20, generated) << "more than 5 % accepted: rejection not forced";
}

// A stream cancelled while it speculates ends cancelled; the others are untouched and every
// block it held (rejected proposals' included) goes back to the pool.
TEST(EngineSpeculative, CancelMidStreamReleasesEverything) {
  auto spec = engine_with_config("spec_cancel", kSpecOn + "kv_cache:\n  prefix_caching: false\n");
  ASSERT_TRUE(spec);
  GeneratorParams p = mixed_streams(1)[0];
  p.max_tokens = 200;
  p.streaming = true;
  auto g = spec->create_generator(p);
  ASSERT_TRUE(g.ok());
  int got = 0;
  while (got < 5) {
    auto c = (*g)->next(5000ms);
    ASSERT_TRUE(c.has_value());
    if (std::holds_alternative<TokenChunk>(*c)) ++got;
  }
  (*g)->cancel();
  Collected rest = drain(**g);
  const std::vector<Collected> others = run_all(*spec, mixed_streams(4));
  for (const auto& o : others) EXPECT_TRUE(o.meta.has_value());
  for (int i = 0; i < 200 && spec->runtime_info().models.at(0).kv_blocks_used > 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(spec->runtime_info().models.at(0).kv_blocks_used, 0);
}

}  // namespace
}  // namespace mlxs
namespace mlxs {
namespace {

// Regression: with overlapped steps, a step whose rows read the penalty history was begun with
// the history before the token of the step that ended just before it (the runner adds a step's
// tokens after advance() returns), so a greedy stream with a repetition penalty could repeat
// its last token; one step at a time it could not. Found by the speculation tests (which run one
// step at a time).
TEST(EnginePipelineRegression, PenaltiesSeeTheTokenOfTheStepThatJustEnded) {
  auto on = engine_with_config("penalty_overlap_on", "");
  auto off = engine_with_config("penalty_overlap_off", "scheduler:\n  overlap_steps: false\n");
  ASSERT_TRUE(on && off);
  std::vector<GeneratorParams> ps = mixed_streams(12);
  for (auto& p : ps) p.repetition_penalty = 1.2;
  const std::vector<Collected> a = run_all(*on, ps), b = run_all(*off, ps);
  expect_same(a, b);
}

}  // namespace
}  // namespace mlxs
