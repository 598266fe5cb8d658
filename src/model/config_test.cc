// config.json parsing and model-folder errors: each names the file and key or tensor.
#include "model/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/decoder.h"
#include "model/random_model.h"
#include "model/safetensors.h"

namespace mlxs {
namespace {

namespace fs = std::filesystem;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mlxs_cfg_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    auto c = random_model_config("tiny-llama");
    ASSERT_TRUE(c.ok());
    base_ = nlohmann::json::parse(config_to_json(*c));
  }
  void TearDown() override { fs::remove_all(dir_); }
  Result<ModelArch> load(const nlohmann::json& j) {
    std::ofstream(dir_ / "config.json") << j.dump();
    return ModelArch::load(dir_.string());
  }
  fs::path dir_;
  nlohmann::json base_;
};

TEST_F(ConfigTest, ReadsTheCommonKeys) {
  auto c = load(base_);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->hidden_size, 64);
  EXPECT_EQ(c->num_kv_heads, 2);
  EXPECT_EQ(c->eos_token_ids, std::vector<int>{2});
}

TEST_F(ConfigTest, MissingRequiredKeyIsNamed) {
  base_.erase("hidden_size");
  auto c = load(base_);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("missing required key 'hidden_size'"), std::string::npos);
}

TEST_F(ConfigTest, WrongTypeIsNamed) {
  base_["num_hidden_layers"] = "two";
  auto c = load(base_);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("'num_hidden_layers' has the wrong type"), std::string::npos);
}

// Regression (security audit): sizes were read with get<int>() and not bounded: a vocab_size of
// 2^32 + 8192 loaded as 8192, max_position_embeddings 2^31 - 1 overflowed int arithmetic, and
// head_dim 2e9 cost 3.8 GB and 28 s before its error.
TEST_F(ConfigTest, SizesAreRangeCheckedBeforeUse) {
  const std::vector<std::pair<const char*, nlohmann::json>> hostile = {
      {"vocab_size", 4294975488ull},
      {"vocab_size", 1 << 23},
      {"max_position_embeddings", 2147483647},
      {"head_dim", 2000000000},
      {"hidden_size", -64},
      {"num_hidden_layers", 1.5},
      {"num_key_value_heads", 0},
      {"intermediate_size", 18446744073709551615ull},
  };
  for (const auto& [key, value] : hostile) {
    auto j = base_;
    j[key] = value;
    auto c = load(j);
    ASSERT_FALSE(c.ok()) << key << " = " << value.dump();
    EXPECT_NE(c.status().message().find(std::string("'") + key + "'"), std::string::npos)
        << c.status().message();
  }
  auto eos = base_;
  eos["eos_token_id"] = {2, 4294967298ull};
  EXPECT_FALSE(load(eos).ok());
}

TEST_F(ConfigTest, UnsupportedArchitectureListsTheSupportedOnes) {
  base_["architectures"] = {"GPT2LMHeadModel"};
  auto c = load(base_);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("'GPT2LMHeadModel'"), std::string::npos);
  EXPECT_NE(c.status().message().find("Qwen3ForCausalLM"), std::string::npos);
}

TEST_F(ConfigTest, ReadsRopeParametersOfTransformers5AndLlama3Scaling) {
  base_.erase("rope_theta");
  base_["rope_parameters"] = {
      {"rope_type", "llama3"},   {"rope_theta", 500000.0},
      {"factor", 8.0},           {"low_freq_factor", 1.0},
      {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
  base_["head_dim"] = 128;
  base_["num_attention_heads"] = 1;
  base_["num_key_value_heads"] = 1;
  auto c = load(base_);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->rope_theta, 500000.0);
  RopeParams p = c->rope_params();
  ASSERT_EQ(p.inv_freq.size(), 64u);
  EXPECT_FLOAT_EQ(p.inv_freq[0], 1.0f);  // high frequency: unscaled
  // Lowest frequency: wavelength beyond 8192 / 1 tokens, divided by the factor 8.
  EXPECT_NEAR(p.inv_freq[63], 1.0f / std::pow(500000.0f, 126.f / 128.f) / 8.f, 1e-12);
}

TEST_F(ConfigTest, UnsupportedRopeTypeIsAnError) {
  base_["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  auto c = load(base_);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("rope type 'yarn'"), std::string::npos);
}

TEST_F(ConfigTest, ModelWithAMissingTensorNamesIt) {
  auto c = random_model_config("tiny-llama");
  ASSERT_TRUE(write_random_model(*c, DType::kF32, dir_.string(), 1).ok());
  // Rewrite the weights without one tensor.
  auto file = SafetensorsFile::open((dir_ / "model.safetensors").string());
  ASSERT_TRUE(file.ok());
  std::vector<TensorToWrite> keep;
  for (const auto& [name, t] : (*file)->tensors()) {
    if (name != "model.layers.1.mlp.up_proj.weight")
      keep.push_back({name, t.dtype, t.shape, t.data, nullptr});
  }
  ASSERT_TRUE(write_safetensors((dir_ / "other.safetensors").string(), keep).ok());
  file->reset();
  fs::rename(dir_ / "other.safetensors", dir_ / "model.safetensors");
  auto backend = make_cpu_backend();
  auto m = Model::load(dir_.string(), *backend);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("missing tensor 'model.layers.1.mlp.up_proj.weight'"),
            std::string::npos);
}

TEST_F(ConfigTest, ModelWithAnUnexpectedTensorNamesIt) {
  auto c = random_model_config("tiny-llama");
  ASSERT_TRUE(write_random_model(*c, DType::kF32, dir_.string(), 1).ok());
  auto file = SafetensorsFile::open((dir_ / "model.safetensors").string());
  ASSERT_TRUE(file.ok());
  std::vector<TensorToWrite> all;
  for (const auto& [name, t] : (*file)->tensors())
    all.push_back({name, t.dtype, t.shape, t.data, nullptr});
  float extra = 1.f;
  all.push_back({"model.layers.0.mystery.weight", DType::kF32, {1}, &extra, nullptr});
  ASSERT_TRUE(write_safetensors((dir_ / "other.safetensors").string(), all).ok());
  file->reset();
  fs::rename(dir_ / "other.safetensors", dir_ / "model.safetensors");
  auto backend = make_cpu_backend();
  auto m = Model::load(dir_.string(), *backend);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("unexpected tensor(s)"), std::string::npos);
  EXPECT_NE(m.status().message().find("model.layers.0.mystery.weight"), std::string::npos);
}

}  // namespace
}  // namespace mlxs

namespace mlxs {
namespace {

TEST_F(ConfigTest, ReadsMlxQuantizationAndOverrides) {
  base_["quantization_config"] = {
      {"group_size", 64},
      {"bits", 4},
      {"model.layers.0.mlp.down_proj", {{"group_size", 32}, {"bits", 8}}},
      {"lm_head", false}};
  auto c = load(base_);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->quant.method, QuantConfig::Method::kMlxAffine);
  EXPECT_EQ(c->quant.affine_for("model.layers.1.mlp.down_proj").bits, 4);
  EXPECT_EQ(c->quant.affine_for("model.layers.0.mlp.down_proj").bits, 8);
  EXPECT_EQ(c->quant.affine_for("model.layers.0.mlp.down_proj").group_size, 32);
  EXPECT_EQ(c->quant.affine_for("lm_head").bits, 0);
  // bf16 scales and biases per 64 weights: 0.5 + 4 / 64 bytes per weight.
  EXPECT_DOUBLE_EQ(c->bytes_per_parameter(), 0.5 + 4.0 / 64);
}

TEST_F(ConfigTest, BadQuantizationBlocksAreNamed) {
  base_["quantization"] = {{"group_size", 64}};
  auto c = load(base_);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("(quantization): 'bits' must be an integer"),
            std::string::npos)
      << c.status().message();
  base_.erase("quantization");
  base_["quantization_config"] = {{"quant_method", "fp8"}, {"weight_block_size", {128}}};
  c = load(base_);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("weight_block_size must be [rows, cols]"), std::string::npos)
      << c.status().message();
  base_["quantization_config"] = {{"quant_method", "gptq"}, {"bits", 4}};
  c = load(base_);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("quant_method 'gptq' is not supported"), std::string::npos)
      << c.status().message();
}

}  // namespace
}  // namespace mlxs
