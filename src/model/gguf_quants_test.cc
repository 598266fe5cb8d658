// The repack of every GGUF block type equals, value for value, a dequantizer written here from
// ggml's block definitions (dequantize_row_* in ggml-quants.c), on random blocks. Both sides are
// computed in double, where every product involved is exact, so equality is bit for bit.
#include "model/gguf_quants.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

namespace mlxs {
namespace {

double h(const uint8_t* p) {
  return f16_to_f32(uint16_t(p[0] | (p[1] << 8)));
}

void k4_scale_min(int j, const uint8_t* q, int* d, int* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
  }
}

// ggml's dequantize_row_<type> for one block, in double.
void reference_block(GgmlType type, const uint8_t* x, double* y) {
  switch (type) {
    case GgmlType::kQ8_0:
      for (int j = 0; j < 32; ++j) y[j] = h(x) * int8_t(x[2 + j]);
      return;
    case GgmlType::kQ4_0:
      for (int j = 0; j < 16; ++j) {
        y[j] = h(x) * ((x[2 + j] & 0x0F) - 8);
        y[j + 16] = h(x) * ((x[2 + j] >> 4) - 8);
      }
      return;
    case GgmlType::kQ4_1:
      for (int j = 0; j < 16; ++j) {
        y[j] = (x[4 + j] & 0x0F) * h(x) + h(x + 2);
        y[j + 16] = (x[4 + j] >> 4) * h(x) + h(x + 2);
      }
      return;
    case GgmlType::kQ5_0:
    case GgmlType::kQ5_1: {
      const bool one = type == GgmlType::kQ5_1;
      const uint8_t* qhp = x + (one ? 4 : 2);
      uint32_t qh = qhp[0] | qhp[1] << 8 | qhp[2] << 16 | uint32_t(qhp[3]) << 24;
      const uint8_t* qs = qhp + 4;
      for (int j = 0; j < 16; ++j) {
        const int xh0 = ((qh >> (j + 0)) << 4) & 0x10;
        const int xh1 = ((qh >> (j + 12))) & 0x10;
        const int x0 = (qs[j] & 0x0F) | xh0, x1 = (qs[j] >> 4) | xh1;
        y[j] = one ? x0 * h(x) + h(x + 2) : (x0 - 16) * h(x);
        y[j + 16] = one ? x1 * h(x) + h(x + 2) : (x1 - 16) * h(x);
      }
      return;
    }
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K: {
      const bool five = type == GgmlType::kQ5_K;
      const double d = h(x), min = h(x + 2);
      const uint8_t* scales = x + 4;
      const uint8_t* qh = x + 16;
      const uint8_t* q = x + (five ? 48 : 16);
      int is = 0;
      uint8_t u1 = 1, u2 = 2;
      for (int j = 0; j < 256; j += 64) {
        int sc, m;
        k4_scale_min(is + 0, scales, &sc, &m);
        const double d1 = d * sc, m1 = min * m;
        k4_scale_min(is + 1, scales, &sc, &m);
        const double d2 = d * sc, m2 = min * m;
        for (int l = 0; l < 32; ++l) {
          *y++ = d1 * ((q[l] & 0xF) + (five && (qh[l] & u1) ? 16 : 0)) - m1;
        }
        for (int l = 0; l < 32; ++l) {
          *y++ = d2 * ((q[l] >> 4) + (five && (qh[l] & u2) ? 16 : 0)) - m2;
        }
        q += 32;
        is += 2;
        u1 <<= 2;
        u2 <<= 2;
      }
      return;
    }
    case GgmlType::kQ6_K: {
      const double d = h(x + 208);
      const uint8_t* ql = x;
      const uint8_t* qh = x + 128;
      const int8_t* sc = reinterpret_cast<const int8_t*>(x + 192);
      for (int n = 0; n < 256; n += 128) {
        for (int l = 0; l < 32; ++l) {
          const int is = l / 16;
          const int q1 = int((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
          const int q2 = int((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
          const int q3 = int((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
          const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
          y[l + 0] = d * sc[is + 0] * q1;
          y[l + 32] = d * sc[is + 2] * q2;
          y[l + 64] = d * sc[is + 4] * q3;
          y[l + 96] = d * sc[is + 6] * q4;
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
      }
      return;
    }
    case GgmlType::kQ2_K: {
      const double d = h(x + 80), min = h(x + 82);
      const uint8_t* scales = x;
      const uint8_t* q = x + 16;
      int is = 0;
      for (int n = 0; n < 256; n += 128) {
        int shift = 0;
        for (int j = 0; j < 4; ++j) {
          uint8_t sc = scales[is++];
          double dl = d * (sc & 0xF), ml = min * (sc >> 4);
          for (int l = 0; l < 16; ++l) *y++ = dl * ((q[l] >> shift) & 3) - ml;
          sc = scales[is++];
          dl = d * (sc & 0xF);
          ml = min * (sc >> 4);
          for (int l = 0; l < 16; ++l) *y++ = dl * ((q[l + 16] >> shift) & 3) - ml;
          shift += 2;
        }
        q += 32;
      }
      return;
    }
    case GgmlType::kQ3_K: {
      const uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
      uint32_t aux[4];
      std::memcpy(aux, x + 96, 12);
      const uint32_t tmp = aux[2];
      aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
      aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
      aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
      aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
      int8_t scales[16];
      std::memcpy(scales, aux, 16);
      const double d_all = h(x + 108);
      const uint8_t* q = x + 32;
      const uint8_t* hm = x;
      uint8_t m = 1;
      int is = 0;
      for (int n = 0; n < 256; n += 128) {
        int shift = 0;
        for (int j = 0; j < 4; ++j) {
          double dl = d_all * (scales[is++] - 32);
          for (int l = 0; l < 16; ++l) {
            *y++ = dl * (int((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
          }
          dl = d_all * (scales[is++] - 32);
          for (int l = 0; l < 16; ++l) {
            *y++ = dl * (int((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) ? 0 : 4));
          }
          shift += 2;
          m <<= 1;
        }
        q += 32;
      }
      return;
    }
    default:
      FAIL() << "no reference for " << ggml_type_name(uint32_t(type));
  }
}

// Value (r, c) of a repacked matrix, in double.
double affine_value(const RepackedMatrix& m, int64_t r, int64_t c) {
  const uint32_t* row = m.packed.data() + r * m.words_per_row();
  const int64_t bit = c * m.bits;
  uint64_t window = row[bit / 32];
  if (bit % 32 + m.bits > 32) window |= uint64_t(row[bit / 32 + 1]) << 32;
  const uint32_t q = uint32_t(window >> (bit % 32)) & ((1u << m.bits) - 1);
  const size_t g = size_t(r * m.groups_per_row() + c / m.group_size);
  auto load = [&](const std::vector<uint8_t>& v) {
    return double(load_as_f32(v.data(), m.scale_dtype, g));
  };
  return load(m.scales) * q + load(m.biases);
}

// Random blocks whose f16 fields are finite (any bit pattern elsewhere).
std::vector<uint8_t> random_blocks(GgmlType type, size_t num_blocks, std::mt19937& rng) {
  const GgmlTypeInfo* info = ggml_type_info(uint32_t(type));
  std::vector<uint8_t> data(num_blocks * size_t(info->block_bytes));
  for (auto& b : data) b = uint8_t(rng());
  std::uniform_real_distribution<float> scale(-0.05f, 0.05f);
  auto put = [&](uint8_t* p) {
    const uint16_t v = f32_to_f16(scale(rng));
    p[0] = uint8_t(v);
    p[1] = uint8_t(v >> 8);
  };
  for (size_t b = 0; b < num_blocks; ++b) {
    uint8_t* blk = data.data() + b * size_t(info->block_bytes);
    switch (type) {
      case GgmlType::kQ6_K:
        put(blk + 208);
        break;
      case GgmlType::kQ3_K:
        put(blk + 108);
        break;
      case GgmlType::kQ2_K:
        put(blk + 80);
        put(blk + 82);
        break;
      case GgmlType::kQ4_1:
      case GgmlType::kQ5_1:
      case GgmlType::kQ4_K:
      case GgmlType::kQ5_K:
        put(blk);
        put(blk + 2);
        break;
      default:
        put(blk);
    }
  }
  return data;
}

class RepackTest : public ::testing::TestWithParam<GgmlType> {};

TEST_P(RepackTest, EqualsTheBlockDefinitionBitForBit) {
  const GgmlType type = GetParam();
  const GgmlTypeInfo* info = ggml_type_info(uint32_t(type));
  std::mt19937 rng(uint32_t(type) * 7919u);
  const int64_t rows = 5, cols = 2 * 256;
  const auto data = random_blocks(type, size_t(rows * cols / info->block_values), rng);
  ASSERT_TRUE(gguf_type_repackable(uint32_t(type)));
  const RepackedMatrix m = repack_gguf_rows(uint32_t(type), data.data(), rows, cols);
  ASSERT_EQ(m.packed.size(), size_t(rows * cols * m.bits / 32));
  ASSERT_EQ(m.scales.size(), size_t(rows * cols / m.group_size) * dtype_size(m.scale_dtype));
  std::vector<double> want(size_t(info->block_values));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < cols / info->block_values; ++b) {
      const size_t block = size_t(r * (cols / info->block_values) + b);
      reference_block(type, data.data() + block * size_t(info->block_bytes), want.data());
      for (int i = 0; i < info->block_values; ++i) {
        const int64_t c = b * info->block_values + i;
        ASSERT_EQ(affine_value(m, r, c), want[size_t(i)])
            << ggml_type_name(uint32_t(type)) << " row " << r << " col " << c;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, RepackTest,
                         ::testing::Values(GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_1,
                                           GgmlType::kQ5_0, GgmlType::kQ5_1, GgmlType::kQ4_K,
                                           GgmlType::kQ5_K, GgmlType::kQ6_K, GgmlType::kQ2_K,
                                           GgmlType::kQ3_K),
                         [](const auto& info) { return ggml_type_name(uint32_t(info.param)); });

TEST(GgufQuants, WideningAndRowPermutationKeepEveryValue) {
  std::mt19937 rng(5);
  for (GgmlType t : {GgmlType::kQ4_K, GgmlType::kQ8_0, GgmlType::kQ5_0}) {
    const auto data = random_blocks(t, 3 * 2, rng);
    const GgmlTypeInfo* info = ggml_type_info(uint32_t(t));
    const int64_t rows = 3, cols = 2 * info->block_values;
    const RepackedMatrix m = repack_gguf_rows(uint32_t(t), data.data(), rows, cols);
    RepackedMatrix w = m;
    widen_affine(w, 8, 16, DType::kF32);
    EXPECT_EQ(w.bits, 8);
    EXPECT_EQ(w.group_size, 16);
    RepackedMatrix p = m;
    const std::vector<int64_t> order = {2, 0, 1};
    permute_affine_rows(p, order);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        ASSERT_EQ(affine_value(w, r, c), affine_value(m, r, c)) << ggml_type_name(uint32_t(t));
        ASSERT_EQ(affine_value(p, r, c), affine_value(m, order[size_t(r)], c));
      }
    }
  }
}

TEST(GgufQuants, GeometryAndScaleTypes) {
  std::mt19937 rng(1);
  auto geometry = [&](GgmlType t) {
    const auto data = random_blocks(t, 1, rng);
    const GgmlTypeInfo* info = ggml_type_info(uint32_t(t));
    return repack_gguf_rows(uint32_t(t), data.data(), 1, info->block_values);
  };
  EXPECT_EQ(geometry(GgmlType::kQ8_0).bits, 8);
  EXPECT_EQ(geometry(GgmlType::kQ8_0).scale_dtype, DType::kF16);  // d and -128 d are f16
  EXPECT_EQ(geometry(GgmlType::kQ4_0).group_size, 32);
  EXPECT_EQ(geometry(GgmlType::kQ5_K).bits, 5);
  EXPECT_EQ(geometry(GgmlType::kQ6_K).group_size, 16);
  EXPECT_EQ(geometry(GgmlType::kQ6_K).bits, 6);
  EXPECT_EQ(geometry(GgmlType::kQ3_K).bits, 3);
  EXPECT_EQ(geometry(GgmlType::kQ2_K).group_size, 16);
  EXPECT_FALSE(gguf_type_repackable(uint32_t(GgmlType::kQ8_K)));
  EXPECT_FALSE(gguf_type_repackable(uint32_t(GgmlType::kF16)));
}

// The writer's quantizers: what they write dequantizes (by the reference above) close to the
// input, within the type's step.
TEST(GgufQuants, WritersRoundTripWithinTheirStep) {
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.f, 0.02f);
  std::vector<float> x(512);
  for (auto& v : x) v = dist(rng);
  struct Case {
    GgmlType type;
    void (*quantize)(const float*, int64_t, uint8_t*);
    double tolerance;
  };
  for (const Case& c : {Case{GgmlType::kQ8_0, quantize_row_q8_0, 0.001},
                        Case{GgmlType::kQ4_0, quantize_row_q4_0, 0.01},
                        Case{GgmlType::kQ5_0, quantize_row_q5_0, 0.005},
                        Case{GgmlType::kQ4_K, quantize_row_q4_k, 0.01},
                        Case{GgmlType::kQ6_K, quantize_row_q6_k, 0.003}}) {
    const GgmlTypeInfo* info = ggml_type_info(uint32_t(c.type));
    std::vector<uint8_t> blocks(x.size() / size_t(info->block_values) * size_t(info->block_bytes));
    c.quantize(x.data(), int64_t(x.size()), blocks.data());
    std::vector<double> y(x.size());
    for (size_t b = 0; b < x.size() / size_t(info->block_values); ++b) {
      reference_block(c.type, blocks.data() + b * size_t(info->block_bytes),
                      y.data() + b * size_t(info->block_values));
    }
    double worst = 0;
    for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::fabs(y[i] - x[i]));
    EXPECT_LT(worst, c.tolerance) << info->name;
  }
}

}  // namespace
}  // namespace mlxs
