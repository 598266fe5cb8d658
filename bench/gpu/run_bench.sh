#!/usr/bin/env bash
# Builds, tests and benchmarks the CUDA backend on the GPU machine in one go:
#
#   bash bench/gpu/run_bench.sh          # from the repo root, .deps/gpu carried along
#
# 1. configure + build the cuda preset with ninja (PCRE2/utf8proc/CLI11 from .deps/gpu, made
#    here by scripts/carry-deps.sh); 2. the CUDA tests (parity per op, whole-model greedy parity,
#    batch invariance); 3. a Llama-3.1-8B-shaped random bf16 model on local disk; 4. our suite
#    (copy-bandwidth roofline, (a) batch-1 decode, (b) TTFT, (c) concurrency, per-op timings);
#    5. the transformers baseline (bench/gpu/hf_baseline.py). Logs go to $OUT.
# Env: SKIP_HF=1, SKIP_TESTS=1, SKIP_SUITE=1, PROFILE=1 (nsys kernel table), GQA_SHAPE=qwen2.5-7b,
# ENGINE_8B=1 (bench_engine on the 8B model, pipeline on/off), CONCURRENCY=8,32,64,128,256, HF_CONCURRENCY=32,8, HF_BUDGET_S=200,
# SUITE_FLAGS (e.g. --sweep), ENGINE_SWEEP=1 (the engine at 256 streams for each
# scheduler.max_num_seqs in SWEEP_SEQS="64 128 256" and max_num_batched_tokens in
# SWEEP_TOKENS="2048 8192", against the model-level end-to-end figure; table in $OUT/sweep.md).
# STRUCTURED=1 (issue 15): the 8B model with the Llama 3 tokenizer (carry .fixtures/tokenizers/llama3,
# made by scripts/fetch-fixtures.sh): bench_engine at STRUCTURED_STREAMS=1,32 with and without the
# JSON Schema bench/schemas/order_lines.json, same run; and bench_grammar on this host's CPU.
# BENCH_SERVE=1: bench_serve (issue 14) against `mlx-serving serve` on the 8B model: ShareGPT-like
# lengths (SERVE_PROMPTS=500 at SERVE_RATES=8,32,inf) and the 512x128 shape (256 prompts at
# once); JSON, SVG and tables in $OUT/serve_*.
# QUANT=1 (issue 16): bench_qlinear, the linear layers of the 8B shape in bf16 against quantized
# weights (MLX 4/8-bit g64, the GGUF repacks 4-bit g32, 5-bit g32, 6-bit g16) at M = 1, 8, 32,
# with % of copy bandwidth; table in $OUT/qlinear.log. Alone:
#   SKIP_TESTS=1 SKIP_SUITE=1 SKIP_HF=1 QUANT=1 bash bench/gpu/run_bench.sh
# The sweep alone, about 3 minutes after the build:
#   SKIP_TESTS=1 SKIP_SUITE=1 SKIP_HF=1 ENGINE_SWEEP=1 bash bench/gpu/run_bench.sh
# Every benchmark runs the CUDA backend's fast mode (bf16 activations and KV cache); each A/B
# line turns one backend.cuda key off through its MLXS_BACKEND_CUDA_* variable
# (`mlx-serving config-check` lists what each variable sets).
set -uo pipefail
OUT=${OUT:-/tmp/mlxs_bench_out}
mkdir -p "$OUT"
t0=$(date +%s)
stamp() { echo "=== $(( $(date +%s) - t0 )) s: $*"; }
export NCCL_NVLS_ENABLE=0 PYTHONUNBUFFERED=1 MLXS_BACKEND_CUDA_PRECISION=fast

stamp "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv 2>&1 | tee "$OUT/gpu.txt"
nproc

stamp "configure + build"
test -d .deps/gpu/usr/include || { echo "missing .deps/gpu: run scripts/carry-deps.sh here and carry .deps/gpu"; exit 1; }
cmake --preset cuda -DMLXS_DEPS_PREFIX="$PWD/.deps/gpu" > "$OUT/configure.log" 2>&1 || { tail -40 "$OUT/configure.log"; exit 1; }
targets="mlx-serving bench_engine bench_serve"; [ "${STRUCTURED:-0}" = 1 ] && targets="$targets bench_grammar"; [ "${SKIP_TESTS:-0}" = 1 ] || targets="$targets mlxs_tests"; [ "${QUANT:-0}" = 1 ] && targets="$targets bench_qlinear"
cmake --build build/cuda -j"$(nproc)" --target $targets > "$OUT/build.log" 2>&1 || { grep -E "error|Error" -A3 "$OUT/build.log" | head -60; exit 1; }
stamp "built"

if [ "${SKIP_TESTS:-0}" != 1 ]; then
  stamp "CUDA tests"
  timeout 240 ./build/cuda/mlxs_tests --gtest_filter='*Cuda*' 2>&1 | tee "$OUT/tests.log" | grep -E "^\[  (FAILED|PASSED|  OK|SKIPPED) |Failure|error|Expected|Which is|rel_l2|sequence" | head -80
  if grep -q "FAILED.*PagedAttention" "$OUT/tests.log"; then
    export MLXS_BACKEND_CUDA_ATTENTION_TC=false
    echo "the attention test failed: benchmarking with MLXS_BACKEND_CUDA_ATTENTION_TC=false"
  fi
fi

stamp "make the Llama-3.1-8B-shaped model"
MODEL=/tmp/llama8b
[ -f $MODEL/config.json ] || ./build/cuda/mlx-serving make-random-model --shape llama-3.1-8b --dtype bf16 --out $MODEL 2>&1 | tail -2
ls -la $MODEL

if [ "${SKIP_SUITE:-0}" != 1 ]; then
stamp "our suite"
timeout 300 ./build/cuda/mlx-serving bench-decode --model $MODEL --backend cuda \
  --concurrency "${CONCURRENCY:-8,32,64,128,256}" ${SUITE_FLAGS:-} 2>&1 | tee "$OUT/ours.log"
stamp "A/B in the same run: batch-1 decode with one optimisation turned off at a time"
: > "$OUT/ours_ab.log"
for ab in MLXS_BACKEND_CUDA_PDL=false MLXS_BACKEND_CUDA_SWIGLU_EPILOGUE=false \
          MLXS_BACKEND_CUDA_ATTENTION_DECODE=false; do
  timeout 60 env $ab ./build/cuda/mlx-serving bench-decode --model $MODEL --backend cuda --quick 2>&1 \
    | grep -E "^\| \(a\)" | sed "s/^| (a) batch-1 decode/| (a) batch-1 decode, $ab/" | tee -a "$OUT/ours_ab.log"
done
timeout 60 ./build/cuda/mlx-serving bench-decode --model $MODEL --backend cuda --quick --no-pipeline 2>&1 \
  | grep -E "^\| \(a\)" | sed "s/^| (a) batch-1 decode/| (a) batch-1 decode, --no-pipeline/" | tee -a "$OUT/ours_ab.log"
if [ -n "${AB_CONCURRENCY:-}" ]; then
  stamp "A/B: concurrency with each decode step ended before the next is queued (--no-pipeline)"
  timeout 150 ./build/cuda/mlx-serving bench-decode --model $MODEL --backend cuda \
    --concurrency "$AB_CONCURRENCY" --no-per-op --no-pipeline 2>&1 | grep -E "^\| \(c\)" \
    | sed "s/^| (c)/| (c) --no-pipeline/" | tee -a "$OUT/ours_ab.log"
  stamp "A/B: concurrency with the general attention kernel (MLXS_BACKEND_CUDA_ATTENTION_DECODE=false)"
  MLXS_BACKEND_CUDA_ATTENTION_DECODE=false timeout 150 ./build/cuda/mlx-serving bench-decode --model $MODEL --backend cuda \
    --concurrency "$AB_CONCURRENCY" --no-per-op 2>&1 | grep -E "^\| \(c\)" \
    | sed "s/^| (c)/| (c) MLXS_BACKEND_CUDA_ATTENTION_DECODE=false/" | tee -a "$OUT/ours_ab.log"
fi

fi  # SKIP_SUITE

if [ "${QUANT:-0}" = 1 ]; then
  stamp "quantized linear layers: bench_qlinear (bf16 vs 4/8-bit and GGUF repacks, M = 1, 8, 32)"
  timeout 500 ./build/cuda/bench_qlinear 2>&1 | tee "$OUT/qlinear.log"
fi

if [ "${PROFILE:-0}" = 1 ]; then
  # Kernel times inside the batch-1 decode graphs (nsys traces graph nodes one by one).
  stamp "profile: batch-1 decode under nsys"
  if command -v nsys > /dev/null; then
    timeout 150 nsys profile --cuda-graph-trace=node --trace=cuda -o "$OUT/prof" --force-overwrite true \
      ./build/cuda/mlx-serving bench-decode --model $MODEL --backend cuda --quick > "$OUT/prof_run.log" 2>&1
    timeout 90 nsys stats --report cuda_gpu_kern_sum --format csv "$OUT/prof.nsys-rep" > "$OUT/prof_kern.csv" 2>/dev/null
    head -25 "$OUT/prof_kern.csv" | cut -c1-220
    rm -f "$OUT/prof.nsys-rep" "$OUT/prof.sqlite"
  else
    echo "nsys is not installed here"; ls /usr/local/cuda/bin | grep -i -E "nsys|ncu|nvprof" || true
  fi
fi

if [ "${ENGINE_8B:-0}" = 1 ]; then
  # The whole engine (scheduler, pipelined steps, sampling, streams) on the 8B-shaped model in
  # the benchmarks' bf16 mode: 512-token id prompts, 128 tokens each, pipeline on and off.
  stamp "engine on the 8B model (bench_engine), overlap on / off"
  for ov in true false; do
    MLXS_SCHEDULER_MAX_NUM_SEQS=256 MLXS_SCHEDULER_OVERLAP_STEPS=$ov timeout 200 \
      ./build/cuda/bench_engine $MODEL --prompt-tokens 512 --tokens 128 --streams "${ENGINE_STREAMS:-1,32,256}" \
      2>&1 | grep -E "^\| [0-9]" | sed "s/^/| overlap_steps=$ov /" | tee -a "$OUT/engine_8b.log"
  done
fi

if [ "${STRUCTURED:-0}" = 1 ]; then
  # A random-weight model's logits are noise: under a grammar it draws whatever the mask allows,
  # so the schema is one that cannot end within the tokens asked (at least 40 array items).
  stamp "structured output: constrained vs unconstrained decode on the 8B model"
  test -f .fixtures/tokenizers/llama3/tokenizer.json || { echo "missing .fixtures/tokenizers/llama3 (carry it)"; exit 1; }
  # The weights are linked, not copied: the bench allows files outside the model folder.
  SMODEL=/tmp/llama8b_tok
  mkdir -p $SMODEL && ln -sf $MODEL/model.safetensors $MODEL/config.json $SMODEL/ && cp .fixtures/tokenizers/llama3/tokenizer*.json $SMODEL/
  for round in 1 2; do
    for mode in plain schema; do
      flags=""; [ $mode = schema ] && flags="--schema bench/schemas/order_lines.json"
      MLXS_MODEL_ALLOW_FILES_OUTSIDE_MODEL_DIR=true MLXS_SCHEDULER_MAX_NUM_SEQS=256 timeout 200 ./build/cuda/bench_engine $SMODEL --tokens 128 \
        --streams "${STRUCTURED_STREAMS:-1,32}" $flags 2>&1 | grep -E "^\| [0-9]" | sed "s/^/| round $round | $mode /" | tee -a "$OUT/structured.log"
    done
  done
  stamp "bench_grammar (this host's CPU)"
  timeout 240 ./build/cuda/bench_grammar .fixtures/tokenizers/llama3 2>&1 | tee "$OUT/bench_grammar.log" | tail -30
fi

if [ "${ENGINE_SWEEP:-0}" = 1 ]; then
  # Defaults for scheduler.max_num_seqs and max_num_batched_tokens (issue 12): the engine on the
  # 8B model at 256 streams of 512 + 128 tokens (bf16 mode, KV pool sized by
  # kv_cache.memory_fraction) for each pair, as a share of the model-level end-to-end figure of
  # this machine (bench-decode (c) with 256 sequences: prefill in 8192-token steps, then decode).
  stamp "engine sweep: the model-level end-to-end figure at 256 sequences"
  timeout 120 ./build/cuda/mlx-serving bench-decode --model $MODEL --backend cuda \
    --concurrency 256 --ttft 512 --no-per-op > "$OUT/sweep_model.log" 2>&1
  grep -E "^\| \(c\)" "$OUT/sweep_model.log"
  model_e2e=$(grep -E "^\| \(c\) 256 " "$OUT/sweep_model.log" | sed -E 's/.*end-to-end ([0-9]+) tok\/s.*/\1/')
  stamp "engine sweep: bench_engine, 256 streams"
  { echo "| max_num_seqs | max_num_batched_tokens | KV pool tokens | seconds | engine tok/s | of model-level e2e (${model_e2e:-?} tok/s) |"
    echo "|---|---|---|---|---|---|"; } > "$OUT/sweep.md"
  for seqs in ${SWEEP_SEQS:-64 128 256}; do
    for tokens in ${SWEEP_TOKENS:-2048 8192}; do
      log="$OUT/sweep_${seqs}_${tokens}.log"
      MLXS_SCHEDULER_MAX_NUM_SEQS=$seqs MLXS_SCHEDULER_MAX_NUM_BATCHED_TOKENS=$tokens \
        timeout 60 ./build/cuda/bench_engine $MODEL --prompt-tokens 512 --tokens 128 --streams 256 \
        > "$log" 2>&1
      pool=$(sed -nE 's/.*KV pool [0-9]+ blocks of [0-9]+ tokens = ([0-9]+) tokens.*/\1/p' "$log" | head -1)
      row=$(grep -E "^\| 256 \|" "$log")
      secs=$(echo "$row" | awk -F'|' '{gsub(/ /, "", $4); print $4}')
      tps=$(echo "$row" | awk -F'|' '{gsub(/ /, "", $5); print $5}')
      pct=$(awk -v a="$tps" -v b="$model_e2e" 'BEGIN { if (a != "" && b > 0) printf "%.0f %%", 100 * a / b; else print "-" }')
      echo "| $seqs | $tokens | ${pool:-?} | ${secs:-failed} | ${tps:-failed} | $pct |" | tee -a "$OUT/sweep.md"
      [ -n "$row" ] || tail -5 "$log"
    done
  done
  grep -m1 "KV pool" "$OUT/sweep_256_8192.log" 2>/dev/null
fi

if [ "${BENCH_SERVE:-0}" = 1 ]; then
  # The serving benchmark through HTTP (bench/bench_serve.cc, docs/benchmarks.md), bf16 mode.
  stamp "bench_serve: ShareGPT-like, rates ${SERVE_RATES:-8,32,inf}"
  timeout 400 ./build/cuda/bench_serve --server ./build/cuda/mlx-serving --model $MODEL \
    --config configs/bench_serve.yaml --num-prompts "${SERVE_PROMPTS:-500}" \
    --rates "${SERVE_RATES:-8,32,inf}" --ignore-eos "${IGNORE_EOS:-1}" --vocab 32000 \
    --json "$OUT/serve_sharegpt.json" --svg "$OUT/serve_sharegpt.svg" 2>&1 \
    | grep -vE "^model|^serve:" | tee "$OUT/serve_sharegpt.md"
  stamp "bench_serve: 512x128, 256 prompts at once"
  timeout 200 ./build/cuda/bench_serve --server ./build/cuda/mlx-serving --model $MODEL \
    --config configs/bench_serve.yaml --shape 512x128 --num-prompts 256 --rates inf \
    --ignore-eos "${IGNORE_EOS:-1}" --vocab 32000 --json "$OUT/serve_512x128.json" 2>&1 \
    | grep -vE "^model|^serve:" | tee "$OUT/serve_512x128.md"
fi

if [ -n "${GQA_SHAPE:-}" ]; then
  # A second shape whose GQA group is not 1, 2 or 4 (qwen2.5-7b: G = 7): the decode kernel
  # against the general one (MLXS_BACKEND_CUDA_ATTENTION_DECODE=false), batch 1 and 64 sequences.
  stamp "GQA shape $GQA_SHAPE"
  GQA_MODEL=/tmp/$GQA_SHAPE
  [ -f $GQA_MODEL/config.json ] || ./build/cuda/mlx-serving make-random-model --shape $GQA_SHAPE --dtype bf16 --out $GQA_MODEL 2>&1 | tail -1
  for ab in MLXS_BACKEND_CUDA_ATTENTION_DECODE=true MLXS_BACKEND_CUDA_ATTENTION_DECODE=false; do
    env $ab timeout 120 ./build/cuda/mlx-serving bench-decode --model $GQA_MODEL --backend cuda \
      --concurrency 64 --ttft 512 --no-per-op 2>&1 | grep -E "^\| \((a|c)\)|^model" \
      | sed "s/^| (/| $GQA_SHAPE $ab (/" | tee -a "$OUT/ours_gqa.log"
  done
fi

if [ "${SKIP_HF:-0}" != 1 ]; then
  stamp "transformers baseline"
  python3 bench/gpu/hf_baseline.py $MODEL --budget-s "${HF_BUDGET_S:-200}" \
    --concurrency "${HF_CONCURRENCY:-32,8}" 2>&1 | grep -v Warning | tee "$OUT/hf.log"
fi

stamp "summary"
echo "## ours (mlx-serving, CUDA backend)"
[ -f "$OUT/ours.log" ] && grep -E "^\| \(|^model|^load" "$OUT/ours.log" && cat "$OUT/ours_ab.log"
[ -f "$OUT/ours_gqa.log" ] && cat "$OUT/ours_gqa.log"
[ -f "$OUT/qlinear.log" ] && grep -E "^\| |copy bandwidth" "$OUT/qlinear.log"
[ -f "$OUT/engine_8b.log" ] && cat "$OUT/engine_8b.log"
[ -f "$OUT/sweep.md" ] && { grep -E "^\| \(c\)" "$OUT/sweep_model.log"; cat "$OUT/sweep.md"; }
[ -f "$OUT/serve_sharegpt.md" ] && cat "$OUT/serve_sharegpt.md" "$OUT/serve_512x128.md"
[ -f "$OUT/hf.log" ] && { echo "## baseline"; grep -E "^\| " "$OUT/hf.log"; }
stamp "done"
