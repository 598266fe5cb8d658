// Building the backend a model runs on, from the `backend:` section of the configuration. The
// only code outside src/backend/cuda that names CUDA: the engine and the tools ask for a
// backend here and never include a CUDA header.
#pragma once

#include <memory>
#include <string>

#include "api/config.h"
#include "backend/backend.h"
#include "mlxs/status.h"

namespace mlxs {

// Ok when `config.device` can be honoured on this machine; for cuda, kInvalidParams naming
// backend.device when this build has no CUDA backend or no GPU is present. Auto and cpu are
// always ok (auto falls back to the CPU).
Status check_backend_device(const BackendConfig& config);

// A backend as `config` says: cpu (backend.cpu), cuda on GPU `gpu_index` (backend.cuda), or
// auto: CUDA when this build has it and a GPU is present, else the CPU.
Result<std::unique_ptr<Backend>> make_backend(const BackendConfig& config, int gpu_index = 0);

// The device `config` resolves to on this machine: "cpu" or "cuda".
std::string resolved_backend_device(const BackendConfig& config);

// Device-to-device copy bandwidth of GPU `gpu_index` in GB/s (bytes read plus written): the
// memory roofline of benchmarks. An error without CUDA.
Result<double> gpu_copy_bandwidth_gbs(int gpu_index);

}  // namespace mlxs
