// Checked CUDA and cuBLAS calls: every failure names the call, the file and the line.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

namespace mlxs::cuda {

// Records the first failure of the current thread's backend (see CudaBackend::take_error) and
// prints it; returns false on failure.
bool report_cuda(cudaError_t err, const char* call, const char* file, int line);
bool report_cublas(cublasStatus_t st, const char* call, const char* file, int line);
// The first failure since the last call ("" if none), then cleared.
std::string take_first_failure();

}  // namespace mlxs::cuda

#define MLXS_CUDA(call) ::mlxs::cuda::report_cuda((call), #call, __FILE__, __LINE__)
#define MLXS_CUBLAS(call) ::mlxs::cuda::report_cublas((call), #call, __FILE__, __LINE__)
// After a kernel launch: the launch's own error (bad configuration, missing image).
#define MLXS_CUDA_LAUNCHED() MLXS_CUDA(cudaGetLastError())
