// bench_linear: throughput of cpu::linear() on Llama-3.2-1B shapes, against this machine's
// measured DRAM read bandwidth (decode, M = 1 and 8) and in GFLOP/s (prefill, M = 128 and 512),
// with OpenBLAS for comparison when the build found it. Prints a table and appends it to
// bench/RESULTS.md (full runs only).
// Usage: build/cpu/bench_linear [--threads N] [--quick] [--only decode|prefill|blas]
//        [--dtype BF16|F32|F16] [--isa scalar|avx2|avx512|avx512bf16] [--cputime]
//        [--quant BITS:GROUP,...]  (affine-quantized weights, default 4:64,8:64; --only quant)
//
// Napkin math: decode reads every weight byte once per call (x and out are a few KB), so the
// bound is bytes(w) / read bandwidth. The L3 of the benchmark machine may hold a whole matrix, so
// decode cycles through enough copies of each weight (>= 1.5 GB) that every call reads DRAM, as a
// real model's 16 layers would.
#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC 12 AVX-512 header false positive
#include <immintrin.h>
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/linear.h"

#ifdef MLXS_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace {

using mlxs::DType;
namespace cpu = mlxs::cpu;

// --cputime (with --threads 1): time on this thread's CPU clock, which excludes time other
// processes hold the core; for tuning compute-bound kernels on a shared machine.
bool g_cpu_clock = false;

double now_s() {
  if (g_cpu_clock) {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Sum of 64-byte lines with 4 independent accumulators (AVX-512 when present).
__attribute__((target("avx512f"))) uint64_t read_sum_avx512(const uint64_t* p, size_t n) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 32 <= n; i += 32) {
    a0 = _mm512_add_epi64(a0, _mm512_load_si512(p + i));
    a1 = _mm512_add_epi64(a1, _mm512_load_si512(p + i + 8));
    a2 = _mm512_add_epi64(a2, _mm512_load_si512(p + i + 16));
    a3 = _mm512_add_epi64(a3, _mm512_load_si512(p + i + 24));
  }
  return _mm512_reduce_add_epi64(
      _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
}

uint64_t read_sum_plain(const uint64_t* p, size_t n) {
  uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  for (size_t i = 0; i + 4 <= n; i += 4) a0 += p[i], a1 += p[i + 1], a2 += p[i + 2], a3 += p[i + 3];
  return a0 + a1 + a2 + a3;
}

// Streaming read bandwidth in GB/s over `bytes` with `threads` threads (best of 5).
double measure_read_bandwidth(size_t bytes, int threads) {
  size_t n = bytes / 8;
  auto* p = static_cast<uint64_t*>(std::aligned_alloc(64, n * 8));
#pragma omp parallel for num_threads(threads)
  for (size_t i = 0; i < n; ++i) p[i] = i;
  bool avx512 = __builtin_cpu_supports("avx512f");
  double best = 0;
  volatile uint64_t sink = 0;
  for (int rep = 0; rep < 5; ++rep) {
    double t0 = now_s();
#pragma omp parallel num_threads(threads)
    {
      int t = omp_get_thread_num(), nt = omp_get_num_threads();
      size_t chunk = n / size_t(nt) / 32 * 32;
      const uint64_t* q = p + size_t(t) * chunk;
      sink = sink + (avx512 ? read_sum_avx512(q, chunk) : read_sum_plain(q, chunk));
    }
    best = std::max(best, double(n * 8) / (now_s() - t0) / 1e9);
  }
  std::free(p);
  return best;
}

struct Shape {
  const char* name;
  int64_t K, N;
};
constexpr Shape kShapes[] = {
    {"qkv", 2048, 3072}, {"gate_up", 2048, 16384}, {"down", 8192, 2048}, {"lm_head", 2048, 128256}};

size_t elem_size(DType t) {
  return t == DType::kF32 ? 4 : 2;
}

// Random weights [N, K] of dtype t in [-1, 1] (xorshift; values matter only for NaN-freedom).
std::vector<char> random_weights(DType t, size_t n) {
  std::vector<char> buf(n * elem_size(t));
  uint64_t s = 88172645463325252ull;
  for (size_t i = 0; i < n; ++i) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    float f = float(int32_t(s >> 32)) * (1.0f / 2147483648.0f);
    if (t == DType::kF32)
      std::memcpy(buf.data() + 4 * i, &f, 4);
    else {
      uint16_t h = t == DType::kBF16 ? mlxs::f32_to_bf16(f) : mlxs::f32_to_f16(f);
      std::memcpy(buf.data() + 2 * i, &h, 2);
    }
  }
  return buf;
}

// Activations 64-byte aligned, as the CPU backend allocates them.
template <class T>
struct AlignedAlloc {
  using value_type = T;
  AlignedAlloc() = default;
  template <class U>
  AlignedAlloc(const AlignedAlloc<U>&) {}
  T* allocate(size_t n) {
    return static_cast<T*>(std::aligned_alloc(64, (n * sizeof(T) + 63) / 64 * 64));
  }
  void deallocate(T* p, size_t) { std::free(p); }
  bool operator==(const AlignedAlloc&) const { return true; }
};
using Floats = std::vector<float, AlignedAlloc<float>>;

Floats random_x(size_t n) {
  Floats x(n);
  for (size_t i = 0; i < n; ++i) x[i] = float((i * 2654435761u) % 1000) / 500.0f - 1.0f + 1e-3f;
  return x;
}

// Seconds per call of fn(copy), cycling through `copies` weight copies: the best of rounds of
// >= 20 ms each over >= min_s in all (the best, because other processes share these cores).
template <class Fn>
double time_calls(int copies, double min_s, Fn fn) {
  fn(0);
  double best = 1e30, start = now_s();
  int c = 0;
  do {
    int calls = 0;
    double t0 = now_s(), t = 0;
    do {
      fn(c++ % copies);
      ++calls;
      t = now_s() - t0;
    } while (t < 0.02 || calls < copies);
    best = std::min(best, t / calls);
  } while (now_s() - start < min_s);
  return best;
}

std::string g_table;
cpu::Isa g_isa = cpu::default_isa();  // --isa

void row(const char* fmt_line) {
  std::fputs(fmt_line, stdout);
  g_table += fmt_line;
}

void bench_decode(DType t, int64_t M, double bw, bool quick) {
  for (const Shape& s : kShapes) {
    const size_t bytes = size_t(s.N * s.K) * elem_size(t);
    const int copies = int(std::max<size_t>(2, (size_t(1536) << 20) / bytes + 1));
    std::vector<char> one = random_weights(t, size_t(s.N * s.K));
    std::vector<std::vector<char>> w(size_t(copies), one);
    auto x = random_x(size_t(M * s.K));
    Floats out(size_t(M * s.N));
    double sec = time_calls(copies, quick ? 0.3 : 1.0, [&](int c) {
      cpu::linear(x.data(), M, s.K, w[size_t(c)].data(), t, s.N, nullptr, out.data(), g_isa);
    });
    char line[256];
    std::snprintf(line, sizeof line,
                  "| decode  | %-5s | %3lld | %-8s | %5lld | %6lld | %8.3f | %6.1f GB/s | %5.1f %% "
                  "| %6.1f GFLOP/s |\n",
                  mlxs::dtype_name(t), (long long)M, s.name, (long long)s.K, (long long)s.N,
                  sec * 1e3, bytes / sec / 1e9, 100.0 * bytes / sec / 1e9 / bw,
                  2.0 * M * s.N * s.K / sec / 1e9);
    row(line);
  }
}

void bench_prefill(DType t, int64_t M, bool quick) {
  for (const Shape& s : kShapes) {
    if (quick && s.N > 20000) continue;
    std::vector<char> w = random_weights(t, size_t(s.N * s.K));
    auto x = random_x(size_t(M * s.K));
    Floats out(size_t(M * s.N));
    double sec = time_calls(1, quick ? 0.3 : 1.0, [&](int) {
      cpu::linear(x.data(), M, s.K, w.data(), t, s.N, nullptr, out.data(), g_isa);
    });
    char line[256];
    std::snprintf(line, sizeof line,
                  "| prefill | %-5s | %3lld | %-8s | %5lld | %6lld | %8.3f | %6.1f GB/s |         "
                  "| %6.1f GFLOP/s |\n",
                  mlxs::dtype_name(t), (long long)M, s.name, (long long)s.K, (long long)s.N,
                  sec * 1e3, w.size() / sec / 1e9, 2.0 * M * s.N * s.K / sec / 1e9);
    row(line);
  }
}

// MLX affine-quantized weights (bits, groups of `group`, bf16 scales and biases), the same
// shapes: decode (bytes = packed values + scales + biases) and prefill.
struct Affine {
  std::vector<uint8_t> packed;
  std::vector<uint16_t> scales, biases;
  int bits, group;
  cpu::AffineWeights view() const {
    return {packed.data(), bits, group, DType::kBF16, scales.data(), biases.data()};
  }
  size_t bytes() const { return packed.size() + 2 * scales.size() + 2 * biases.size(); }
};

Affine random_affine(int bits, int group, int64_t N, int64_t K) {
  Affine a{std::vector<uint8_t>(size_t(N * K * bits / 8)),
           std::vector<uint16_t>(size_t(N * K / group), mlxs::f32_to_bf16(0.01f)),
           std::vector<uint16_t>(size_t(N * K / group), mlxs::f32_to_bf16(-0.08f)), bits, group};
  uint64_t st = 88172645463325252ull;
  for (auto& b : a.packed) st ^= st << 13, st ^= st >> 7, st ^= st << 17, b = uint8_t(st >> 32);
  return a;
}

void bench_affine(int bits, int group, int64_t M, double bw, bool quick) {
  const bool decode = M <= 8;
  for (const Shape& s : kShapes) {
    if (!decode && quick && s.N > 20000) continue;
    Affine one = random_affine(bits, group, s.N, s.K);
    const int copies =
        decode ? int(std::max<size_t>(2, (size_t(1536) << 20) / one.bytes() + 1)) : 1;
    std::vector<Affine> w(size_t(copies), one);
    auto x = random_x(size_t(M * s.K));
    Floats out(size_t(M * s.N));
    double sec = time_calls(copies, quick ? 0.3 : 1.0, [&](int c) {
      cpu::linear_affine(x.data(), M, s.K, w[size_t(c)].view(), s.N, nullptr, out.data(), g_isa);
    });
    char label[16], pct[16] = "        ";
    std::snprintf(label, sizeof label, "Q%dg%d", bits, group);
    if (decode) std::snprintf(pct, sizeof pct, "%5.1f %%", 100.0 * one.bytes() / sec / 1e9 / bw);
    char line[256];
    std::snprintf(line, sizeof line,
                  "| %s | %-5s | %3lld | %-8s | %5lld | %6lld | %8.3f | %6.1f GB/s | %s "
                  "| %6.1f GFLOP/s |\n",
                  decode ? "decode " : "prefill", label, (long long)M, s.name, (long long)s.K,
                  (long long)s.N, sec * 1e3, one.bytes() / sec / 1e9, pct,
                  2.0 * M * s.N * s.K / sec / 1e9);
    row(line);
  }
}

#ifdef MLXS_HAVE_OPENBLAS
void bench_openblas(int64_t M, bool quick) {
  for (const Shape& s : kShapes) {
    if (quick && s.N > 20000) continue;
    std::vector<char> w = random_weights(DType::kF32, size_t(s.N * s.K));
    auto x = random_x(size_t(M * s.K));
    Floats out(size_t(M * s.N));
    double sec = time_calls(1, quick ? 0.3 : 1.0, [&](int) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(M), int(s.N), int(s.K), 1.0f,
                  x.data(), int(s.K), reinterpret_cast<const float*>(w.data()), int(s.K), 0.0f,
                  out.data(), int(s.N));
    });
    char line[256];
    std::snprintf(line, sizeof line,
                  "| sgemm   | F32   | %3lld | %-8s | %5lld | %6lld | %8.3f | %6.1f GB/s |         "
                  "| %6.1f GFLOP/s |\n",
                  (long long)M, s.name, (long long)s.K, (long long)s.N, sec * 1e3,
                  w.size() / sec / 1e9, 2.0 * M * s.N * s.K / sec / 1e9);
    row(line);
#ifdef MLXS_HAVE_SBGEMM
    std::vector<char> wb = random_weights(DType::kBF16, size_t(s.N * s.K));
    std::vector<uint16_t> xb(x.size());
    for (size_t i = 0; i < x.size(); ++i) xb[i] = mlxs::f32_to_bf16(x[i]);
    sec = time_calls(1, quick ? 0.3 : 1.0, [&](int) {
      cblas_sbgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(M), int(s.N), int(s.K), 1.0f,
                   reinterpret_cast<const bfloat16*>(xb.data()), int(s.K),
                   reinterpret_cast<const bfloat16*>(wb.data()), int(s.K), 0.0f, out.data(),
                   int(s.N));
    });
    std::snprintf(line, sizeof line,
                  "| sbgemm  | BF16  | %3lld | %-8s | %5lld | %6lld | %8.3f | %6.1f GB/s |         "
                  "| %6.1f GFLOP/s |\n",
                  (long long)M, s.name, (long long)s.K, (long long)s.N, sec * 1e3,
                  wb.size() / sec / 1e9, 2.0 * M * s.N * s.K / sec / 1e9);
    row(line);
#endif
  }
}
#endif

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  bool quick = false;
  std::string only;
  DType only_dtype = DType::kBF16;
  bool dtype_set = false;
  std::vector<std::pair<int, int>> quants = {{4, 64}, {8, 64}};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc)
      threads = std::atoi(argv[++i]);
    else if (a == "--quick")
      quick = true;
    else if (a == "--cputime")
      g_cpu_clock = true;
    else if (a == "--dtype" && i + 1 < argc)
      mlxs::parse_dtype(argv[++i], &only_dtype), dtype_set = true;
    else if (a == "--isa" && i + 1 < argc) {  // force a family (e.g. avx512bf16) to compare
      std::string name = argv[++i];
      if (auto why = cpu::isa_choice_error(name, cpu::supported_isa())) {
        std::fprintf(stderr, "bench_linear: --isa: %s\n", why->c_str());
        return 2;
      }
      g_isa = cpu::isa_for_choice(name);
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];  // decode | prefill | quant | blas
    } else if (a == "--quant" && i + 1 < argc) {
      quants.clear();
      for (const char* p = argv[++i]; *p;) {
        int bits = 0, group = 0, used = 0;
        if (std::sscanf(p, "%d:%d%n", &bits, &group, &used) != 2 ||
            !cpu::affine_supported(bits, group)) {
          std::fprintf(stderr,
                       "bench_linear: --quant wants BITS:GROUP,... (bits 2-8, groups "
                       "16-128), got '%s'\n",
                       p);
          return 2;
        }
        quants.push_back({bits, group});
        p += used;
        if (*p == ',') ++p;
      }
    }
  }
  cpu::set_num_threads(threads);
#ifdef MLXS_HAVE_OPENBLAS
  openblas_set_num_threads(threads);
#endif
  const double bw = measure_read_bandwidth(size_t(1) << 30, threads);
  char head[512];
  std::snprintf(
      head, sizeof head,
      "bench_linear: isa=%s threads=%d, streaming read bandwidth (1 GiB, %d threads) = "
      "%.1f GB/s\n\n| phase   | w     |   M | shape    |     K |      N |   ms/call |  weight "
      "bytes/s | %% of bw |       compute     |\n|---|---|---|---|---|---|---|---|---|---|\n",
      cpu::isa_name(g_isa), threads, threads, bw);
  row(head);
  for (DType t : {DType::kBF16, DType::kF32, DType::kF16}) {
    if (!only.empty() && only != "decode") break;
    if (dtype_set && t != only_dtype) continue;
    for (int64_t M : {1, 8}) bench_decode(t, M, bw, quick);
  }
  for (DType t : {DType::kBF16, DType::kF32, DType::kF16}) {
    if (!only.empty() && only != "prefill") break;
    if (dtype_set && t != only_dtype) continue;
    for (int64_t M : {128, 512}) bench_prefill(t, M, quick);
  }
  if (only.empty() || only == "quant") {
    for (auto [bits, group] : quants)
      for (int64_t M : {1, 8, 128}) bench_affine(bits, group, M, bw, quick);
  }
#ifdef MLXS_HAVE_OPENBLAS
  if (only.empty() || only == "blas")
    for (int64_t M : {1, 128, 512}) bench_openblas(M, quick);
#endif
  if (!quick && only.empty()) {
    std::time_t tt = std::time(nullptr);
    char date[64];
    std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&tt));
    std::string path = std::string(MLXS_SOURCE_DIR) + "/bench/RESULTS.md";
    if (FILE* f = std::fopen(path.c_str(), "a")) {
      std::fprintf(f, "\n## bench_linear, %s, `build/cpu/bench_linear`\n\n%s", date,
                   g_table.c_str());
      std::fclose(f);
    }
  }
  return 0;
}
