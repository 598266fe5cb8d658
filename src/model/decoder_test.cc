// The decoder on the CPU backend: batching, chunked prefill and decode compute the same logits,
// bit for bit, as running each sequence alone in one prefill.
#include "model/decoder.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <numeric>

#include "model/random_model.h"
#include "model/test_model.h"
#include "runtime/step_batch.h"

namespace mlxs {
namespace {

class DecoderTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    // Per process: ctest runs test cases as parallel processes (and other checkouts share /tmp).
    dir_ = std::filesystem::temp_directory_path() /
           ("mlxs_decoder_" + std::to_string(::getpid()) + "_" + GetParam());
    auto config = random_model_config(GetParam());
    ASSERT_TRUE(config.ok());
    ASSERT_TRUE(write_random_model(*config, DType::kBF16, dir_, 7).ok());
    backend_ = make_cpu_backend();
    auto m = Model::load(dir_, *backend_);
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    model_ = std::move(*m);
    auto cache = KvCache::create(*backend_, model_->config(), 64, 4);
    ASSERT_TRUE(cache.ok());
    cache_ = std::move(*cache);
  }

  std::vector<int32_t> prompt(int len, int salt) {
    return test_support::test_prompt(len, salt, model_->config().vocab_size);
  }

  // Logits of every position of `tokens`, run as one prefill in blocks [first, first + n).
  std::vector<float> prefill_all(const std::vector<int32_t>& tokens, int first_block) {
    std::vector<int32_t> table(16);
    std::iota(table.begin(), table.end(), first_block);
    SeqStep s{table, 0, tokens};
    std::vector<int32_t> flat;
    AttentionBatch b = make_attention_batch(std::span(&s, 1), 4, 0, &flat);
    std::vector<int32_t> rows(tokens.size());
    std::iota(rows.begin(), rows.end(), 0);
    std::vector<float> logits;
    EXPECT_TRUE(model_->forward(flat, b, rows, *cache_, &logits).ok());
    return logits;
  }

  std::filesystem::path dir_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<KvCache> cache_;
};

TEST_P(DecoderTest, ChunkedAndBatchedStepsMatchOnePrefillBitwise) {
  const int V = model_->config().vocab_size;
  auto a = prompt(13, 1), b = prompt(6, 2);
  std::vector<float> ref_a = prefill_all(a, 0), ref_b = prefill_all(b, 16);

  // Now run both sequences together: a in chunks of 5, 5, 3; b as 6 then one token per step.
  std::vector<int32_t> ta(16), tb(16);
  std::iota(ta.begin(), ta.end(), 32);
  std::iota(tb.begin(), tb.end(), 48);
  int done_a = 0, done_b = 0;
  const int chunks_a[] = {5, 5, 3};
  for (int step = 0; step < 3; ++step) {
    int na = chunks_a[step], nb = step == 0 ? 4 : 1;
    SeqStep steps[2] = {{ta, done_a, std::span(a).subspan(size_t(done_a), size_t(na))},
                        {tb, done_b, std::span(b).subspan(size_t(done_b), size_t(nb))}};
    std::vector<int32_t> flat;
    AttentionBatch batch = make_attention_batch(steps, 4, 0, &flat);
    std::vector<int32_t> rows = {na - 1, na + nb - 1};
    std::vector<float> logits;
    ASSERT_TRUE(model_->forward(flat, batch, rows, *cache_, &logits).ok());
    done_a += na;
    done_b += nb;
    for (int j = 0; j < V; ++j) {
      ASSERT_EQ(logits[size_t(j)], ref_a[size_t(done_a - 1) * V + j]) << "step " << step;
      ASSERT_EQ(logits[size_t(V + j)], ref_b[size_t(done_b - 1) * V + j]) << "step " << step;
    }
  }
}

// Runs one step of the single token `id`; the status the model gives it.
Status forward_one_token(Model& m, KvCache& cache, int32_t id) {
  std::vector<int32_t> table = {0, 1}, token = {id}, rows = {0}, flat;
  SeqStep s{table, 0, token};
  AttentionBatch b = make_attention_batch(std::span(&s, 1), 4, 0, &flat);
  std::vector<float> logits;
  return m.forward(flat, b, rows, cache, &logits);
}

TEST_P(DecoderTest, RejectsTokenOutsideVocabulary) {
  Status st = forward_one_token(*model_, *cache_, model_->config().vocab_size);
  EXPECT_EQ(st.code(), ErrorCode::kInvalidParams);
  EXPECT_NE(st.message().find("outside the vocabulary"), std::string::npos);
}

// Two steps in flight, the second one's tokens given as placeholders for the first one's
// greedy tokens: the same tokens as one step at a time (with and without decode padding).
TEST_P(DecoderTest, PipelinedStepsReadPlaceholdersFromThePreviousStep) {
  std::vector<std::vector<int32_t>> prompts = {prompt(9, 1), prompt(4, 2), prompt(6, 3)};
  for (bool pad : {false, true}) {
    model_->set_decode_padding(pad);
    test_support::GenRun ref = test_support::generate(*model_, *cache_, prompts, 64, 6, true);
    test_support::GenRun piped = test_support::generate_pipelined(*model_, *cache_, prompts, 6);
    ASSERT_EQ(ref.generated.size(), 3u);
    EXPECT_EQ(ref.generated[0].size(), 6u);
    EXPECT_EQ(piped.generated, ref.generated) << "padding " << pad;
  }
  model_->set_decode_padding(false);
}

// A step with placeholders that needs larger step buffers than the model has yet (no warm_up:
// a new sequence's prefill joins a decode) reads the ids before the buffers grow.
TEST_P(DecoderTest, PlaceholdersSurviveStepBufferGrowth) {
  const std::vector<int32_t> a = prompt(2, 1), b = prompt(11, 2);
  std::vector<int32_t> ta = {0, 1, 2, 3}, tb = {4, 5, 6, 7}, next_a, got;
  std::vector<int32_t> flat, rows = {1};
  SeqStep first{ta, 0, a};
  AttentionBatch b1 = make_attention_batch(std::span(&first, 1), 4, 0, &flat);
  ASSERT_TRUE(model_->begin_step(Model::StepKind::kGreedy, flat, b1, rows, *cache_, nullptr).ok());
  // Sequence a decodes its greedy token (placeholder -1) next to b's 11-token prefill.
  const std::vector<int32_t> placeholder = {-1};
  SeqStep second[2] = {{ta, 2, placeholder}, {tb, 0, b}};
  std::vector<int32_t> flat2;
  AttentionBatch b2 = make_attention_batch(second, 4, 0, &flat2);
  std::vector<int32_t> rows2 = {0, 11};
  ASSERT_TRUE(
      model_->begin_step(Model::StepKind::kGreedy, flat2, b2, rows2, *cache_, nullptr).ok());
  ASSERT_TRUE(model_->end_step(&next_a, nullptr, nullptr).ok());
  ASSERT_TRUE(model_->end_step(&got, nullptr, nullptr).ok());
  // The same second step with the real token, in other blocks.
  std::vector<int32_t> tc = {8, 9, 10, 11}, td = {12, 13, 14, 15}, ref;
  std::vector<int32_t> a_then = a;
  a_then.push_back(next_a.at(0));
  SeqStep again[2] = {{tc, 0, a_then}, {td, 0, b}};
  std::vector<int32_t> flat3;
  AttentionBatch b3 = make_attention_batch(again, 4, 0, &flat3);
  std::vector<int32_t> rows3 = {2, 13};
  ASSERT_TRUE(model_->forward_greedy(flat3, b3, rows3, *cache_, &ref).ok());
  EXPECT_EQ(got, ref);
}

TEST_P(DecoderTest, APlaceholderWithoutAStepInFlightIsRejected) {
  Status st = forward_one_token(*model_, *cache_, -1);
  EXPECT_EQ(st.code(), ErrorCode::kInvalidParams);
  EXPECT_NE(st.message().find("token id -1"), std::string::npos) << st.message();
}

INSTANTIATE_TEST_SUITE_P(Shapes, DecoderTest, ::testing::Values("tiny-llama", "tiny-qwen3"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace mlxs
