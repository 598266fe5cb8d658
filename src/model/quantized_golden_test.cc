// The C++ MLX writer against the independent one: reference/gpu/make_quant_golden.py quantizes
// the float golden models in torch from MLX's published definition and writes
// tests/fixtures/golden/<family>_q<bits>g<group>/ (their logits are checked, on every CPU kernel
// family and on CUDA, by tests/golden/golden_test.cc, which runs every fixture folder).
// quantize_model_mlx() on the same float model must write the same tensors, bit for bit.
// The fixtures come from the GPU machine's run_all.sh: until they are committed these tests
// skip, saying so.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/quantize_model.h"
#include "model/safetensors.h"

namespace mlxs {
namespace {

namespace fs = std::filesystem;

fs::path golden_root() {
  return fs::path(MLXS_SOURCE_DIR) / "tests/fixtures/golden";
}

struct Variant {
  const char* family;
  int bits, group;
};
// make_quant_golden.py's VARIANTS.
constexpr Variant kVariants[] = {{"llama", 4, 64},     {"llama", 8, 32}, {"llama32", 4, 32},
                                 {"qwen2", 4, 64},     {"qwen3", 3, 32}, {"mistral", 6, 64},
                                 {"llama_bf16", 4, 32}};

std::string variant_name(const Variant& v) {
  return std::string(v.family) + "_q" + std::to_string(v.bits) + "g" + std::to_string(v.group);
}

class QuantGolden : public ::testing::TestWithParam<Variant> {};

TEST_P(QuantGolden, WriterMatchesTheIndependentOneBitForBit) {
  const Variant v = GetParam();
  const fs::path want_dir = golden_root() / variant_name(v);
  if (!fs::exists(want_dir / "model.safetensors")) {
    GTEST_SKIP() << "no fixture " << want_dir
                 << " yet: it is made on the GPU machine by reference/gpu/run_all.sh "
                    "(make_quant_golden.py) and committed by the lead";
  }
  const fs::path out =
      fs::temp_directory_path() / ("qgolden_" + variant_name(v) + "_" + std::to_string(getpid()));
  ASSERT_TRUE(
      quantize_model_mlx((golden_root() / v.family).string(), out.string(), v.bits, v.group).ok());
  auto got = SafetensorsFile::open((out / "model.safetensors").string());
  auto want = SafetensorsFile::open((want_dir / "model.safetensors").string());
  ASSERT_TRUE(got.ok() && want.ok());
  ASSERT_EQ((*got)->tensors().size(), (*want)->tensors().size());
  for (const auto& [name, w] : (*want)->tensors()) {
    auto it = (*got)->tensors().find(name);
    ASSERT_NE(it, (*got)->tensors().end()) << name;
    const TensorInfo& g = it->second;
    EXPECT_EQ(g.dtype, w.dtype) << name;
    EXPECT_EQ(g.shape, w.shape) << name;
    ASSERT_EQ(g.nbytes, w.nbytes) << name;
    EXPECT_EQ(0, std::memcmp(g.data, w.data, w.nbytes)) << name << " differs";
  }
  std::ifstream a(out / "config.json"), b(want_dir / "config.json");
  const auto ja = nlohmann::json::parse(a), jb = nlohmann::json::parse(b);
  EXPECT_EQ(ja["quantization"], jb["quantization"]);
  fs::remove_all(out);
}

INSTANTIATE_TEST_SUITE_P(Variants, QuantGolden, ::testing::ValuesIn(kVariants),
                         [](const auto& info) { return variant_name(info.param); });

}  // namespace
}  // namespace mlxs
