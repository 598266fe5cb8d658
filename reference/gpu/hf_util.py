"""Small helpers shared by make_golden.py and train_lm.py (transformers 4.x and 5.x).

Everything here runs on the CPU in float32 unless told otherwise. Imports of torch/transformers
are deferred so that `python3 -c 'import hf_util'` works on machines without them.
"""
import json
import os


def transformers_major():
    import transformers
    return int(transformers.__version__.split(".")[0])


def load_causal_lm(model_dir, attn="eager", dtype=None):
    """Loads MODEL_DIR with transformers; returns the model in eval mode, in DTYPE (default:
    the checkpoint's own dtype, then upcast by the caller). Works with transformers 4 and 5
    (the keyword is `dtype` in 5, `torch_dtype` in 4)."""
    import torch
    from transformers import AutoModelForCausalLM
    kw = {"attn_implementation": attn}
    key = "dtype" if transformers_major() >= 5 else "torch_dtype"
    kw[key] = dtype if dtype is not None else "auto"
    model = AutoModelForCausalLM.from_pretrained(model_dir, **kw)
    model.eval()
    return model


def model_from_config(config, attn="eager"):
    from transformers import AutoModelForCausalLM
    return AutoModelForCausalLM.from_config(config, attn_implementation=attn)


def save_model(model, out_dir):
    """save_pretrained in safetensors (the default in 4.x >= 4.35 and the only format in 5.x)."""
    try:
        model.save_pretrained(out_dir, safe_serialization=True)
    except TypeError:
        model.save_pretrained(out_dir)


def add_legacy_rope_keys(config_path):
    """transformers 5 writes RoPE settings as `rope_parameters` {rope_type, rope_theta, ...};
    checkpoints on the Hub (and transformers 4) use top-level `rope_theta` and `rope_scaling`.
    Writes the legacy keys too where they are missing, with the same values, so that readers of
    either form see the same model. Returns the list of keys added."""
    cfg = json.load(open(config_path))
    added = []
    rp = cfg.get("rope_parameters")
    if isinstance(rp, dict) and "rope_type" in rp:
        if "rope_theta" not in cfg and "rope_theta" in rp:
            cfg["rope_theta"] = rp["rope_theta"]
            added.append("rope_theta")
        if rp.get("rope_type", "default") != "default" and not cfg.get("rope_scaling"):
            cfg["rope_scaling"] = {k: v for k, v in rp.items() if k != "rope_theta"}
            added.append("rope_scaling")
    if added:
        with open(config_path, "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
            f.write("\n")
    return added


def greedy_full(model, prompt_ids, num_steps):
    """Greedy decoding by full recomputation (no KV cache, batch 1, no padding): step t runs the
    model over prompt + t generated tokens and takes the last position's logits.
    Returns (tokens[num_steps], logits float32 [num_steps, vocab], margins[num_steps]) where
    margin = top1 - top2 logit (small margins mean a near-tie)."""
    import torch
    ids = list(prompt_ids)
    toks, rows, margins = [], [], []
    with torch.no_grad():
        for _ in range(num_steps):
            x = torch.tensor([ids], dtype=torch.long)
            logits = model(input_ids=x).logits[0, -1].float()
            top2 = torch.topk(logits, 2).values
            t = int(torch.argmax(logits))
            toks.append(t)
            rows.append(logits.clone())
            margins.append(float(top2[0] - top2[1]))
            ids.append(t)
    return toks, torch.stack(rows), margins


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def dir_size(path):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)
