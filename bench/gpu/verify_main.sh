#!/usr/bin/env bash
# On the GPU machine: builds the cuda preset and runs what must hold on the GPU: the CUDA op and
# model parity tests, the golden families on CUDA, the engine tests (the engine picks the CUDA
# backend there: batch invariance, seeded sampling, the default model's golden), the default model
# through `generate`, and the engine's throughput against concurrency.
#   bash bench/gpu/verify_main.sh       (carry .deps/gpu, made by scripts/carry-deps.sh)
set -uo pipefail
OUT=${OUT:-/tmp/mlxs_verify_out}
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0 LD_LIBRARY_PATH=$PWD/.deps/gpu/usr/lib/x86_64-linux-gnu
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
cmake --preset cuda -DMLXS_DEPS_PREFIX="$PWD/.deps/gpu" > "$OUT/configure.log" 2>&1 || { tail -40 "$OUT/configure.log"; exit 1; }
cmake --build build/cuda -j"$(nproc)" --target mlxs_tests mlx-serving bench_engine bench_load > "$OUT/build.log" 2>&1 \
  || { grep -E "error|Error" -A3 "$OUT/build.log" | head -60; exit 1; }
echo "== tests"
timeout ${TEST_TIMEOUT:-240} ./build/cuda/mlxs_tests --gtest_filter="${TEST_FILTER:-*Cuda*:*Golden*:EngineTest*}" 2>&1 | tee "$OUT/tests.log" \
  | grep -E "^\[  (FAILED|PASSED|SKIPPED) |Failure|Expected|Which is|golden \]" | head -60
echo "== engine tests with MLXS_BACKEND_CUDA_PRECISION=fast (bf16 activations and KV)"
MLXS_BACKEND_CUDA_PRECISION=fast timeout 120 ./build/cuda/mlxs_tests --gtest_filter='EngineTest*' 2>&1 | tee "$OUT/tests_fast.log" \
  | grep -E "^\[  (FAILED|PASSED) |Failure" | head -20
echo "== generate on cuda"
timeout 60 ./build/cuda/mlx-serving generate --model models/default --device cuda \
  --prompt "It is a truth universally acknowledged, that" --max-tokens 40
echo "== engine throughput vs concurrency (default model, cuda), host/device overlap on, then off"
for ov in true false; do
  echo "scheduler.overlap_steps=$ov"
  MLXS_SCHEDULER_OVERLAP_STEPS=$ov timeout 120 ./build/cuda/bench_engine models/default --tokens 128 \
    --streams "${ENGINE_STREAMS:-1,4,16,64,256}" 2>&1 | tee -a "$OUT/bench_engine.log"
done
echo "== HTTP load (default model, cuda): ${LOAD_CLIENTS:-256} clients"
timeout 150 ./build/cuda/bench_load --server ./build/cuda/mlx-serving --model models/default \
  --clients "${LOAD_CLIENTS:-256}" --requests "${LOAD_REQUESTS:-2000}" --seconds 60 --max-tokens 64 2>&1 \
  | tee "$OUT/bench_load.log" | tail -25
