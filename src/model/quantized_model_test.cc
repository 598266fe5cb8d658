// Quantized model folders on the CPU backend: MLX affine folders written by
// quantize_model_mlx() load packed and give exactly the logits of the same model with its
// weights dequantized on the host to f32, and logits close to the unquantized model's; config
// and shape mismatches, mixed recipes, FP8 folders (widened to bf16) and refused methods
// (AWQ, GPTQ, ...).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "model/affine_quant.h"
#include "model/quantize_model.h"
#include "model/safetensors.h"
#include "model/test_model.h"

namespace mlxs {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test_support::generate;
using test_support::kBlockSize;
using test_support::load_test_model;
using test_support::test_prompt;
using test_support::write_test_model;

std::string temp_dir(const std::string& name) {
  return (fs::temp_directory_path() / (name + "_" + std::to_string(::getpid()))).string();
}

// Logits of the first step of three prompts of different lengths (prefill, all rows at once).
std::vector<float> first_logits(const std::string& dir) {
  auto l = load_test_model(make_cpu_backend(), dir, 64, kBlockSize, DType::kF32);
  if (!l.model) return {};
  const int V = l.model->config().vocab_size;
  std::vector<std::vector<int32_t>> prompts = {test_prompt(5, 1, V), test_prompt(9, 2, V),
                                               test_prompt(3, 3, V)};
  return generate(*l.model, *l.cache, prompts, 16, 1, false).first_logits;
}

Status load_status(const std::string& dir) {
  auto backend = make_cpu_backend();
  auto m = Model::load(dir, *backend);
  return m.ok() ? Status{} : m.status();
}

json read_config(const std::string& dir) {
  std::ifstream f(fs::path(dir) / "config.json");
  return json::parse(f);
}

void write_config(const std::string& dir, const json& j) {
  std::ofstream f(fs::path(dir) / "config.json");
  f << j.dump(2);
}

// Copies folder `src` to `dst`, replacing model.safetensors by what `edit` makes of its tensors
// (host copies, so edit may change anything).
struct HostTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};
void rewrite(const std::string& src, const std::string& dst,
             const std::function<void(std::vector<HostTensor>&)>& edit) {
  fs::remove_all(dst);
  fs::create_directories(dst);
  for (const auto& e : fs::directory_iterator(src)) {
    if (e.path().filename() != "model.safetensors") {
      fs::copy_file(e.path(), fs::path(dst) / e.path().filename());
    }
  }
  auto store = WeightStore::open_dir(src);
  ASSERT_TRUE(store.ok());
  std::vector<HostTensor> ts;
  for (const auto& name : store->untaken()) {
    auto t = store->take(name);
    ASSERT_TRUE(t.ok());
    const auto* p = static_cast<const uint8_t*>(t->data);
    ts.push_back({name, t->dtype, t->shape, std::vector<uint8_t>(p, p + t->nbytes)});
  }
  edit(ts);
  std::vector<TensorToWrite> w;
  for (const auto& t : ts) w.push_back({t.name, t.dtype, t.shape, t.bytes.data(), {}});
  ASSERT_TRUE(write_safetensors((fs::path(dst) / "model.safetensors").string(), w).ok());
}

HostTensor* find(std::vector<HostTensor>& ts, const std::string& name) {
  for (auto& t : ts)
    if (t.name == name) return &t;
  return nullptr;
}

// The quantized folder with every packed matrix replaced by its host dequantization in f32
// (affine_quant.h), scales and biases dropped: the model the packed one must equal exactly.
void write_dequantized(const std::string& qdir, const std::string& dst) {
  const json quant = read_config(qdir)["quantization"];
  rewrite(qdir, dst, [&](std::vector<HostTensor>& ts) {
    std::vector<HostTensor> out;
    for (auto& t : ts) {
      if (t.dtype != DType::kU32) {
        if (!t.name.ends_with(".scales") && !t.name.ends_with(".biases")) out.push_back(t);
        continue;
      }
      const std::string base = t.name.substr(0, t.name.size() - 7);
      const HostTensor* s = find(ts, base + ".scales");
      const HostTensor* b = find(ts, base + ".biases");
      const json& q = quant.contains(base) ? quant[base] : quant;
      const int group = q["group_size"], bits = q["bits"];
      const int64_t N = t.shape[0], K = s->shape[1] * group;
      EXPECT_EQ(t.shape[1] * 32, K * bits) << t.name;
      std::vector<float> w(size_t(N * K));
      dequantize_affine_rows(t.bytes.data(), bits, group, s->dtype, s->bytes.data(),
                             b->bytes.data(), N, K, w.data());
      HostTensor f{t.name, DType::kF32, {N, K}, std::vector<uint8_t>(w.size() * 4)};
      std::memcpy(f.bytes.data(), w.data(), f.bytes.size());
      out.push_back(std::move(f));
    }
    ts = std::move(out);
  });
  json j = read_config(dst);
  j.erase("quantization");
  j.erase("quantization_config");
  write_config(dst, j);
}

// RMS of a - b over RMS of b.
double relative_rms(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0, n = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    d += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    n += double(b[i]) * b[i];
  }
  return std::sqrt(d / n);
}

struct RoundTrip : ::testing::TestWithParam<std::tuple<const char*, int, int>> {};

// Quantize a random tiny model, load it packed: logits bitwise equal to the host-dequantized
// f32 model (the kernels compute exactly the definition), and near the bf16 original.
// Tolerance: uniform random weights quantized in groups of g with 2^b - 1 steps have a
// relative RMS error of about 2 / (2^b - 1) / sqrt(12) / (1 / sqrt(3)) = 1 / (2^b - 1), 0.4 %
// at 8 bits and 6.7 % at 4; through two layers and the lm_head the logits' relative RMS error
// stays within 3x that (measured: see the failure message when it does not).
TEST_P(RoundTrip, LogitsMatchDequantizedExactlyAndOriginalClosely) {
  const auto [shape, bits, group] = GetParam();
  const std::string tag =
      std::string(shape) + "_" + std::to_string(bits) + "_" + std::to_string(group);
  const std::string src = write_test_model(shape, DType::kBF16, "rt_src_" + tag, 3);
  const std::string q = temp_dir("rt_q_" + tag), deq = temp_dir("rt_deq_" + tag);
  QuantizeStats stats;
  ASSERT_TRUE(quantize_model_mlx(src, q, bits, group, &stats).ok());
  EXPECT_GT(stats.num_quantized, 0);
  json c = read_config(q);
  EXPECT_EQ(c["quantization"]["bits"], bits);
  EXPECT_EQ(c["quantization"]["group_size"], group);
  write_dequantized(q, deq);

  const std::vector<float> packed = first_logits(q), host = first_logits(deq),
                           original = first_logits(src);
  ASSERT_FALSE(packed.empty());
  ASSERT_EQ(packed.size(), host.size());
  EXPECT_EQ(0, std::memcmp(packed.data(), host.data(), packed.size() * 4))
      << "packed and host-dequantized logits differ";
  const double err = relative_rms(packed, original);
  const double bound = 3.0 / double((1 << bits) - 1);
  EXPECT_LT(err, bound) << "relative RMS error of the logits " << err;
  for (const auto& d : {src, q, deq}) fs::remove_all(d);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, RoundTrip,
    ::testing::Values(std::make_tuple("tiny-llama", 8, 32), std::make_tuple("tiny-llama", 4, 64),
                      std::make_tuple("tiny-qwen3", 4, 32), std::make_tuple("tiny-qwen3", 3, 64),
                      std::make_tuple("tiny-llama", 6, 32), std::make_tuple("tiny-llama", 2, 64),
                      std::make_tuple("tiny-llama", 5, 32)));

// MLX's definition on known values (mlx/backend/cpu/quantized.cpp's quantize): the edge of
// larger magnitude is exact, a constant group is q = 0 with the constant as bias.
TEST(AffineQuantize, MatchesMlxDefinition) {
  std::vector<float> w(32);
  for (int i = 0; i < 32; ++i) w[size_t(i)] = -1.0f + 1.5f * float(i) / 31.0f;
  // max 0.5 < |min| 1: the min is the edge
  uint8_t packed[16];
  float s, b;
  quantize_affine_row(w.data(), 32, 4, 32, packed, &s, &b);
  // scale = (0.5 - (-1)) / 15 = 0.1; q0 = rint(-1 / 0.1) = -10; scale = -1 / -10 = 0.1, bias -1.
  EXPECT_EQ(s, -1.0f / -10.0f);
  EXPECT_EQ(b, -1.0f);
  EXPECT_EQ(packed[0] & 0xf, 0);  // w = -1 exactly
  std::vector<float> back(32);
  dequantize_affine_rows(packed, 4, 32, DType::kF32, &s, &b, 1, 32, back.data());
  EXPECT_EQ(back[0], -1.0f);
  for (int i = 0; i < 32; ++i) EXPECT_NEAR(back[size_t(i)], w[size_t(i)], 0.05f + 1e-6f) << i;

  std::vector<float> flat(64, 0.25f);
  uint8_t p8[64];
  float s8, b8;
  quantize_affine_row(flat.data(), 64, 8, 64, p8, &s8, &b8);
  EXPECT_EQ(b8, 0.25f);
  for (uint8_t v : p8) EXPECT_EQ(v, 0);
  std::vector<float> zeros(64, 0.0f);
  quantize_affine_row(zeros.data(), 64, 8, 64, p8, &s8, &b8);
  EXPECT_EQ(b8, 0.0f);
  for (uint8_t v : p8) EXPECT_EQ(v, 0);
}

class QuantizedFolder : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    src_ = new std::string(write_test_model("tiny-llama", DType::kBF16, "qf_src", 9));
    q_ = new std::string(temp_dir("qf_q"));
    ASSERT_TRUE(quantize_model_mlx(*src_, *q_, 4, 64).ok());
  }
  static void TearDownTestSuite() {
    fs::remove_all(*src_);
    fs::remove_all(*q_);
    delete src_;
    delete q_;
  }
  // A copy of the quantized folder with config.json edited.
  std::string with_config(const std::string& name, const std::function<void(json&)>& edit) {
    const std::string d = temp_dir(name);
    rewrite(*q_, d, [](std::vector<HostTensor>&) {});
    json j = read_config(d);
    edit(j);
    write_config(d, j);
    dirs_.push_back(d);
    return d;
  }
  void TearDown() override {
    for (const auto& d : dirs_) fs::remove_all(d);
  }
  static std::string* src_;
  static std::string* q_;
  std::vector<std::string> dirs_;
};
std::string* QuantizedFolder::src_ = nullptr;
std::string* QuantizedFolder::q_ = nullptr;

void expect_error(const Status& s, std::initializer_list<const char*> parts) {
  ASSERT_FALSE(s.ok());
  for (const char* p : parts) {
    EXPECT_NE(s.message().find(p), std::string::npos) << s.message() << "\n lacks: " << p;
  }
}

TEST_F(QuantizedFolder, ConfigBitsMismatchNamesTheTensor) {
  auto d = with_config("qf_bits", [](json& j) { j["quantization"]["bits"] = 8; });
  expect_error(load_status(d), {"model.embed_tokens.weight", "4-bit in groups of 64",
                                "says 8-bit in groups of 64"});
}

TEST_F(QuantizedFolder, OverrideMismatchNamesTheModule) {
  auto d = with_config("qf_ovr", [](json& j) {
    j["quantization"]["model.layers.1.mlp.down_proj"] = {{"bits", 8}, {"group_size", 64}};
  });
  expect_error(load_status(d), {"model.layers.1.mlp.down_proj.weight", "says 8-bit"});
  auto off = with_config("qf_off", [](json& j) { j["quantization"]["lm_head"] = false; });
  expect_error(load_status(off), {"lm_head.weight", "not quantized"});
}

TEST_F(QuantizedFolder, NonAffineModeIsRefused) {
  auto d = with_config("qf_mode", [](json& j) { j["quantization"]["mode"] = "mxfp4"; });
  expect_error(load_status(d), {"mode", "mxfp4", "affine"});
}

TEST_F(QuantizedFolder, ScalesWithoutBiasesIsAnError) {
  const std::string d = temp_dir("qf_nobias");
  dirs_.push_back(d);
  rewrite(*q_, d, [](std::vector<HostTensor>& ts) {
    std::erase_if(
        ts, [](const HostTensor& t) { return t.name == "model.layers.0.mlp.up_proj.biases"; });
  });
  expect_error(load_status(d), {"model.layers.0.mlp.up_proj", "scales", "biases"});
}

TEST_F(QuantizedFolder, PackedWeightWithoutScalesIsNamed) {
  const std::string d = temp_dir("qf_noscales");
  dirs_.push_back(d);
  rewrite(*q_, d, [](std::vector<HostTensor>& ts) {
    std::erase_if(ts, [](const HostTensor& t) {
      return t.name == "model.layers.1.mlp.down_proj.scales" ||
             t.name == "model.layers.1.mlp.down_proj.biases";
    });
  });
  expect_error(load_status(d), {"model.layers.1.mlp.down_proj.weight", "is U32",
                                "'model.layers.1.mlp.down_proj.scales'", "missing"});
}

TEST_F(QuantizedFolder, BadScaleShapeIsAnError) {
  const std::string d = temp_dir("qf_shape");
  dirs_.push_back(d);
  rewrite(*q_, d, [](std::vector<HostTensor>& ts) {
    for (auto* n :
         {"model.layers.0.self_attn.o_proj.scales", "model.layers.0.self_attn.o_proj.biases"}) {
      HostTensor* t = find(ts, n);
      t->shape = {t->shape[0] * t->shape[1] / 3, 3};  // 64 rows x 1 group -> not [64, 1]
    }
  });
  expect_error(load_status(d), {"model.layers.0.self_attn.o_proj.scales"});
}

// A mixed recipe: k_proj at 8 bits while q_proj and v_proj are 4-bit (an MLX override). The
// fused qkv matrix is widened to f32 at load, and the model equals its host dequantization.
TEST_F(QuantizedFolder, MixedRecipeWidensTheFusedMatrix) {
  const std::string d = temp_dir("qf_mixed"), deq = temp_dir("qf_mixed_deq");
  dirs_.push_back(d);
  dirs_.push_back(deq);
  auto store = WeightStore::open_dir(*src_);
  ASSERT_TRUE(store.ok());
  auto k = store->take("model.layers.0.self_attn.k_proj.weight");
  ASSERT_TRUE(k.ok());
  const int64_t N = k->shape[0], K = k->shape[1];
  std::vector<float> w(size_t(N * K));
  convert_to_f32(k->data, k->dtype, w.size(), w.data());
  std::vector<uint8_t> packed(size_t(N * K));
  std::vector<float> s(size_t(N * K / 64)), b(s.size());
  for (int64_t n = 0; n < N; ++n) {
    quantize_affine_row(w.data() + n * K, K, 8, 64, packed.data() + n * K, s.data() + n * (K / 64),
                        b.data() + n * (K / 64));
  }
  rewrite(*q_, d, [&](std::vector<HostTensor>& ts) {
    find(ts, "model.layers.0.self_attn.k_proj.weight")->bytes = packed;
    find(ts, "model.layers.0.self_attn.k_proj.weight")->shape = {N, K * 8 / 32};
    find(ts, "model.layers.0.self_attn.k_proj.scales")->bytes = store_as(s, DType::kBF16);
    find(ts, "model.layers.0.self_attn.k_proj.biases")->bytes = store_as(b, DType::kBF16);
  });
  json j = read_config(d);
  j["quantization"]["model.layers.0.self_attn.k_proj"] = {{"bits", 8}, {"group_size", 64}};
  write_config(d, j);
  write_dequantized(d, deq);
  const std::vector<float> mixed = first_logits(d), host = first_logits(deq);
  ASSERT_FALSE(mixed.empty());
  ASSERT_EQ(mixed.size(), host.size());
  EXPECT_EQ(0, std::memcmp(mixed.data(), host.data(), mixed.size() * 4));
}

// Regression: an AWQ folder failed with "missing tensor 'model.norm.weight'".
TEST_F(QuantizedFolder, UnsupportedQuantMethodsAreRefusedByName) {
  for (const char* method : {"awq", "gptq", "bitsandbytes", "compressed-tensors"}) {
    auto d = with_config(std::string("qf_") + method, [&](json& j) {
      j.erase("quantization");
      j["quantization_config"] = {{"quant_method", method}, {"bits", 4}};
    });
    expect_error(load_status(d), {"quant_method", method, "not supported"});
  }
}

// An FP8 folder (F8_E4M3 weights with per-tensor, per-row and block scales) loads widened to
// bf16: the logits equal those of the bf16 model holding the widened values.
TEST(Fp8Folder, LoadsWidenedToBf16) {
  const std::string src = write_test_model("tiny-llama", DType::kBF16, "fp8_src", 4);
  const std::string f8 = temp_dir("fp8_f8"), ref = temp_dir("fp8_ref");
  // e4m3 code of v / scale, round to nearest (by search: 256 codes).
  auto encode = [](float v) {
    int best = 0;
    float best_err = INFINITY;
    for (int c = 0; c < 256; ++c) {
      const float f = f8e4m3_to_f32(uint8_t(c));
      if (std::isnan(f)) continue;
      if (std::fabs(f - v) < best_err) {
        best_err = std::fabs(f - v);
        best = c;
      }
    }
    return uint8_t(best);
  };
  std::vector<HostTensor> widened;
  rewrite(src, f8, [&](std::vector<HostTensor>& ts) {
    std::vector<HostTensor> extra;
    int i = 0;
    for (auto& t : ts) {
      if (t.shape.size() != 2 || t.name.find("layers.") == std::string::npos) continue;
      const int64_t N = t.shape[0], K = t.shape[1];
      std::vector<float> w(size_t(N * K));
      convert_to_f32(t.bytes.data(), t.dtype, w.size(), w.data());
      // Per-tensor, per-row or 32 x 32 blocks, in turn.
      const int kind = i++ % 3;
      const int64_t br = kind == 0 ? N : kind == 1 ? 1 : 32, bc = kind == 2 ? 32 : K;
      const int64_t sr = (N + br - 1) / br, sc = (K + bc - 1) / bc;
      std::vector<float> scale(size_t(sr * sc), 0.f);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k) {
          float& s = scale[size_t(n / br * sc + k / bc)];
          s = std::max(s, std::fabs(w[size_t(n * K + k)]) / 448.f);
        }
      std::vector<uint8_t> q(w.size());
      std::vector<float> back(w.size());
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k) {
          const float s = scale[size_t(n / br * sc + k / bc)];
          q[size_t(n * K + k)] = encode(w[size_t(n * K + k)] / s);
          back[size_t(n * K + k)] = f8e4m3_to_f32(q[size_t(n * K + k)]) * s;
        }
      widened.push_back({t.name, DType::kBF16, t.shape, store_as(back, DType::kBF16)});
      const std::string base = t.name.substr(0, t.name.size() - 7);
      std::vector<int64_t> sshape = kind == 0   ? std::vector<int64_t>{}
                                    : kind == 1 ? std::vector<int64_t>{N, 1}
                                                : std::vector<int64_t>{sr, sc};
      extra.push_back({base + (kind == 2 ? ".weight_scale_inv" : ".weight_scale"), DType::kF32,
                       sshape, store_as(scale, DType::kF32)});
      t.dtype = DType::kF8E4M3;
      t.bytes = q;
    }
    for (auto& e : extra) ts.push_back(std::move(e));
  });
  json j = read_config(f8);
  j["quantization_config"] = {{"quant_method", "fp8"}, {"weight_block_size", {32, 32}}};
  write_config(f8, j);
  rewrite(src, ref, [&](std::vector<HostTensor>& ts) {
    for (auto& w : widened) *find(ts, w.name) = w;
  });
  const std::vector<float> a = first_logits(f8), b = first_logits(ref);
  ASSERT_FALSE(a.empty());
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4));
  for (const auto& d : {src, f8, ref}) fs::remove_all(d);
}

}  // namespace
}  // namespace mlxs
