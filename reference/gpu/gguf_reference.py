#!/usr/bin/env python3
"""Reference logits for a GGUF file, independent of mlx-serving's reader (issue 16 item 4).

    python3 reference/gpu/gguf_reference.py FILE.gguf --out DIR [--device cuda]

Parses the GGUF file here (struct + numpy), dequantizes every tensor with torch from the
published block definitions (ggml-common.h's block_* structs and ggml-quants.c's
dequantize_row_*: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K; F32/F16/BF16 as they are),
undoes llama.cpp's Q/K row permutation for `llama` models, and writes

  DIR/hf/config.json + model.safetensors   the Hugging Face float32 model the file amounts to
  DIR/reference.json                       {"prompts": [[ids]...], "greedy": [[16 ids]...]}
  DIR/reference.safetensors                "logits" f32 [P, 16, vocab]: transformers' logits
                                           that chose each greedy token (eager, float32)

Compare with mlx-serving on the same file (the lead's GPU run):
`mlx-serving generate --model FILE.gguf --prompt-ids 3,40,... --max-tokens 16 --temperature 0
--print-ids` must give the same continuations (both sides dequantize exactly; a near tie in the
logits may flip a token). Needs torch, transformers, safetensors, numpy.
"""
import argparse
import json
import os
import struct

import numpy as np

QK_K = 256
NUM_STEPS = 16
# ggml type -> (name, values per block, bytes per block)
TYPES = {0: ("F32", 1, 4), 1: ("F16", 1, 2), 30: ("BF16", 1, 2), 2: ("Q4_0", 32, 18),
         3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34),
         10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210)}


def read_gguf(path):
    data = np.memmap(path, dtype=np.uint8, mode="r")
    buf = memoryview(data)
    pos = 0

    def take(fmt):
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return vals[0] if len(vals) == 1 else vals

    def string():
        nonlocal pos
        n = take("Q")
        s = bytes(buf[pos:pos + n]).decode("utf-8", errors="replace")
        pos += n
        return s

    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q",
              12: "d"}

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take("I"), take("Q")
            return [value(et) for _ in range(n)]
        return take(scalar[t])

    assert bytes(buf[0:4]) == b"GGUF", "not a GGUF file"
    pos = 4
    version, n_tensors, n_kv = take("I"), take("Q"), take("Q")
    assert version in (2, 3)
    kv = {}
    for _ in range(n_kv):
        k = string()
        kv[k] = value(take("I"))
    tensors = []
    for _ in range(n_tensors):
        name = string()
        dims = [take("Q") for _ in range(take("I"))]
        tensors.append((name, dims, take("I"), take("Q")))
    align = kv.get("general.alignment", 32)
    start = (pos + align - 1) // align * align
    out = {}
    for name, dims, t, off in tensors:
        _, bv, bb = TYPES[t]
        n = int(np.prod(dims))
        raw = np.asarray(data[start + off:start + off + n // bv * bb])
        out[name] = (dims, t, raw)
    return kv, out


def dequantize(t, raw, n):
    """Values of n elements of ggml type t stored in raw (uint8), as float32 torch."""
    import torch
    name, bv, bb = TYPES[t]
    if name == "F32":
        return torch.from_numpy(raw.view(np.float32).copy())
    if name == "F16":
        return torch.from_numpy(raw.view(np.float16).astype(np.float32))
    if name == "BF16":
        u = raw.view(np.uint16).astype(np.uint32) << 16
        return torch.from_numpy(u.view(np.float32).copy())
    b = torch.from_numpy(raw.reshape(-1, bb).astype(np.int32))  # [blocks, bytes]

    def f16(col):
        v = b[:, col] | (b[:, col + 1] << 8)
        v = torch.where(v >= 32768, v - 65536, v).to(torch.int16)
        return v.view(torch.float16).float().unsqueeze(1)

    def u32(col):
        return b[:, col] | (b[:, col + 1] << 8) | (b[:, col + 2] << 16) | (b[:, col + 3] << 24)

    if name == "Q8_0":
        q = b[:, 2:34]
        q = torch.where(q > 127, q - 256, q)
        y = f16(0) * q
    elif name in ("Q4_0", "Q4_1"):
        qs = b[:, 4:20] if name == "Q4_1" else b[:, 2:18]
        q = torch.cat([qs & 0xF, qs >> 4], 1)
        y = f16(0) * (q - 8) if name == "Q4_0" else f16(0) * q + f16(2)
    elif name in ("Q5_0", "Q5_1"):
        o = 4 if name == "Q5_1" else 2
        qh, qs = u32(o).unsqueeze(1), b[:, o + 4:o + 20]
        j = torch.arange(16)
        lo = (qs & 0xF) | (((qh >> j) & 1) << 4)
        hi = (qs >> 4) | (((qh >> (j + 16)) & 1) << 4)
        q = torch.cat([lo, hi], 1)
        y = f16(0) * (q - 16) if name == "Q5_0" else f16(0) * q + f16(2)
    elif name in ("Q4_K", "Q5_K"):
        d, dmin, s = f16(0), f16(2), b[:, 4:16]
        sc = torch.stack([s[:, j] & 63 if j < 4 else (s[:, j + 4] & 0xF) | ((s[:, j - 4] >> 6) << 4)
                          for j in range(8)], 1)
        m = torch.stack([s[:, j + 4] & 63 if j < 4 else (s[:, j + 4] >> 4) | ((s[:, j] >> 6) << 4)
                         for j in range(8)], 1)
        qs = b[:, 48:176] if name == "Q5_K" else b[:, 16:144]
        parts = []
        for c in range(4):  # chunk c of 64 values: low nibbles, then high nibbles of 32 bytes
            lo, hi = qs[:, 32 * c:32 * c + 32] & 0xF, qs[:, 32 * c:32 * c + 32] >> 4
            if name == "Q5_K":
                qh = b[:, 16:48]
                lo = lo + ((qh >> (2 * c)) & 1) * 16
                hi = hi + ((qh >> (2 * c + 1)) & 1) * 16
            parts += [lo, hi]
        q = torch.stack(parts, 1)  # [blocks, 8, 32]
        y = (d.unsqueeze(2) * sc.unsqueeze(2) * q - dmin.unsqueeze(2) * m.unsqueeze(2))
        y = y.reshape(-1, QK_K)
    elif name == "Q2_K":
        sc, qs, d, dmin = b[:, 0:16], b[:, 16:80], f16(80), f16(82)
        vals = []
        for h in range(2):  # value l + 32 j of half h: bits 2j of qs[32 h + l]
            for j in range(4):
                vals.append((qs[:, 32 * h:32 * h + 32] >> (2 * j)) & 3)
        q = torch.stack(vals, 1).reshape(-1, 16, 16)  # sub-block = value // 16
        y = (d.unsqueeze(2) * (sc & 0xF).unsqueeze(2) * q
             - dmin.unsqueeze(2) * (sc >> 4).unsqueeze(2)).reshape(-1, QK_K)
    elif name == "Q3_K":
        hm, qs, s, d = b[:, 0:32], b[:, 32:96], b[:, 96:108], f16(108)
        scales = []
        for k in range(16):  # ggml's kmask unpacking, one scale at a time
            byte, quarter = k % 4, k // 4
            nib = (s[:, (quarter % 2) * 4 + byte] >> (0 if quarter < 2 else 4)) & 0xF
            top = (s[:, 8 + byte] >> (2 * quarter)) & 3
            scales.append((nib | (top << 4)) - 32)
        sc = torch.stack(scales, 1)
        vals = []
        for h in range(2):
            for j in range(4):
                low = (qs[:, 32 * h:32 * h + 32] >> (2 * j)) & 3
                high = (hm >> (4 * h + j)) & 1
                vals.append(low + 4 * high - 4)
        q = torch.stack(vals, 1).reshape(-1, 16, 16)
        y = (d.unsqueeze(2) * sc.unsqueeze(2) * q).reshape(-1, QK_K)
    elif name == "Q6_K":
        ql, qh = b[:, 0:128], b[:, 128:192]
        sc = b[:, 192:208]
        sc = torch.where(sc > 127, sc - 256, sc)
        d = f16(208)
        vals = []
        for h in range(2):
            a, c, hb = ql[:, 64 * h:64 * h + 32], ql[:, 64 * h + 32:64 * h + 64], qh[:, 32 * h:32 * h + 32]
            vals += [(a & 0xF) | ((hb & 3) << 4), (c & 0xF) | (((hb >> 2) & 3) << 4),
                     (a >> 4) | (((hb >> 4) & 3) << 4), (c >> 4) | (((hb >> 6) & 3) << 4)]
        q = torch.stack(vals, 1).reshape(-1, 16, 16) - 32  # sub-block j = value // 16
        y = (d.unsqueeze(2) * sc.unsqueeze(2) * q).reshape(-1, QK_K)
    else:
        raise SystemExit(f"no dequantizer for {name}")
    return y.reshape(-1)[:n].float()


HF_LAYER = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
            "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
            "attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm",
            "attn_k_norm": "self_attn.k_norm", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
            "ffn_down": "mlp.down_proj"}
HF_TOP = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}


def hf_name(name):
    base, suffix = name.rsplit(".", 1)
    if base in HF_TOP:
        return HF_TOP[base] + "." + suffix
    _, layer, part = base.split(".", 2)
    return f"model.layers.{layer}.{HF_LAYER[part]}.{suffix}"


def unpermute(w, n_head):
    """llama.cpp row h*Dh + 2j + i -> transformers row h*Dh + i*Dh/2 + j."""
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf")
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    import torch
    from safetensors.torch import save_file
    kv, tensors = read_gguf(args.gguf)
    arch = kv["general.architecture"]
    a = arch + "."
    heads, kv_heads = kv[a + "attention.head_count"], kv.get(a + "attention.head_count_kv", kv[a + "attention.head_count"])
    hidden = kv[a + "embedding_length"]
    head_dim = kv.get(a + "attention.key_length", hidden // heads)
    vocab = kv.get(a + "vocab_size", len(kv.get("tokenizer.ggml.tokens", [])))
    weights = {}
    rope_freqs = None
    for name, (dims, t, raw) in tensors.items():
        n = int(np.prod(dims))
        w = dequantize(t, raw, n).reshape(list(reversed(dims)))
        if name == "rope_freqs.weight":
            rope_freqs = w
            continue
        hf = hf_name(name)
        if arch == "llama" and hf.endswith("q_proj.weight"):
            w = unpermute(w, heads)
        if arch == "llama" and hf.endswith("k_proj.weight"):
            w = unpermute(w, kv_heads)
        weights[hf] = w.contiguous()
    if rope_freqs is not None:
        raise SystemExit("rope_freqs (Llama 3.1 scaling) has no transformers config here; "
                         "use a model without it")
    config = {
        "architectures": [{"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM",
                           "qwen3": "Qwen3ForCausalLM"}[arch]],
        "model_type": arch, "vocab_size": vocab, "hidden_size": hidden,
        "intermediate_size": kv[a + "feed_forward_length"],
        "num_hidden_layers": kv[a + "block_count"], "num_attention_heads": heads,
        "num_key_value_heads": kv_heads, "head_dim": head_dim,
        "rms_norm_eps": kv.get(a + "attention.layer_norm_rms_epsilon", 1e-6),
        "rope_theta": kv.get(a + "rope.freq_base", 10000.0),
        "max_position_embeddings": kv.get(a + "context_length", 4096),
        "tie_word_embeddings": "lm_head.weight" not in weights, "torch_dtype": "float32",
        "attention_bias": "model.layers.0.self_attn.q_proj.bias" in weights, "hidden_act": "silu",
    }
    if kv.get(a + "rope.scaling.type") == "linear":
        config["rope_scaling"] = {"rope_type": "linear", "factor": kv[a + "rope.scaling.factor"]}
    hf_dir = os.path.join(args.out, "hf")
    os.makedirs(hf_dir, exist_ok=True)
    with open(os.path.join(hf_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    save_file(weights, os.path.join(hf_dir, "model.safetensors"))

    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(hf_dir, attn_implementation="eager",
                                                 torch_dtype=torch.float32).to(args.device).eval()
    prompts = [[(i * 37 + s * 101 + 3) % vocab for i in range(n)] for s, n in enumerate([5, 11, 17])]
    logits, continuations = [], []
    with torch.no_grad():
        for p in prompts:  # greedy, 16 steps, the whole sequence recomputed each step
            ids, steps = list(p), []
            for _ in range(NUM_STEPS):
                out = model(torch.tensor([ids], device=args.device)).logits[0, -1].float().cpu()
                steps.append(out)
                ids.append(int(out.argmax()))
            logits.append(torch.stack(steps))
            continuations.append(ids[len(p):])
    save_file({"logits": torch.stack(logits)}, os.path.join(args.out, "reference.safetensors"))
    with open(os.path.join(args.out, "reference.json"), "w") as f:
        json.dump({"gguf": os.path.basename(args.gguf), "prompts": prompts,
                   "greedy": continuations}, f)
    print(f"wrote {args.out}: {arch}, {len(weights)} tensors, prompts {[len(p) for p in prompts]}")


if __name__ == "__main__":
    main()
