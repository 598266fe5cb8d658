// Checked CUDA and cuBLAS calls: every failure names the call, the file and the line, and is
// kept in the error slot of the backend whose stream it happened on.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <mutex>
#include <string>

namespace mlxs::cuda {

// What the kernels of one backend run under: its CUDA stream, the launch option it was built
// with, and the slot that keeps its first failure. Each backend owns one, so two models on one
// GPU (or on one thread) never see each other's errors; launchers take it by reference.
// A sticky error (an illegal address) poisons the device context, and so every backend on that
// GPU, whatever slot it lands in: per-backend state cannot contain that, only report it.
class Stream {
 public:
  Stream() = default;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  cudaStream_t handle = nullptr;
  bool pdl = true;  // launch() lets a kernel overlap the previous one's tail (cuda_launch.cuh)

  // True when `err` is success; else records the failure (the first one since the last
  // take_first_failure() is kept), prints it, and clears this thread's pending CUDA error, so
  // the next check on this thread (maybe another backend's) does not report it again.
  bool check(cudaError_t err, const char* call, const char* file, int line);
  bool check(cublasStatus_t st, const char* call, const char* file, int line);
  // The first failure since the last call ("" if none), then cleared.
  std::string take_first_failure();

 private:
  bool record(const std::string& what, const char* call, const char* file, int line);

  std::mutex mu_;
  std::string first_failure_;  // guarded by mu_
};

}  // namespace mlxs::cuda

// `stream` is the cuda::Stream whose slot a failure goes to.
#define MLXS_CUDA(stream, call) (stream).check((call), #call, __FILE__, __LINE__)
#define MLXS_CUBLAS(stream, call) (stream).check((call), #call, __FILE__, __LINE__)
// After a kernel launch: the launch's own error (bad configuration, missing image).
#define MLXS_CUDA_LAUNCHED(stream) MLXS_CUDA(stream, cudaGetLastError())
