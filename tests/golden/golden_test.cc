// Golden tests: every family's tiny model in tests/fixtures/golden/<name>/ must reproduce the
// logits and greedy tokens that Hugging Face transformers computed (reference/gpu/make_golden.py),
// on every CPU kernel family (scalar, avx2, avx512, avx512bf16; those this CPU lacks are
// skipped) and on the GPU. Tolerances, argued in logit_tolerance.h: f32 activations (every
// family but avx512bf16 on bf16 weights, and CUDA's precise mode): relative L2 error of each
// logits row <= 1e-4 (CUDA 1e-3) and greedy identical; bf16 activations: row error <= 2 sigma,
// every logit within B = 8 sigma RMS, and a greedy token may differ only at a near tie (margin
// below 2 B).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "backend/cuda/cuda_backend.h"
#include "model/decoder.h"
#include "model/safetensors.h"
#include "runtime/step_batch.h"
#include "tests/golden/logit_tolerance.h"

namespace mlxs {
namespace {

namespace fs = std::filesystem;

fs::path golden_root() {
  return fs::path(MLXS_SOURCE_DIR) / "tests/fixtures/golden";
}

std::vector<std::string> golden_models() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(golden_root(), ec)) {
    if (fs::exists(e.path() / "reference.safetensors")) names.push_back(e.path().filename());
  }
  std::sort(names.begin(), names.end());
  return names;
}

struct Reference {
  std::vector<std::vector<int32_t>> prompts, greedy;
  std::unique_ptr<SafetensorsFile> file;
  const float* logits = nullptr;  // [P, steps, V]
  int steps = 0, vocab = 0;
  const float* row(size_t p, int step) const {
    return logits + (p * size_t(steps) + size_t(step)) * size_t(vocab);
  }
};

Reference load_reference(const fs::path& dir) {
  Reference r;
  std::ifstream in(dir / "reference.json");
  auto j = nlohmann::json::parse(in);
  r.prompts = j["prompts"].get<std::vector<std::vector<int32_t>>>();
  r.greedy = j["greedy"].get<std::vector<std::vector<int32_t>>>();
  auto f = SafetensorsFile::open((dir / "reference.safetensors").string());
  EXPECT_TRUE(f.ok()) << f.status().to_string();
  r.file = std::move(*f);
  const TensorInfo& t = r.file->tensors().at("logits");
  r.logits = static_cast<const float*>(t.data);
  r.steps = int(t.shape[1]);
  r.vocab = int(t.shape[2]);
  return r;
}

double rel_err(const float* a, const float* b, int n) {
  double num = 0, den = 0;
  for (int i = 0; i < n; ++i) {
    num += double(a[i] - b[i]) * double(a[i] - b[i]);
    den += double(b[i]) * double(b[i]);
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

// One family's fixture; `tolerance` picks the bounds from the model's dtype and layers.
void check_golden(const std::string& name, Backend& backend, const std::string& label,
                  const std::function<golden::LogitTolerance(const ModelArch&)>& tolerance);

class GoldenTest : public ::testing::TestWithParam<std::tuple<std::string, cpu::Isa>> {};

TEST_P(GoldenTest, MatchesTransformers) {
  const auto& [name, isa] = GetParam();
  if (!cpu::isa_supported(isa)) {
    GTEST_SKIP() << "this CPU lacks " << cpu::isa_name(isa) << " (it supports up to "
                 << cpu::isa_name(cpu::supported_isa()) << ")";
  }
  auto backend = make_cpu_backend(0, isa);
  check_golden(name, *backend, std::string("cpu/") + cpu::isa_name(isa), [&](const ModelArch& c) {
    return golden::logit_tolerance(isa, c.dtype, c.num_layers, 1e-4);
  });
}

std::string golden_test_name(const ::testing::TestParamInfo<GoldenTest::ParamType>& info) {
  return std::get<0>(info.param) + "_" + cpu::isa_name(std::get<1>(info.param));
}

// The same on the GPU, with f32-precise activations (hi + lo bf16 halves on the tensor cores):
// relative error within 1e-3 and the same greedy tokens. Skipped without a GPU.
class GoldenCudaTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenCudaTest, MatchesTransformersOnCuda) {
  CudaBackendConfig o;
  o.precision = CudaPrecision::kPrecise;
  auto backend = make_cuda_backend(o);
  if (!backend.ok()) GTEST_SKIP() << backend.status().message();
  // MLX-quantized fixtures run once the CUDA backend takes their bits and group size.
  std::ifstream in(golden_root() / GetParam() / "config.json");
  const auto config = nlohmann::json::parse(in);
  if (config.contains("quantization")) {
    const int bits = config["quantization"]["bits"], group = config["quantization"]["group_size"];
    if (!(*backend)->supports_quant(bits, group)) {
      GTEST_SKIP() << "the cuda backend has no kernels for " << bits << "-bit weights in groups of "
                   << group << " yet";
    }
  }
  check_golden(GetParam(), **backend, "cuda", [](const ModelArch&) {
    return golden::LogitTolerance{false, 1e-3, 0};
  });
}

// Runs all prompts together (prefill in one step, then one decode step per token for all of them,
// feeding the reference's greedy tokens) and compares every step's logits.
void check_golden(const std::string& name, Backend& backend, const std::string& label,
                  const std::function<golden::LogitTolerance(const ModelArch&)>& tolerance) {
  fs::path dir = golden_root() / name;
  Reference ref = load_reference(dir);
  auto loaded = Model::load(dir.string(), backend);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  Model& model = **loaded;
  const golden::LogitTolerance tol = tolerance(model.config());
  const int bs = 16, V = ref.vocab, P = int(ref.prompts.size());
  ASSERT_EQ(V, model.config().vocab_size);
  auto cache = KvCache::create(backend, model.config(), 64, bs);
  ASSERT_TRUE(cache.ok());
  std::vector<std::vector<int32_t>> tables(static_cast<size_t>(P));
  for (int p = 0; p < P; ++p) {
    tables[size_t(p)].resize(8);
    std::iota(tables[size_t(p)].begin(), tables[size_t(p)].end(), p * 8);
  }
  std::vector<int> done(static_cast<size_t>(P), 0);
  double worst = 0, worst_logit = 0;
  for (int step = 0; step < ref.steps; ++step) {
    std::vector<SeqStep> steps;
    std::vector<std::vector<int32_t>> feed(static_cast<size_t>(P));
    for (int p = 0; p < P; ++p) {
      feed[size_t(p)] = step == 0 ? ref.prompts[size_t(p)]
                                  : std::vector<int32_t>{ref.greedy[size_t(p)][size_t(step) - 1]};
      steps.push_back({tables[size_t(p)], done[size_t(p)], feed[size_t(p)]});
    }
    std::vector<int32_t> flat;
    AttentionBatch b = make_attention_batch(steps, bs, model.config().sliding_window, &flat);
    std::vector<int32_t> rows;
    for (int p = 0; p < P; ++p) rows.push_back(b.query_start[size_t(p) + 1] - 1);
    std::vector<float> logits;
    ASSERT_TRUE(model.forward(flat, b, rows, **cache, &logits).ok());
    for (int p = 0; p < P; ++p) {
      done[size_t(p)] += int(feed[size_t(p)].size());
      const float* got = logits.data() + size_t(p) * size_t(V);
      const float* want = ref.row(size_t(p), step);
      const std::string where =
          name + " on " + label + ", prompt " + std::to_string(p) + " step " + std::to_string(step);
      double e = rel_err(got, want, V);
      worst = std::max(worst, e);
      EXPECT_LE(e, tol.row_rel_l2) << where;
      const double ref_rms = golden::rms(want, V);
      double max_dev = 0;
      for (int v = 0; v < V; ++v) max_dev = std::max(max_dev, std::fabs(double(got[v]) - want[v]));
      worst_logit = std::max(worst_logit, max_dev / ref_rms);
      if (tol.logit_over_rms > 0) {
        EXPECT_LE(max_dev, tol.logit_over_rms * ref_rms) << where << ": a logit moved " << max_dev;
      }
      int top = int(std::max_element(got, got + V) - got);
      int want_top = ref.greedy[size_t(p)][size_t(step)];
      if (top != want_top) {
        const double margin = golden::top2_margin(want, V);
        EXPECT_LT(margin, tol.near_tie_margin(ref_rms))
            << where << ": greedy token " << top << ", reference " << want_top
            << ", reference margin " << margin << " is not a near tie";
      }
    }
  }
  ::testing::Test::RecordProperty("worst_relative_error", std::to_string(worst));
  std::printf(
      "[ golden ] %s on %s: worst relative logits error %.3g (tolerance %.2g), worst "
      "logit %.3g RMS\n",
      name.c_str(), label.c_str(), worst, tol.row_rel_l2, worst_logit);
}

INSTANTIATE_TEST_SUITE_P(Families, GoldenTest,
                         ::testing::Combine(::testing::ValuesIn(golden_models()),
                                            ::testing::ValuesIn(cpu::kAllIsas)),
                         golden_test_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(GoldenTest);
INSTANTIATE_TEST_SUITE_P(Families, GoldenCudaTest, ::testing::ValuesIn(golden_models()));
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(GoldenCudaTest);
TEST(GoldenFixtures, EveryFamilyHasOne) {
  auto names = golden_models();
  for (const char* want :
       {"llama", "llama31", "llama32", "mistral", "qwen2", "qwen3", "llama_bf16"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end())
        << "missing golden fixture tests/fixtures/golden/" << want;
  }
}

}  // namespace
}  // namespace mlxs
