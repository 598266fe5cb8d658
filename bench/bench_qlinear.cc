// bench_qlinear: the CUDA backend's linear layers on the Llama-3.1-8B shapes, bf16 against
// affine-quantized weights (backend.h AffineQuant): microseconds per call, weight bytes per
// second and % of this GPU's copy bandwidth, at M = 1, 8 and 32 rows of x. Prints a table and
// appends it to bench/RESULTS.md (full runs only). Needs a CUDA build and a GPU.
// Usage: build/cuda/bench_qlinear [--quick] [--device N]
//
// Napkin math: a decode-sized call (M <= 8) reads every weight byte once (packed values, scales
// and biases; x and out are a few KB), so its floor is bytes / copy bandwidth (the 2 GiB
// device-to-device copy of cuda_copy_bandwidth_gbs, counting bytes read + written). The H100's
// 50 MB L2 holds a whole 4-bit o_proj (9.4 MB), so each call reads one of several copies of the
// weights (>= 256 MB in all), as a real model's 32 layers would. Calls are recorded in a step
// graph (the backend's begin_graph / replay_graph) and the graph is replayed, so launch gaps
// are those of a decode step. Formats: bf16; MLX 4-bit and 8-bit g64 with f16 scales; and the
// GGUF repacks (Q4_K -> 4-bit g32, Q5_K -> 5-bit g32, Q6_K -> 6-bit g16, f32 scales).
// gate_up is the fused [2 x 14336, 4096] weight through linear_swiglu (SwiGLU in the epilogue);
// the others are linear(). Rows: M = 1 and 8 run the GEMVs (quantized: always up to 8 rows;
// bf16: the default backend.cuda.gemv_max_rows, above which cuBLAS), M = 32 cuBLAS (quantized:
// dequantized in row blocks, then cuBLAS).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/cuda_backend.h"

namespace {

using mlxs::Backend;
using mlxs::DType;
using mlxs::Tensor;

struct Format {
  const char* name;
  int bits, group;  // bits 0: bf16
  DType scale_dtype;
};
constexpr Format kFormats[] = {
    {"bf16", 0, 0, DType::kBF16},
    {"q4 g64 f16", 4, 64, DType::kF16},
    {"q8 g64 f16", 8, 64, DType::kF16},
    {"q4 g32 f32 (Q4_K)", 4, 32, DType::kF32},
    {"q5 g32 f32 (Q5_K)", 5, 32, DType::kF32},
    {"q6 g16 f32 (Q6_K)", 6, 16, DType::kF32},
};

struct Shape {
  const char* name;
  int64_t K, N;
  bool swiglu;
};
constexpr Shape kShapes[] = {
    {"q/o_proj", 4096, 4096, false},  {"k/v_proj", 4096, 1024, false},
    {"gate_up", 4096, 28672, true},   {"down", 14336, 4096, false},
    {"lm_head", 4096, 128256, false},
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

uint64_t g_rng = 88172645463325252ull;
uint32_t next_u32() {
  g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
  return uint32_t(g_rng >> 32);
}

// Fills device memory of `bytes` with random words (or, for scale arrays, small positive
// halves / floats: what matters is that nothing is zero or NaN).
void fill(Backend& b, void* dst, size_t bytes, DType kind) {
  std::vector<uint32_t> h((bytes + 3) / 4);
  for (auto& w : h) {
    const uint32_t r = next_u32();
    if (kind == DType::kF32) {
      const float f = 1e-3f + float(r % 1000) * 1e-5f;
      std::memcpy(&w, &f, 4);
    } else if (kind == DType::kF16) {
      w = uint32_t(mlxs::f32_to_f16(1e-3f + float(r % 1000) * 1e-5f)) * 0x10001u;
    } else if (kind == DType::kBF16) {
      w = uint32_t(mlxs::f32_to_bf16(float(int(r % 2001) - 1000) * 1e-4f)) * 0x10001u;
    } else {
      w = r;
    }
  }
  b.upload(h.data(), bytes, dst);
}

// Device buffers of one weight copy; freed by the caller.
struct Weight {
  Tensor t;
  std::vector<Tensor> owned;
};

Weight make_weight(Backend& b, const Format& f, const Shape& s) {
  Weight w;
  if (f.bits == 0) {
    w.t = b.alloc(DType::kBF16, s.N, s.K);
    fill(b, w.t.data, w.t.nbytes(), DType::kBF16);
    w.owned.push_back(w.t);
    return w;
  }
  Tensor data = b.alloc(DType::kU32, s.N, s.K * f.bits / 32);
  Tensor scales = b.alloc(f.scale_dtype, s.N, s.K / f.group);
  Tensor biases = b.alloc(f.scale_dtype, s.N, s.K / f.group);
  fill(b, data.data, data.nbytes(), DType::kU32);
  fill(b, scales.data, scales.nbytes(), f.scale_dtype);
  fill(b, biases.data, biases.nbytes(), f.scale_dtype);
  w.owned = {data, scales, biases};
  w.t = Tensor(data.data, DType::kU32, s.N, s.K);
  w.t.quant = {f.bits, f.group, f.scale_dtype, scales.data, biases.data};
  return w;
}

size_t weight_bytes(const Format& f, const Shape& s) {
  if (f.bits == 0) return size_t(s.N * s.K) * 2;
  return size_t(s.N) * size_t(s.K * f.bits / 8) +
         2 * size_t(s.N) * size_t(s.K / f.group) * mlxs::dtype_size(f.scale_dtype);
}

std::string g_table;
void row(const std::string& line) {
  std::fputs(line.c_str(), stdout);
  std::fflush(stdout);
  g_table += line;
}

// Seconds per call: `calls` calls cycling over the copies recorded in one graph, replayed
// until >= 40 ms have run; the median of 5 such rounds.
double time_shape(Backend& b, const Format& f, const Shape& s, int64_t M, uint64_t key) {
  const size_t bytes = weight_bytes(f, s);
  const int copies = int(std::max<size_t>(1, ((size_t(256) << 20) + bytes - 1) / bytes));
  std::vector<Weight> ws;
  Tensor bias{};
  for (int c = 0; c < copies; ++c) {
    ws.push_back(make_weight(b, f, s));
    if (s.swiglu) b.prepare_gate_up(ws.back().t, bias);
  }
  const int64_t out_cols = s.swiglu ? s.N / 2 : s.N;
  Tensor x = b.alloc(DType::kF32, M, s.K), out = b.alloc(DType::kF32, M, out_cols);
  Tensor gate_up = s.swiglu ? b.alloc(DType::kF32, M, s.N) : Tensor{};
  fill(b, x.data, x.nbytes(), DType::kF32);
  const int calls = std::max(copies, 8);
  auto step = [&] {
    if (b.replay_graph(key)) return;
    b.begin_graph(key);
    for (int i = 0; i < calls; ++i) {
      const Tensor& w = ws[size_t(i % copies)].t;
      if (s.swiglu)
        b.linear_swiglu(x, w, bias, gate_up, out);
      else
        b.linear(x, w, bias, out);
    }
    b.end_graph(key);
  };
  for (int i = 0; i < 3; ++i) step();  // eager, recorded, replayed
  b.synchronize();
  std::vector<double> per_call;
  for (int round = 0; round < 5; ++round) {
    int reps = 0;
    const double t0 = now_s();
    double t = 0;
    do {
      step();
      ++reps;
      if (reps % 4 == 0) b.synchronize(), t = now_s() - t0;
    } while (t < 0.04);
    per_call.push_back(t / (double(reps) * calls));
  }
  const mlxs::Status st = b.take_error();
  if (!st.ok()) std::fprintf(stderr, "bench_qlinear: %s\n", st.to_string().c_str());
  for (Weight& w : ws)
    for (Tensor& t : w.owned) b.free(t);
  b.free(x);
  b.free(out);
  if (gate_up.data) b.free(gate_up);
  std::sort(per_call.begin(), per_call.end());
  return per_call[per_call.size() / 2];
}

const char* path_name(const Format& f, int64_t M, const mlxs::CudaBackendConfig& c) {
  if (f.bits > 0) return M <= 8 ? "qgemv" : "dequant+cuBLAS";
  return M <= c.gemv_max_rows ? "gemv" : "cuBLAS";
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  int device = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick")
      quick = true;
    else if (a == "--device" && i + 1 < argc)
      device = std::atoi(argv[++i]);
  }
  mlxs::CudaBackendConfig config;
  config.precision = mlxs::CudaPrecision::kFast;
  auto backend = mlxs::make_cuda_backend(config, device);
  if (!backend.ok()) {
    std::fprintf(stderr, "bench_qlinear: %s\n", backend.status().to_string().c_str());
    return 1;
  }
  Backend& b = **backend;
  auto bw = mlxs::cuda_copy_bandwidth_gbs(device);
  if (!bw.ok()) {
    std::fprintf(stderr, "bench_qlinear: %s\n", bw.status().to_string().c_str());
    return 1;
  }
  char line[512];
  std::snprintf(line, sizeof line,
                "bench_qlinear: copy bandwidth (2 GiB D2D, read + write) = %.0f GB/s; fast mode "
                "(bf16 GEMM operands), gemv_max_rows %d\n\n| format | shape | K | N | M | path "
                "| us/call | weight MB | GB/s | %% of copy bw |\n|---|---|---|---|---|---|---|---|"
                "---|---|\n",
                *bw, config.gemv_max_rows);
  row(line);
  uint64_t key = 0x51000000;
  for (const Format& f : kFormats) {
    for (const Shape& s : kShapes) {
      for (int64_t M : {1, 8, 32}) {
        if (quick && M != 1) continue;
        const double sec = time_shape(b, f, s, M, ++key);
        const double mb = double(weight_bytes(f, s)) / 1e6, gbs = mb / 1e3 / sec;
        std::snprintf(line, sizeof line,
                      "| %s | %s | %lld | %lld | %lld | %s | %.1f | %.1f | %.0f | %.1f %% |\n",
                      f.name, s.name, (long long)s.K, (long long)s.N, (long long)M,
                      path_name(f, M, config), sec * 1e6, mb, gbs, 100.0 * gbs / *bw);
        row(line);
      }
    }
  }
  if (!quick) {
    std::time_t tt = std::time(nullptr);
    char date[64];
    std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&tt));
    const std::string path = std::string(MLXS_SOURCE_DIR) + "/bench/RESULTS.md";
    if (FILE* fp = std::fopen(path.c_str(), "a")) {
      std::fprintf(fp, "\n## bench_qlinear, %s, `build/cuda/bench_qlinear`\n\n%s", date,
                   g_table.c_str());
      std::fclose(fp);
    }
  }
  return 0;
}
