#!/usr/bin/env bash
# On the GPU machine: the current tree against a previous commit, built and measured in the same
# call (issue 13's "same numbers as before"): batch-1 decode (bench-decode --quick, (a)) and the
# engine at 256 streams of 512 + 128 tokens (bench_engine), on the Llama-3.1-8B-shaped random
# model, bf16 mode, ROUNDS rounds alternating base and new.
# Prepare here, then carry .base and .deps/gpu:
#   bash bench/gpu/ab_base.sh prepare COMMIT     (git archive of COMMIT's sources into .base/)
#   bash bench/gpu/ab_base.sh run                (on the GPU machine; table in $OUT/ab.md)
set -uo pipefail
cd "$(dirname "$0")/../.."
if [ "${1:-}" = prepare ]; then
  rm -rf .base && mkdir -p .base
  git archive "${2:?commit}" -- CMakeLists.txt CMakePresets.json src include tools bench cmake \
    | tar -x -C .base
  git rev-parse "$2" > .base/COMMIT
  du -sh .base
  exit 0
fi
OUT=${OUT:-/tmp/mlxs_ab_out}
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0 MLXS_BACKEND_CUDA_PRECISION=fast
DEPS=$PWD/.deps/gpu
build() {  # $1 = source dir
  (cd "$1" && cmake --preset cuda -DMLXS_DEPS_PREFIX="$DEPS" -DMLXS_BUILD_TESTS=OFF > "$OUT/cfg_$2.log" 2>&1 \
    && cmake --build build/cuda -j"$(nproc)" --target mlx-serving bench_engine > "$OUT/build_$2.log" 2>&1) \
    || { echo "build of $2 failed"; grep -E "error" -A3 "$OUT/build_$2.log" | head -30; return 1; }
}
t0=$(date +%s)
if [ ! -x build/cuda/mlx-serving ] || [ "${REBUILD_NEW:-0}" = 1 ]; then build . new || exit 1; fi
build .base base || exit 1
echo "=== $(( $(date +%s) - t0 )) s: built (base $(cat .base/COMMIT))"
MODEL=/tmp/llama8b
[ -f $MODEL/config.json ] || ./build/cuda/mlx-serving make-random-model --shape llama-3.1-8b --dtype bf16 --out $MODEL 2>&1 | tail -1
{ echo "| round | build | batch-1 decode tok/s | engine 256 streams tok/s |"; echo "|---|---|---|---|"; } > "$OUT/ab.md"
for round in $(seq 1 "${ROUNDS:-2}"); do
  for which in base new; do
    dir=.; [ $which = base ] && dir=.base
    b1=$(timeout 90 $dir/build/cuda/mlx-serving bench-decode --model $MODEL --backend cuda --quick --concurrency 1 2>&1 \
      | grep -E "^\| \(a\)" | head -1 | grep -oE "[0-9]+\.[0-9]+ tok/s" | head -1)
    e=$(MLXS_SCHEDULER_MAX_NUM_SEQS=256 timeout 120 $dir/build/cuda/bench_engine $MODEL --prompt-tokens 512 \
      --tokens 128 --streams 256 2>&1 | grep -E "^\| 256 \|" | awk -F'|' '{gsub(/ /, "", $5); print $5}')
    echo "| $round | $which | ${b1:-failed} | ${e:-failed} |" | tee -a "$OUT/ab.md"
  done
done
echo "=== $(( $(date +%s) - t0 )) s: done"
