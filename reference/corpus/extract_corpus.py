#!/usr/bin/env python3
"""Extract, clean, deduplicate and split the public-domain training corpus.

Input: a directory into which Debian packages were unpacked with `dpkg -x` (see
build_corpus.sh). Output: OUTDIR/train.txt, OUTDIR/valid.txt and OUTDIR/sources.json.

Text format of train.txt / valid.txt: paragraphs are single lines separated by one blank line
("\n\n"); documents (chunks of ~CHUNK_CHARS characters from one source) are separated by two
blank lines ("\n\n\n"). The LM training script inserts <|endoftext|> between documents.

Standard library only (runs under Debian's /usr/bin/python3 or any python3 >= 3.8).
"""
import argparse
import bz2
import gzip
import hashlib
import html
import html.parser
import json
import lzma
import os
import random
import re
import struct
import sys
import zlib

CHUNK_CHARS = 20000  # one "document" for the train/valid split
VALID_FRACTION = 0.02
SPLIT_SEED = 1234

# --------------------------------------------------------------------------------------------
# R serialization (format versions 2 and 3), enough for the datasets shipped in R packages.


class RReader:
    """Reads R's XDR binary serialization ('X\\n' header)."""

    def __init__(self, data):
        self.b = data
        self.i = 0
        self.refs = []

    def int(self):
        v = struct.unpack_from(">i", self.b, self.i)[0]
        self.i += 4
        return v

    def header(self):
        if self.b[:2] != b"X\n":
            raise ValueError("not an XDR R serialization: %r" % self.b[:2])
        self.i = 2
        version = self.int()
        self.int()  # writer R version
        self.int()  # min reader version
        if version == 3:
            n = self.int()
            self.i += n  # native encoding name

    def item(self):
        flags = self.int()
        t = flags & 0xFF
        has_attr = flags & (1 << 9)
        has_tag = flags & (1 << 10)
        if t == 254 or t in (242, 241, 251, 253, 252, 247, 250):  # NILVALUE, envs, missing...
            return None
        if t == 255:  # REFSXP
            idx = flags >> 8
            if idx == 0:
                idx = self.int()
            return self.refs[idx - 1]
        if t == 1:  # SYMSXP
            name = self.item()
            self.refs.append(("sym", name))
            return ("sym", name)
        if t == 9:  # CHARSXP
            n = self.int()
            if n == -1:
                return None
            v = self.b[self.i:self.i + n]
            self.i += n
            return v.decode("utf-8", "replace")
        if t in (10, 13):  # LGLSXP, INTSXP
            n = self.int()
            v = list(struct.unpack_from(">%di" % n, self.b, self.i))
            self.i += 4 * n
            if has_attr:
                self.item()
            return v
        if t == 14:  # REALSXP
            n = self.int()
            v = list(struct.unpack_from(">%dd" % n, self.b, self.i))
            self.i += 8 * n
            if has_attr:
                self.item()
            return v
        if t in (16, 19, 20):  # STRSXP, VECSXP, EXPRSXP
            n = self.int()
            v = [self.item() for _ in range(n)]
            attrs = self.item() if has_attr else None
            if t == 19 and attrs:
                names = attrs.get("names") if isinstance(attrs, dict) else None
                if names and len(names) == len(v):
                    return dict(zip(names, v))
            return v
        if t == 2:  # LISTSXP (pairlist): attributes, tag, car, cdr
            out = {}
            while True:
                if has_attr:
                    self.item()
                tag = self.item() if has_tag else None
                car = self.item()
                key = tag[1] if isinstance(tag, tuple) else str(len(out))
                out[key] = car
                flags = self.int()
                t = flags & 0xFF
                has_attr = flags & (1 << 9)
                has_tag = flags & (1 << 10)
                if t == 254:
                    return out
                if t != 2:
                    raise ValueError("unexpected pairlist tail type %d" % t)
        raise ValueError("unsupported R SEXP type %d at byte %d" % (t, self.i - 4))


def r_decompress(blob):
    """R lazy-load blob: 4-byte BE length, then zlib, or a type byte ('Z' xz, '2' bz2, '0')."""
    n = struct.unpack_from(">I", blob, 0)[0]
    body = blob[4:]
    if body[:1] == b"Z":
        data = lzma.decompress(body[1:])
    elif body[:1] == b"2":
        data = bz2.decompress(body[1:])
    elif body[:1] == b"0":
        data = body[1:]
    else:
        data = zlib.decompress(body)
    if len(data) != n:
        raise ValueError("R blob: expected %d bytes, got %d" % (n, len(data)))
    return data


def decompress_file(data):
    """A whole .rds/.rdx file: gzip, xz, bzip2 or uncompressed serialization."""
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:6] == b"\xfd7zXZ\x00":
        return lzma.decompress(data)
    if data[:3] == b"BZh":
        return bz2.decompress(data)
    if data[:2] == b"X\n":
        return data
    return r_decompress(data)  # lazy-load style blob


def read_r_lazyload(prefix):
    """Returns {name: object} for the lazy-load DB PREFIX.rdb / PREFIX.rdx."""
    with open(prefix + ".rdx", "rb") as f:
        rdx = f.read()
    r = RReader(decompress_file(rdx))
    r.header()
    index = r.item()
    with open(prefix + ".rdb", "rb") as f:
        rdb = f.read()
    out = {}
    for name, (off, length) in index["variables"].items():
        rr = RReader(r_decompress(rdb[off:off + length]))
        rr.header()
        out[name] = rr.item()
    return out


# --------------------------------------------------------------------------------------------
# SWORD zText modules (Bible texts): ot/nt .bzs (block index), .bzv (verse index), .bzz (zlib)


def read_sword_ztext(module_dir):
    verses = []
    for t in ("ot", "nt"):
        base = os.path.join(module_dir, t)
        if not os.path.exists(base + ".bzz"):
            continue
        bzs = open(base + ".bzs", "rb").read()
        bzz = open(base + ".bzz", "rb").read()
        bzv = open(base + ".bzv", "rb").read()
        blocks = {}
        for i in range(len(bzs) // 12):
            off, size, _ = struct.unpack_from("<III", bzs, i * 12)
            if size:
                blocks[i] = zlib.decompress(bzz[off:off + size])
        for j in range(len(bzv) // 10):
            b, off, size = struct.unpack_from("<IIH", bzv, j * 10)
            if size and b in blocks:
                x = blocks[b][off:off + size].decode("utf-8", "replace")
                x = re.sub(r"<note[^>]*>.*?</note>", "", x, flags=re.S)
                x = re.sub(r"<title[^>]*>.*?</title>", "", x, flags=re.S)  # section headings
                x = re.sub(r"<[^>]+>", "", x)
                x = html.unescape(x).strip()
                verses.append(x)
            else:
                verses.append("")  # book / chapter boundary or empty slot
    return verses


def verses_to_paragraphs(verses, per_par=6):
    """Groups consecutive verses into paragraphs; empty slots (chapter starts) break them."""
    pars, cur = [], []
    for v in verses:
        if not v:
            if cur:
                pars.append(" ".join(cur))
                cur = []
            continue
        cur.append(v)
        if len(cur) >= per_par:
            pars.append(" ".join(cur))
            cur = []
    if cur:
        pars.append(" ".join(cur))
    return pars


# --------------------------------------------------------------------------------------------
# Generic text handling


def lines_to_paragraphs(lines):
    """Blank lines separate paragraphs; lines inside a paragraph are joined with spaces."""
    pars, cur = [], []
    for line in lines:
        s = line.strip()
        if not s:
            if cur:
                pars.append(" ".join(cur))
                cur = []
        else:
            cur.append(s)
    if cur:
        pars.append(" ".join(cur))
    return pars


def norm_ws(s):
    s = s.replace("\u00a0", " ").replace("\r", "")
    return re.sub(r"\s+", " ", s).strip()


def strip_gutenberg(text):
    m = re.search(r"\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG[^\n]*\n", text)
    if m:
        text = text[m.end():]
    m = re.search(r"\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG", text)
    if m:
        text = text[:m.start()]
    m = re.search(r"\n\s*End of (the )?Project Gutenberg", text)
    if m:
        text = text[:m.start()]
    return text


def read_dictd(path):
    """Entries of a dictd .dict.dz file (gzip-compatible) with the 00-database-* entries
    removed, using the .index file (base64 offsets) beside it."""
    data = gzip.open(path, "rb").read()
    index_path = path[:-len(".dict.dz")] + ".index"
    b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    def dec(s):
        v = 0
        for c in s:
            v = v * 64 + b64.index(c)
        return v

    entries = []
    for line in open(index_path, encoding="utf-8", errors="replace"):
        parts = line.rstrip("\n").split("\t")
        if len(parts) < 3:
            continue
        head, off, size = parts[0], dec(parts[1]), dec(parts[2])
        entries.append((off, size, head))
    entries.sort()
    out, seen = [], set()
    for off, size, head in entries:
        if head.startswith("00-database") or head.startswith("00database") or off in seen:
            continue
        seen.add(off)
        out.append(data[off:off + size].decode("utf-8", "replace"))
    return out


class HTMLText(html.parser.HTMLParser):
    """Visible text of an HTML page; block elements end paragraphs; <pre> keeps line breaks."""
    BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table",
             "blockquote", "dt", "dd", "hr", "title", "ul", "ol", "dl"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts = []
        self.skip = 0
        self.pre = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "head"):
            self.skip += 1
        elif tag == "pre":
            self.pre += 1
            self.parts.append("\n\n")
        elif tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style", "head"):
            self.skip = max(0, self.skip - 1)
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
            self.parts.append("\n\n")
        elif tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, d):
        if self.skip:
            return
        if self.pre:
            # keep code blocks as one paragraph with its own line structure flattened to " / "
            lines = [norm_ws(x) for x in d.split("\n")]
            self.parts.append(" \u2028".join(x for x in lines if x))
        else:
            self.parts.append(d)


def html_paragraphs(path):
    p = HTMLText()
    p.feed(open(path, encoding="utf-8", errors="replace").read())
    text = "".join(p.parts)
    pars = []
    for block in re.split(r"\n\s*\n", text):
        if "\u2028" in block:  # preformatted: keep line breaks
            s = "\n".join(norm_ws(x) for x in block.split("\u2028") if norm_ws(x))
        else:
            s = norm_ws(block)
        if s:
            pars.append(s)
    return pars


# --------------------------------------------------------------------------------------------
# Sources


def src_austen(root):
    db = os.path.join(root, "usr/lib/R/site-library/janeaustenr/data/Rdata")
    docs = []
    for name, obj in sorted(read_r_lazyload(db).items()):
        if isinstance(obj, list) and len(obj) > 1000 and all(isinstance(x, (str, type(None)))
                                                               for x in obj):
            pars = lines_to_paragraphs([x or "" for x in obj])
            docs.append(("janeaustenr:" + name, pars))
    return docs


def src_mobydick(root):
    db = os.path.join(root, "usr/lib/R/site-library/tokenizers/data/Rdata")
    objs = read_r_lazyload(db)
    text = objs["mobydick"]
    if isinstance(text, list):
        text = "\n".join(x or "" for x in text)
    text = strip_gutenberg(text)
    return [("tokenizers:mobydick", lines_to_paragraphs(text.split("\n")))]


def src_sword(root, module, name):
    d = os.path.join(root, "usr/share/sword/modules/texts/ztext", module)
    return [(name, verses_to_paragraphs(read_sword_ztext(d)))]


def src_dict(root, dictname, label):
    path = os.path.join(root, "usr/share/dictd/%s.dict.dz" % dictname)
    pars = []
    for entry in read_dictd(path):
        entry = entry.replace("{", "").replace("}", "")  # cross-reference braces
        entry = re.sub(r"(?<!\w)_([^_]+)_(?!\w)", r"\1", entry)  # _italics_
        lines = entry.split("\n")
        # First line is the headword: keep it as "Headword:" at the start of the entry.
        head = lines[0].strip()
        body = lines_to_paragraphs(lines[1:])
        if not body:
            continue
        body[0] = head + ": " + body[0] if head else body[0]
        pars.extend(body)
    return [(label, pars)]


def src_abs_guide(root):
    d = os.path.join(root, "usr/share/doc/abs-guide/html")
    docs = []
    for fn in sorted(os.listdir(d)):
        if fn.endswith(".html"):
            pars = html_paragraphs(os.path.join(d, fn))
            if pars:
                docs.append(("abs-guide:" + fn, pars))
    return docs


SOURCES = [
    ("r-cran-janeaustenr", src_austen),
    ("r-cran-tokenizers", src_mobydick),
    ("sword-text-kjv", lambda r: src_sword(r, "engKJV2006eb", "kjv")),
    ("sword-text-web", lambda r: src_sword(r, "engWEB2015eb", "web")),
    ("dict-devil", lambda r: src_dict(r, "devil", "devils-dictionary")),
    ("dict-jargon", lambda r: src_dict(r, "jargon", "jargon-file")),
    ("abs-guide", src_abs_guide),
]


def par_key(p):
    return hashlib.sha1(re.sub(r"\W+", " ", p.lower()).strip().encode()).hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root", help="directory the .deb files were unpacked into")
    ap.add_argument("outdir")
    ap.add_argument("--versions", help="JSON {package: version}", default=None)
    args = ap.parse_args()
    versions = json.load(open(args.versions)) if args.versions else {}
    os.makedirs(args.outdir, exist_ok=True)
    rng = random.Random(SPLIT_SEED)
    seen = set()
    stats = []
    train, valid = [], []
    num_dup = 0
    for pkg, fn in SOURCES:
        docs = fn(args.root)
        chars = 0
        for name, pars in docs:
            chunk, chunk_len = [], 0
            chunks = []
            for p in pars:
                p = p.strip() if "\n" in p else norm_ws(p)
                if not p:
                    continue
                if len(p) >= 40:  # short lines (chapter titles, "CHAPTER I") may repeat
                    k = par_key(p)
                    if k in seen:
                        num_dup += 1
                        continue
                    seen.add(k)
                chunk.append(p)
                chunk_len += len(p) + 2
                if chunk_len >= CHUNK_CHARS:
                    chunks.append(chunk)
                    chunk, chunk_len = [], 0
            if chunk:
                chunks.append(chunk)
            for c in chunks:
                text = "\n\n".join(c)
                chars += len(text)
                (valid if rng.random() < VALID_FRACTION else train).append(text)
        stats.append({"package": pkg, "version": versions.get(pkg, "?"), "documents": len(docs),
                      "chars": chars})
        print("%-22s %-14s docs=%-4d chars=%d" % (pkg, versions.get(pkg, "?"), len(docs), chars))
    for split, items in (("train", train), ("valid", valid)):
        with open(os.path.join(args.outdir, split + ".txt"), "w", encoding="utf-8") as f:
            f.write("\n\n\n".join(items) + "\n")
    summary = {
        "sources": stats,
        "duplicate_paragraphs_dropped": num_dup,
        "train_chunks": len(train),
        "valid_chunks": len(valid),
        "train_bytes": os.path.getsize(os.path.join(args.outdir, "train.txt")),
        "valid_bytes": os.path.getsize(os.path.join(args.outdir, "valid.txt")),
        "chunk_chars": CHUNK_CHARS,
        "valid_fraction": VALID_FRACTION,
        "split_seed": SPLIT_SEED,
    }
    json.dump(summary, open(os.path.join(args.outdir, "sources.json"), "w"), indent=1)
    print(json.dumps({k: v for k, v in summary.items() if k != "sources"}))


if __name__ == "__main__":
    sys.exit(main())
