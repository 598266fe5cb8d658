#!/usr/bin/env python3
"""Writes the small seed corpora of the fuzzers (fuzz/corpus/<target>/) from the test fixtures.

Each seed is a valid (or nearly valid) input the target should accept, kept small so that
libFuzzer's mutations stay cheap. Run from the repository root after scripts/fetch-fixtures.sh;
the output is committed, so this only needs re-running when the fixtures change.
"""
import glob
import hashlib
import json
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")
FIX = os.path.join(ROOT, "tests", "fixtures")


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, bytes)] -> a .safetensors file's bytes."""
    header, data = {}, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def safetensors_seeds():
    put("safetensors_header", safetensors([("w", "F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4))]))
    put("safetensors_header", safetensors(
        [("model.embed_tokens.weight", "BF16", [4, 2], bytes(16)),
         ("model.layers.0.self_attn.q_proj.weight", "F16", [2, 2], bytes(8)),
         ("model.norm.weight", "F32", [2], bytes(8))], {"format": "pt"}))
    put("safetensors_header", safetensors([("ids", "I64", [3], struct.pack("<3q", 1, 2, 3)),
                                           ("mask", "U8", [4], bytes(4)),
                                           ("scalar", "I32", [], bytes(4)),
                                           ("empty", "F32", [0, 3], b"")]))
    # The real header of a golden fixture, its data section cut to the first tensor's bytes
    # would be invalid; keep only the header with all tensors resized to one element.
    with open(os.path.join(FIX, "golden", "llama", "model.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    tensors = []
    for name, t in list(header.items())[:6]:
        if name == "__metadata__":
            continue
        size = {"F32": 4, "BF16": 2, "F16": 2}.get(t["dtype"], 4)
        tensors.append((name, t["dtype"], [1], bytes(size)))
    put("safetensors_header", safetensors(tensors, header.get("__metadata__")))


def index_seeds():
    put("safetensors_index", json.dumps({"metadata": {"total_size": 60}, "weight_map": {
        "model.embed_tokens.weight": "a.safetensors", "model.norm.weight": "a.safetensors",
        "lm_head.weight": "b.safetensors"}}, indent=2))
    put("safetensors_index", json.dumps({"weight_map": {"model.norm.weight": "a.safetensors"}}))
    put("safetensors_index", json.dumps({"weight_map": {"x": "../a.safetensors"}}))


def config_seeds():
    seen = set()
    for path in sorted(glob.glob(os.path.join(FIX, "golden", "*", "config.json")) +
                       [os.path.join(ROOT, "models", "default", "config.json")]):
        text = open(path).read()
        if text not in seen:
            seen.add(text)
            put("model_config", text)


def small_tokenizer(tok, keep=160):
    """The tokenizer with its vocabulary cut to `keep` ids (plus what its merges need)."""
    model = tok["model"]
    vocab = model.get("vocab")
    if isinstance(vocab, dict):
        kept = {k: v for k, v in vocab.items() if v < keep}
        merges = []
        for m in model.get("merges", []):
            a, b = m.split(" ", 1) if isinstance(m, str) else m
            if a in kept and b in kept and (a + b) in kept:
                merges.append(m)
        model["vocab"] = kept
        model["merges"] = merges[:100]
    tok["added_tokens"] = tok.get("added_tokens", [])[:6]
    return tok


def tokenizer_seeds():
    texts = ["Hello, world! It's 2026.", "  leading spaces\n\nand\ttabs <|im_start|> \u00e9t\u00e9 \U0001F600",
             "x" * 40 + " 12345678 " + "\u0645\u0631\u062d\u0628\u0627"]
    # The pinned fixtures of scripts/fetch-fixtures.sh (Llama 2/3/3.1, Qwen 3, Gemma 3).
    dirs = sorted(glob.glob(os.path.join(ROOT, ".fixtures", "tokenizers", "*")))
    for i, d in enumerate(dirs + [os.path.join(ROOT, "models", "tokenizer")]):
        tok = small_tokenizer(json.load(open(os.path.join(d, "tokenizer.json"))))
        config = json.load(open(os.path.join(d, "tokenizer_config.json")))
        config.pop("chat_template", None)
        config.pop("added_tokens_decoder", None)
        body = json.dumps(tok, ensure_ascii=False, separators=(",", ":"))
        parts = [body, texts[i % len(texts)]]
        if i % 2 == 0:
            parts.append(json.dumps(config, ensure_ascii=False))
        put("tokenizer", "\0".join(parts))


def tokenizer_text_seeds():
    for i, path in enumerate(sorted(glob.glob(os.path.join(FIX, "tokenizer", "corpus", "*.txt")))):
        text = open(path, "rb").read()[:300]
        put("tokenizer_text", bytes([i % 6]) + text)
        put("tokenizer_text", bytes([(i + 3) % 6 | 0x80]) + text[:120])


def chat_template_seeds():
    names = ["llamacpp-test-mistral-v7-large-2411", "gguf-command-r", "Qwen-Qwen2.5-7B-Instruct",
             "deepseek-ai-DeepSeek-V3.1", "google-gemma-2-2b-it", "lenml-llama3_1",
             "microsoft-Phi-3.5-mini-instruct", "LFM2.5-8B-A1B"]
    cases = ["multi_turn", "tools_defined", "tool_call_roundtrip", "content_parts", "system_user",
             "thinking_on", "unicode", "custom_kwargs"]
    for name, case in zip(names, cases):
        path = os.path.join(FIX, "chat", "templates", name + ".jinja")
        if not os.path.exists(path):
            continue
        ctx = json.dumps(json.load(open(os.path.join(FIX, "chat", "cases", case + ".json"))),
                         ensure_ascii=False)
        put("chat_template", open(path).read() + "\0" + ctx)
    put("chat_template", "{% for m in messages %}{{ m.role | upper }}: {{ m.content | trim }}\n"
        "{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}")
    put("chat_template", "{% set ns = namespace(n=0) %}{% macro f(x) %}{{ x * 2 }}{% endmacro %}"
        "{% for i in range(3) %}{% set ns.n = ns.n + i %}{{ f(i) }}{{ loop.index }}{% endfor %}"
        "{{ ns.n }}{{ messages | tojson }}{{ 'a,b' .split(',') | join('-') }}"
        "{{ raise_exception('x') if false else strftime_now('%Y') }}")


def http_json_seeds():
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    bodies = [
        (0, {"model": "default", "messages": msgs, "max_tokens": 8, "temperature": 0.7, "top_p": 0.9,
             "n": 2, "seed": 3, "stop": ["\n", "x"], "stream": True, "stream_options": {"include_usage": True}}),
        (0, {"model": "default", "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}]}],
             "logprobs": True, "top_logprobs": 2, "max_completion_tokens": 4, "presence_penalty": 0.5}),
        (1, {"model": "default", "prompt": "Once upon", "max_tokens": 5, "logprobs": 2, "echo": False,
             "frequency_penalty": 0.1}),
        (1, {"model": "default", "prompt": [1, 2, 3], "max_tokens": 2, "stop": "x"}),
        (2, {"model": "default", "max_tokens": 16, "system": "S", "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Hello"}]}], "stop_sequences": ["z"],
            "top_k": 5, "stream": False}),
        (3, {"model": "default", "prompt": "Hello world", "add_special_tokens": False}),
        (4, {"model": "default", "tokens": [1, 2, 300, 4]}),
    ]
    for route, body in bodies:
        put("http_json", bytes([route]) + json.dumps(body).encode())


def http_framing_seeds():
    body = json.dumps({"model": "default", "messages": [{"role": "user", "content": "Hi"}]})
    reqs = [
        "GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Authorization: Bearer sk-test\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body),
        "POST /tokenize HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nx-api-key: k\r\n\r\n"
        "5\r\n{\"pro\r\n10\r\nmpt\": \"hello\"}   \r\n0\r\n\r\n",
        "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n",
        "POST /v1/completions?x=1 HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}",
    ]
    for i, r in enumerate(reqs):
        put("http_framing", bytes([0 if i % 2 == 0 else 7]) + r.encode())


def gguf(kv, tensors, alignment=32):
    """kv: [(key, type, value)] with type a GGUF value type (4 u32, 6 f32, 7 bool, 8 string,
    ("arr", elem type) arrays); tensors: [(name, dims fastest-first, ggml type, bytes)]."""
    def s(x):
        x = x.encode() if isinstance(x, str) else x
        return struct.pack("<Q", len(x)) + x

    def scalar(t, v):
        return {4: lambda: struct.pack("<I", v), 5: lambda: struct.pack("<i", v),
                6: lambda: struct.pack("<f", v), 7: lambda: bytes([1 if v else 0]),
                8: lambda: s(v)}[t]()

    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for key, t, v in kv:
        if isinstance(t, tuple):
            out += s(key) + struct.pack("<IIQ", 9, t[1], len(v)) + b"".join(scalar(t[1], x) for x in v)
        else:
            out += s(key) + struct.pack("<I", t) + scalar(t, v)
    offset, data = 0, b""
    for name, dims, gtype, raw in tensors:
        out += s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", gtype, offset)
        padded = raw + b"\0" * (-len(raw) % alignment)
        data += padded
        offset += len(padded)
    out += b"\0" * (-len(out) % alignment)
    return out + data


def gguf_seeds():
    """A tiny llama-shaped file in each tokenizer flavour and tensor type family."""
    shape = [("general.architecture", 8, "llama"), ("llama.embedding_length", 4, 32),
             ("llama.block_count", 4, 1), ("llama.feed_forward_length", 4, 32),
             ("llama.attention.head_count", 4, 2), ("llama.attention.head_count_kv", 4, 1),
             ("llama.rope.freq_base", 6, 10000.0), ("llama.context_length", 4, 64),
             ("llama.attention.layer_norm_rms_epsilon", 6, 1e-5)]
    tokens = ["a", "b", "ab", "<s>", "</s>", "<0x0A>"]
    gpt2 = [("tokenizer.ggml.model", 8, "gpt2"), ("tokenizer.ggml.pre", 8, "llama-bpe"),
            ("tokenizer.ggml.tokens", ("arr", 8), tokens),
            ("tokenizer.ggml.merges", ("arr", 8), ["a b"]),
            ("tokenizer.ggml.token_type", ("arr", 5), [1, 1, 1, 3, 3, 1]),
            ("tokenizer.ggml.bos_token_id", 4, 3), ("tokenizer.ggml.eos_token_id", 4, 4),
            ("tokenizer.chat_template", 8, "{{ messages[0]['content'] }}")]
    spm = [("tokenizer.ggml.model", 8, "llama"), ("tokenizer.ggml.tokens", ("arr", 8), tokens),
           ("tokenizer.ggml.scores", ("arr", 6), [0.0, 0.0, -1.0, 0.0, 0.0, 0.0]),
           ("tokenizer.ggml.token_type", ("arr", 5), [1, 1, 1, 3, 3, 6]),
           ("tokenizer.ggml.add_bos_token", 7, True)]
    f16 = struct.pack("<e", 0.01)
    q8 = (f16 + bytes(range(32))) * 1
    q4k = (f16 + f16 + bytes(range(12)) + bytes(range(128)))
    q6k = bytes(range(128)) + bytes(range(64)) + bytes(range(16)) + f16
    norm = struct.pack("<32f", *([1.0] * 32))
    put("gguf", gguf(shape + gpt2, [("token_embd.weight", [32, 6], 1, b"\x01\x3c" * 192),
                                   ("output_norm.weight", [32], 0, norm),
                                   ("blk.0.attn_q.weight", [32, 32], 8, q8 * 32)]))
    put("gguf", gguf(shape + spm, [("blk.0.ffn_up.weight", [256, 1], 12, q4k),
                                  ("blk.0.ffn_down.weight", [256, 1], 14, q6k)]))
    put("gguf", gguf([("general.alignment", 4, 64), ("llama.vocab_size", 4, 6)] + shape,
                     [("blk.0.attn_k.weight", [32, 16], 30, b"\x00\x3f" * 512)], alignment=64))


if __name__ == "__main__":
    gguf_seeds()
    safetensors_seeds()
    index_seeds()
    config_seeds()
    tokenizer_seeds()
    tokenizer_text_seeds()
    chat_template_seeds()
    http_json_seeds()
    http_framing_seeds()
