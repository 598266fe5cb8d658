#include "backend/cuda/cuda_check.h"

#include <cstdio>

namespace mlxs::cuda {

bool Stream::record(const std::string& what, const char* call, const char* file, int line) {
  cudaGetLastError();  // this failure is reported here, once
  std::string msg = std::string(file) + ":" + std::to_string(line) + ": " + call + ": " + what;
  std::fprintf(stderr, "cuda backend: %s\n", msg.c_str());
  std::lock_guard<std::mutex> lock(mu_);
  if (first_failure_.empty()) first_failure_ = msg;
  return false;
}

bool Stream::check(cudaError_t err, const char* call, const char* file, int line) {
  if (err == cudaSuccess) return true;
  return record(cudaGetErrorString(err), call, file, line);
}

bool Stream::check(cublasStatus_t st, const char* call, const char* file, int line) {
  if (st == CUBLAS_STATUS_SUCCESS) return true;
  return record("cuBLAS status " + std::to_string(int(st)), call, file, line);
}

std::string Stream::take_first_failure() {
  std::lock_guard<std::mutex> lock(mu_);
  std::string s;
  s.swap(first_failure_);
  return s;
}

}  // namespace mlxs::cuda
