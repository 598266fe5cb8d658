#!/usr/bin/env bash
# Everything the GPU machine does for issues 2 (point 7) and 4 (points 2-4), in one command:
#
#   bash reference/gpu/run_all.sh        # from the repo root, with .deps/corpus carried along
#
# 1. golden reference models (reference/gpu/make_golden.py, CPU, float32), and their MLX
#    affine-quantized variants (reference/gpu/make_quant_golden.py, issue 16 point 4)
# 2. tokenizer (reference/gpu/train_tokenizer.py) on .deps/corpus/train.txt
# 3. models/default and models/draft (reference/gpu/train_lm.py, GPU, wall-clock budgets), their
#    validation perplexities, samples, and tests/fixtures/golden/default_model/reference.json
# 4. $OUT/results.tgz with tests/fixtures/golden and models (and $OUT/run_all.log)
# Budgets (seconds) can be changed with DEFAULT_SECONDS / DRAFT_SECONDS.
set -euo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/run_all_out}
mkdir -p "$OUT"
exec > >(tee "$OUT/run_all.log") 2>&1
t0=$(date +%s)
stamp() { echo "=== $(( $(date +%s) - t0 )) s: $*"; }

stamp versions
python3 --version
python3 -c 'import torch, transformers, tokenizers, safetensors; print("torch", torch.__version__, "cuda", torch.version.cuda, "| transformers", transformers.__version__, "| tokenizers", tokenizers.__version__, "| safetensors", safetensors.__version__)'
nvidia-smi -L || true
test -s .deps/corpus/train.txt || { echo "missing .deps/corpus/train.txt (carry .deps/corpus)"; exit 1; }
ls -l .deps/corpus

pack() {
  stamp "packing results"
  # The tool brings back files of at most 16 MiB: split the archive into 15 MiB parts
  # (cat "$OUT"/results.tgz.part-* | tar xzf - to unpack).
  rm -f "$OUT"/results.tgz.part-*
  tar czf - tests/fixtures/golden models 2>/dev/null | split -b 15m - "$OUT/results.tgz.part-" \
    || true
  ls -l "$OUT"
}
trap pack EXIT

stamp "golden reference models"
python3 reference/gpu/make_golden.py --out tests/fixtures/golden || echo "make_golden.py FAILED (continuing)"

stamp "quantized golden models (MLX affine, from the float ones)"
python3 reference/gpu/make_quant_golden.py --golden tests/fixtures/golden || echo "make_quant_golden.py FAILED (continuing)"

stamp "tokenizer"
python3 reference/gpu/train_tokenizer.py --train .deps/corpus/train.txt --out models/tokenizer

stamp "language models"
python3 reference/gpu/train_lm.py --corpus .deps/corpus --tokenizer models/tokenizer --out models \
  --golden tests/fixtures/golden/default_model \
  --default-seconds "${DEFAULT_SECONDS:-150}" --draft-seconds "${DRAFT_SECONDS:-60}"

stamp "sizes"
du -sh models/* tests/fixtures/golden/* || true
du -sh models tests/fixtures/golden
stamp done
