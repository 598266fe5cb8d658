// GGUF models end to end on the CPU: a random model written by convert_to_gguf loads through
// Model::load and gives the safetensors model's logits exactly (bf16 and f32 files; the llama
// Q/K row permutation undone); metadata maps to the same ModelArch; quantized files present
// the affine layout under Hugging Face names; bad files fail naming the tensor or key.
#include "model/gguf_model.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "model/gguf_convert.h"
#include "model/gguf_writer.h"
#include "model/random_model.h"
#include "model/test_model.h"
#include "runtime/step_batch.h"

namespace mlxs {
namespace {

namespace fs = std::filesystem;

class GgufModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mlxs_gguf_model_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A random model of `shape` (optionally reshaped by `edit`) in dir_/name.
  std::string model(const std::string& shape, const std::string& name,
                    void (*edit)(ModelArch&) = nullptr) {
    auto c = random_model_config(shape);
    EXPECT_TRUE(c.ok());
    if (edit) edit(*c);
    const std::string dir = (dir_ / name).string();
    EXPECT_TRUE(write_random_model(*c, DType::kBF16, dir, 7).ok());
    return dir;
  }

  std::string convert(const std::string& src, const std::string& type) {
    const std::string out =
        (dir_ / (fs::path(src).filename().string() + "." + type + ".gguf")).string();
    Status s = convert_to_gguf(src, out, type);
    EXPECT_TRUE(s.ok()) << s.to_string();
    return out;
  }

  static std::vector<float> logits(const std::string& path) {
    auto backend = make_cpu_backend(1);
    auto m = Model::load(path, *backend);
    EXPECT_TRUE(m.ok()) << m.status().to_string();
    if (!m.ok()) return {};
    auto cache = KvCache::create(*backend, (*m)->config(), 16, 4);
    EXPECT_TRUE(cache.ok());
    const std::vector<int32_t> prompt = test_support::test_prompt(11, 3, (*m)->config().vocab_size);
    std::vector<int32_t> table = {0, 1, 2};
    std::vector<int32_t> flat;
    const std::vector<SeqStep> steps = {{table, 0, prompt}};
    AttentionBatch b = make_attention_batch(steps, 4, 0, &flat);
    std::vector<int32_t> rows = {0, 5, 10};
    std::vector<float> out;
    EXPECT_TRUE((*m)->forward(flat, b, rows, **cache, &out).ok());
    return out;
  }

  fs::path dir_;
};

TEST_F(GgufModelTest, FloatFilesGiveTheSafetensorsLogitsExactly) {
  for (const std::string shape : {"tiny-llama", "tiny-qwen3"}) {
    const std::string src = model(shape, shape);
    const std::vector<float> want = logits(src);
    ASSERT_FALSE(want.empty());
    for (const std::string type : {"bf16", "f32"}) {
      const std::string gguf = convert(src, type);
      EXPECT_EQ(logits(gguf), want) << shape << " " << type;
    }
  }
}

TEST_F(GgufModelTest, QwenBiasesAndUntiedHeadRoundTrip) {
  const std::string src = model("qwen2.5-0.5b", "qwen2", [](ModelArch& c) {
    c.num_layers = 1;
    c.hidden_size = 64;
    c.intermediate_size = 96;
    c.num_heads = 4;
    c.num_kv_heads = 2;
    c.head_dim = 16;
    c.vocab_size = 300;
    c.tie_word_embeddings = false;
  });
  const std::vector<float> want = logits(src);
  ASSERT_FALSE(want.empty());
  EXPECT_EQ(logits(convert(src, "bf16")), want);
}

// Llama 3.1 rope scaling travels as the rope_freqs tensor (frequency divisors, as llama.cpp
// stores it): the same rotary frequencies up to float rounding of the division.
TEST_F(GgufModelTest, Llama3RopeScalingTravelsAsRopeFreqs) {
  const std::string src = model("llama-3.2-1b", "llama3", [](ModelArch& c) {
    c.num_layers = 1;
    c.hidden_size = 64;
    c.intermediate_size = 96;
    c.num_heads = 4;
    c.num_kv_heads = 2;
    c.head_dim = 16;
    c.vocab_size = 256;
  });
  auto want = ModelArch::load(src);
  ASSERT_TRUE(want.ok());
  ASSERT_EQ(want->rope_scaling.type, "llama3");
  const std::string gguf = convert(src, "bf16");
  auto file = GgufFile::open(gguf);
  ASSERT_TRUE(file.ok());
  auto got = gguf_model_arch(**file);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  ASSERT_EQ(got->rope_freq_factors.size(), 8u);
  const auto a = got->rope_params().inv_freq, b = want->rope_params().inv_freq;
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-6 * b[i]) << i;
  const auto x = logits(gguf), y = logits(src);
  ASSERT_EQ(x.size(), y.size());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(x[i], y[i], 1e-4) << i;
}

TEST_F(GgufModelTest, MetadataMapsToTheSameArch) {
  const std::string src = model("tiny-qwen3", "arch");
  auto want = ModelArch::load(src);
  ASSERT_TRUE(want.ok());
  auto file = GgufFile::open(convert(src, "f16"));
  ASSERT_TRUE(file.ok()) << file.status().to_string();
  auto got = gguf_model_arch(**file);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(got->architecture, want->architecture);
  EXPECT_EQ(got->vocab_size, want->vocab_size);
  EXPECT_EQ(got->hidden_size, want->hidden_size);
  EXPECT_EQ(got->intermediate_size, want->intermediate_size);
  EXPECT_EQ(got->num_layers, want->num_layers);
  EXPECT_EQ(got->num_heads, want->num_heads);
  EXPECT_EQ(got->num_kv_heads, want->num_kv_heads);
  EXPECT_EQ(got->head_dim, want->head_dim);
  EXPECT_EQ(got->rms_norm_eps, want->rms_norm_eps);
  EXPECT_EQ(got->rope_theta, want->rope_theta);
  EXPECT_EQ(got->max_position_embeddings, want->max_position_embeddings);
  EXPECT_EQ(got->tie_word_embeddings, want->tie_word_embeddings);
  EXPECT_EQ(got->qk_norm, want->qk_norm);
  EXPECT_EQ(got->qkv_bias, want->qkv_bias);
  EXPECT_EQ(got->rope_params().inv_freq, want->rope_params().inv_freq);
}

TEST_F(GgufModelTest, RopeRowOrdersAreInverse) {
  const auto to = rope_row_order(64, 4, true), back = rope_row_order(64, 4, false);
  for (size_t r = 0; r < to.size(); ++r) EXPECT_EQ(to[size_t(back[r])], int64_t(r));
  EXPECT_EQ(to[1], 8);  // head 0: llama.cpp row 1 is transformers' row Dh/2
}

// Value (r, c) of an affine-quantized [rows, cols] tensor in the store.
double affine(const TensorInfo& w, const TensorInfo& s, const TensorInfo& b, int64_t cols,
              int64_t r, int64_t c) {
  const int bits = int(w.shape[1] * 32 / cols);
  const int64_t group = cols / s.shape[1];
  const auto* row = static_cast<const uint32_t*>(w.data) + r * w.shape[1];
  const int64_t bit = c * bits;
  uint64_t window = row[bit / 32];
  if (bit % 32 + bits > 32) window |= uint64_t(row[bit / 32 + 1]) << 32;
  const uint32_t q = uint32_t(window >> (bit % 32)) & ((1u << bits) - 1);
  const size_t g = size_t(r * s.shape[1] + c / group);
  return double(load_as_f32(s.data, s.dtype, g)) * q + load_as_f32(b.data, b.dtype, g);
}

TEST_F(GgufModelTest, QuantizedFilesPresentTheAffineLayoutInTransformersRowOrder) {
  auto wide = [](ModelArch& c) {
    c.hidden_size = 256;
    c.intermediate_size = 256;
    c.num_heads = 4;
    c.num_kv_heads = 2;
    c.head_dim = 64;
  };
  const std::string src = model("tiny-llama", "wide", wide);
  auto hf = WeightStore::open_dir(src);
  ASSERT_TRUE(hf.ok());
  struct Case {
    std::string type;
    std::string tensor;
    int bits, group;
    double tolerance;
  };
  for (const Case& k : {Case{"q8_0", "model.layers.0.self_attn.q_proj", 8, 32, 0.0005},
                        Case{"q4_0", "model.layers.1.self_attn.k_proj", 4, 32, 0.01},
                        Case{"q4_k_m", "model.layers.0.self_attn.q_proj", 4, 32, 0.01},
                        Case{"q4_k_m", "model.layers.0.self_attn.v_proj", 4, 32, 0.01},
                        Case{"q4_k_m", "model.layers.1.self_attn.v_proj", 6, 16, 0.003},
                        Case{"q4_k_m", "model.layers.1.mlp.down_proj", 6, 16, 0.003},
                        // Fused with layer 1's Q6_K v_proj: widened to 6 bits, groups of 16.
                        Case{"q4_k_m", "model.layers.1.self_attn.k_proj", 6, 16, 0.01},
                        Case{"q4_k_m", "model.layers.1.mlp.up_proj", 4, 32, 0.01}}) {
    auto file = GgufFile::open(convert(src, k.type));
    ASSERT_TRUE(file.ok()) << file.status().to_string();
    auto arch = gguf_model_arch(**file);
    ASSERT_TRUE(arch.ok());
    auto store = gguf_weight_store(std::shared_ptr<const GgufFile>(std::move(*file)), *arch);
    ASSERT_TRUE(store.ok()) << store.status().to_string();
    auto want = hf->take(k.tensor + ".weight");
    ASSERT_TRUE(want.ok());
    auto w = store->take(k.tensor + ".weight");
    auto s = store->take(k.tensor + ".scales");
    auto b = store->take(k.tensor + ".biases");
    ASSERT_TRUE(w.ok() && s.ok() && b.ok()) << k.type << " " << k.tensor;
    const int64_t rows = want->shape[0], cols = want->shape[1];
    EXPECT_EQ(w->dtype, DType::kU32);
    EXPECT_EQ(w->shape, (std::vector<int64_t>{rows, cols * k.bits / 32})) << k.type << k.tensor;
    EXPECT_EQ(s->shape, (std::vector<int64_t>{rows, cols / k.group})) << k.type << k.tensor;
    double worst = 0;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        const double x = load_as_f32(want->data, want->dtype, size_t(r * cols + c));
        worst = std::max(worst, std::fabs(affine(*w, *s, *b, cols, r, c) - x));
      }
    }
    EXPECT_LT(worst, k.tolerance) << k.type << " " << k.tensor;
  }
}

TEST_F(GgufModelTest, FindsAGgufFileOrTheOneInAFolder) {
  const std::string src = model("tiny-llama", "find");
  const std::string gguf = convert(src, "f16");
  EXPECT_EQ(find_gguf_model(gguf), gguf);
  EXPECT_EQ(find_gguf_model(src), "");  // has config.json
  const fs::path folder = dir_ / "folder";
  fs::create_directories(folder);
  fs::copy_file(gguf, folder / "m.gguf");
  EXPECT_EQ(find_gguf_model(folder.string()), (folder / "m.gguf").string());
  fs::copy_file(gguf, folder / "n.gguf");
  EXPECT_EQ(find_gguf_model(folder.string()), "");  // two: ambiguous
  EXPECT_EQ(find_gguf_model((dir_ / "nothing.gguf").string()), "");
  // Loads from the folder too.
  fs::remove(folder / "n.gguf");
  EXPECT_EQ(logits(folder.string()), logits(gguf));
}

TEST_F(GgufModelTest, RefusesUnsupportedArchitecturesAndTypesNamingThem) {
  GgufWriter w;
  w.set_string("general.architecture", "gemma2");
  const std::string p1 = (dir_ / "gemma.gguf").string();
  ASSERT_TRUE(w.write(p1).ok());
  auto backend = make_cpu_backend(1);
  auto m = Model::load(p1, *backend);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("'general.architecture': 'gemma2' is not supported"),
            std::string::npos)
      << m.status().message();

  GgufWriter q;
  q.set_string("general.architecture", "llama");
  q.set_u32("llama.embedding_length", 256);
  q.set_u32("llama.block_count", 1);
  q.set_u32("llama.feed_forward_length", 256);
  q.set_u32("llama.attention.head_count", 4);
  q.set_u32("llama.vocab_size", 8);
  q.add_tensor("blk.0.ffn_up.weight", GgmlType::kQ8_K, {256, 256},
               std::vector<uint8_t>(256 * 292, 0));
  const std::string p2 = (dir_ / "q8k.gguf").string();
  ASSERT_TRUE(q.write(p2).ok());
  auto m2 = Model::load(p2, *backend);
  ASSERT_FALSE(m2.ok());
  EXPECT_NE(m2.status().message().find("tensor 'blk.0.ffn_up.weight' has type Q8_K"),
            std::string::npos)
      << m2.status().message();

  // More heads than hidden dims and no key_length: the head dim it would default to is 0.
  GgufWriter narrow;
  narrow.set_string("general.architecture", "qwen2");
  narrow.set_u32("qwen2.embedding_length", 2);
  narrow.set_u32("qwen2.block_count", 1);
  narrow.set_u32("qwen2.feed_forward_length", 4);
  narrow.set_u32("qwen2.attention.head_count", 4);
  const std::string narrow_bytes = narrow.serialize();
  auto narrow_file = GgufFile::parse(reinterpret_cast<const uint8_t*>(narrow_bytes.data()),
                                     narrow_bytes.size(), "narrow.gguf");
  ASSERT_TRUE(narrow_file.ok());
  auto arch = gguf_model_arch(**narrow_file);
  ASSERT_FALSE(arch.ok());
  EXPECT_NE(arch.status().message().find(
                "'qwen2.attention.key_length': missing, and the value it defaults to, 0,"),
            std::string::npos)
      << arch.status().message();
  GgufWriter missing;
  missing.set_string("general.architecture", "qwen3");
  const std::string p3 = (dir_ / "missing.gguf").string();
  ASSERT_TRUE(missing.write(p3).ok());
  auto m3 = Model::load(p3, *backend);
  ASSERT_FALSE(m3.ok());
  EXPECT_NE(m3.status().message().find("'qwen3.embedding_length': missing"), std::string::npos)
      << m3.status().message();
}

}  // namespace
}  // namespace mlxs
