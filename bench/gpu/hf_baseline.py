#!/usr/bin/env python3
"""Hugging Face transformers baseline on the same card: the model folder made by
`mlx-serving make-random-model` (config.json + safetensors), bf16, static KV cache and
torch.compile. Prints the same metrics as our suite: (a) batch-1 decode tok/s, (b) time to first
token, (c) decode tok/s at several concurrencies (512 in / 128 out). Each part has a time budget
so the script fits one device call; whatever did not fit is printed as skipped.

usage: hf_baseline.py MODEL_DIR [--budget-s 240] [--concurrency 8,32]
"""
import argparse, os, sys, time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
import torch
from transformers import AutoModelForCausalLM, StaticCache


def sync_time():
    torch.cuda.synchronize()
    return time.perf_counter()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--budget-s", type=float, default=240)
    ap.add_argument("--concurrency", default="8,32")
    ap.add_argument("--ttft", default="512,2048")
    ap.add_argument("--in-len", type=int, default=512)
    ap.add_argument("--out-len", type=int, default=128)
    ap.add_argument("--steps", type=int, default=64)
    args = ap.parse_args()
    start = time.perf_counter()
    left = lambda: args.budget_s - (time.perf_counter() - start)

    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16).cuda().eval()
    V = model.config.vocab_size
    print(f"hf: transformers model loaded in {time.perf_counter() - start:.1f} s", flush=True)
    decode = torch.compile(model.forward, mode="reduce-overhead", fullgraph=True)
    rows = []

    def run(batch, prompt_len, new_tokens, compiled=True, time_steps=True):
        cache = StaticCache(config=model.config, max_batch_size=batch,
                            max_cache_len=prompt_len + new_tokens + 8, device="cuda",
                            dtype=torch.bfloat16)
        ids = (torch.arange(prompt_len, device="cuda")[None, :] * 7919 +
               torch.arange(batch, device="cuda")[:, None] * 104729 + 13) % V
        pos = torch.arange(prompt_len, device="cuda")
        t0 = sync_time()
        with torch.no_grad():
            out = model(input_ids=ids, cache_position=pos, past_key_values=cache, use_cache=True)
            tok = out.logits[:, -1].argmax(-1, keepdim=True)
            t_first = sync_time() - t0
            fwd = decode if compiled else model.forward
            times = []
            for i in range(new_tokens - 1):
                p = torch.tensor([prompt_len + i], device="cuda")
                t1 = sync_time() if time_steps else 0
                out = fwd(input_ids=tok, cache_position=p, past_key_values=cache, use_cache=True)
                tok = out.logits[:, -1].argmax(-1, keepdim=True).clone()
                if time_steps:
                    times.append(sync_time() - t1)
        return t_first, times

    # (a) batch 1: warm-up compiles, then timed steps.
    try:
        run(1, args.in_len, 8)
        _, times = run(1, args.in_len, args.steps)
        times.sort()
        med = times[len(times) // 2]
        rows.append(("(a) batch-1 decode", f"{1 / med:.1f} tok/s", f"{med * 1e3:.2f} ms/step, compiled"))
    except Exception as e:  # noqa: BLE001
        rows.append(("(a) batch-1 decode", "failed", repr(e)[:120]))
    print(rows[-1], flush=True)
    # (b) TTFT, eager prefill (what generate() does).
    for n in [int(x) for x in args.ttft.split(",") if x]:
        if left() < 20:
            rows.append((f"(b) TTFT {n}", "skipped", "time budget")); continue
        run(1, n, 1)
        ts = sorted(run(1, n, 1)[0] for _ in range(3))
        rows.append((f"(b) TTFT, {n}-token prompt", f"{ts[1] * 1e3:.1f} ms", "eager prefill"))
        print(rows[-1], flush=True)
    # (c) concurrency: compiled decode per batch size (each compiles once).
    for b in [int(x) for x in args.concurrency.split(",") if x]:
        if left() < 60:
            rows.append((f"(c) {b} sequences", "skipped", "time budget")); continue
        try:
            run(b, args.in_len, 8)
            t_first, times = run(b, args.in_len, args.out_len)
            times.sort()
            med = times[len(times) // 2]
            rows.append((f"(c) {b} sequences, {args.in_len} in / {args.out_len} out",
                         f"{b / med:.0f} tok/s decode", f"median step {med * 1e3:.2f} ms, prefill {t_first:.2f} s"))
        except Exception as e:  # noqa: BLE001
            rows.append((f"(c) {b} sequences", "failed", repr(e)[:120]))
        print(rows[-1], flush=True)
    print("\n| HF transformers (static cache + torch.compile) | value | note |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    print(f"hf: total {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
