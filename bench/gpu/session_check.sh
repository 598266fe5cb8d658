#!/usr/bin/env bash
# On the GPU machine, one call: builds the cuda preset and runs what the quantized-weight,
# speculative-decoding and pipeline work must hold there (the CUDA quantized kernels against a
# double reference, the golden families incl. the quantized fixtures, the engine and speculative
# engine tests), then bench_qlinear (quantized vs bf16 linear layers of the 8B shape) and
# bench_speculative (with and without prompt-lookup speculation, same run).
#   bash bench/gpu/session_check.sh        (carry .deps/gpu, made by scripts/carry-deps.sh)
set -uo pipefail
OUT=${OUT:-/tmp/mlxs_session_out}
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0 LD_LIBRARY_PATH=$PWD/.deps/gpu/usr/lib/x86_64-linux-gnu
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
cmake --preset cuda -DMLXS_DEPS_PREFIX="$PWD/.deps/gpu" > "$OUT/configure.log" 2>&1 || { tail -40 "$OUT/configure.log"; exit 1; }
cmake --build build/cuda -j"$(nproc)" --target mlxs_tests mlx-serving bench_qlinear bench_speculative \
  > "$OUT/build.log" 2>&1 || { grep -E "error" -A3 "$OUT/build.log" | head -60; exit 1; }
echo "== tests"
timeout ${TEST_TIMEOUT:-300} ./build/cuda/mlxs_tests --gtest_filter="${TEST_FILTER:-CudaQuant*:CudaOps*:*Golden*:EngineTest*:EngineSpeculative*:EnginePipeline*:StepPipeline*}" 2>&1 \
  | tee "$OUT/tests.log" | grep -E "^\[  (FAILED|PASSED|SKIPPED) |Failure|Expected|Which is" | head -60
echo "== bench_qlinear"
timeout 150 ./build/cuda/bench_qlinear 2>&1 | tee "$OUT/qlinear.log" | tail -40
echo "== bench_speculative"
timeout 150 ./build/cuda/bench_speculative --tokens 128 --streams 1,8,32,128 --force-rejection 2>&1 \
  | tee "$OUT/speculative.log" | tail -30
