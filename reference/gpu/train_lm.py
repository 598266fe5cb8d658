#!/usr/bin/env python3
"""Trains the two shipped Llama models on the corpus (issue 4 point 3), on one GPU.

    python3 reference/gpu/train_lm.py --corpus .deps/corpus --tokenizer models/tokenizer --out models

models/default: LlamaForCausalLM, ~10 M parameters, tied embeddings.
models/draft:   LlamaForCausalLM, ~1.8 M parameters, same tokenizer (for speculative decoding).

Training: documents are encoded with the trained tokenizer, each preceded by <|endoftext|> (the
BOS, id 0), concatenated, and random 513-token windows are drawn (512 inputs + next-token
targets). AdamW (betas 0.9/0.95, weight decay 0.1 on matrices), linear warm-up then cosine decay
to 10 %, bf16 autocast with float32 master weights, gradient clipping 1.0. Each model has a
wall-clock budget: after 20 steps the measured speed fixes the number of steps (also capped at
--max-epochs passes over the data), so the cosine schedule ends when the time does. The
validation loss is measured during training and the best weights are kept.

Saved with save_pretrained (safetensors, bf16), with the tokenizer files and
generation_config.json in each model folder. Then: validation perplexity of the saved bf16
weights (computed in float32), greedy and sampled continuations, and the golden reference of
the default model (tests/fixtures/golden/default_model/reference.json: transformers' greedy
output, 32 steps, for 4 English prompts, float32 on the CPU from the bf16 weights).

--dry-run runs the data pipeline and training loop with a byte tokenizer and a stand-in model
on the CPU (no transformers / tokenizers needed) to test the script locally.
"""
import argparse
import json
import math
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_util  # noqa: E402

SEQ = 512
SPECS = {
    # name: architecture + optimisation; seconds = wall-clock training budget
    "default": dict(hidden_size=256, intermediate_size=768, num_hidden_layers=10,
                    num_attention_heads=4, num_key_value_heads=2, lr=2e-3, batch=64, max_epochs=9),
    "draft": dict(hidden_size=128, intermediate_size=384, num_hidden_layers=4,
                  num_attention_heads=4, num_key_value_heads=2, lr=3e-3, batch=64, max_epochs=16),
}
GOLDEN_PROMPTS = [
    "It is a truth universally acknowledged, that",
    "Call me Ishmael. Some years ago",
    "In the beginning God created",
    "The hacker wrote a program that",
]
SAMPLE_PROMPTS = ["Emma Woodhouse was", "The whale", "And the LORD said unto Moses,",
                  "A computer is"]


def log(*a):
    print(*a, flush=True)


# ------------------------------------------------------------------------------------------
# Tokenizer and data


class ByteTok:
    """Dry-run stand-in: ids 0..2 specials, 3..258 bytes."""

    def encode_docs(self, docs):
        return [[b + 3 for b in d.encode("utf-8")] for d in docs]

    def decode(self, ids):
        return bytes(i - 3 for i in ids if i >= 3).decode("utf-8", "replace")

    vocab_size = 259


class HFTok:
    def __init__(self, path):
        from tokenizers import Tokenizer
        self.tok = Tokenizer.from_file(os.path.join(path, "tokenizer.json"))
        self.vocab_size = self.tok.get_vocab_size()

    def encode_docs(self, docs):
        return [e.ids for e in self.tok.encode_batch(docs, add_special_tokens=False)]

    def encode_prompt(self, text):  # with the BOS the post-processor adds
        return self.tok.encode(text).ids

    def decode(self, ids):
        return self.tok.decode(ids, skip_special_tokens=False)


def load_split(path, tok, bos_id, max_chars=None):
    """Returns (int64 token tensor: [bos] + doc for each document, number of UTF-8 bytes)."""
    import torch
    text = open(path, encoding="utf-8").read()
    if max_chars:
        text = text[:max_chars]
    docs = [d for d in text.split("\n\n\n") if d.strip()]
    ids = []
    for d in tok.encode_docs(docs):
        ids.append(bos_id)
        ids.extend(d)
    return torch.tensor(ids, dtype=torch.long), sum(len(d.encode("utf-8")) for d in docs)


# ------------------------------------------------------------------------------------------
# Models


def build_model(spec, vocab, dry_run):
    import torch
    if dry_run:
        class Tiny(torch.nn.Module):  # stand-in with the transformers call convention
            def __init__(self):
                super().__init__()
                self.emb = torch.nn.Embedding(vocab, 32)
                self.mix = torch.nn.Linear(64, 32)

            def forward(self, input_ids):
                e = self.emb(input_ids)
                prev = torch.nn.functional.pad(e, (0, 0, 1, 0))[:, :-1]
                h = torch.tanh(self.mix(torch.cat([e, prev], -1)))
                return type("O", (), {"logits": h @ self.emb.weight.T})()
        return Tiny(), None
    from transformers import LlamaConfig
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=spec["hidden_size"],
                      intermediate_size=spec["intermediate_size"],
                      num_hidden_layers=spec["num_hidden_layers"],
                      num_attention_heads=spec["num_attention_heads"],
                      num_key_value_heads=spec["num_key_value_heads"],
                      max_position_embeddings=2048, rope_theta=10000.0, rms_norm_eps=1e-5,
                      tie_word_embeddings=True, bos_token_id=0, eos_token_id=0, pad_token_id=0,
                      initializer_range=0.02, attention_bias=False, mlp_bias=False)
    model = hf_util.model_from_config(cfg, attn="sdpa").float()
    return model, cfg


def num_params(model):
    seen, n = set(), 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            n += p.numel()
    return n


def lr_at(step, total, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def evaluate(model, stream, device, amp, batch=32, max_windows=None):
    """Mean next-token NLL (nats) over non-overlapping SEQ-token windows covering STREAM
    (the last, shorter window included). Returns (mean_nll, num_targets, sum_nll)."""
    import torch
    starts = list(range(0, len(stream) - 1, SEQ))
    if max_windows:
        starts = starts[:max_windows]
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        full = [s for s in starts if s + SEQ + 1 <= len(stream)]
        tail = [s for s in starts if s + SEQ + 1 > len(stream)]
        groups = [full[i:i + batch] for i in range(0, len(full), batch)] + [[s] for s in tail]
        for g in groups:
            n = min(SEQ, len(stream) - 1 - g[0]) if len(g) == 1 else SEQ
            x = torch.stack([stream[s:s + n] for s in g]).to(device)
            y = torch.stack([stream[s + 1:s + n + 1] for s in g]).to(device)
            with amp():
                logits = model(input_ids=x).logits
            nll = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                                                    y.reshape(-1), reduction="sum")
            total += float(nll)
            count += y.numel()
    model.train()
    return total / count, count, total


def train_one(name, spec, vocab, train_ids, valid_ids, device, seconds, max_epochs, dry_run,
              seed):
    import contextlib
    import torch
    torch.manual_seed(seed)
    model, cfg = build_model(spec, vocab, dry_run)
    model.to(device).train()
    nparams = num_params(model)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt_kw = dict(lr=spec["lr"], betas=(0.9, 0.95), eps=1e-8)
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
    try:
        opt = torch.optim.AdamW(groups, fused=(device == "cuda"), **opt_kw)
    except (TypeError, RuntimeError):
        opt = torch.optim.AdamW(groups, **opt_kw)
    if device == "cuda":
        amp = lambda: torch.autocast("cuda", dtype=torch.bfloat16)  # noqa: E731
    else:
        amp = contextlib.nullcontext
    B = spec["batch"]
    tokens_per_step = B * SEQ
    epoch_steps = max(1, len(train_ids) // tokens_per_step)
    max_steps = int(max_epochs * epoch_steps)
    warmup = min(100, max(5, max_steps // 20))
    total = max_steps
    gen = torch.Generator().manual_seed(seed)
    log("[%s] %.2f M parameters (tied embeddings), %d train tokens, batch %d x %d, peak lr %g,"
        " budget %.0f s, at most %d steps (%.1f epochs)" % (
            name, nparams / 1e6, len(train_ids), B, SEQ, spec["lr"], seconds, max_steps,
            max_epochs))
    best = (float("inf"), None, -1)
    history = []
    t_start = time.time()
    t_timed = None
    step = 0
    eval_every = 100
    train_gpu = train_ids.to(device)
    while step < total:
        if step == 20:  # fix the schedule from the measured speed
            if device == "cuda":
                torch.cuda.synchronize()
            t_timed = time.time()
        if step == 40:
            if device == "cuda":
                torch.cuda.synchronize()
            per_step = (time.time() - t_timed) / 20
            left = seconds - (time.time() - t_start)
            # keep ~8 % for evaluations
            total = min(max_steps, 40 + int(0.92 * left / per_step))
            eval_every = max(50, total // 12)
            log("[%s] %.1f ms/step = %.0f tokens/s; schedule: %d steps (%.2f epochs)" % (
                name, per_step * 1e3, tokens_per_step / per_step, total,
                total / epoch_steps))
        if time.time() - t_start > 1.15 * seconds:
            log("[%s] over the time budget: stopping at step %d of %d" % (name, step, total))
            break
        lr = lr_at(step, total, spec["lr"], warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        starts = torch.randint(0, len(train_ids) - SEQ - 1, (B,), generator=gen).to(device)
        idx = starts[:, None] + torch.arange(SEQ + 1, device=device)[None, :]
        chunk = train_gpu[idx]
        x, y = chunk[:, :-1], chunk[:, 1:]
        with amp():
            logits = model(input_ids=x).logits
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                                                 y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % eval_every == 0 or step == total:
            vl, _, _ = evaluate(model, valid_ids, device, amp)
            el = time.time() - t_start
            history.append({"step": step, "train_loss": round(loss.item(), 4),
                            "valid_loss": round(vl, 4), "seconds": round(el, 1)})
            log("[%s] step %5d/%d  loss %.3f  valid %.3f (ppl %.1f)  lr %.2e  gnorm %.2f  %.0f s"
                "  %.0f tok/s" % (name, step, total, loss.item(), vl, math.exp(vl), lr,
                                  float(gnorm), el, step * tokens_per_step / el))
            if vl < best[0]:
                best = (vl, {k: v.detach().to("cpu", copy=True)
                             for k, v in model.state_dict().items()}, step)
    elapsed = time.time() - t_start
    if not history or history[-1]["step"] != step:
        vl, _, _ = evaluate(model, valid_ids, device, amp)
        history.append({"step": step, "train_loss": round(loss.item(), 4),
                        "valid_loss": round(vl, 4), "seconds": round(elapsed, 1)})
        if vl < best[0]:
            best = (vl, None, step)
    if best[1] is not None and best[2] != step:
        log("[%s] keeping the best validation weights, from step %d" % (name, best[2]))
        model.load_state_dict(best[1])
    info = {"parameters": nparams, "steps": step, "best_step": best[2],
            "tokens_seen": step * tokens_per_step, "epochs": round(step / epoch_steps, 2),
            "train_seconds": round(elapsed, 1),
            "tokens_per_second": round(step * tokens_per_step / elapsed),
            "batch": B, "seq_len": SEQ, "peak_lr": spec["lr"], "warmup_steps": warmup,
            "schedule": "linear warm-up, cosine to 10 %", "optimizer":
                "AdamW betas (0.9, 0.95) eps 1e-8, weight decay 0.1 on matrices, clip 1.0",
            "precision": "bf16 autocast, float32 master weights" if device == "cuda" else "fp32",
            "history": history, "arch": {k: v for k, v in spec.items()
                                         if k not in ("lr", "batch", "max_epochs")},
            "max_epochs": max_epochs}
    return model, cfg, info


# ------------------------------------------------------------------------------------------
# After training


def save(model, cfg, out_dir, tok_dir):
    import torch
    from transformers import GenerationConfig
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    model.to(torch.bfloat16)
    hf_util.save_model(model, out_dir)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(tok_dir, f), os.path.join(out_dir, f))
    gc = GenerationConfig(bos_token_id=0, eos_token_id=0, pad_token_id=0, max_new_tokens=256,
                          do_sample=True, temperature=0.8, top_p=0.95)
    gc.save_pretrained(out_dir)
    hf_util.add_legacy_rope_keys(os.path.join(out_dir, "config.json"))


def generate(model, ids, steps, device, temperature=0.0, top_p=1.0, seed=0):
    """Plain loop (full recompute each step) on DEVICE in float32."""
    import torch
    g = torch.Generator(device=device).manual_seed(seed)
    ids = list(ids)
    out = []
    with torch.no_grad():
        for _ in range(steps):
            logits = model(input_ids=torch.tensor([ids], device=device)).logits[0, -1].float()
            if temperature <= 0:
                t = int(torch.argmax(logits))
            else:
                probs = torch.softmax(logits / temperature, -1)
                sp, si = torch.sort(probs, descending=True)
                keep = torch.cumsum(sp, 0) - sp < top_p
                sp = sp * keep
                t = int(si[torch.multinomial(sp / sp.sum(), 1, generator=g)])
            out.append(t)
            ids.append(t)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=".deps/corpus")
    ap.add_argument("--tokenizer", default="models/tokenizer")
    ap.add_argument("--out", default="models")
    ap.add_argument("--golden", default="tests/fixtures/golden/default_model")
    ap.add_argument("--default-seconds", type=float, default=150)
    ap.add_argument("--draft-seconds", type=float, default=60)
    ap.add_argument("--max-epochs", type=float, default=None,
                    help="passes over the data at most (default: per model, SPECS)")
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    import torch
    device = "cuda" if torch.cuda.is_available() and not args.dry_run else "cpu"
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    tok = ByteTok() if args.dry_run else HFTok(args.tokenizer)
    bos = 0
    t0 = time.time()
    max_chars = 300_000 if args.dry_run else None
    train_ids, _ = load_split(os.path.join(args.corpus, "train.txt"), tok, bos, max_chars)
    valid_ids, valid_bytes = load_split(os.path.join(args.corpus, "valid.txt"), tok, bos,
                                        max_chars // 10 if max_chars else None)
    log("data: %d train tokens, %d valid tokens (%d bytes, %.2f bytes/token), %.1f s" % (
        len(train_ids), len(valid_ids), valid_bytes, valid_bytes / len(valid_ids),
        time.time() - t0))
    specs = dict(SPECS)
    if args.dry_run:
        specs = {k: dict(v, batch=4) for k, v in specs.items()}
    report = {"data": {"train_tokens": len(train_ids), "valid_tokens": len(valid_ids),
                       "valid_bytes": valid_bytes, "tokenizer_vocab": tok.vocab_size},
              "versions": {"torch": torch.__version__}, "models": {}}
    if device == "cuda":
        report["device"] = torch.cuda.get_device_name(0)
    seconds = {"default": args.default_seconds, "draft": args.draft_seconds}
    import contextlib
    for name, spec in specs.items():
        model, cfg, info = train_one(name, spec, tok.vocab_size, train_ids, valid_ids, device,
                                     seconds[name], args.max_epochs or spec["max_epochs"],
                                     args.dry_run,
                                     seed=1234 + len(name))
        report["models"][name] = info
        out_dir = os.path.join(args.out, name)
        if args.dry_run:
            vl, n, tot = evaluate(model, valid_ids, device, contextlib.nullcontext)
            info["valid_ppl"] = math.exp(vl)
            log("[%s] dry run: valid ppl %.2f over %d tokens" % (name, math.exp(vl), n))
            continue
        save(model, cfg, out_dir, args.tokenizer)
        del model
        # Perplexity of the shipped bf16 weights, computed in float32.
        m = hf_util.load_causal_lm(out_dir, attn="sdpa", dtype=torch.bfloat16).float().to(device)
        vl, n, tot = evaluate(m, valid_ids, device, contextlib.nullcontext)
        info.update({"valid_loss": round(vl, 4), "valid_ppl": round(math.exp(vl), 2),
                     "valid_tokens": n, "valid_bits_per_byte": round(tot / math.log(2) /
                                                                     valid_bytes, 4),
                     "dir_bytes": hf_util.dir_size(out_dir)})
        log("[%s] saved %s (%.1f MB); valid ppl %.2f (loss %.4f, %.3f bits/byte, %d tokens)" % (
            name, out_dir, info["dir_bytes"] / 1e6, math.exp(vl), vl,
            info["valid_bits_per_byte"], n))
        samples = []
        for i, p in enumerate(SAMPLE_PROMPTS):
            ids = tok.encode_prompt(p)
            g = generate(m, ids, 40, device)
            s = generate(m, ids, 40, device, temperature=0.8, top_p=0.95, seed=i)
            samples.append({"prompt": p, "greedy": tok.decode(g), "sampled_t0.8_p0.95":
                            tok.decode(s)})
            log("[%s] %r\n    greedy : %r\n    sampled: %r" % (name, p, tok.decode(g),
                                                                tok.decode(s)))
        info["samples"] = samples
        del m
    if args.dry_run:
        log(json.dumps(report["models"]["default"]["history"][-2:]))
        return
    import tokenizers
    import transformers
    report["versions"]["tokenizers"] = tokenizers.__version__
    report["versions"]["transformers"] = transformers.__version__
    hf_util.write_json(os.path.join(args.out, "training_report.json"), report)
    make_default_golden(args, tok)


def make_default_golden(args, tok):
    """Greedy output of transformers (32 steps, float32 on the CPU from the bf16 weights)."""
    import torch
    import transformers
    model_dir = os.path.join(args.out, "default")
    m = hf_util.load_causal_lm(model_dir, attn="eager", dtype=torch.bfloat16).float()
    auto = None
    try:
        from transformers import AutoTokenizer
        auto = AutoTokenizer.from_pretrained(model_dir)
    except Exception as e:  # recorded, not fatal
        auto = e
    prompts, greedy, texts, margins, auto_same = [], [], [], [], []
    for p in GOLDEN_PROMPTS:
        ids = tok.encode_prompt(p)
        if not isinstance(auto, Exception):
            auto_same.append(auto(p)["input_ids"] == ids)
        toks, _, mg = hf_util.greedy_full(m, ids, 32)
        prompts.append(ids)
        greedy.append(toks)
        texts.append(tok.decode(toks))
        margins.append(min(mg))
    os.makedirs(args.golden, exist_ok=True)
    ref = {
        "model": "models/default",
        "prompt_texts": GOLDEN_PROMPTS,
        "prompts": prompts,
        "greedy": greedy,
        "greedy_texts": texts,
        "num_steps": 32,
        "compute": ("transformers, eager attention, float32 on the CPU; weights: the bf16 "
                    "model.safetensors upcast to float32; batch 1, no padding, no KV cache; "
                    "all 32 steps are taken even if <|endoftext|> (0) is produced"),
        "tokenization": ("tokenizer.json of models/default with add_special_tokens=True: "
                         "<|endoftext|> (id 0) is prepended as BOS"),
        "autotokenizer_matches": (auto_same if not isinstance(auto, Exception)
                                  else "AutoTokenizer failed: %r" % auto),
        "min_top1_top2_margin_per_prompt": margins,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    hf_util.write_json(os.path.join(args.golden, "reference.json"), ref)
    for p, t in zip(GOLDEN_PROMPTS, texts):
        log("[golden] %r -> %r" % (p, t))


if __name__ == "__main__":
    main()
