// The CUDA backend (Hopper first): make_cuda_backend() is declared in every build, so code and
// tests that want a GPU compile without nvcc; built without CUDA, or on a machine without a GPU,
// it returns an error that callers turn into a skip or a message. Outside src/backend/ and the
// CUDA tests, code builds backends with make_backend() (backend/make_backend.h) instead.
#pragma once

#include <memory>

#include "api/config.h"
#include "backend/backend.h"
#include "mlxs/status.h"

namespace mlxs {

// A backend on GPU `device` with the options of `config` (the backend.cuda section: precision,
// graphs, PDL, kernel choices), owning one stream, a cuBLAS handle, its buffers and its error
// slot. Not thread-safe: one engine thread drives it; any number may share a GPU. Errors: no
// CUDA in this build, no GPU present, no GPU `device`.
Result<std::unique_ptr<Backend>> make_cuda_backend(const CudaBackendConfig& config, int device = 0);

// True when this build has the CUDA backend compiled in.
bool cuda_backend_compiled();

// The number of CUDA devices this process sees (0 without a CUDA build or a driver).
int cuda_device_count();

// Device-to-device copy bandwidth of GPU `device` in GB/s, counting bytes read plus written
// (a 2 GiB cudaMemcpy, median of 10 after warm-up): the memory roofline of benchmarks.
Result<double> cuda_copy_bandwidth_gbs(int device);

#ifndef MLXS_HAVE_CUDA
inline Result<std::unique_ptr<Backend>> make_cuda_backend(const CudaBackendConfig&, int) {
  return error(ErrorCode::kRuntimeError, "this build has no CUDA backend (nvcc was not found)");
}
inline bool cuda_backend_compiled() {
  return false;
}
inline int cuda_device_count() {
  return 0;
}
inline Result<double> cuda_copy_bandwidth_gbs(int) {
  return error(ErrorCode::kRuntimeError, "this build has no CUDA backend");
}
#endif

}  // namespace mlxs
