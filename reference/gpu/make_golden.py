#!/usr/bin/env python3
"""Golden reference models for the C++ model runtime (issue 2 point 7).

    python3 reference/gpu/make_golden.py [--out tests/fixtures/golden]

For each family: a tiny random-weight model in Hugging Face layout (config.json +
model.safetensors), built by hand with transformers (no download), and the reference greedy
output of transformers in float32 on the CPU with eager attention:

  reference.json         {"prompts": [[ids]...], "greedy": [[16 ids]...], ...details}
  reference.safetensors  tensor "logits" f32 [4, 16, vocab]: the logits that chose each greedy
                         token (step 0 = the logits after the prompt).

Each prompt is decoded separately (batch 1, no padding, no KV cache: every step recomputes the
whole sequence). A second, independent forward pass written here in plain torch (ref_forward)
checks transformers' logits, so that what the fixtures encode (RoPE scaling, sliding window,
q/k norm, biases, tied embeddings) is known and not only assumed. Needs torch, transformers,
safetensors; runs on the CPU only (takes seconds).
"""
import argparse
import copy
import math
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_util  # noqa: E402

SEED = 1234
VOCAB = 512
PROMPT_LENGTHS = [5, 11, 17, 29]
NUM_STEPS = 16

COMMON = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
              bos_token_id=1, eos_token_id=2, hidden_act="silu", attention_dropout=0.0)

# name -> (config class, kwargs, weights dtype, description)
FAMILIES = {
    "llama": ("LlamaConfig", dict(COMMON, rope_theta=10000.0, rms_norm_eps=1e-5,
                                  tie_word_embeddings=False),
              "float32", "Llama 2 style: RoPE theta 1e4, no scaling, untied lm_head, GQA 4/2"),
    "llama31": ("LlamaConfig", dict(COMMON, rope_theta=10000.0, rms_norm_eps=1e-5,
                                    tie_word_embeddings=False,
                                    rope_scaling={"rope_type": "llama3", "factor": 8.0,
                                                  "low_freq_factor": 1.0,
                                                  "high_freq_factor": 4.0,
                                                  "original_max_position_embeddings": 32}),
                "float32",
                "Llama 3.1 RoPE scaling (llama3, factor 8, low 1, high 4, original 32). With "
                "head_dim 16 and theta 1e4 the wavelengths are 6.3 (kept), 19.9 (smoothed) and "
                ">= 62.8 (divided by 8): all three branches are used"),
    "llama32": ("LlamaConfig", dict(COMMON, rope_theta=500000.0, rms_norm_eps=1e-5,
                                    tie_word_embeddings=True,
                                    rope_scaling={"rope_type": "llama3", "factor": 32.0,
                                                  "low_freq_factor": 1.0,
                                                  "high_freq_factor": 4.0,
                                                  "original_max_position_embeddings": 32}),
                "float32", "Llama 3.2 style: tied embeddings (no lm_head.weight in the file), "
                           "theta 5e5, llama3 RoPE scaling factor 32"),
    "mistral": ("MistralConfig", dict(COMMON, rope_theta=10000.0, rms_norm_eps=1e-5,
                                      tie_word_embeddings=False, sliding_window=16),
                "float32", "Mistral with sliding_window 16 (prompt 29 + 16 steps exceeds it)"),
    "qwen2": ("Qwen2Config", dict(COMMON, rope_theta=1000000.0, rms_norm_eps=1e-6,
                                  tie_word_embeddings=False, use_sliding_window=False),
              "float32", "Qwen2: q/k/v biases, theta 1e6, no sliding window"),
    "qwen3": ("Qwen3Config", dict(COMMON, rope_theta=1000000.0, rms_norm_eps=1e-6,
                                  tie_word_embeddings=False, use_sliding_window=False,
                                  head_dim=32, attention_bias=False),
              "float32", "Qwen3: per-head q/k RMSNorm, head_dim 32 != hidden/heads (16)"),
    "llama_bf16": ("LlamaConfig", None, "bfloat16",
                   "the llama model's weights rounded to bfloat16 and saved in bf16; the "
                   "reference is computed from those bf16 weights upcast to float32"),
}


def family_params(cfg):
    """The numbers ref_forward needs, read from a transformers config object."""
    hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    rp = getattr(cfg, "rope_parameters", None) or {}
    rs = getattr(cfg, "rope_scaling", None) or {}
    scaling = rs if rs.get("rope_type", rs.get("type", "default")) != "default" else None
    if scaling is None and rp.get("rope_type", "default") != "default":
        scaling = rp
    theta = getattr(cfg, "rope_theta", None) or rp.get("rope_theta")
    window = None
    if getattr(cfg, "model_type", "") == "mistral":
        window = cfg.sliding_window
    elif getattr(cfg, "use_sliding_window", False):
        window = cfg.sliding_window
    return dict(head_dim=hd, theta=float(theta), scaling=scaling, window=window,
                eps=cfg.rms_norm_eps, layers=cfg.num_hidden_layers,
                heads=cfg.num_attention_heads, kv_heads=cfg.num_key_value_heads,
                tied=bool(getattr(cfg, "tie_word_embeddings", False)))


def build_config(cls, kwargs):
    """Config from KWARGS (transformers 4 spelling: rope_theta, rope_scaling). If the installed
    transformers ignored them (5.x reads `rope_parameters`), builds it again with
    rope_parameters, so that the RoPE settings asked for are the ones the model uses."""
    config = cls(**copy.deepcopy(kwargs))
    p = family_params(config)
    want_theta = kwargs.get("rope_theta")
    want_scaling = kwargs.get("rope_scaling")
    ok = p["theta"] == want_theta and (
        (want_scaling is None and p["scaling"] is None) or
        (want_scaling is not None and p["scaling"] is not None and
         float(p["scaling"].get("factor")) == float(want_scaling["factor"])))
    if ok:
        return config
    print("  config: rope_theta/rope_scaling not taken as given (%s); using rope_parameters" % p)
    kw = {k: v for k, v in kwargs.items() if k not in ("rope_theta", "rope_scaling")}
    rp = dict(want_scaling or {"rope_type": "default"}, rope_theta=want_theta)
    config = cls(rope_parameters=rp, **kw)
    p = family_params(config)
    assert p["theta"] == want_theta, p
    assert (p["scaling"] is None) == (want_scaling is None), p
    return config


def rope_inv_freq(p):
    import torch
    hd = p["head_dim"]
    inv = 1.0 / (p["theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    s = p["scaling"]
    if s:
        assert s.get("rope_type", s.get("type")) == "llama3", s
        factor, lo, hi = s["factor"], s["low_freq_factor"], s["high_freq_factor"]
        old = s["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv
        lo_wl, hi_wl = old / lo, old / hi
        out = torch.where(wavelen > lo_wl, inv / factor, inv)
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * out / factor + smooth * out
        medium = (wavelen >= hi_wl) & (wavelen <= lo_wl)
        inv = torch.where(medium, smoothed, out)
    return inv


def ref_forward(sd, p, ids, window_rule="lt"):
    """Independent forward pass (float64) of a Llama/Mistral/Qwen2/Qwen3 decoder.
    sd: state dict (names as in the safetensors file); ids: list of token ids.
    window_rule 'lt': key j is visible from query i iff 0 <= i - j < window ('le': <= window).
    Returns logits [T, vocab] float64."""
    import torch
    sd = {k: v.double() for k, v in sd.items()}
    T = len(ids)
    hd, nh, nkv = p["head_dim"], p["heads"], p["kv_heads"]
    x = sd["model.embed_tokens.weight"][torch.tensor(ids)]
    inv = rope_inv_freq(p)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    cos = torch.cat([ang.cos(), ang.cos()], -1)[:, None, :]
    sin = torch.cat([ang.sin(), ang.sin()], -1)[:, None, :]

    def rms(v, w):
        return v * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + p["eps"]) * w

    def rot(v):
        return torch.cat([-v[..., hd // 2:], v[..., :hd // 2]], -1)

    def lin(v, name):
        y = v @ sd[name + ".weight"].T
        return y + sd[name + ".bias"] if name + ".bias" in sd else y

    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    allowed = j <= i
    if p["window"]:
        allowed &= (i - j < p["window"]) if window_rule == "lt" else (i - j <= p["window"])
    for layer in range(p["layers"]):
        pre = "model.layers.%d." % layer
        h = rms(x, sd[pre + "input_layernorm.weight"])
        q = lin(h, pre + "self_attn.q_proj").view(T, nh, hd)
        k = lin(h, pre + "self_attn.k_proj").view(T, nkv, hd)
        v = lin(h, pre + "self_attn.v_proj").view(T, nkv, hd)
        if pre + "self_attn.q_norm.weight" in sd:
            q = rms(q, sd[pre + "self_attn.q_norm.weight"])
            k = rms(k, sd[pre + "self_attn.k_norm.weight"])
        q = q * cos + rot(q) * sin
        k = k * cos + rot(k) * sin
        k = k.repeat_interleave(nh // nkv, dim=1)
        v = v.repeat_interleave(nh // nkv, dim=1)
        s = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(hd)
        s = s.masked_fill(~allowed[None], float("-inf"))
        a = torch.einsum("hqk,khd->qhd", s.softmax(-1), v).reshape(T, nh * hd)
        x = x + lin(a, pre + "self_attn.o_proj")
        h = rms(x, sd[pre + "post_attention_layernorm.weight"])
        g = lin(h, pre + "mlp.gate_proj")
        x = x + lin(torch.nn.functional.silu(g) * lin(h, pre + "mlp.up_proj"),
                    pre + "mlp.down_proj")
    x = rms(x, sd["model.norm.weight"])
    head = sd.get("lm_head.weight", sd["model.embed_tokens.weight"])
    return x @ head.T


def randomize(model, gen, tied=False):
    """Replaces transformers' init (std 0.02, norms = 1, biases = 0), which gives almost flat
    logits and near-ties in greedy decoding, with an init whose logits spread by a few units
    and whose norm weights and biases are not trivial."""
    import torch
    with torch.no_grad():
        for name, prm in model.named_parameters():
            if name.endswith("norm.weight"):
                prm.copy_(1.0 + 0.2 * torch.randn(prm.shape, generator=gen))
            elif name.endswith(".bias"):
                prm.copy_(0.1 * torch.randn(prm.shape, generator=gen))
            elif "embed_tokens" in name:
                prm.copy_(torch.randn(prm.shape, generator=gen))
            elif name == "lm_head.weight":
                prm.copy_(torch.randn(prm.shape, generator=gen) * (2.0 / math.sqrt(prm.shape[1])))
            else:  # linear [out, in]
                prm.copy_(torch.randn(prm.shape, generator=gen) / math.sqrt(prm.shape[1]))
                if tied and (name.endswith("o_proj.weight") or name.endswith("down_proj.weight")):
                    # With tied embeddings the last token's own embedding dominates the
                    # residual stream and greedy decoding repeats it; larger layer outputs
                    # give a varied greedy sequence.
                    prm.mul_(4.0)


def rel_err(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm())


def make_family(name, out_root, prompts, llama_model=None):
    import torch
    import transformers
    from safetensors import safe_open
    from safetensors.torch import save_file

    cls_name, kwargs, wdtype, desc = FAMILIES[name]
    out = os.path.join(out_root, name)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    torch.manual_seed(SEED)
    if name == "llama_bf16":
        assert llama_model is not None, "llama_bf16 is made from the llama model: run both"
        model = llama_model
        model.to(torch.bfloat16)
    else:
        config = build_config(getattr(transformers, cls_name), kwargs)
        model = hf_util.model_from_config(config, attn="eager").float()
        gen = torch.Generator().manual_seed(SEED + sum(map(ord, name)))
        randomize(model, gen, tied=config.tie_word_embeddings)
        if config.tie_word_embeddings:
            model.tie_weights()
    model.eval()
    mem_model = model
    hf_util.save_model(model, out)
    for fn in os.listdir(out):  # keep config.json + model.safetensors only
        if fn not in ("config.json", "model.safetensors"):
            os.remove(os.path.join(out, fn))
    legacy = hf_util.add_legacy_rope_keys(os.path.join(out, "config.json"))

    with safe_open(os.path.join(out, "model.safetensors"), "pt") as f:
        names = sorted(f.keys())
        sd = {k: f.get_tensor(k) for k in names}
    dtypes = sorted({str(t.dtype).replace("torch.", "") for t in sd.values()})

    # Reference from the files on disk, upcast to float32.
    model = hf_util.load_causal_lm(out, attn="eager", dtype=torch.float32).float()
    p = family_params(model.config)
    info = {"attn_implementation": getattr(model.config, "_attn_implementation", "?")}
    if p["tied"] and "lm_head.weight" in sd:
        info["tied_but_lm_head_saved"] = True

    greedy, logits, margins = [], [], []
    for ids in prompts:
        toks, rows, m = hf_util.greedy_full(model, ids, NUM_STEPS)
        greedy.append(toks)
        logits.append(rows)
        margins.append(min(m))
    logits = torch.stack(logits).float().contiguous()

    # Same logits from the in-memory model (f32 families): the save/load round trip is exact.
    if wdtype == "float32":
        with torch.no_grad():
            full = greedy[3]
            seq = prompts[3] + full
            a = mem_model(input_ids=torch.tensor([seq])).logits[0].float()
            b = model(input_ids=torch.tensor([seq])).logits[0].float()
            info["reload_max_abs_diff"] = float((a - b).abs().max())

    # Independent check on the longest sequence (prompt 3 + its 16 greedy tokens).
    seq = prompts[3] + greedy[3]
    with torch.no_grad():
        hf_all = model(input_ids=torch.tensor([seq])).logits[0].double()
    f32_sd = {k: v.float() for k, v in sd.items()}
    check = {"rel_err_vs_independent_forward": rel_err(hf_all, ref_forward(f32_sd, p, seq))}
    if p["window"]:
        check["rel_err_window_rule_le"] = rel_err(hf_all, ref_forward(f32_sd, p, seq, "le"))
        p_nowin = dict(p, window=None)
        ref_nowin = ref_forward(f32_sd, p_nowin, seq)
        check["rel_err_without_window"] = rel_err(hf_all, ref_nowin)
        w = p["window"]
        check["rel_err_without_window_first_%d_positions" % w] = rel_err(hf_all[:w],
                                                                         ref_nowin[:w])
        check["sliding_window_applied"] = (check["rel_err_vs_independent_forward"] < 1e-5 and
                                           check["rel_err_without_window"] > 1e-3)
    if p["scaling"]:
        p_plain = dict(p, scaling=None)
        check["rel_err_without_rope_scaling"] = rel_err(hf_all, ref_forward(f32_sd, p_plain, seq))
    info.update(check)

    save_file({"logits": logits}, os.path.join(out, "reference.safetensors"))
    ref = {
        "family": name,
        "description": desc,
        "model_class": type(model).__name__,
        "weights_dtype": wdtype,
        "compute": ("transformers, float32 on the CPU, eager attention, batch 1, no padding, "
                    "no KV cache (each step recomputes the whole sequence)"),
        "weights_note": ("bf16 weights upcast to float32 before the forward pass"
                         if wdtype == "bfloat16" else "float32 weights"),
        "prompts": prompts,
        "greedy": greedy,
        "num_steps": NUM_STEPS,
        "logits_file": "reference.safetensors",
        "logits_tensor": "logits f32 [num_prompts, num_steps, vocab]; step 0 = after the prompt",
        "min_top1_top2_margin_per_prompt": margins,
        "tensors": names,
        "tensor_dtypes": dtypes,
        "legacy_config_keys_added": legacy,
        "checks": info,
        "seed": SEED,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    hf_util.write_json(os.path.join(out, "reference.json"), ref)
    print("%-11s %-18s %s tensors=%d size=%6.1f KB greedy0=%s min_margin=%.3f %s" % (
        name, ref["model_class"], wdtype, len(names), hf_util.dir_size(out) / 1024,
        greedy[0][:6], min(margins),
        {k: (round(v, 9) if isinstance(v, float) else v) for k, v in info.items()}))
    return mem_model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/golden")
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args()
    import torch
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    gen = torch.Generator().manual_seed(SEED)
    # Ids 3..511: avoid the bos/eos ids 1, 2 (and 0) so that prompts are plain tokens.
    prompts = [torch.randint(3, VOCAB, (n,), generator=gen).tolist() for n in PROMPT_LENGTHS]
    os.makedirs(args.out, exist_ok=True)
    llama = None
    for name in FAMILIES:
        if args.only and name not in args.only:
            continue
        m = make_family(name, args.out, prompts, llama_model=llama)
        if name == "llama":
            llama = m
    print("golden total: %.1f KB" % (hf_util.dir_size(args.out) / 1024))


if __name__ == "__main__":
    main()
