// Tests of cpu::linear(): against an f64 reference, on every ISA family (each a test parameter;
// families this CPU lacks are skipped), every weight dtype, odd shapes, with and without bias;
// batch invariance: a row's output is bitwise the same alone and anywhere in a batch of 2..70
// rows; and the choice of family (cpu_features.h).
#include "backend/cpu/linear.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_features.h"

namespace mlxs::cpu {
namespace {

constexpr DType kAllDtypes[] = {DType::kF32, DType::kBF16, DType::kF16};

// Values in +-[0.1, 1): random, never zero.
std::vector<float> random_values(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> mag(0.1f, 1.0f);
  std::bernoulli_distribution neg(0.5);
  std::vector<float> v(n);
  for (float& f : v) f = neg(rng) ? -mag(rng) : mag(rng);
  return v;
}

// Weights [N, K] stored as `dt`, plus the stored values widened to f32 for the reference.
struct Weights {
  DType dt;
  std::vector<float> f32;      // exact values of the stored weights
  std::vector<uint16_t> bits;  // bf16/f16 storage
  const void* data() const { return dt == DType::kF32 ? (const void*)f32.data() : bits.data(); }
};

Weights make_weights(DType dt, size_t n, std::mt19937& rng) {
  Weights w{dt, random_values(n, rng), {}};
  if (dt == DType::kF32) return w;
  w.bits.resize(n);
  for (size_t i = 0; i < n; ++i) {
    w.bits[i] = dt == DType::kBF16 ? f32_to_bf16(w.f32[i]) : f32_to_f16(w.f32[i]);
    w.f32[i] = load_as_f32(w.bits.data(), dt, i);
  }
  return w;
}

// One kernel family per test; a family this CPU lacks is skipped, naming the reason.
class CpuLinear : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!isa_supported(GetParam())) {
      GTEST_SKIP() << "this CPU lacks " << isa_name(GetParam()) << " (it supports up to "
                   << isa_name(supported_isa()) << ")";
    }
  }
};

bool uses_bf16_dot(Isa isa, DType dt) {
  return isa == Isa::kAvx512Bf16 && dt == DType::kBF16;
}

std::string label(Isa isa, DType dt) {
  return std::string(isa_name(isa)) + "/" + dtype_name(dt);
}

// Checks out[M, N] against the f64 reference, per element:
// |out - ref| <= tol * (sum_k |x_k w_k| + |bias|), the scale of a dot product's rounding error.
// With round_x, the reference uses x rounded to bf16 (what the vdpbf16ps kernel multiplies).
void expect_close(const std::vector<float>& x, const Weights& w, const float* bias,
                  const std::vector<float>& out, int64_t M, int64_t K, int64_t N, bool round_x,
                  double tol, const std::string& what) {
  double max_err = 0;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double ref = bias ? bias[n] : 0.0, scale = bias ? std::fabs(bias[n]) : 0.0;
      for (int64_t k = 0; k < K; ++k) {
        float xv = x[m * K + k];
        if (round_x) xv = bf16_to_f32(f32_to_bf16(xv));
        double p = double(xv) * double(w.f32[n * K + k]);
        ref += p;
        scale += std::fabs(p);
      }
      double err = std::fabs(double(out[m * N + n]) - ref) / scale;
      ASSERT_TRUE(std::isfinite(out[m * N + n])) << what << " not written at " << m << "," << n;
      max_err = std::max(max_err, err);
    }
  EXPECT_LE(max_err, tol) << what << " M=" << M << " K=" << K << " N=" << N;
}

struct Shape {
  int64_t M, K, N;
};

// Odd sizes on purpose: K not a multiple of 8/16/32, N not a multiple of any tile width, M = 1.
constexpr Shape kShapes[] = {{1, 1, 1},     {1, 7, 1},     {3, 33, 5},    {5, 64, 7},
                             {1, 2048, 50}, {7, 100, 13},  {13, 257, 31}, {4, 1000, 130},
                             {70, 95, 49},  {2, 8192, 20}, {9, 8191, 7},  {17, 512, 97}};

TEST_P(CpuLinear, MatchesF64ReferenceOnEveryDtype) {
  std::mt19937 rng(1234);
  const Isa isa = GetParam();
  for (DType dt : kAllDtypes)
    for (const Shape& s : kShapes)
      for (bool with_bias : {false, true}) {
        auto x = random_values(size_t(s.M * s.K), rng);
        Weights w = make_weights(dt, size_t(s.N * s.K), rng);
        auto bias = random_values(size_t(s.N), rng);
        const float* b = with_bias ? bias.data() : nullptr;
        std::vector<float> out(size_t(s.M * s.N), std::nanf(""));  // poisoned
        linear(x.data(), s.M, s.K, w.data(), dt, s.N, b, out.data(), isa);
        const std::string what = label(isa, dt) + (with_bias ? " bias" : "");
        if (uses_bf16_dot(isa, dt)) {
          // Exact up to f32 accumulation once x is rounded to bf16 ...
          expect_close(x, w, b, out, s.M, s.K, s.N, /*round_x=*/true, 1e-5, what);
          // ... and within bf16's half-ulp (2^-9) of the exact product otherwise.
          expect_close(x, w, b, out, s.M, s.K, s.N, /*round_x=*/false, 2.2e-3, what);
        } else {
          expect_close(x, w, b, out, s.M, s.K, s.N, /*round_x=*/false, 1e-5, what);
        }
      }
}

// Row `row` of x computed alone, then inside batches of M = 2..70 at several positions, with
// fresh random neighbours and varying thread counts: every output must be bitwise identical.
void check_batch_invariance(Isa isa, DType dt, int64_t K, int64_t N, bool with_bias) {
  std::mt19937 rng(uint32_t(K * 31 + N));
  auto row = random_values(size_t(K), rng);
  Weights w = make_weights(dt, size_t(N * K), rng);
  auto bias = random_values(size_t(N), rng);
  const float* b = with_bias ? bias.data() : nullptr;
  std::vector<float> alone(size_t(N), std::nanf(""));
  set_num_threads(1);
  linear(row.data(), 1, K, w.data(), dt, N, b, alone.data(), isa);
  set_num_threads(0);
  for (int64_t M = 2; M <= 70; ++M) {
    for (int64_t pos : {int64_t(0), M - 1, M / 2, (M * 5 + 3) % M}) {
      auto x = random_values(size_t(M * K), rng);
      std::memcpy(x.data() + pos * K, row.data(), size_t(K) * sizeof(float));
      std::vector<float> out(size_t(M * N), std::nanf(""));
      linear(x.data(), M, K, w.data(), dt, N, b, out.data(), isa);
      ASSERT_EQ(std::memcmp(out.data() + pos * N, alone.data(), size_t(N) * sizeof(float)), 0)
          << label(isa, dt) << " K=" << K << " N=" << N << " M=" << M << " pos=" << pos;
      for (float f : out) ASSERT_TRUE(std::isfinite(f)) << label(isa, dt) << " M=" << M;
    }
  }
}

TEST_P(CpuLinear, BatchInvariantOnEveryDtype) {
  for (DType dt : kAllDtypes) {
    check_batch_invariance(GetParam(), dt, 300, 53, /*with_bias=*/true);
    check_batch_invariance(GetParam(), dt, 1024, 37, /*with_bias=*/false);
  }
}

TEST_P(CpuLinear, ResultDoesNotDependOnThreadCount) {
  std::mt19937 rng(7);
  const int64_t M = 37, K = 513, N = 301;
  auto x = random_values(size_t(M * K), rng);
  for (DType dt : kAllDtypes) {
    Weights w = make_weights(dt, size_t(N * K), rng);
    std::vector<float> one(size_t(M * N)), many(size_t(M * N));
    set_num_threads(1);
    linear(x.data(), M, K, w.data(), dt, N, nullptr, one.data(), GetParam());
    set_num_threads(2);
    linear(x.data(), M, K, w.data(), dt, N, nullptr, many.data(), GetParam());
    set_num_threads(0);
    EXPECT_EQ(std::memcmp(one.data(), many.data(), one.size() * sizeof(float)), 0)
        << dtype_name(dt);
  }
}

INSTANTIATE_TEST_SUITE_P(Isas, CpuLinear, ::testing::ValuesIn(kAllIsas),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

// Regression (issue 12): on a CPU with AVX512_BF16 (AMD Zen 4 chose it by default) the default
// was the bf16-activation family, whose greedy output differs from transformers'.
TEST(CpuIsa, TheDefaultIsTheMostCapableExactFamily) {
  EXPECT_EQ(preferred_isa(Isa::kScalar), Isa::kScalar);
  EXPECT_EQ(preferred_isa(Isa::kAvx2), Isa::kAvx2);
  EXPECT_EQ(preferred_isa(Isa::kAvx512), Isa::kAvx512);
  EXPECT_EQ(preferred_isa(Isa::kAvx512Bf16), Isa::kAvx512);
  EXPECT_TRUE(isa_supported(default_isa()));
}

TEST(CpuIsa, NamesRoundTrip) {
  for (Isa isa : kAllIsas) EXPECT_EQ(isa_from_name(isa_name(isa)), isa);
  EXPECT_EQ(isa_from_name("AVX2"), std::nullopt);
  EXPECT_EQ(isa_from_name("auto"), std::nullopt);
}

TEST(CpuIsa, AChoiceTheCpuLacksIsRefusedNamingBoth) {
  EXPECT_EQ(isa_choice_error("auto", Isa::kScalar), std::nullopt);
  for (Isa isa : kAllIsas) {
    EXPECT_EQ(isa_choice_error(isa_name(isa), Isa::kAvx512Bf16), std::nullopt) << isa_name(isa);
  }
  EXPECT_EQ(isa_choice_error("avx2", Isa::kAvx2), std::nullopt);
  EXPECT_EQ(isa_choice_error("avx512", Isa::kAvx2).value_or(""),
            "this CPU cannot run avx512 (the most it supports is avx2)");
  EXPECT_EQ(isa_choice_error("avx2", Isa::kScalar).value_or(""),
            "this CPU cannot run avx2 (the most it supports is scalar)");
  EXPECT_EQ(isa_choice_error("sse4", Isa::kAvx512Bf16).value_or(""),
            "must be one of auto, scalar, avx2, avx512, avx512bf16, got 'sse4'");
  EXPECT_EQ(isa_for_choice("auto"), default_isa());
  EXPECT_EQ(isa_for_choice("scalar"), Isa::kScalar);
}

}  // namespace
}  // namespace mlxs::cpu
