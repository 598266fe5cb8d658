#!/usr/bin/env python3
"""Trains the project's byte-level BPE tokenizer (issue 4 point 2).

    python3 reference/gpu/train_tokenizer.py --train .deps/corpus/train.txt --out models/tokenizer

Writes OUT/tokenizer.json and OUT/tokenizer_config.json (copied into each model folder by
train_lm.py). The pipeline is Qwen2-style, so it exercises the same code paths as real models:
NFC normalizer; pre-tokenizer Split(GPT-4-style regex, single digits, Isolated) + ByteLevel
(add_prefix_space false, use_regex false); BPE over the 256 byte symbols; ByteLevel decoder.
Special tokens: <|endoftext|> = 0 (bos, eos and pad), <|im_start|> = 1, <|im_end|> = 2.
The post-processor prepends <|endoftext|> as BOS (add_bos_token true), like Llama 3.1's
tokenizer.json prepends <|begin_of_text|>; the LM is trained on documents that start with it.
Needs the `tokenizers` package (the GPU machine has it).
"""
import argparse
import json
import os
import time

# Qwen2's pre-tokenizer regex (single digits).
SPLIT_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
               r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# ChatML, as in Qwen2.5's template minus tools: a default system prompt is not added.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- endif %}"
)


def iter_docs(path, max_chars=1 << 20):
    """Yields pieces of the corpus (documents are separated by two blank lines)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for doc in text.split("\n\n\n"):
        for i in range(0, len(doc), max_chars):
            yield doc[i:i + max_chars]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", default=".deps/corpus/train.txt")
    ap.add_argument("--out", default="models/tokenizer")
    ap.add_argument("--vocab-size", type=int, default=8192)
    args = ap.parse_args()
    from tokenizers import (Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers,
                            processors, trainers)
    import tokenizers

    t0 = time.time()
    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=args.vocab_size, min_frequency=2,
                                  special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(iter_docs(args.train), trainer=trainer)
    bos = SPECIALS[0]
    bos_id = tok.token_to_id(bos)
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single=bos + " $A", pair=bos + " $A " + bos + " $B:1",
                                      special_tokens=[(bos, bos_id)]),
    ])
    os.makedirs(args.out, exist_ok=True)
    tok.save(os.path.join(args.out, "tokenizer.json"))

    added = {}
    for s in SPECIALS:
        added[str(tok.token_to_id(s))] = {"content": s, "lstrip": False, "normalized": False,
                                          "rstrip": False, "single_word": False, "special": True}
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": bos,
        "eos_token": bos,
        "pad_token": bos,
        "unk_token": None,
        "add_bos_token": True,
        "add_eos_token": False,
        "added_tokens_decoder": added,
        "additional_special_tokens": SPECIALS[1:],
        "clean_up_tokenization_spaces": False,
        "model_max_length": 2048,
        "chat_template": CHAT_TEMPLATE,
    }
    with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")

    vocab = tok.get_vocab_size()
    sample = "Call me Ishmael. It is a truth universally acknowledged, 1234."
    enc = tok.encode(sample)
    assert tok.decode(enc.ids, skip_special_tokens=True) == sample, "round trip failed"
    assert enc.ids[0] == bos_id
    with open(args.train, encoding="utf-8") as f:
        head = f.read(2_000_000)
    n = len(tok.encode(head, add_special_tokens=False).ids)
    print("tokenizer: vocab %d (tokenizers %s) in %.1fs; specials %s; %.2f bytes/token on the "
          "first 2 MB; %r -> %s" % (vocab, tokenizers.__version__, time.time() - t0,
                                    {s: tok.token_to_id(s) for s in SPECIALS},
                                    len(head.encode()) / n, sample, enc.tokens[:12]))


if __name__ == "__main__":
    main()
