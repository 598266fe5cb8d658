#!/usr/bin/env python3
"""Golden references for MLX affine-quantized models (issue 16 point 4).

    python3 reference/gpu/make_quant_golden.py [--golden tests/fixtures/golden]

Reads the float golden models that make_golden.py wrote (tests/fixtures/golden/<family>/) and,
for each variant below, writes tests/fixtures/golden/<family>_q<bits>g<group>/ in MLX's format,
quantized here in torch from the format's published definition (independently of the C++
writer), with reference logits of the dequantized model:

  config.json            the family's, plus "quantization" (and "quantization_config", as
                         mlx_lm writes both): {"group_size", "bits", "mode": "affine"}
  model.safetensors      every matrix weight [N, K] (linear layers, embedding, lm_head) as
                         .weight U32 [N, K * bits / 32], .scales / .biases [N, K / group] in the
                         source dtype; vectors as they were
  reference.json / reference.safetensors   as make_golden.py's: greedy tokens and logits

MLX affine quantization (mlx/backend/cpu/quantized.cpp, fast::Quantize), per group, in float32,
n = 2^bits - 1:  lo, hi = min, max;  s = max((hi - lo) / n, 1e-7), negated unless |lo| > |hi|;
edge = lo if |lo| > |hi| else hi;  q0 = round(edge / s);  if q0 != 0: s = edge / q0, b = edge,
else b = 0;  q = clamp(round((w - b) / s), 0, n)  (round half to even);  scales and biases then
cast to the weight dtype. Packing: each row of q is a little-endian bit stream (value k at bits
[k * bits, (k + 1) * bits)), read as little-endian uint32 words. Dequantized: w = s * q + b
(rounded once to float32: what the C++ kernels compute with fma).

The reference forward is make_golden.ref_forward (float64) over the dequantized float32 weights:
the fixture checks the C++ reader and kernels against this file's independent writer, and
src/model/quantized_golden_test.cc checks that the C++ writer reproduces these files bit for
bit. CPU only, seconds; needs torch, numpy, safetensors.
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_golden as mg  # noqa: E402
import hf_util  # noqa: E402

# (source family, bits, group size). llama32 has tied embeddings: its quantized table is also
# the lm_head. llama_bf16 gives bf16 scales and biases; the rest float32 ones.
VARIANTS = [
    ("llama", 4, 64),
    ("llama", 8, 32),
    ("llama32", 4, 32),
    ("qwen2", 4, 64),
    ("qwen3", 3, 32),
    ("mistral", 6, 64),
    ("llama_bf16", 4, 32),
]


def quantize(w, bits, group):
    """MLX affine quantization of w [N, K] (float32 torch). Returns (q uint8 [N, K], s, b f32)."""
    import torch
    N, K = w.shape
    g = w.reshape(N, K // group, group)
    n_bins = float(2 ** bits - 1)
    lo = g.min(-1).values
    hi = g.max(-1).values
    lo_edge = lo.abs() > hi.abs()
    # Tensor / tensor in float32 throughout (CUDA divides by a scalar through its reciprocal).
    s = torch.maximum((hi - lo) / torch.full_like(hi, n_bins),
                      torch.tensor(1e-7, dtype=torch.float32))
    s = torch.where(lo_edge, s, -s)
    edge = torch.where(lo_edge, lo, hi)
    q0 = torch.round(edge / s)
    nz = q0 != 0
    s = torch.where(nz, edge / torch.where(nz, q0, torch.ones_like(q0)), s)
    b = torch.where(nz, edge, torch.zeros_like(edge))
    q = torch.clamp(torch.round((g - b[..., None]) / s[..., None]), 0, n_bins)
    return q.reshape(N, K).to(torch.uint8), s, b


def pack(q, bits):
    """q uint8 [N, K] -> little-endian bit streams as uint32 [N, K * bits / 32]."""
    qn = q.numpy().astype(np.uint8)
    N, K = qn.shape
    bitplanes = (qn[:, :, None] >> np.arange(bits, dtype=np.uint8)) & 1  # [N, K, bits]
    packed = np.packbits(bitplanes.reshape(N, K * bits), axis=1, bitorder="little")
    return packed.view("<u4").reshape(N, K * bits // 32)


def unpack(words, bits, K):
    bytes_ = words.view(np.uint8).reshape(words.shape[0], -1)
    bitplanes = np.unpackbits(bytes_, axis=1, bitorder="little")[:, :K * bits]
    bitplanes = bitplanes.reshape(-1, K, bits).astype(np.uint32)
    return (bitplanes << np.arange(bits, dtype=np.uint32)).sum(-1)


def make_variant(golden, family, bits, group, prompts):
    import torch
    from safetensors.torch import save_file
    src = os.path.join(golden, family)
    name = "%s_q%dg%d" % (family, bits, group)
    out = os.path.join(golden, name)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    cfg = json.load(open(os.path.join(src, "config.json")))
    block = {"group_size": group, "bits": bits, "mode": "affine"}
    cfg["quantization"] = dict(block)
    cfg["quantization_config"] = dict(block)
    hf_util.write_json(os.path.join(out, "config.json"), cfg)

    sd = mg_load(os.path.join(src, "model.safetensors"))
    tensors, deq = {}, {}
    for k, t in sd.items():
        if k.endswith(".weight") and t.dim() == 2 and t.shape[1] % group == 0:
            w = t.float()
            q, s, b = quantize(w, bits, group)
            words = pack(q, bits)
            assert (unpack(words, bits, w.shape[1]) == q.numpy()).all(), k
            base = k[:-len(".weight")]
            tensors[k] = torch.from_numpy(words.view(np.int32).copy())  # stored as U32 below
            s_st, b_st = s.to(t.dtype), b.to(t.dtype)
            tensors[base + ".scales"] = s_st.contiguous()
            tensors[base + ".biases"] = b_st.contiguous()
            qf = q.double().reshape(s.shape + (group,))
            w_hat = (s_st.double()[..., None] * qf + b_st.double()[..., None])
            deq[k] = w_hat.reshape(w.shape).float()  # one rounding, as fma in float32
        else:
            tensors[k] = t.contiguous()
            deq[k] = t.float()
    path = os.path.join(out, "model.safetensors")
    save_file(tensors, path)
    retag_u32(path, [k for k in tensors if tensors[k].dtype == torch.int32])

    p = params(cfg)
    greedy, logits, margins = [], [], []
    for ids in prompts:
        seq = list(ids)
        rows = []
        for _ in range(mg.NUM_STEPS):
            lg = mg.ref_forward(deq, p, seq)[-1]
            rows.append(lg.float())
            top = torch.topk(lg, 2).values
            margins.append(float(top[0] - top[1]))
            seq.append(int(lg.argmax()))
        greedy.append(seq[len(ids):])
        logits.append(torch.stack(rows))
    save_file({"logits": torch.stack(logits).contiguous()},
              os.path.join(out, "reference.safetensors"))
    ref = {
        "family": name,
        "description": "%s quantized to MLX affine %d-bit, groups of %d, by %s" % (
            family, bits, group, os.path.basename(__file__)),
        "weights_dtype": "mlx-affine-%dbit-g%d" % (bits, group),
        "compute": "make_golden.ref_forward, float64, on the dequantized float32 weights",
        "prompts": prompts,
        "greedy": greedy,
        "num_steps": mg.NUM_STEPS,
        "logits_file": "reference.safetensors",
        "logits_tensor": "logits f32 [num_prompts, num_steps, vocab]; step 0 = after the prompt",
        "min_top1_top2_margin": min(margins),
        "source": family,
        "versions": {"torch": torch.__version__},
    }
    hf_util.write_json(os.path.join(out, "reference.json"), ref)
    print("%-18s greedy0=%s min_margin=%.3f size=%.1f KB" % (
        name, greedy[0][:6], min(margins), hf_util.dir_size(out) / 1024))


def mg_load(path):
    from safetensors.torch import load_file
    return load_file(path)


def retag_u32(path, names):
    """safetensors.torch has no uint32 in older torch: the packed words were saved as I32; the
    bytes are the same, so rewrite their dtype in the header to U32."""
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    for k in names:
        header[k]["dtype"] = "U32"
    text = json.dumps(header, separators=(",", ":")).encode()
    assert len(text) <= n, "re-serialised header is longer than the original"
    text += b" " * (n - len(text))  # same length: the data offsets stay valid
    with open(path, "wb") as f:
        f.write(data[:8] + text + data[8 + n:])


def params(cfg):
    rp = cfg.get("rope_parameters") or {}
    sc = cfg.get("rope_scaling")
    win = cfg.get("sliding_window") if (cfg["model_type"] == "mistral" or
                                        cfg.get("use_sliding_window")) else None
    theta = cfg.get("rope_theta") or rp.get("rope_theta")
    if sc is None and rp.get("rope_type", "default") != "default":
        sc = rp
    return dict(head_dim=cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"],
                theta=float(theta), scaling=sc, window=win, eps=cfg["rms_norm_eps"],
                layers=cfg["num_hidden_layers"], heads=cfg["num_attention_heads"],
                kv_heads=cfg["num_key_value_heads"], tied=cfg.get("tie_word_embeddings", False))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--golden", default="tests/fixtures/golden")
    args = ap.parse_args()
    import torch
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    for family, bits, group in VARIANTS:
        src = os.path.join(args.golden, family)
        prompts = json.load(open(os.path.join(src, "reference.json")))["prompts"]
        make_variant(args.golden, family, bits, group, prompts)


if __name__ == "__main__":
    main()
