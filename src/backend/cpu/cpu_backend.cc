// The CPU backend: the reference every other backend is checked against. Activations are f32;
// weights f32, f16 or bf16, or affine-quantized (backend.h AffineQuant: 2-8 bits, dequantized
// to f32 in L2-sized panels by the linear kernels); the KV cache f32. Threads: OpenMP. The matrix
// products run on one kernel family per backend (cpu_features.h); only kAvx512Bf16 rounds
// activations, to bf16, inside linear() (docs/cpu.md).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_features.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/linear.h"
#include "util/check.h"

namespace mlxs {
namespace {

// Elementwise ops go parallel only past this many elements: below it a team's fork and barrier
// cost more than the work (a decode step of a small model runs ~10 such ops per layer).
constexpr int64_t kParallelElements = int64_t(1) << 15;

class CpuBackend final : public Backend {
 public:
  CpuBackend(int num_threads, cpu::Isa isa) : isa_(isa) {
    MLXS_CHECK(cpu::isa_supported(isa));
    if (num_threads > 0) omp_set_num_threads(num_threads);
  }
  std::string name() const override { return "cpu"; }

  Tensor alloc(DType dtype, int64_t rows, int64_t cols) override {
    size_t bytes = size_t(rows) * size_t(cols) * dtype_size(dtype);
    bytes = (bytes + 63) / 64 * 64;
    void* p = bytes ? std::aligned_alloc(64, bytes) : std::aligned_alloc(64, 64);
    return {p, dtype, rows, cols};
  }
  void free(Tensor& t) override {
    std::free(t.data);
    t.data = nullptr;
  }
  void upload(const void* host, size_t bytes, void* device) override {
    std::memcpy(device, host, bytes);
  }
  void download(const void* device, size_t bytes, void* host) override {
    std::memcpy(host, device, bytes);
  }

  void embedding(const Tensor& ids, const Tensor& table, Tensor& out) override {
    const int32_t* id = ids.as<int32_t>();
    const int64_t n = int64_t(ids.numel()), D = table.cols;
    if (table.quantized()) {
      const cpu::AffineWeights w = affine(table);
#pragma omp parallel for if (n * D > kParallelElements)
      for (int64_t t = 0; t < n; ++t) {
        cpu::dequantize_affine(w, D, id[t], 1, out.as<float>() + t * D, isa_);
      }
      return;
    }
#pragma omp parallel for if (n * D > kParallelElements)
    for (int64_t t = 0; t < n; ++t) {
      const char* row = static_cast<const char*>(table.data) +
                        size_t(id[t]) * size_t(D) * dtype_size(table.dtype);
      convert_to_f32(row, table.dtype, size_t(D), out.as<float>() + t * D);
    }
  }

  void rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& out) override {
    const int64_t C = x.cols;
#pragma omp parallel for if (x.rows * C > kParallelElements)
    for (int64_t r = 0; r < x.rows; ++r) {
      cpu::rms_norm_row(x.as<float>() + r * C, w.as<float>(), C, eps, out.as<float>() + r * C);
    }
  }

  void add_rms_norm(Tensor& residual, const Tensor& x, const Tensor& w, float eps,
                    Tensor& out) override {
    const int64_t C = x.cols;
#pragma omp parallel for if (x.rows * C > kParallelElements)
    for (int64_t r = 0; r < x.rows; ++r) {
      float* res = residual.as<float>() + r * C;
      const float* xr = x.as<float>() + r * C;
      for (int64_t i = 0; i < C; ++i) res[i] += xr[i];
      cpu::rms_norm_row(res, w.as<float>(), C, eps, out.as<float>() + r * C);
    }
  }

  void linear(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& out) override {
    MLXS_CHECK(x.cols == w.cols && out.cols == w.rows && out.rows == x.rows);
    if (w.quantized()) {
      MLXS_CHECK(supports_quant(w.quant.bits, w.quant.group_size));
      cpu::linear_affine(x.as<float>(), x.rows, x.cols, affine(w), w.rows,
                         bias.data ? bias.as<float>() : nullptr, out.as<float>(), isa_);
      return;
    }
    cpu::linear(x.as<float>(), x.rows, x.cols, w.data, w.dtype, w.rows,
                bias.data ? bias.as<float>() : nullptr, out.as<float>(), isa_);
  }

  bool supports_quant(int bits, int group_size) const override {
    return cpu::affine_supported(bits, group_size);
  }

  void split_qkv(const Tensor& qkv, Tensor& q, Tensor& k, Tensor& v) override {
    const int64_t T = qkv.rows, nq = q.cols, nk = k.cols, nv = v.cols;
#pragma omp parallel for if (T * qkv.cols > kParallelElements)
    for (int64_t t = 0; t < T; ++t) {
      const float* src = qkv.as<float>() + t * qkv.cols;
      std::memcpy(q.as<float>() + t * nq, src, size_t(nq) * 4);
      std::memcpy(k.as<float>() + t * nk, src + nq, size_t(nk) * 4);
      std::memcpy(v.as<float>() + t * nv, src + nq + nk, size_t(nv) * 4);
    }
  }

  void rope(Tensor& x, int heads, int head_dim, const Tensor& positions,
            const RopeParams& rope) override {
    const int half = head_dim / 2;
    const int32_t* pos = positions.as<int32_t>();
#pragma omp parallel for if (x.rows * x.cols > kParallelElements / 4)
    for (int64_t t = 0; t < x.rows; ++t) {
      std::vector<float> cs(static_cast<size_t>(2 * half));
      for (int i = 0; i < half; ++i) {
        float angle = float(pos[t]) * rope.inv_freq[size_t(i)];  // f32 product, as transformers
        cs[size_t(i)] = float(std::cos(double(angle))) * rope.attention_scaling;
        cs[size_t(half + i)] = float(std::sin(double(angle))) * rope.attention_scaling;
      }
      for (int h = 0; h < heads; ++h) {
        float* p = x.as<float>() + t * x.cols + int64_t(h) * head_dim;
        for (int i = 0; i < half; ++i) {
          float x1 = p[i], x2 = p[i + half], c = cs[size_t(i)], s = cs[size_t(half + i)];
          p[i] = x1 * c - x2 * s;
          p[i + half] = x2 * c + x1 * s;
        }
      }
    }
  }

  void silu_mul(const Tensor& gate_up, Tensor& out) override {
    const int64_t I = out.cols;
#pragma omp parallel for if (out.rows * I > kParallelElements / 4)
    for (int64_t t = 0; t < out.rows; ++t) {
      const float* g = gate_up.as<float>() + t * 2 * I;
      float* o = out.as<float>() + t * I;
      for (int64_t i = 0; i < I; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * g[I + i];
    }
  }

  void add(Tensor& x, const Tensor& y) override {
    float* a = x.as<float>();
    const float* b = y.as<float>();
    const int64_t n = int64_t(x.numel());
#pragma omp parallel for if (n > kParallelElements)
    for (int64_t i = 0; i < n; ++i) a[i] += b[i];
  }

  void gather_rows(const Tensor& x, const Tensor& rows, Tensor& out) override {
    const int32_t* r = rows.as<int32_t>();
    for (int64_t i = 0; i < out.rows; ++i) {
      std::memcpy(out.as<float>() + i * x.cols, x.as<float>() + int64_t(r[i]) * x.cols,
                  size_t(x.cols) * 4);
    }
  }

  void attention(const Tensor& q, const Tensor& k, const Tensor& v, KvLayer& cache,
                 const AttentionBatch& b, int heads, int kv_heads, int head_dim, float scale,
                 Tensor& out) override {
    cpu::kv_write(k, v, b.slot_mapping.data(), cache);
    cpu::paged_attention(q, cache, b, heads, kv_heads, head_dim, scale, out);
  }

 private:
  static cpu::AffineWeights affine(const Tensor& w) {
    return {w.data,         w.quant.bits,  w.quant.group_size, w.quant.scale_dtype,
            w.quant.scales, w.quant.biases};
  }

  const cpu::Isa isa_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int num_threads) {
  return std::make_unique<CpuBackend>(num_threads, cpu::default_isa());
}

std::unique_ptr<Backend> make_cpu_backend(int num_threads, cpu::Isa isa) {
  return std::make_unique<CpuBackend>(num_threads, isa);
}

}  // namespace mlxs
