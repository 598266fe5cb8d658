// Every op of the CUDA backend against the CPU reference (or a double-precision one) on fresh
// random inputs of several shapes, with outputs poisoned (NaN) before each call. Relative L2
// error bounds: f32 <= 1e-5, bf16/f16 operands <= 1e-2; NaN never passes. Skipped where the
// build has no CUDA or the machine no GPU.
#include "backend/cuda/cuda_backend.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "backend/cpu/cpu_ops.h"
#include "model/random_model.h"
#include "runtime/step_batch.h"

namespace mlxs {
namespace {

// backend.cuda in the fast (bf16) mode, every other key at its default.
const CudaBackendConfig kFastMode = [] {
  CudaBackendConfig c;
  c.precision = CudaPrecision::kFast;
  return c;
}();

// ‖a − ref‖ / ‖ref‖ in double; infinity if a holds a NaN or the sizes differ.
double rel_l2(const std::vector<float>& a, const std::vector<float>& ref) {
  if (a.size() != ref.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i])) return INFINITY;
    num += (double(a[i]) - ref[i]) * (double(a[i]) - ref[i]);
    den += double(ref[i]) * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

class CudaOps : public ::testing::Test {
 protected:
  void SetUp() override {
    auto gpu = make_cuda_backend(kFastMode);
    if (!gpu.ok()) GTEST_SKIP() << gpu.status().to_string();
    gpu_ = std::move(*gpu);
    CudaBackendConfig precise;
    precise.precision = CudaPrecision::kPrecise;
    precise_ = std::move(make_cuda_backend(precise).value());
    CudaBackendConfig gemv8 = kFastMode;
    gemv8.gemv_max_rows = 8;  // the GEMV for every row count it supports
    gemv8_ = std::move(make_cuda_backend(gemv8).value());
    // The other kernel choices: no decode or tensor-core attention kernel, plain launches.
    CudaBackendConfig general = kFastMode;
    general.attention_decode = false;
    general.attention_tc = false;
    general.pdl = false;
    general_ = std::move(make_cuda_backend(general).value());
    cpu_ = make_cpu_backend();
  }
  void TearDown() override {
    for (auto& [b, t] : owned_) b->free(t);
  }

  std::vector<float> random(size_t n, float scale = 1.f) {
    std::uniform_real_distribution<float> u(-scale, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = u(rng_);
    return v;
  }
  // A [rows, cols] tensor of `dt` on `b` holding `vals` (converted); null vals = NaN poison.
  Tensor make(Backend& b, DType dt, int64_t rows, int64_t cols, const std::vector<float>* vals) {
    Tensor t = b.alloc(dt, rows, cols);
    EXPECT_NE(t.data, nullptr);
    owned_.push_back({&b, t});
    const size_t n = size_t(rows * cols);
    std::vector<uint16_t> h16(n);
    std::vector<float> f(n, std::numeric_limits<float>::quiet_NaN());
    if (vals) f = *vals;
    switch (dt) {
      case DType::kF32:
        b.upload(f.data(), n * 4, t.data);
        break;
      case DType::kBF16:
        for (size_t i = 0; i < n; ++i) h16[i] = f32_to_bf16(f[i]);
        b.upload(h16.data(), n * 2, t.data);
        break;
      case DType::kF16:
        for (size_t i = 0; i < n; ++i) h16[i] = f32_to_f16(f[i]);
        b.upload(h16.data(), n * 2, t.data);
        break;
      default:
        ADD_FAILURE() << "unsupported dtype";
    }
    return t;
  }
  Tensor make_ids(Backend& b, const std::vector<int32_t>& ids) {
    Tensor t = b.alloc(DType::kI32, int64_t(ids.size()), 1);
    owned_.push_back({&b, t});
    b.upload(ids.data(), ids.size() * 4, t.data);
    return t;
  }
  std::vector<float> get(Backend& b, const Tensor& t) {
    std::vector<float> out(t.numel());
    if (t.dtype == DType::kF32) {
      b.download(t.data, t.nbytes(), out.data());
    } else {
      std::vector<uint16_t> h(t.numel());
      b.download(t.data, t.nbytes(), h.data());
      for (size_t i = 0; i < h.size(); ++i) out[i] = load_as_f32(h.data(), t.dtype, i);
    }
    EXPECT_TRUE(b.take_error().ok());
    return out;
  }
  // Values as stored in dtype dt (what both backends then see).
  static std::vector<float> rounded(std::vector<float> v, DType dt) {
    for (auto& x : v) {
      if (dt == DType::kBF16) x = bf16_to_f32(f32_to_bf16(x));
      if (dt == DType::kF16) x = f16_to_f32(f32_to_f16(x));
    }
    return v;
  }

  std::mt19937 rng_{1234};
  std::unique_ptr<Backend> gpu_, precise_, gemv8_, general_, cpu_;
  std::vector<std::pair<Backend*, Tensor>> owned_;
};

// Two backends on one GPU, driven from one thread: a launch error in one (an empty grid) lands
// in that backend's error slot only, even while the other launches and checks in between.
TEST_F(CudaOps, ALaunchErrorStaysWithTheBackendThatMadeIt) {
  const std::vector<float> xs = random(4 * 32), ys = random(4 * 32);
  Tensor x = make(*precise_, DType::kF32, 4, 32, &xs), y = make(*precise_, DType::kF32, 4, 32, &ys);
  Tensor rows{nullptr, DType::kI32, 0, 1}, empty{nullptr, DType::kF32, 0, 32};
  gpu_->gather_rows(x, rows, empty);  // zero rows: cudaErrorInvalidConfiguration on gpu_
  precise_->add(x, y);                // launched and checked on the same thread
  precise_->synchronize();
  EXPECT_TRUE(precise_->take_error().ok());
  const Status failed = gpu_->take_error();
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.message().find("cudaLaunchKernelEx"), std::string::npos) << failed.message();
  EXPECT_TRUE(gpu_->take_error().ok());  // taken once
  std::vector<float> sum = get(*precise_, x);
  for (size_t i = 0; i < sum.size(); ++i) ASSERT_EQ(sum[i], xs[i] + ys[i]);
}

TEST_F(CudaOps, EmbeddingAndGatherMatchExactly) {
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (int64_t T : {1, 37}) {
      const int64_t V = 300, D = 96;
      auto table = rounded(random(size_t(V * D)), dt);
      std::vector<int32_t> ids(static_cast<size_t>(T));
      for (auto& i : ids) i = int32_t(rng_() % V);
      Tensor out_g = make(*gpu_, DType::kF32, T, D, nullptr);
      Tensor out_c = make(*cpu_, DType::kF32, T, D, nullptr);
      gpu_->embedding(make_ids(*gpu_, ids), make(*gpu_, dt, V, D, &table), out_g);
      cpu_->embedding(make_ids(*cpu_, ids), make(*cpu_, dt, V, D, &table), out_c);
      EXPECT_EQ(rel_l2(get(*gpu_, out_g), get(*cpu_, out_c)), 0.0) << dtype_name(dt) << " T " << T;

      std::vector<int32_t> rows = {int32_t(T - 1), 0, int32_t(T / 2)};
      Tensor g_g = make(*gpu_, DType::kF32, 3, D, nullptr),
             g_c = make(*cpu_, DType::kF32, 3, D, nullptr);
      gpu_->gather_rows(out_g, make_ids(*gpu_, rows), g_g);
      cpu_->gather_rows(out_c, make_ids(*cpu_, rows), g_c);
      EXPECT_EQ(rel_l2(get(*gpu_, g_g), get(*cpu_, g_c)), 0.0);
    }
  }
}

TEST_F(CudaOps, RmsNormAndFusedResidualAdd) {
  for (auto [rows, C] : {std::pair<int64_t, int64_t>{1, 4096}, {7, 128}, {64, 16}, {3, 5120}}) {
    auto x = random(size_t(rows * C)), y = random(size_t(rows * C)), w = random(size_t(C));
    Tensor xg = make(*gpu_, DType::kF32, rows, C, &x), xc = make(*cpu_, DType::kF32, rows, C, &x);
    Tensor wg = make(*gpu_, DType::kF32, 1, C, &w), wc = make(*cpu_, DType::kF32, 1, C, &w);
    Tensor og = make(*gpu_, DType::kF32, rows, C, nullptr),
           oc = make(*cpu_, DType::kF32, rows, C, nullptr);
    gpu_->rms_norm(xg, wg, 1e-5f, og);
    cpu_->rms_norm(xc, wc, 1e-5f, oc);
    EXPECT_LE(rel_l2(get(*gpu_, og), get(*cpu_, oc)), 1e-5) << rows << "x" << C;

    Tensor yg = make(*gpu_, DType::kF32, rows, C, &y), yc = make(*cpu_, DType::kF32, rows, C, &y);
    gpu_->add_rms_norm(xg, yg, wg, 1e-6f, og);
    cpu_->add_rms_norm(xc, yc, wc, 1e-6f, oc);
    EXPECT_LE(rel_l2(get(*gpu_, og), get(*cpu_, oc)), 1e-5) << rows << "x" << C;
    EXPECT_LE(rel_l2(get(*gpu_, xg), get(*cpu_, xc)), 1e-7) << "residual " << rows << "x" << C;
  }
}

TEST_F(CudaOps, LinearMatchesDoubleReference) {
  struct Case {
    int64_t M, K, N;
    DType dt;
    bool bias;
  };
  const Case cases[] = {{1, 4096, 1000, DType::kBF16, false}, {3, 512, 264, DType::kBF16, true},
                        {8, 1024, 96, DType::kF16, false},    {9, 256, 100, DType::kBF16, true},
                        {64, 4096, 256, DType::kBF16, false}, {1, 64, 48, DType::kF32, true},
                        {5, 96, 40, DType::kF32, false},      {33, 128, 72, DType::kF32, true},
                        {100, 256, 128, DType::kF16, true},   {2, 14336, 64, DType::kBF16, false},
                        {6, 2048, 37, DType::kBF16, true},    {4, 4096, 5000, DType::kF16, false}};
  for (const Case& c : cases) {
    auto x = random(size_t(c.M * c.K)), w = rounded(random(size_t(c.N * c.K), 0.05f), c.dt);
    auto bias = random(size_t(c.N));
    std::vector<float> ref(static_cast<size_t>(c.M * c.N));
    for (int64_t m = 0; m < c.M; ++m)
      for (int64_t n = 0; n < c.N; ++n) {
        double acc = c.bias ? bias[size_t(n)] : 0.0;
        for (int64_t k = 0; k < c.K; ++k)
          acc += double(x[size_t(m * c.K + k)]) * w[size_t(n * c.K + k)];
        ref[size_t(m * c.N + n)] = float(acc);
      }
    for (Backend* b : {gpu_.get(), precise_.get(), gemv8_.get()}) {
      Tensor xt = make(*b, DType::kF32, c.M, c.K, &x), wt = make(*b, c.dt, c.N, c.K, &w);
      Tensor bt = c.bias ? make(*b, DType::kF32, 1, c.N, &bias) : Tensor{};
      Tensor out = make(*b, DType::kF32, c.M, c.N, nullptr);
      b->linear(xt, wt, bt, out);
      const bool exact = c.dt == DType::kF32 || b == precise_.get();
      EXPECT_LE(rel_l2(get(*b, out), ref), exact ? 1e-5 : 1e-2)
          << "M " << c.M << " K " << c.K << " N " << c.N << " " << dtype_name(c.dt)
          << (b == precise_.get() ? " precise"
              : b == gemv8_.get() ? " gemv8"
                                  : " fast");
    }
  }
}

// linear_swiglu on gate/up weights the CUDA backend interleaved at prepare_gate_up (SwiGLU in
// the GEMV epilogue for few rows, split-K or not; cuBLAS + an interleaved silu_mul above)
// against the CPU backend's linear + silu_mul, on fresh random inputs and biases.
TEST_F(CudaOps, LinearSwiGluMatchesCpuComposition) {
  struct Case {
    int64_t M, K, I;
    DType dt;
    bool bias;
  };
  const Case cases[] = {
      {1, 4096, 7168, DType::kBF16, false},  // GEMV, one warp per row pair
      {2, 2048, 1000, DType::kBF16, true},   // GEMV with K split over 4 warps
      {1, 1024, 300, DType::kF16, true},
      {5, 512, 264, DType::kBF16, false},  // GEMV with 8 rows allowed, else cuBLAS
      {40, 256, 100, DType::kBF16, true},  // cuBLAS + interleaved silu_mul
      {3, 128, 40, DType::kF32, true},
      {1, 64, 48, DType::kF32, false},
  };
  for (const Case& c : cases) {
    const int64_t N = 2 * c.I;
    auto x = random(size_t(c.M * c.K)), w = rounded(random(size_t(N * c.K), 0.05f), c.dt);
    auto bias = random(size_t(N));
    std::vector<float> got[4];
    Backend* backends[] = {cpu_.get(), gpu_.get(), precise_.get(), gemv8_.get()};
    for (int i = 0; i < 4; ++i) {
      Backend& b = *backends[i];
      Tensor xt = make(b, DType::kF32, c.M, c.K, &x), wt = make(b, c.dt, N, c.K, &w);
      Tensor bt = c.bias ? make(b, DType::kF32, 1, N, &bias) : Tensor{};
      b.prepare_gate_up(wt, bt);
      Tensor gate_up = make(b, DType::kF32, c.M, N, nullptr);
      Tensor act = make(b, DType::kF32, c.M, c.I, nullptr);
      b.linear_swiglu(xt, wt, bt, gate_up, act);
      got[i] = get(b, act);
    }
    for (int i = 1; i < 4; ++i) {
      const bool exact = c.dt == DType::kF32 || i == 2;
      EXPECT_LE(rel_l2(got[i], got[0]), exact ? 1e-5 : 1e-2)
          << "M " << c.M << " K " << c.K << " I " << c.I << " " << dtype_name(c.dt) << " bias "
          << c.bias << " backend " << i;
    }
  }
}

TEST_F(CudaOps, RopeSplitSiluAddMatchCpu) {
  for (const char* shape : {"llama-3.1-8b", "tiny-llama", "qwen3-0.6b"}) {
    auto cfg = random_model_config(shape);
    ASSERT_TRUE(cfg.ok());
    const RopeParams rope = cfg->rope_params();
    const int Dh = cfg->head_dim, H = 4, Hk = 2;
    const int64_t T = 19, nq = H * Dh, nk = Hk * Dh;
    auto qkv = random(size_t(T * (nq + 2 * nk)));
    std::vector<int32_t> pos(static_cast<size_t>(T));
    for (auto& p : pos) p = int32_t(rng_() % 120000);
    std::vector<float> outs[2][3];
    for (int i = 0; i < 2; ++i) {
      Backend& b = i ? *cpu_ : *gpu_;
      Tensor src = make(b, DType::kF32, T, nq + 2 * nk, &qkv);
      Tensor q = make(b, DType::kF32, T, nq, nullptr), k = make(b, DType::kF32, T, nk, nullptr),
             v = make(b, DType::kF32, T, nk, nullptr);
      b.split_qkv(src, q, k, v);
      Tensor p = make_ids(b, pos);
      b.rope(q, H, Dh, p, rope);
      b.rope(k, Hk, Dh, p, rope);
      outs[i][0] = get(b, q), outs[i][1] = get(b, k), outs[i][2] = get(b, v);
    }
    for (int j = 0; j < 3; ++j)
      EXPECT_LE(rel_l2(outs[0][j], outs[1][j]), 1e-5) << shape << " part " << j;
  }
  const int64_t T = 5, I = 3000;
  auto gu = random(size_t(T * 2 * I), 4.f), y = random(size_t(T * I));
  std::vector<float> r[2][2];
  for (int i = 0; i < 2; ++i) {
    Backend& b = i ? *cpu_ : *gpu_;
    Tensor g = make(b, DType::kF32, T, 2 * I, &gu), o = make(b, DType::kF32, T, I, nullptr);
    b.silu_mul(g, o);
    r[i][0] = get(b, o);
    Tensor yt = make(b, DType::kF32, T, I, &y);
    b.add(o, yt);
    r[i][1] = get(b, o);
  }
  EXPECT_LE(rel_l2(r[0][0], r[1][0]), 1e-6);
  EXPECT_LE(rel_l2(r[0][1], r[1][1]), 1e-6);
}

// The fused prologue (split, per-head RMSNorm, RoPE, KV write) against the CPU's separate ops.
TEST_F(CudaOps, QkvPrepareMatchesSeparateOps) {
  struct Case {
    const char* shape;
    int H, Hk;
    bool norm;
    DType cache;
  };
  const Case cases[] = {{"tiny-llama", 4, 2, false, DType::kF32},
                        {"tiny-qwen3", 4, 2, true, DType::kBF16},
                        {"llama-3.1-8b", 32, 8, false, DType::kBF16},
                        {"qwen3-0.6b", 16, 8, true, DType::kF32},
                        {"qwen2.5-0.5b", 14, 2, false, DType::kF32}};
  for (const Case& c : cases) {
    auto cfg = random_model_config(c.shape);
    ASSERT_TRUE(cfg.ok());
    const RopeParams rope = cfg->rope_params();
    const int Dh = cfg->head_dim;
    const int64_t T = 7, nq = c.H * Dh, nk = c.Hk * Dh, slots = 64;
    auto qkv = random(size_t(T * (nq + 2 * nk)));
    auto qn = random(size_t(Dh)), kn = random(size_t(Dh));
    std::vector<int32_t> pos(static_cast<size_t>(T));
    for (auto& p : pos) p = int32_t(rng_() % 100000);
    std::vector<int32_t> table = {3, 0, 2, 1};
    std::vector<int32_t> news(static_cast<size_t>(T), 1);
    SeqStep step{table, 9, news};
    std::vector<int32_t> flat;
    AttentionBatch batch = make_attention_batch(std::span(&step, 1), 16, 0, &flat);
    std::vector<float> out[2][5];
    for (int i = 0; i < 2; ++i) {
      Backend& b = i ? *cpu_ : *gpu_;
      const DType cdt = i ? DType::kF32 : c.cache;
      Tensor src = make(b, DType::kF32, T, nq + 2 * nk, &qkv);
      Tensor q = make(b, DType::kF32, T, nq, nullptr), k = make(b, DType::kF32, T, nk, nullptr),
             v = make(b, DType::kF32, T, nk, nullptr);
      Tensor qw = c.norm ? make(b, DType::kF32, 1, Dh, &qn) : Tensor{};
      Tensor kw = c.norm ? make(b, DType::kF32, 1, Dh, &kn) : Tensor{};
      std::vector<float> zeros(size_t(slots * nk), 0.f);
      KvLayer cache{make(b, cdt, slots, nk, &zeros), make(b, cdt, slots, nk, &zeros)};
      b.begin_step(batch);
      b.qkv_prepare(src, q, k, v, qw, kw, 1e-6f, make_ids(b, pos), rope, c.H, c.Hk, Dh, cache);
      if (i) cpu::kv_write(k, v, batch.slot_mapping.data(), cache);  // what CPU attention() does
      out[i][0] = get(b, q), out[i][1] = get(b, k), out[i][2] = get(b, v);
      out[i][3] = get(b, cache.k), out[i][4] = get(b, cache.v);
    }
    for (int j = 0; j < 3; ++j)
      EXPECT_LE(rel_l2(out[0][j], out[1][j]), 1e-5) << c.shape << " part " << j;
    // The cache holds the same values in its dtype.
    for (int j = 3; j < 5; ++j) {
      EXPECT_LE(rel_l2(out[0][j], rounded(out[1][j], c.cache)),
                c.cache == DType::kF32 ? 1e-5 : 1e-2)
          << c.shape << " cache " << j;
    }
  }
}

TEST_F(CudaOps, ArgmaxRowsPicksFirstMaximum) {
  // 70000 and 128256 are read as float4, 70001 element by element.
  for (int64_t V : {70000, 70001, 128256}) {
    for (int64_t R : {1, 6}) {
      auto x = random(size_t(R * V));
      const int64_t last = R - 1;
      // Ties: the lower index wins, across threads (5 and 9), inside one float4 (12 and 13),
      // and from the two ends of a row (3 and V - 1).
      x[size_t(last * V + 5)] = 7.f, x[size_t(last * V + 9)] = 7.f;
      if (R > 1) x[size_t(12)] = 9.f, x[size_t(13)] = 9.f;
      if (R > 2) x[size_t(2 * V + V - 1)] = 8.f, x[size_t(2 * V + 3)] = 8.f;
      Tensor xt = make(*gpu_, DType::kF32, R, V, &x);
      Tensor ids = make_ids(*gpu_, std::vector<int32_t>(size_t(R), -1));
      gpu_->argmax_rows(xt, ids);
      std::vector<int32_t> got(static_cast<size_t>(R));
      gpu_->download(ids.data, size_t(R) * 4, got.data());
      for (int64_t r = 0; r < R; ++r) {
        auto row = x.begin() + r * V;
        EXPECT_EQ(got[size_t(r)], int32_t(std::max_element(row, row + V) - row))
            << "row " << r << " of " << R << ", V " << V;
      }
    }
  }
}

// Constrained decoding's mask on the device equals the backend interface's reference (the
// default Backend::mask_logits, which the CPU backend uses), bit for bit, for rows of any
// mask (none, all, random) and vocabularies that end inside a word.
TEST_F(CudaOps, MaskLogitsMatchesCpu) {
  for (int64_t V : {31, 70001, 128256}) {
    const int64_t R = 5, W = (V + 31) / 32;
    auto x = random(size_t(R * V));
    std::vector<int32_t> masks(size_t(R * W));
    std::mt19937 rng(7);
    for (int64_t r = 0; r < R; ++r) {
      for (int64_t w = 0; w < W; ++w) {
        const uint32_t bits = r == 0 ? 0u : r == 1 ? ~0u : uint32_t(rng());
        masks[size_t(r * W + w)] = int32_t(bits);
      }
    }
    auto run = [&](Backend& b) {
      Tensor xt = make(b, DType::kF32, R, V, &x);
      Tensor mt = make_ids(b, masks);
      mt.rows = R;
      mt.cols = W;
      b.mask_logits(xt, mt);
      std::vector<float> got(size_t(R * V));
      b.download(xt.data, got.size() * 4, got.data());
      return got;
    };
    const std::vector<float> want = run(*cpu_), got = run(*gpu_);
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(std::isinf(got[i]), std::isinf(want[i])) << "V " << V << ", element " << i;
      if (!std::isinf(want[i])) ASSERT_EQ(got[i], want[i]);
    }
    EXPECT_TRUE(std::all_of(want.begin(), want.begin() + V, [](float v) { return std::isinf(v); }));
  }
}

// Attention over a cache that already holds random history, for a mix of decodes and
// (chunked) prefills, full and sliding-window, GQA groups 1 to 8, f32, bf16 and f16 caches.
TEST_F(CudaOps, PagedAttentionMatchesCpu) {
  struct Case {
    int H, Hk, Dh, window;
    DType cache;
    std::vector<std::pair<int, int>> seqs;
  };
  // seqs: (tokens already cached, new tokens this step)
  const Case cases[] = {
      {4, 2, 16, 0, DType::kF32, {{0, 13}, {5, 1}, {40, 3}}},
      {32, 8, 128, 0, DType::kBF16, {{700, 1}}},  // batch-1 decode, split along the sequence
      {32, 8, 128, 0, DType::kF32, {{0, 37}, {100, 1}, {3000, 1}, {64, 20}}},
      {14, 2, 64, 0, DType::kBF16, {{10, 1}, {11, 1}, {0, 9}}},
      {8, 8, 32, 24, DType::kF32, {{50, 17}, {90, 1}}},  // sliding window
      {32, 8, 128, 0, DType::kBF16, std::vector<std::pair<int, int>>(64, {300, 1})},
      // Prefill on tensor cores (bf16 cache, Dh 64/128): chunked, long context, window, G = 7.
      {32, 8, 128, 0, DType::kBF16, {{0, 37}, {100, 1}, {3000, 1}, {64, 20}}},
      {8, 2, 64, 24, DType::kBF16, {{50, 17}, {90, 1}}},
      {14, 2, 64, 0, DType::kBF16, {{0, 150}, {7, 33}}},
      // Decode kernel (attention_decode.cu): every G from 1 to 8, f32, bf16 and f16 caches,
      // sliding window, one sequence split many ways, contexts of 1 key. Each G of 3, 5, 7, 8
      // runs Dh 128 and 64, bf16 and f32, a short context (one split) and a long one (split
      // along the sequence); G = 8 with one KV head takes 32 splits, so each warp merges 2 heads.
      {32, 8, 128, 0, DType::kF32, {{700, 1}, {0, 1}, {31, 1}, {4000, 1}}},
      {8, 4, 64, 0, DType::kF16, {{5, 1}, {129, 1}, {64, 1}}},
      {8, 8, 128, 40, DType::kBF16, {{300, 1}, {20, 1}, {39, 1}, {40, 1}}},
      {8, 2, 64, 100, DType::kF32, {{1000, 1}}},
      {14, 2, 64, 0, DType::kBF16, {{10, 1}, {11, 1}, {500, 1}}},
      {12, 4, 128, 0, DType::kBF16, {{2000, 1}, {9, 1}, {130, 1}}},  // G = 3
      {6, 2, 64, 0, DType::kF32, {{700, 1}, {2, 1}}},
      {40, 8, 128, 0, DType::kF32, {{1500, 1}, {0, 1}}},  // G = 5 (Qwen2.5-32B)
      {10, 2, 64, 0, DType::kBF16, {{3000, 1}, {33, 1}}},
      {24, 4, 128, 0, DType::kF16, {{800, 1}, {3, 1}}},             // G = 6
      {28, 4, 128, 0, DType::kBF16, {{2500, 1}, {5, 1}, {64, 1}}},  // G = 7 (Qwen2.5-7B)
      {14, 2, 64, 0, DType::kF32, {{1800, 1}, {63, 1}}},
      {64, 8, 128, 0, DType::kBF16, {{1200, 1}, {1, 1}}},  // G = 8 (Llama-3-70B)
      {8, 1, 128, 0, DType::kF32, {{4000, 1}, {17, 1}}},
      {16, 2, 64, 300, DType::kBF16, {{900, 1}, {20, 1}}},
      {16, 2, 64, 0, DType::kF32, {{2200, 1}, {40, 1}}},
  };
  const int bs = 16;
  for (const Case& c : cases) {
    const int S = int(c.seqs.size()), kv_cols = c.Hk * c.Dh, q_cols = c.H * c.Dh;
    int max_ctx = 0;
    for (auto [cached, n] : c.seqs) max_ctx = std::max(max_ctx, cached + n);
    const int per_seq = (max_ctx + bs - 1) / bs, num_blocks = per_seq * S;
    // Shuffled physical blocks, so block tables are not the identity.
    std::vector<int32_t> phys(static_cast<size_t>(num_blocks));
    std::iota(phys.begin(), phys.end(), 0);
    std::shuffle(phys.begin(), phys.end(), rng_);
    std::vector<std::vector<int32_t>> tables(static_cast<size_t>(S)), news(static_cast<size_t>(S));
    std::vector<SeqStep> steps;
    for (int s = 0; s < S; ++s) {
      tables[size_t(s)].assign(phys.begin() + s * per_seq, phys.begin() + (s + 1) * per_seq);
      news[size_t(s)].assign(size_t(c.seqs[size_t(s)].second), 1);
    }
    for (int s = 0; s < S; ++s)
      steps.push_back({tables[size_t(s)], c.seqs[size_t(s)].first, news[size_t(s)]});
    std::vector<int32_t> flat;
    AttentionBatch batch = make_attention_batch(steps, bs, c.window, &flat);
    const int64_t T = int64_t(flat.size()), slots = int64_t(num_blocks) * bs;
    auto history = rounded(random(size_t(slots * kv_cols)), c.cache);
    auto history_v = rounded(random(size_t(slots * kv_cols)), c.cache);
    auto q = random(size_t(T * q_cols)), k = rounded(random(size_t(T * kv_cols)), c.cache),
         v = rounded(random(size_t(T * kv_cols)), c.cache);
    // 0: the default kernels, 1: the CPU reference, 2: the general kernel (backend.cuda
    // attention_decode and attention_tc false) with plain launches (pdl false).
    std::vector<float> out[3];
    for (int i = 0; i < 3; ++i) {
      Backend& b = i == 0 ? *gpu_ : i == 1 ? *cpu_ : *general_;
      const DType cdt = i == 1 ? DType::kF32 : c.cache;
      KvLayer cache{make(b, cdt, slots, kv_cols, &history),
                    make(b, cdt, slots, kv_cols, &history_v)};
      Tensor qt = make(b, DType::kF32, T, q_cols, &q), kt = make(b, DType::kF32, T, kv_cols, &k),
             vt = make(b, DType::kF32, T, kv_cols, &v),
             ot = make(b, DType::kF32, T, q_cols, nullptr);
      b.begin_step(batch);
      b.attention(qt, kt, vt, cache, batch, c.H, c.Hk, c.Dh, 1.f / std::sqrt(float(c.Dh)), ot);
      out[i] = get(b, ot);
      if (i != 1) {  // the new K/V landed in their slots
        auto kc = get(b, cache.k);
        for (int64_t t = 0; t < T; ++t)
          for (int j = 0; j < kv_cols; ++j)
            ASSERT_EQ(kc[size_t(batch.slot_mapping[size_t(t)] * kv_cols + j)],
                      k[size_t(t * kv_cols + j)]);
      }
    }
    // Inputs are representable in the cache dtype, so only f32 arithmetic order differs, except
    // on the tensor-core prefill path (bf16 cache with a prefill chunk), which rounds q and the
    // softmax weights to bf16.
    int max_new = 0;
    for (auto [cached, n] : c.seqs) max_new = std::max(max_new, n);
    const bool tc = c.cache == DType::kBF16 && (c.Dh == 64 || c.Dh == 128) && max_new > 1;
    EXPECT_LE(rel_l2(out[0], out[1]), tc ? 1e-2 : 1e-5)
        << "H " << c.H << " Hk " << c.Hk << " Dh " << c.Dh << " seqs " << S << " "
        << dtype_name(c.cache);
    // The general kernel never rounds q: within f32 order even where the default ran on
    // tensor cores (so attention_tc false did reach the backend).
    EXPECT_LE(rel_l2(out[2], out[1]), 1e-5)
        << "general kernel: H " << c.H << " Hk " << c.Hk << " Dh " << c.Dh << " seqs " << S << " "
        << dtype_name(c.cache);
  }
}

}  // namespace
}  // namespace mlxs
