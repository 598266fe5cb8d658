// The CUDA backend (Hopper first): make_cuda_backend() is declared in every build, so code and
// tests that want a GPU compile without nvcc; built without CUDA, or on a machine without a GPU,
// it returns an error that callers turn into a skip or a message.
#pragma once

#include <memory>

#include "backend/backend.h"
#include "mlxs/status.h"

namespace mlxs {

struct CudaOptions {
  int device = 0;
  // Linear layers with more rows than the GEMV handles run on tensor cores with bf16 (f16)
  // activations. precise_activations splits each activation into hi + lo halves (two GEMMs),
  // and keeps the GEMV inputs f32, so the CUDA backend matches the CPU reference up to
  // summation order; the default rounds linear inputs to the weight dtype on every path, so a
  // row's result does not depend on which path (batch size) ran it.
  bool precise_activations = false;
  // Record decode steps as CUDA graphs and replay them (see Backend::replay_graph).
  bool use_graphs = true;
  // Linear layers with at most this many rows use the GEMV kernel (at most 8), more use cuBLAS.
  // H200 sweep (bench/gpu/logs/run2_ours.log): GEMV wins clearly at 1 row (o_proj 12.3 vs
  // 16.2 us), ties at 2, loses from 4 (gate_up 94.7 vs 62.0 us; f32 FMAs and x re-reads).
  int gemv_max_rows = 2;
  // Gate/up weights interleaved at load so SwiGLU runs in the GEMV's epilogue (no silu_mul
  // kernel on the decode path); MLXS_CUDA_SWIGLU=0 turns it off (A/B).
  bool swiglu_epilogue = true;
};

// A backend on GPU `options.device`, owning one stream, a cuBLAS handle and its buffers.
// Not thread-safe: one engine thread drives it. Errors: no CUDA in this build, no GPU present.
Result<std::unique_ptr<Backend>> make_cuda_backend(const CudaOptions& options = {});

// True when this build has the CUDA backend compiled in.
bool cuda_backend_compiled();

// Device-to-device copy bandwidth of GPU `device` in GB/s, counting bytes read plus written
// (a 2 GiB cudaMemcpy, median of 10 after warm-up): the memory roofline of benchmarks.
Result<double> cuda_copy_bandwidth_gbs(int device);

#ifndef MLXS_HAVE_CUDA
inline Result<std::unique_ptr<Backend>> make_cuda_backend(const CudaOptions&) {
  return error(ErrorCode::kRuntimeError, "this build has no CUDA backend (nvcc was not found)");
}
inline bool cuda_backend_compiled() {
  return false;
}
inline Result<double> cuda_copy_bandwidth_gbs(int) {
  return error(ErrorCode::kRuntimeError, "this build has no CUDA backend");
}
#endif

}  // namespace mlxs
