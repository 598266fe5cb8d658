#!/usr/bin/env python3
"""Writes the Hugging Face reference ids for the C++ tokenizer tests.

For every fixture tokenizer (.fixtures/tokenizers/<name>/tokenizer.json, fetched by
scripts/fetch-fixtures.sh) and every corpus file (tests/fixtures/tokenizer/corpus/*.txt), it
encodes each unit with `tokenizers.Tokenizer.from_file(...).encode(unit, add_special_tokens=...)`
for both values of add_special_tokens, and decodes a sample, into
tests/fixtures/tokenizer/reference/<name>.json.gz:

  {"tokenizer": name, "tokenizers_version": "0.23.x", "unit_rule": "...",
   "files": {"code.txt": {"num_units": N, "ids": [[...], ...], "ids_special": [[...], ...],
                          "decoded": [[unit, skip_special, text], ...]}, ...}}

Units (must match src/tokenizer/tokenizer_test_util.h): the whole file when it is at most
100,000 bytes, then every line of text.split('\\n') (newline removed, empty lines kept).

Usage (on the GPU machine, where python3 has tokenizers): python3 reference/tokenizer_reference.py
  [--names llama3,qwen3] [--decode-sample 200]
"""
import argparse
import gzip
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = ["llama3", "llama3_1", "qwen3", "gemma3", "llama2"]
CORPUS = os.path.join(ROOT, "tests", "fixtures", "tokenizer", "corpus")
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer", "reference")
UNIT_RULE = "whole file if <= 100000 bytes, then text.split('\\n')"


def corpus_units(text):
    units = [text] if len(text.encode("utf-8")) <= 100000 else []
    return units + text.split("\n")


def corpus_files():
    return sorted(f for f in os.listdir(CORPUS) if f.endswith(".txt"))


def reference_for(tok, decode_sample):
    files = {}
    for name in corpus_files():
        with open(os.path.join(CORPUS, name), encoding="utf-8", newline="") as f:
            units = corpus_units(f.read())
        ids = [tok.encode(u, add_special_tokens=False).ids for u in units]
        ids_special = [tok.encode(u, add_special_tokens=True).ids for u in units]
        decoded = []
        for i in range(min(len(units), decode_sample)):
            for skip in (False, True):
                decoded.append([i, skip, tok.decode(ids_special[i], skip_special_tokens=skip)])
        files[name] = {"num_units": len(units), "ids": ids, "ids_special": ids_special,
                       "decoded": decoded}
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--names", default=",".join(NAMES))
    ap.add_argument("--decode-sample", type=int, default=200, help="units per file to decode")
    args = ap.parse_args()
    import tokenizers  # imported here so that --help works without it

    os.makedirs(OUT, exist_ok=True)
    total = 0
    for name in args.names.split(","):
        path = os.path.join(ROOT, ".fixtures", "tokenizers", name, "tokenizer.json")
        if not os.path.exists(path):
            sys.exit(f"{path} is missing: run scripts/fetch-fixtures.sh first")
        tok = tokenizers.Tokenizer.from_file(path)
        doc = {"tokenizer": name, "tokenizers_version": tokenizers.__version__,
               "unit_rule": UNIT_RULE, "files": reference_for(tok, args.decode_sample)}
        out = os.path.join(OUT, f"{name}.json.gz")
        data = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        with open(out, "wb") as f:  # mtime=0: the same input gives the same bytes
            with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=9, mtime=0) as gz:
                gz.write(data)
        size = os.path.getsize(out)
        total += size
        print(f"{out}: {size / 1e6:.2f} MB", flush=True)
    print(f"total {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
