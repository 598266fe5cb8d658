#!/usr/bin/env bash
# On the GPU machine (it has HF tokenizers): writes the reference ids of every fixture tokenizer
# and runs the tokenizer benchmark of both implementations on the same input, in one call.
# Carry: .deps/gpu (scripts/carry-deps.sh) and .deps/tokgz (gzip'd .fixtures/tokenizers).
set -euo pipefail
export PYTHONUNBUFFERED=1
for d in .deps/tokgz/*/; do
  n=$(basename "$d"); mkdir -p ".fixtures/tokenizers/$n"
  for f in "$d"*.gz; do gunzip -c "$f" > ".fixtures/tokenizers/$n/$(basename "$f" .gz)"; done
done
python3 -c 'import tokenizers, transformers; print("tokenizers", tokenizers.__version__, "transformers", transformers.__version__)'
lscpu | grep -E 'Model name|^CPU\(s\)' || true
python3 reference/tokenizer_reference.py
mkdir -p "$OUT/ref" && cp tests/fixtures/tokenizer/reference/*.json.gz "$OUT/ref/"
export LD_LIBRARY_PATH=$PWD/.deps/gpu/usr/lib/x86_64-linux-gnu
cmake -S . -B build/tok -G Ninja -DCMAKE_BUILD_TYPE=Release -DMLXS_CUDA=OFF -DMLXS_BUILD_TESTS=OFF \
  -DMLXS_DEPS_PREFIX=$PWD/.deps/gpu > "$OUT/cmake.log" 2>&1 || { tail -30 "$OUT/cmake.log"; exit 1; }
cmake --build build/tok --target bench_tokenizer -j 16 > "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
T=(.fixtures/tokenizers/{llama3,llama3_1,qwen3,gemma3,llama2})
P=tests/fixtures/tokenizer/corpus/prose.txt
echo "== HF tokenizers"; python3 reference/tokenizer_bench.py $P "${T[@]}" --mb 10
echo "== mlx-serving"; ./build/tok/bench_tokenizer $P "${T[@]}" --mb 10
