// Bucketed decode padding: the bucket table, the padded batch layout, and on the CPU backend
// (padding forced on; it has no graphs) real rows' logits bitwise equal to the unpadded run,
// no real KV block touched by padding rows or by the load-time warm-up.
#include "model/decode_padding.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <numeric>

#include "model/decoder.h"
#include "model/random_model.h"
#include "model/test_model.h"
#include "runtime/step_batch.h"

namespace mlxs {
namespace {

TEST(DecodeBucket, SmallestBucketAtLeastTheBatch) {
  EXPECT_EQ(decode_bucket(1), 1);
  EXPECT_EQ(decode_bucket(2), 2);
  EXPECT_EQ(decode_bucket(3), 4);
  EXPECT_EQ(decode_bucket(5), 8);
  EXPECT_EQ(decode_bucket(9), 16);
  EXPECT_EQ(decode_bucket(17), 24);
  EXPECT_EQ(decode_bucket(64), 64);
  EXPECT_EQ(decode_bucket(65), 80);
  EXPECT_EQ(decode_bucket(129), 160);
  EXPECT_EQ(decode_bucket(257), 320);
  EXPECT_EQ(decode_bucket(512), 512);
  EXPECT_EQ(decode_bucket(513), 513);  // above the largest bucket: not padded
  for (int64_t t = 1; t <= 512; ++t) {
    const int64_t b = decode_bucket(t);
    ASSERT_GE(b, t);
    // The waste the bucket comment promises: under 8 rows up to 64, under a quarter above.
    if (t <= 64) {
      ASSERT_LT(b - t, 8) << t;
    } else {
      ASSERT_LT(4 * (b - t), t) << t;
    }
  }
}

TEST(DecodeBucket, BucketsUpToMaxBatch) {
  EXPECT_EQ(decode_buckets_up_to(0), std::vector<int64_t>{1});
  EXPECT_EQ(decode_buckets_up_to(3), (std::vector<int64_t>{1, 2, 4}));
  EXPECT_EQ(decode_buckets_up_to(100).back(), 112);
  EXPECT_EQ(decode_buckets_up_to(256).size(), 19u);
  EXPECT_EQ(decode_buckets_up_to(10000).size(), std::size(kDecodeBuckets));
  EXPECT_EQ(decode_buckets_up_to(10000).back(), Model::kMaxGraphTokens);
}

TEST(PadDecodeStep, PaddingRowsAreContextOneSequencesInTheScratchBlock) {
  // Three decode sequences with block tables {0, 1}, {2}, {3, 4}; block size 4.
  std::vector<int32_t> t0 = {0, 1}, t1 = {2}, t2 = {3, 4};
  std::vector<int32_t> n0 = {7}, n1 = {8}, n2 = {9};
  std::vector<SeqStep> steps = {{t0, 5, n0}, {t1, 2, n1}, {t2, 6, n2}};
  std::vector<int32_t> tokens;
  AttentionBatch b = make_attention_batch(steps, 4, 0, &tokens);
  std::vector<int32_t> rows = {0, 2};  // the middle sequence needs no logits
  PaddedStep p = pad_decode_step(tokens, b, rows, 8, /*scratch_block=*/99, 3);
  EXPECT_EQ(p.tokens, (std::vector<int32_t>{7, 8, 9, 0, 0, 0, 0, 0}));
  EXPECT_EQ(p.batch.num_seqs, 8);
  EXPECT_EQ(p.batch.max_blocks_per_seq, 3);
  EXPECT_EQ(p.batch.query_start, (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(p.batch.context_len, (std::vector<int32_t>{6, 3, 7, 1, 1, 1, 1, 1}));
  EXPECT_EQ(p.batch.positions, (std::vector<int32_t>{5, 2, 6, 0, 0, 0, 0, 0}));
  EXPECT_EQ(p.batch.slot_mapping, (std::vector<int32_t>{5, 10, 18, 396, 396, 396, 396, 396}));
  const std::vector<int32_t> want_tables = {0,  1,  -1, 2,  -1, -1, 3,  4,  -1, 99, -1, -1,
                                            99, -1, -1, 99, -1, -1, 99, -1, -1, 99, -1, -1};
  EXPECT_EQ(p.batch.block_tables, want_tables);
  EXPECT_EQ(p.logit_rows, (std::vector<int32_t>{0, 2, 2, 3, 4, 5, 6, 7}));
}

TEST(ScratchPrefillBatch, StaysInTheScratchBlock) {
  std::vector<int32_t> tokens, rows;
  AttentionBatch b = scratch_prefill_batch(10, 4, 0, 7, 2, &tokens, &rows);
  EXPECT_EQ(tokens.size(), 10u);
  EXPECT_EQ(rows, std::vector<int32_t>{9});
  EXPECT_EQ(b.num_seqs, 3);
  EXPECT_EQ(b.query_start, (std::vector<int32_t>{0, 4, 8, 10}));
  EXPECT_EQ(b.context_len, (std::vector<int32_t>{4, 4, 2}));
  EXPECT_EQ(b.block_tables, (std::vector<int32_t>{7, -1, 7, -1, 7, -1}));
  for (int32_t s : b.slot_mapping) {
    EXPECT_GE(s, 28);
    EXPECT_LT(s, 32);
  }
}

// --- the model on the CPU backend -----------------------------------------------------------

constexpr int kBlock = 4;
constexpr int kBlocksPerSeq = 8;
constexpr int kSeqs = 17;  // decode steps of 17, 9, 5, 3 sequences: buckets 24, 16, 8, 4

class CpuDecodePadding : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto dir = std::filesystem::temp_directory_path() / "mlxs_decode_padding";
    auto config = random_model_config("tiny-llama");
    ASSERT_TRUE(config.ok());
    ASSERT_TRUE(write_random_model(*config, DType::kBF16, dir, 5).ok());
    backend_ = make_cpu_backend();
    auto m = Model::load(dir, *backend_);
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    model_ = std::move(*m);
    EXPECT_FALSE(model_->decode_padding());  // the CPU backend has no graphs
  }

  std::unique_ptr<KvCache> make_cache() {
    auto c = KvCache::create(*backend_, model_->config(), kSeqs * kBlocksPerSeq, kBlock);
    EXPECT_TRUE(c.ok());
    if (!c.ok()) return nullptr;
    // A known pattern everywhere, so untouched blocks can be told from written ones.
    for (int l = 0; l < model_->config().num_layers; ++l) {
      for (Tensor* t : {&(*c)->layer(l).k, &(*c)->layer(l).v}) {
        std::fill(t->as<float>(), t->as<float>() + t->numel(), 1234.5f);
      }
    }
    return std::move(*c);
  }

  // Rows [first, first + n) of every layer's K and V, as bytes.
  std::vector<char> kv_bytes(KvCache& c, int first_block, int num_blocks) {
    std::vector<char> out;
    for (int l = 0; l < model_->config().num_layers; ++l) {
      for (const Tensor* t : {&c.layer(l).k, &c.layer(l).v}) {
        Tensor s = t->slice_rows(int64_t(first_block) * kBlock, int64_t(num_blocks) * kBlock);
        const char* p = static_cast<const char*>(s.data);
        out.insert(out.end(), p, p + s.nbytes());
      }
    }
    return out;
  }

  // Prefills kSeqs prompts (one step each), then decodes with shrinking batches; returns every
  // decode step's logits. Sequence s owns blocks [s * kBlocksPerSeq, (s + 1) * kBlocksPerSeq).
  std::vector<std::vector<float>> run(KvCache& cache, bool sample_all) {
    const int V = model_->config().vocab_size;
    std::vector<std::vector<int32_t>> tables(kSeqs), last(kSeqs);
    std::vector<int> cached(kSeqs);
    for (int s = 0; s < kSeqs; ++s) {
      tables[size_t(s)].resize(kBlocksPerSeq);
      std::iota(tables[size_t(s)].begin(), tables[size_t(s)].end(), s * kBlocksPerSeq);
      std::vector<int32_t> p = test_support::test_prompt(3 + s % 5, s, V);
      SeqStep st{tables[size_t(s)], 0, p};
      std::vector<int32_t> flat;
      AttentionBatch b = make_attention_batch(std::span(&st, 1), kBlock, 0, &flat);
      std::vector<int32_t> rows = {int32_t(p.size()) - 1}, next;
      EXPECT_TRUE(model_->forward_greedy(flat, b, rows, cache, &next).ok());
      last[size_t(s)] = next;
      cached[size_t(s)] = int(p.size());
    }
    std::vector<std::vector<float>> out;
    for (int live : {kSeqs, kSeqs, 9, 5, 3, 3}) {
      std::vector<SeqStep> steps;
      for (int s = 0; s < live; ++s)
        steps.push_back({tables[size_t(s)], cached[size_t(s)], last[size_t(s)]});
      std::vector<int32_t> flat, rows;
      AttentionBatch b = make_attention_batch(steps, kBlock, 0, &flat);
      for (int s = 0; s < live; ++s) {
        if (sample_all || s % 3 != 1) rows.push_back(s);  // some rows need no logits
      }
      std::vector<float> logits;
      EXPECT_TRUE(model_->forward(flat, b, rows, cache, &logits).ok());
      EXPECT_EQ(logits.size(), rows.size() * size_t(V));
      for (size_t i = 0; i < rows.size(); ++i) {
        auto row = logits.begin() + ptrdiff_t(i) * V;
        last[size_t(rows[i])] = {int32_t(std::max_element(row, row + V) - row)};
      }
      for (int s = 0; s < live; ++s) ++cached[size_t(s)];
      out.push_back(std::move(logits));
    }
    return out;
  }

  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Model> model_;
};

TEST_F(CpuDecodePadding, RealRowsBitwiseEqualAndNoRealBlockTouched) {
  for (bool sample_all : {true, false}) {
    auto plain = make_cache(), padded = make_cache();
    ASSERT_TRUE(plain && padded);
    model_->set_decode_padding(false);
    auto want = run(*plain, sample_all);
    model_->set_decode_padding(true);
    auto got = run(*padded, sample_all);
    model_->set_decode_padding(false);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_EQ(got[i].size(), want[i].size());
      EXPECT_EQ(std::memcmp(got[i].data(), want[i].data(), want[i].size() * 4), 0)
          << "decode step " << i << " sample_all " << sample_all;
    }
    // Real blocks hold exactly what the unpadded run wrote; only the scratch block differs.
    const int n = plain->num_blocks();
    EXPECT_EQ(padded->scratch_block(), n);
    EXPECT_TRUE(kv_bytes(*padded, 0, n) == kv_bytes(*plain, 0, n));
    EXPECT_TRUE(kv_bytes(*plain, n, 1) == kv_bytes(*make_cache(), n, 1));  // plain: untouched
    EXPECT_FALSE(kv_bytes(*padded, n, 1) == kv_bytes(*plain, n, 1));       // padded: written
  }
}

TEST_F(CpuDecodePadding, WarmUpWritesOnlyTheScratchBlock) {
  auto cache = make_cache(), fresh = make_cache();
  ASSERT_TRUE(cache && fresh);
  int num_graphs = -1;
  // Padding off (the CPU default): nothing runs.
  ASSERT_TRUE(model_->warm_up(*cache, 24, kBlocksPerSeq, 40, &num_graphs).ok());
  EXPECT_EQ(num_graphs, 0);
  const int n = cache->num_blocks();
  EXPECT_TRUE(kv_bytes(*cache, 0, n + 1) == kv_bytes(*fresh, 0, n + 1));
  model_->set_decode_padding(true);
  ASSERT_TRUE(model_->warm_up(*cache, 24, kBlocksPerSeq, 40, &num_graphs).ok());
  EXPECT_EQ(num_graphs, 0);  // no graphs on the CPU, but every dummy step ran
  EXPECT_TRUE(kv_bytes(*cache, 0, n) == kv_bytes(*fresh, 0, n));
  EXPECT_FALSE(kv_bytes(*cache, n, 1) == kv_bytes(*fresh, n, 1));
  // Serving after the warm-up computes what a fresh model computes.
  auto want_cache = make_cache();
  auto got = run(*cache, true);
  model_->set_decode_padding(false);
  auto want = run(*want_cache, true);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(std::memcmp(got[i].data(), want[i].data(), want[i].size() * 4), 0) << i;
  }
}

}  // namespace
}  // namespace mlxs
