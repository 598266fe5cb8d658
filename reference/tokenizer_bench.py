#!/usr/bin/env python3
"""HF `tokenizers` side of bench/bench_tokenizer: same input, same table.

Encodes the prose file repeated to --mb megabytes, one paragraph (text between blank lines) per
encode() call, single-threaded (TOKENIZERS_PARALLELISM=false, one sequence at a time), with each
tokenizer directory given, and prints tokens/s and MB/s.
Usage: python3 reference/tokenizer_bench.py PROSE.txt DIR [DIR...] [--mb 10]
"""
import argparse
import os
import time

os.environ["TOKENIZERS_PARALLELISM"] = "false"


def paragraphs(path, mb):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    out, size = [], 0
    parts = [p + "\n\n" for p in text.split("\n\n")]
    while size < mb * 1e6:
        for p in parts:
            out.append(p)
            size += len(p.encode("utf-8"))
            if size >= mb * 1e6:
                break
    return out, size


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("prose")
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--mb", type=float, default=10)
    args = ap.parse_args()
    import tokenizers

    paras, size = paragraphs(args.prose, args.mb)
    print(f"HF tokenizers {tokenizers.__version__}, {size / 1e6:.1f} MB in {len(paras)} encode calls")
    print(f"| {'tokenizer':<12} | {'tokens':>10} | {'seconds':>8} | {'tokens/s':>12} | {'MB/s':>7} |")
    print(f"|{'-' * 14}|{'-' * 12}|{'-' * 10}|{'-' * 14}|{'-' * 9}|")
    for d in args.dirs:
        tok = tokenizers.Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        for p in paras[:50]:  # warm up
            tok.encode(p, add_special_tokens=False)
        start = time.perf_counter()
        n = sum(len(tok.encode(p, add_special_tokens=False).ids) for p in paras)
        secs = time.perf_counter() - start
        name = os.path.basename(os.path.normpath(d))
        print(f"| {name:<12} | {n:>10} | {secs:>8.2f} | {n / secs:>12,.0f} | {size / 1e6 / secs:>7.2f} |")


if __name__ == "__main__":
    main()
