// Tests of the affine-quantized CPU kernels (linear.h: dequantize_affine, linear_affine) on every
// ISA family this CPU runs (each a test parameter; the rest are skipped, naming why): every bit
// width and group size the backend takes, f16 / bf16 / f32 scales. The dequantized values must
// be bitwise those of this file's own bit-by-bit reference, and linear_affine() bitwise
// linear() of those f32 weights on the same family (so it inherits linear_test.cc's accuracy
// and batch invariance), on decode-sized and prefill-sized batches, single- and multithreaded.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/linear.h"

namespace mlxs::cpu {
namespace {

// Random packed weights [N, K] with their scales and biases stored as `sd`.
struct Packed {
  int bits, group_size;
  DType sd;
  int64_t N, K;
  std::vector<uint8_t> data;
  std::vector<uint16_t> scales16, biases16;
  std::vector<float> scales32, biases32;

  AffineWeights view() const {
    const bool f32 = sd == DType::kF32;
    return {data.data(),
            bits,
            group_size,
            sd,
            f32 ? (const void*)scales32.data() : scales16.data(),
            f32 ? (const void*)biases32.data() : biases16.data()};
  }
  float scale(size_t i) const {
    return sd == DType::kF32 ? scales32[i] : load_as_f32(scales16.data(), sd, i);
  }
  float bias(size_t i) const {
    return sd == DType::kF32 ? biases32[i] : load_as_f32(biases16.data(), sd, i);
  }
  // q[n, k], read one bit at a time from the little-endian bit stream of row n.
  uint32_t q(int64_t n, int64_t k) const {
    const size_t row = size_t(n) * size_t(K) * size_t(bits) / 8;
    uint32_t v = 0;
    for (int i = 0; i < bits; ++i) {
      const size_t bit = size_t(k) * size_t(bits) + size_t(i);
      v |= uint32_t(data[row + bit / 8] >> (bit % 8) & 1u) << i;
    }
    return v;
  }
  // The definition in linear.h.
  float value(int64_t n, int64_t k) const {
    const size_t g = size_t(n * (K / group_size) + k / group_size);
    return std::fma(scale(g), float(q(n, k)), bias(g));
  }
};

Packed make_packed(int bits, int group_size, DType sd, int64_t N, int64_t K, std::mt19937& rng) {
  Packed p{bits, group_size, sd, N, K, {}, {}, {}, {}, {}};
  p.data.resize(size_t(N * K * bits / 8));
  for (auto& b : p.data) b = uint8_t(rng());
  const size_t groups = size_t(N * (K / group_size));
  std::uniform_real_distribution<float> scale(0.001f, 0.05f), bias(-0.5f, 0.1f);
  for (size_t i = 0; i < groups; ++i) {
    const float s = scale(rng), b = bias(rng);
    if (sd == DType::kF32) {
      p.scales32.push_back(s);
      p.biases32.push_back(b);
    } else {
      p.scales16.push_back(sd == DType::kBF16 ? f32_to_bf16(s) : f32_to_f16(s));
      p.biases16.push_back(sd == DType::kBF16 ? f32_to_bf16(b) : f32_to_f16(b));
    }
  }
  return p;
}

std::vector<float> random_x(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> v(n);
  for (float& f : v) f = d(rng);
  return v;
}

class CpuLinearAffine : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!isa_supported(GetParam())) {
      GTEST_SKIP() << "this CPU lacks " << isa_name(GetParam()) << " (it supports up to "
                   << isa_name(supported_isa()) << ")";
    }
  }
};

constexpr int kBits[] = {2, 3, 4, 5, 6, 8};
constexpr int kGroups[] = {16, 32, 64, 128};
constexpr DType kScaleTypes[] = {DType::kF16, DType::kBF16, DType::kF32};

std::string label(int bits, int group, DType sd) {
  return std::to_string(bits) + "-bit g" + std::to_string(group) + " " + dtype_name(sd);
}

TEST(CpuLinearAffineSupport, BitsAndGroups) {
  for (int bits : kBits)
    for (int g : kGroups) EXPECT_TRUE(affine_supported(bits, g)) << bits << " " << g;
  EXPECT_FALSE(affine_supported(1, 64));
  EXPECT_FALSE(affine_supported(7, 64));
  EXPECT_FALSE(affine_supported(4, 8));
  EXPECT_FALSE(affine_supported(4, 256));
}

TEST_P(CpuLinearAffine, DequantizeMatchesBitwiseReference) {
  std::mt19937 rng(7);
  const int64_t N = 5, K = 256;
  for (int bits : kBits)
    for (int g : kGroups)
      for (DType sd : kScaleTypes) {
        Packed p = make_packed(bits, g, sd, N, K, rng);
        // Rows 1..4 only: the offset of a first row must be honoured.
        std::vector<float> out(size_t(4 * K));
        dequantize_affine(p.view(), K, 1, 4, out.data(), GetParam());
        int bad = 0;
        for (int64_t r = 0; r < 4; ++r)
          for (int64_t k = 0; k < K; ++k) {
            const float want = p.value(r + 1, k), got = out[size_t(r * K + k)];
            if (std::memcmp(&want, &got, 4) != 0 && bad++ < 3) {
              ADD_FAILURE() << label(bits, g, sd) << " row " << r + 1 << " k " << k << ": " << got
                            << " != " << want;
            }
          }
      }
}

// linear_affine() against linear() of the dequantized weights: the same bits, for M = 1 (decode)
// through 70 (blocked prefill path), with and without bias, N odd so tiles have tails.
TEST_P(CpuLinearAffine, LinearEqualsF32LinearOfDequantizedWeights) {
  std::mt19937 rng(11);
  const int64_t N = 53, K = 384;
  for (int bits : kBits)
    for (int g : {32, 128})
      for (DType sd : kScaleTypes) {
        if (K % g != 0) continue;
        Packed p = make_packed(bits, g, sd, N, K, rng);
        std::vector<float> w(size_t(N * K));
        for (int64_t n = 0; n < N; ++n)
          for (int64_t k = 0; k < K; ++k) w[size_t(n * K + k)] = p.value(n, k);
        std::vector<float> bias = random_x(size_t(N), rng);
        for (int64_t M : {1, 3, 17, 70}) {
          std::vector<float> x = random_x(size_t(M * K), rng);
          for (const float* b : {(const float*)nullptr, (const float*)bias.data()}) {
            std::vector<float> got(size_t(M * N)), want(size_t(M * N));
            linear_affine(x.data(), M, K, p.view(), N, b, got.data(), GetParam());
            // kAvx512Bf16 runs quantized weights on its f32 kernel (no bf16 rounding of x).
            const Isa f32_isa = GetParam() == Isa::kAvx512Bf16 ? Isa::kAvx512 : GetParam();
            linear(x.data(), M, K, w.data(), DType::kF32, N, b, want.data(), f32_isa);
            EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * 4))
                << label(bits, g, sd) << " M " << M << (b ? " with bias" : "");
          }
        }
      }
}

// Many threads split the columns (work far above linear.cc's per-thread minimum); each thread
// dequantizes several panels. A row's output must not depend on the split or the batch.
TEST_P(CpuLinearAffine, ThreadedAndBatchInvariant) {
  std::mt19937 rng(5);
  const int64_t N = 700, K = 1024, M = 24;
  Packed p = make_packed(4, 64, DType::kBF16, N, K, rng);
  std::vector<float> x = random_x(size_t(M * K), rng);
  std::vector<float> all(size_t(M * N));
  linear_affine(x.data(), M, K, p.view(), N, nullptr, all.data(), GetParam());
  for (int64_t m : {0, 13, 23}) {
    std::vector<float> one(static_cast<size_t>(N));
    linear_affine(x.data() + m * K, 1, K, p.view(), N, nullptr, one.data(), GetParam());
    EXPECT_EQ(0, std::memcmp(one.data(), all.data() + m * N, size_t(N) * 4)) << "row " << m;
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, CpuLinearAffine, ::testing::ValuesIn(kAllIsas),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

}  // namespace
}  // namespace mlxs::cpu
