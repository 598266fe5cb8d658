// Kernel launch with programmatic dependent launch (PDL, Hopper): a kernel launched through
// launch() may start while the previous kernel on the stream is still running, so its launch
// latency and its independent prologue (a GEMV's first weight loads) overlap that kernel's
// tail. The contract for every kernel launched this way: call pdl_wait() before reading
// anything an earlier kernel wrote and before writing anything, and pdl_launch_dependents()
// early so the next kernel can be scheduled. A backend built with backend.cuda.pdl false
// launches plainly (Stream::pdl).
#pragma once

#include <cuda_runtime.h>

#include <utility>

#include "backend/cuda/cuda_check.h"

namespace mlxs::cuda {

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Launches kernel<<<grid, block, smem, stream.handle>>>(args...) with the PDL attribute when
// stream.pdl; a failure lands in stream's error slot.
template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, Stream& stream,
            Args&&... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream.handle;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = stream.pdl ? 1 : 0;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  MLXS_CUDA(stream, cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...));
}

}  // namespace mlxs::cuda
