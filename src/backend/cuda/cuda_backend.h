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
  // Run 1 (H200): GEMV at 8 rows is compute-bound in f32 FMAs (batch-8 step 17 ms vs 13.5 ms
  // for batch 32 on cuBLAS), so the default stops at 4.
  int gemv_max_rows = 4;
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
inline bool cuda_backend_compiled() { return false; }
inline Result<double> cuda_copy_bandwidth_gbs(int) {
  return error(ErrorCode::kRuntimeError, "this build has no CUDA backend");
}
#endif

}  // namespace mlxs
