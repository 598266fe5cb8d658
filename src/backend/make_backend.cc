#include "backend/make_backend.h"

#include "backend/cuda/cuda_backend.h"

namespace mlxs {
namespace {

bool gpu_usable() {
  return cuda_backend_compiled() && cuda_device_count() > 0;
}

}  // namespace

Status check_backend_device(const BackendConfig& config) {
  if (config.device != Device::kCuda) return {};
  if (!cuda_backend_compiled()) {
    return error(ErrorCode::kInvalidParams,
                 "Validation error on field 'backend.device': cuda was asked for, but this build "
                 "has no CUDA backend (configure with the cuda preset, nvcc on the PATH)");
  }
  if (cuda_device_count() == 0) {
    return error(ErrorCode::kInvalidParams,
                 "Validation error on field 'backend.device': cuda was asked for, but no CUDA "
                 "device is present");
  }
  return {};
}

std::string resolved_backend_device(const BackendConfig& config) {
  switch (config.device) {
    case Device::kCpu:
      return "cpu";
    case Device::kCuda:
      return "cuda";
    default:
      return gpu_usable() ? "cuda" : "cpu";
  }
}

Result<std::unique_ptr<Backend>> make_backend(const BackendConfig& config, int gpu_index) {
  MLXS_RETURN_IF_ERROR(check_backend_device(config));
  if (resolved_backend_device(config) == "cuda") return make_cuda_backend(config.cuda, gpu_index);
  return make_cpu_backend(config.cpu.threads, cpu::isa_for_choice(config.cpu.isa));
}

Result<double> gpu_copy_bandwidth_gbs(int gpu_index) {
  return cuda_copy_bandwidth_gbs(gpu_index);
}

}  // namespace mlxs
