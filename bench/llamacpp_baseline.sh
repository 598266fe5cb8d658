#!/usr/bin/env bash
# Same-machine CPU baseline for issue 2 (point 8): llama.cpp's CPU backend against our
# `mlx-serving bench-decode`, on a Llama-3.2-1B-shaped model with random weights, 2 threads.
#
# Steps (everything outside the repo lives under $WORK, default /tmp/llamacpp-baseline; no
# llama.cpp code enters this repository):
#   1. fetch  - `npm pack node-llama-cpp@3.22.1`, open its llama/gitRelease.bundle (the llama.cpp
#               source tree) with `git clone`;
#   2. build  - CPU only, Release, GGML_NATIVE=ON, only the llama-bench target, -j2;
#   3. model  - /tmp/llama1b (our make-random-model, bf16 safetensors) unless it exists, then two
#               GGUF files (f16 and bf16) written with the bundled gguf-py package: tensors from
#               the safetensors file (Q/K rows permuted as convert_hf_to_gguf.py does, norms in
#               f32, rope_freqs for llama3 rope scaling, tied embeddings), tokenizer metadata
#               copied from the bundle's models/ggml-vocab-llama-bpe.gguf (Llama 3, 128256
#               tokens). convert_hf_to_gguf.py itself needs `transformers` for the vocabulary,
#               which is neither installed nor in Debian, hence the small writer below;
#   4. bench  - two rounds, back to back: llama-bench f16, llama-bench bf16 (flash attention off
#               and on), then ours.
# Usage: bash bench/llamacpp_baseline.sh [fetch|build|model|bench|all]   (default: all)
# Environment: WORK, MODEL_DIR (default /tmp/llama1b), THREADS (2), ROUNDS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
WORK=${WORK:-/tmp/llamacpp-baseline}
MODEL_DIR=${MODEL_DIR:-/tmp/llama1b}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-2}
PY=/usr/bin/python3  # Debian's python3 with numpy (the pyenv one has none)
LLAMA=$WORK/llama.cpp
BENCH_BIN=$LLAMA/build/bin/llama-bench
OURS=$REPO/build/cpu/mlx-serving
mkdir -p "$WORK"

fetch() {
  if [ -d "$LLAMA/.git" ]; then return; fi
  if [ ! -s "$WORK/node-llama-cpp-3.22.1.tgz" ]; then
    (cd "$WORK" && npm pack --silent node-llama-cpp@3.22.1 >/dev/null)
  fi
  (cd "$WORK" && tar xzf node-llama-cpp-3.22.1.tgz package/llama/gitRelease.bundle \
    package/llama/llama.cpp.info.json && git clone -q package/llama/gitRelease.bundle llama.cpp)
}

build() {
  if [ -x "$BENCH_BIN" ]; then return; fi
  cmake -S "$LLAMA" -B "$LLAMA/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=OFF -DGGML_CUDA=OFF >"$WORK/cfg.log"
  cmake --build "$LLAMA/build" -j2 --target llama-bench >"$WORK/build.log" 2>&1
}

# Writes $WORK/llama1b-$1.gguf ($1 = f16 | bf16) from $MODEL_DIR/model.safetensors.
write_gguf() {
  local outtype=$1 out=$WORK/llama1b-$1.gguf
  if [ -s "$out" ]; then return; fi
  PYTHONPATH=$LLAMA/gguf-py "$PY" - "$MODEL_DIR" "$LLAMA/models/ggml-vocab-llama-bpe.gguf" \
    "$outtype" "$out.tmp" <<'EOF'
import json, math, struct, sys
import numpy as np
import gguf

model_dir, vocab_path, outtype, out = sys.argv[1:5]
cfg = json.load(open(f"{model_dir}/config.json"))
st_path = f"{model_dir}/model.safetensors"
with open(st_path, "rb") as f:
    header_len = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(header_len))
header.pop("__metadata__", None)
raw = np.memmap(st_path, dtype=np.uint8, mode="r")
base = 8 + header_len

n_head, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
head_dim = cfg.get("head_dim", cfg["hidden_size"] // n_head)

def load_bf16(name):  # -> uint16 array holding bf16 bits, HF shape
    h = header[name]
    assert h["dtype"] == "BF16", (name, h["dtype"])
    a, b = h["data_offsets"]
    return raw[base + a: base + b].view(np.uint16).reshape(h["shape"])

def to_f32(u16):
    return (u16.astype(np.uint32) << 16).view(np.float32)

def permute(w, heads):  # convert_hf_to_gguf.py LlamaModel.permute (HF -> GGUF rope layout)
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
         "lm_head.weight": "output.weight"}
per_layer = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
             "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down"}
for i in range(cfg["num_hidden_layers"]):
    for k, v in per_layer.items():
        names[f"model.layers.{i}.{k}.weight"] = f"blk.{i}.{v}.weight"

def tensor(hf_name):  # -> numpy array in the output dtype (1-D tensors stay f32)
    w = load_bf16(hf_name)
    if hf_name.endswith("q_proj.weight"):
        w = permute(w, n_head)
    elif hf_name.endswith("k_proj.weight"):
        w = permute(w, n_kv)
    if w.ndim == 1:
        return to_f32(w), None
    if outtype == "bf16":
        return np.ascontiguousarray(w), gguf.GGMLQuantizationType.BF16
    return to_f32(w).astype(np.float16), None

# llama3 rope scaling factors, as convert_hf_to_gguf.py LlamaModel.generate_extra_tensors.
rope = cfg.get("rope_scaling") or {}
extra = []
if rope.get("rope_type") == "llama3":
    theta = cfg.get("rope_theta", 10000.0)
    freqs = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))
    factor, lo, hi = rope.get("factor", 8.0), rope.get("low_freq_factor", 1.0), rope.get("high_freq_factor", 4.0)
    old = rope.get("original_max_position_embeddings", 8192)
    fac = []
    for fr in freqs:
        wl = 2 * math.pi / fr
        if wl < old / hi:
            fac.append(1.0)
        elif wl > old / lo:
            fac.append(factor)
        else:
            s = (old / wl - lo) / (hi - lo)
            fac.append(1 / ((1 - s) / factor + s))
    extra.append(("rope_freqs.weight", np.array(fac, dtype=np.float32)))

w = gguf.GGUFWriter(out, "llama")
w.add_name("llama1b-random")
w.add_file_type(gguf.LlamaFileType.MOSTLY_BF16 if outtype == "bf16" else gguf.LlamaFileType.MOSTLY_F16)
w.add_block_count(cfg["num_hidden_layers"])
w.add_context_length(cfg["max_position_embeddings"])
w.add_embedding_length(cfg["hidden_size"])
w.add_feed_forward_length(cfg["intermediate_size"])
w.add_head_count(n_head)
w.add_head_count_kv(n_kv)
w.add_key_length(head_dim)
w.add_value_length(head_dim)
w.add_rope_freq_base(cfg.get("rope_theta", 10000.0))
w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
w.add_vocab_size(cfg["vocab_size"])
w.add_rope_dimension_count(head_dim)

vocab = gguf.GGUFReader(vocab_path)
for key, field in vocab.fields.items():
    if not key.startswith("tokenizer."):
        continue
    vtype = field.types[0]
    sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
    w.add_key_value(key, field.contents(), vtype, sub_type=sub)

order = [n for n in header if n in names]
missing = [n for n in header if n not in names]
assert not missing, f"unmapped tensors: {missing}"
for n in order:  # tensor infos first (shapes and dtypes), data streamed afterwards
    h = header[n]
    numel = int(np.prod(h["shape"]))
    if len(h["shape"]) == 1:
        w.add_tensor_info(names[n], h["shape"], np.dtype(np.float32), numel * 4)
    elif outtype == "bf16":
        w.add_tensor_info(names[n], h["shape"], np.dtype(np.uint16), numel * 2,
                          raw_dtype=gguf.GGMLQuantizationType.BF16)
    else:
        w.add_tensor_info(names[n], h["shape"], np.dtype(np.float16), numel * 2)
for n, a in extra:
    w.add_tensor_info(n, a.shape, a.dtype, a.nbytes)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_ti_data_to_file()
for n in order:
    w.write_tensor_data(tensor(n)[0])
for n, a in extra:
    w.write_tensor_data(a)
w.close()
print(f"wrote {out}: {len(order) + len(extra)} tensors, {outtype}")
EOF
  mv "$out.tmp" "$out"
}

model() {
  if [ ! -s "$MODEL_DIR/model.safetensors" ]; then
    "$OURS" make-random-model --shape llama-3.2-1b --dtype bf16 --out "$MODEL_DIR"
  fi
  write_gguf f16
  write_gguf bf16
}

bench() {
  local log=$WORK/bench-$(date +%Y%m%d-%H%M%S).log
  {
    echo "== $(date -Is) $(lscpu | sed -n 's/^Model name: *//p'), nproc $(nproc)"
    echo "== llama.cpp commit $(git -C "$LLAMA" rev-parse HEAD)"
    echo "== uptime: $(uptime)"
    for round in $(seq "$ROUNDS"); do
      for t in f16 bf16; do
        echo "== round $round: llama-bench $t"
        "$BENCH_BIN" -m "$WORK/llama1b-$t.gguf" -t "$THREADS" -p 128 -n 32 -r 3 -fa 0,1 -oe jsonl
      done
      echo "== round $round: mlx-serving bench-decode"
      "$OURS" bench-decode --model "$MODEL_DIR" --decode-steps 16 --repeats 3 --threads "$THREADS"
    done
  } 2>&1 | tee "$log"
  summarize "$log"
  echo "log: $log"
}

# Prints one table over all rounds of a bench log: llama-bench's per-repetition tokens/s (from its
# jsonl on stderr; each repetition is the mean over its 128 or 32 tokens) and ours (best of 3
# prefills, best single decode step of 16, per round), as mean and best over the samples.
summarize() {
  "$PY" - "$1" <<'PYEOF'
import collections, json, re, sys
llama, ours = collections.defaultdict(list), collections.defaultdict(list)
for line in open(sys.argv[1]):
    if line.startswith("{") and '"samples_ts"' in line:
        r = json.loads(line)
        test = f"pp{r['n_prompt']}" if r["n_gen"] == 0 else f"tg{r['n_gen']}"
        llama[(r["model_type"].split()[-1], int(r["flash_attn"]), test)] += r["samples_ts"]
    m = re.match(r"\| (prefill \d+ tokens|decode) \| (\d+) \| ([\d.]+) \|", line)
    if m:
        ours[(m.group(1), int(m.group(2)))].append(float(m.group(3)))
    m = re.match(r"machine read bandwidth .*: ([\d.]+) GB/s", line)
    if m:
        ours[("read bandwidth GB/s", 0)].append(float(m.group(1)))
print("| engine | weights | fa | test | tokens/s mean | best | samples |")
print("|---|---|---|---|---|---|---|")
for (t, fa, test), v in sorted(llama.items()):
    print(f"| llama.cpp | {t} | {fa} | {test} | {sum(v)/len(v):.1f} | {max(v):.1f} | {len(v)} |")
for (phase, b), v in ours.items():
    print(f"| mlx-serving | BF16 | - | {phase} b{b} | {sum(v)/len(v):.1f} | {max(v):.1f} | {len(v)} |")
PYEOF
}

case "${1:-all}" in
  fetch) fetch ;;
  build) fetch; build ;;
  model) fetch; model ;;
  bench) bench ;;
  all) fetch; build; model; bench ;;
  *) echo "usage: $0 [fetch|build|model|bench|all]" >&2; exit 2 ;;
esac
