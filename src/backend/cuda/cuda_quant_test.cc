// The CUDA backend's affine-quantized weights (backend.h AffineQuant) against a reference
// written here: random packed values, scales and biases built on the host, dequantized in
// double (w = scale * q + bias with the scales as stored), times x in double. Every supported
// (bits, group, scale dtype), rows of x M in {1, 2, 3, 8, 32, 33, 200}, with and without a
// bias; SwiGLU on interleaved gate/up weights; the embedding gather; a step graph around a
// quantized linear. Outputs are poisoned (NaN) before each call. Skipped where the build has no
// CUDA or the machine no GPU. Run: ./build/cuda/mlxs_tests --gtest_filter='CudaQuant*'
//
// Bounds (relative L2 error against the double reference): the GEMV (M <= 8) and precise mode's
// f32 SGEMM dequantize in f32 (one rounding of fma(q, scale, bias)) and accumulate in f32:
// 1e-5, as the f32 linear of cuda_backend_test.cc (order differences over K <= 8192 terms land
// near 1e-7). Fast mode above 8 rows (and with gemv_max_rows 0) rounds weights and x to bf16
// (8 significant bits): 1e-2, the bound of every bf16 operand. The embedding is an exact copy of
// the f32 dequantization (fmaf on both sides): 0 within 1e-7.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>

#include "backend/cuda/cuda_backend.h"
#include "util/dtype.h"

namespace mlxs {
namespace {

struct Errors {
  double rel_l2 = 0, max_abs = 0;
};

// ‖a − ref‖ / ‖ref‖ and max |a − ref| in double; infinity on a NaN or a size mismatch.
Errors compare(const std::vector<float>& a, const std::vector<double>& ref) {
  if (a.size() != ref.size()) return {INFINITY, INFINITY};
  double num = 0, den = 0, max_abs = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i])) return {INFINITY, INFINITY};
    const double d = double(a[i]) - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
    max_abs = std::max(max_abs, std::abs(d));
  }
  return {std::sqrt(num / std::max(den, 1e-300)), max_abs};
}

// A quantized [N, K] weight on the host: its packed words, scales and biases as stored (bit
// patterns of sdt), and the values they stand for.
struct HostQuant {
  int bits, group;
  DType sdt;
  int64_t N, K;
  std::vector<uint32_t> words;     // [N, K * bits / 32]
  std::vector<uint32_t> q;         // [N, K] the unpacked values
  std::vector<float> scale, bias;  // [N, K / group], as stored (rounded to sdt)

  double w(int64_t n, int64_t k) const {
    const size_t g = size_t(n * (K / group) + k / group);
    return double(scale[g]) * double(q[size_t(n * K + k)]) + double(bias[g]);
  }
  // The device's f32 value: one rounding of fma(q, scale, bias).
  float w_f32(int64_t n, int64_t k) const {
    const size_t g = size_t(n * (K / group) + k / group);
    return std::fmaf(float(q[size_t(n * K + k)]), scale[g], bias[g]);
  }
};

float round_to(float v, DType dt) {
  if (dt == DType::kBF16) return bf16_to_f32(f32_to_bf16(v));
  if (dt == DType::kF16) return f16_to_f32(f32_to_f16(v));
  return v;
}

// Packs q (K values of `bits` bits per row) as each row's little-endian bit stream: value k at
// bits [k * bits, (k + 1) * bits) of the row, word by word (the first value in the lowest bits).
std::vector<uint32_t> pack(const std::vector<uint32_t>& q, int64_t N, int64_t K, int bits) {
  const int64_t row_words = K * bits / 32;
  std::vector<uint32_t> words(size_t(N * row_words), 0);
  for (int64_t n = 0; n < N; ++n) {
    uint32_t* row = words.data() + n * row_words;
    for (int64_t k = 0; k < K; ++k) {
      const uint64_t v = q[size_t(n * K + k)], pos = uint64_t(k) * uint64_t(bits);
      const uint64_t wi = pos / 32, sh = pos % 32;
      row[wi] |= uint32_t(v << sh);
      if (sh + uint64_t(bits) > 32) row[wi + 1] |= uint32_t(v >> (32 - sh));
    }
  }
  return words;
}

class CudaQuant : public ::testing::Test {
 protected:
  void SetUp() override {
    CudaBackendConfig fast;
    fast.precision = CudaPrecision::kFast;
    auto gpu = make_cuda_backend(fast);
    if (!gpu.ok()) GTEST_SKIP() << gpu.status().to_string();
    fast_ = std::move(*gpu);
    CudaBackendConfig precise;
    precise.precision = CudaPrecision::kPrecise;
    precise_ = std::move(make_cuda_backend(precise).value());
    CudaBackendConfig gemm_only = fast;
    gemm_only.gemv_max_rows = 0;  // the dequantize + cuBLAS path for every row count
    gemm_only_ = std::move(make_cuda_backend(gemm_only).value());
  }
  void TearDown() override {
    for (auto& [b, t] : owned_) b->free(t);
  }

  std::vector<float> random(size_t n, float lo, float hi) {
    std::uniform_real_distribution<float> u(lo, hi);
    std::vector<float> v(n);
    for (auto& x : v) x = u(rng_);
    return v;
  }
  HostQuant make_host(int bits, int group, DType sdt, int64_t N, int64_t K) {
    HostQuant h{bits, group, sdt, N, K, {}, {}, {}, {}};
    std::uniform_int_distribution<uint32_t> qd(0, (1u << bits) - 1);
    h.q.resize(size_t(N * K));
    for (auto& v : h.q) v = qd(rng_);
    h.words = pack(h.q, N, K, bits);
    // Magnitudes of a real checkpoint (|w| up to ~0.1; scales stay f16 normal numbers).
    h.scale = random(size_t(N * (K / group)), 0.02f / float(1 << bits), 0.1f / float(1 << bits));
    h.bias = random(size_t(N * (K / group)), -0.05f, 0.05f);
    for (auto& v : h.scale) v = round_to(v, sdt);
    for (auto& v : h.bias) v = round_to(v, sdt);
    return h;
  }
  // Device memory holding `bytes` of host data, freed at the end of the test.
  void* upload(Backend& b, const void* host, size_t bytes) {
    Tensor t = b.alloc(DType::kU32, 1, int64_t((bytes + 3) / 4));
    EXPECT_NE(t.data, nullptr);
    owned_.push_back({&b, t});
    b.upload(host, bytes, t.data);
    return t.data;
  }
  void* upload_scales(Backend& b, const std::vector<float>& v, DType sdt) {
    if (sdt == DType::kF32) return upload(b, v.data(), v.size() * 4);
    std::vector<uint16_t> h(v.size());
    for (size_t i = 0; i < v.size(); ++i)
      h[i] = sdt == DType::kBF16 ? f32_to_bf16(v[i]) : f32_to_f16(v[i]);
    return upload(b, h.data(), h.size() * 2);
  }
  Tensor to_device(Backend& b, const HostQuant& h) {
    Tensor t(upload(b, h.words.data(), h.words.size() * 4), DType::kU32, h.N, h.K);
    t.quant.bits = h.bits;
    t.quant.group_size = h.group;
    t.quant.scale_dtype = h.sdt;
    t.quant.scales = upload_scales(b, h.scale, h.sdt);
    t.quant.biases = upload_scales(b, h.bias, h.sdt);
    return t;
  }
  // An f32 [rows, cols] tensor holding vals, or NaN poison when vals is null.
  Tensor f32(Backend& b, int64_t rows, int64_t cols, const std::vector<float>* vals) {
    std::vector<float> v(size_t(rows * cols), std::numeric_limits<float>::quiet_NaN());
    if (vals) v = *vals;
    return Tensor(upload(b, v.data(), v.size() * 4), DType::kF32, rows, cols);
  }
  std::vector<float> get(Backend& b, const Tensor& t) {
    std::vector<float> out(t.numel());
    b.download(t.data, t.nbytes(), out.data());
    const Status s = b.take_error();
    EXPECT_TRUE(s.ok()) << s.to_string();
    return out;
  }
  // The three paths: fast (GEMV up to 8 rows, bf16 dequantize + cuBLAS above), precise (GEMV,
  // f32 dequantize + SGEMM above), gemm_only (bf16 dequantize + cuBLAS always).
  struct Path {
    const char* name;
    Backend* backend;
  };
  std::vector<Path> paths() {
    return {{"fast", fast_.get()}, {"precise", precise_.get()}, {"gemm_only", gemm_only_.get()}};
  }
  // The bound of the path for M rows (see the file comment).
  static double bound(const Path& p, int64_t M) {
    const bool f32_math =
        std::string(p.name) == "precise" || (std::string(p.name) == "fast" && M <= 8);
    return f32_math ? 1e-5 : 1e-2;
  }

  std::mt19937 rng_{4321};
  std::unique_ptr<Backend> fast_, precise_, gemm_only_;
  std::vector<std::pair<Backend*, Tensor>> owned_;
};

const char* sdt_name(DType dt) {
  return dt == DType::kF32 ? "f32" : dt == DType::kBF16 ? "bf16" : "f16";
}

TEST_F(CudaQuant, SupportsWhatTheKernelsTake) {
  for (int bits : {2, 3, 4, 5, 6, 7, 8}) {
    for (int g : {8, 16, 32, 64, 128, 256}) {
      const bool want = (bits == 4 || bits == 5 || bits == 6 || bits == 8) && g >= 16 && g <= 128;
      EXPECT_EQ(fast_->supports_quant(bits, g), want) << "bits " << bits << " group " << g;
    }
  }
}

// out = x @ dequant(w)^T (+ bias) for every supported (bits, group, scale dtype) and row count.
TEST_F(CudaQuant, LinearMatchesDoubleReference) {
  const int64_t K = 256, N = 70;  // N not a multiple of the rows per CTA; a partial last CTA
  for (int bits : {4, 5, 6, 8}) {
    for (int group : {16, 32, 64, 128}) {
      for (DType sdt : {DType::kF16, DType::kBF16, DType::kF32}) {
        const HostQuant h = make_host(bits, group, sdt, N, K);
        const std::vector<Path> ps = paths();
        std::vector<Tensor> weights;
        for (const Path& p : ps) weights.push_back(to_device(*p.backend, h));
        double worst[3] = {0, 0, 0};
        for (int64_t M : {1, 2, 3, 8, 32, 33, 200}) {
          const bool with_bias = M % 2 == 1;
          const auto x = random(size_t(M * K), -1.f, 1.f), bias = random(size_t(N), -1.f, 1.f);
          std::vector<double> ref(size_t(M * N));
          for (int64_t m = 0; m < M; ++m)
            for (int64_t n = 0; n < N; ++n) {
              double acc = with_bias ? bias[size_t(n)] : 0.0;
              for (int64_t k = 0; k < K; ++k) acc += double(x[size_t(m * K + k)]) * h.w(n, k);
              ref[size_t(m * N + n)] = acc;
            }
          for (size_t p = 0; p < ps.size(); ++p) {
            Backend& b = *ps[p].backend;
            Tensor& w = weights[p];
            Tensor xt = f32(b, M, K, &x), out = f32(b, M, N, nullptr);
            Tensor bt = with_bias ? f32(b, 1, N, &bias) : Tensor{};
            b.linear(xt, w, bt, out);
            const Errors e = compare(get(b, out), ref);
            worst[p] = std::max(worst[p], e.rel_l2);
            EXPECT_LE(e.rel_l2, bound(ps[p], M))
                << ps[p].name << " bits " << bits << " group " << group << " " << sdt_name(sdt)
                << " M " << M << " K " << K << " N " << N << " bias " << with_bias << " max_abs "
                << e.max_abs;
          }
        }
        std::printf(
            "[ quant    ] linear bits %d group %3d %-4s K %lld N %lld: worst rel_l2 fast "
            "%.2e precise %.2e gemm_only %.2e\n",
            bits, group, sdt_name(sdt), (long long)K, (long long)N, worst[0], worst[1], worst[2]);
      }
    }
  }
}

// Shapes that take the other launch geometries: K split over 4 warps (long rows, few of them),
// one row (an odd N), a wide matrix, decode-sized rows.
TEST_F(CudaQuant, LinearLongRowsAndSplitK) {
  struct Case {
    int bits, group;
    DType sdt;
    int64_t M, K, N;
  };
  const Case cases[] = {
      {4, 64, DType::kF16, 1, 8192, 64},     {4, 32, DType::kF32, 3, 14336, 40},
      {8, 64, DType::kBF16, 1, 4096, 128},   {8, 128, DType::kF16, 8, 8192, 30},
      {5, 32, DType::kF32, 2, 6144, 50},     {6, 16, DType::kF32, 1, 4096, 33},
      {4, 128, DType::kBF16, 1, 4096, 9000}, {4, 64, DType::kF16, 5, 1024, 1},
      {6, 16, DType::kF16, 8, 2048, 4100},
  };
  for (const Case& c : cases) {
    const HostQuant h = make_host(c.bits, c.group, c.sdt, c.N, c.K);
    const auto x = random(size_t(c.M * c.K), -1.f, 1.f);
    std::vector<double> ref(size_t(c.M * c.N));
    for (int64_t m = 0; m < c.M; ++m)
      for (int64_t n = 0; n < c.N; ++n) {
        double acc = 0;
        for (int64_t k = 0; k < c.K; ++k) acc += double(x[size_t(m * c.K + k)]) * h.w(n, k);
        ref[size_t(m * c.N + n)] = acc;
      }
    for (const Path& p : paths()) {
      Backend& b = *p.backend;
      Tensor w = to_device(b, h), xt = f32(b, c.M, c.K, &x), out = f32(b, c.M, c.N, nullptr);
      b.linear(xt, w, Tensor{}, out);
      const Errors e = compare(get(b, out), ref);
      std::printf(
          "[ quant    ] linear bits %d group %3d %-4s M %lld K %5lld N %5lld %-9s rel_l2 "
          "%.2e max_abs %.2e\n",
          c.bits, c.group, sdt_name(c.sdt), (long long)c.M, (long long)c.K, (long long)c.N, p.name,
          e.rel_l2, e.max_abs);
      EXPECT_LE(e.rel_l2, bound(p, c.M)) << p.name << " bits " << c.bits << " group " << c.group
                                         << " M " << c.M << " K " << c.K << " N " << c.N;
    }
  }
}

// act = silu(x @ gate^T + b_gate) * (x @ up^T + b_up) on gate/up weights [2I, K] the backend
// interleaved (packed rows, scales and biases) at prepare_gate_up.
TEST_F(CudaQuant, LinearSwiGluMatchesDoubleReference) {
  struct Case {
    int bits, group;
    DType sdt;
    int64_t K, I;
  };
  const Case cases[] = {{4, 64, DType::kF16, 512, 100}, {8, 64, DType::kBF16, 256, 64},
                        {4, 32, DType::kF32, 8192, 48}, {5, 32, DType::kF32, 256, 40},
                        {6, 16, DType::kF32, 1024, 72}, {8, 128, DType::kF16, 4096, 1000},
                        {4, 128, DType::kBF16, 256, 3}};
  for (const Case& c : cases) {
    const int64_t N = 2 * c.I;
    const HostQuant h = make_host(c.bits, c.group, c.sdt, N, c.K);
    for (int64_t M : {1, 2, 3, 8, 33}) {
      const bool with_bias = M != 2;
      const auto x = random(size_t(M * c.K), -1.f, 1.f), bias = random(size_t(N), -1.f, 1.f);
      std::vector<double> ref(size_t(M * c.I));
      for (int64_t m = 0; m < M; ++m)
        for (int64_t i = 0; i < c.I; ++i) {
          double g = with_bias ? bias[size_t(i)] : 0.0, u = with_bias ? bias[size_t(c.I + i)] : 0.0;
          for (int64_t k = 0; k < c.K; ++k) {
            g += double(x[size_t(m * c.K + k)]) * h.w(i, k);
            u += double(x[size_t(m * c.K + k)]) * h.w(c.I + i, k);
          }
          ref[size_t(m * c.I + i)] = g / (1.0 + std::exp(-g)) * u;
        }
      for (const Path& p : paths()) {
        Backend& b = *p.backend;
        Tensor w = to_device(b, h), xt = f32(b, M, c.K, &x);
        Tensor bt = with_bias ? f32(b, 1, N, &bias) : Tensor{};
        b.prepare_gate_up(w, bt);
        Tensor gate_up = f32(b, M, N, nullptr), act = f32(b, M, c.I, nullptr);
        b.linear_swiglu(xt, w, bt, gate_up, act);
        const Errors e = compare(get(b, act), ref);
        std::printf(
            "[ quant    ] swiglu bits %d group %3d %-4s M %2lld K %5lld I %5lld %-9s "
            "rel_l2 %.2e max_abs %.2e\n",
            c.bits, c.group, sdt_name(c.sdt), (long long)M, (long long)c.K, (long long)c.I, p.name,
            e.rel_l2, e.max_abs);
        EXPECT_LE(e.rel_l2, bound(p, M)) << p.name << " bits " << c.bits << " group " << c.group
                                         << " M " << M << " K " << c.K << " I " << c.I;
      }
    }
  }
}

// out[t] = the f32 dequantization of table row ids[t] (repeated and extreme ids included).
TEST_F(CudaQuant, EmbeddingGathersDequantizedRows) {
  const int64_t V = 300, D = 512;
  for (int bits : {4, 5, 6, 8}) {
    for (int group : {16, 64, 128}) {
      for (DType sdt : {DType::kF16, DType::kBF16, DType::kF32}) {
        const HostQuant h = make_host(bits, group, sdt, V, D);
        const std::vector<int32_t> ids = {0, 299, 7, 7, 150, 1, 298, 42, 0};
        const int64_t T = int64_t(ids.size());
        std::vector<double> ref(size_t(T * D));
        for (int64_t t = 0; t < T; ++t)
          for (int64_t d = 0; d < D; ++d) ref[size_t(t * D + d)] = h.w_f32(ids[size_t(t)], d);
        Backend& b = *fast_;
        Tensor table = to_device(b, h), out = f32(b, T, D, nullptr);
        Tensor idt(upload(b, ids.data(), ids.size() * 4), DType::kI32, T, 1);
        b.embedding(idt, table, out);
        const Errors e = compare(get(b, out), ref);
        EXPECT_LE(e.rel_l2, 1e-7) << "bits " << bits << " group " << group << " " << sdt_name(sdt)
                                  << " max_abs " << e.max_abs;
        if (group == 64)
          std::printf("[ quant    ] embedding bits %d group %d %-4s V %lld D %lld rel_l2 %.2e\n",
                      bits, group, sdt_name(sdt), (long long)V, (long long)D, e.rel_l2);
      }
    }
  }
}

// A quantized linear inside a step graph: the first run is eager (it sizes the dequantize
// scratch), the second is recorded and launched, the third replays; each on fresh x.
TEST_F(CudaQuant, LinearRecordsAndReplaysInAGraph) {
  if (!fast_->supports_graphs()) GTEST_SKIP() << "graphs are off";
  const int64_t K = 1024, N = 200;
  const HostQuant h = make_host(4, 64, DType::kF16, N, K);
  for (int64_t M : {1, 40}) {
    Backend& b = *fast_;
    Tensor w = to_device(b, h), xt = f32(b, M, K, nullptr), out = f32(b, M, N, nullptr);
    const uint64_t key = 0x9a0000 + uint64_t(M);
    for (int run = 0; run < 3; ++run) {
      bool replayed = false;
      const auto x = random(size_t(M * K), -1.f, 1.f);
      b.upload(x.data(), x.size() * 4, xt.data);
      const std::vector<float> nan(size_t(M * N), std::numeric_limits<float>::quiet_NaN());
      b.upload(nan.data(), nan.size() * 4, out.data);
      replayed = b.replay_graph(key);
      if (!replayed) {
        b.begin_graph(key);
        b.linear(xt, w, Tensor{}, out);
        ASSERT_TRUE(b.end_graph(key)) << "recording failed, M " << M << " run " << run;
      }
      std::vector<double> ref(size_t(M * N));
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
          double acc = 0;
          for (int64_t k = 0; k < K; ++k) acc += double(x[size_t(m * K + k)]) * h.w(n, k);
          ref[size_t(m * N + n)] = acc;
        }
      const Errors e = compare(get(b, out), ref);
      EXPECT_LE(e.rel_l2, M <= 8 ? 1e-5 : 1e-2) << "M " << M << " run " << run;
      std::printf("[ quant    ] graph M %lld run %d (%s) rel_l2 %.2e\n", (long long)M, run,
                  replayed   ? "replayed"
                  : run == 0 ? "eager"
                             : "recorded",
                  e.rel_l2);
      EXPECT_EQ(replayed, run == 2) << "M " << M << " run " << run;
    }
  }
}

}  // namespace
}  // namespace mlxs
