#!/usr/bin/env bash
# Rebuilds tests/fixtures/tokenizer/corpus/prose.txt: about 1 MB of public-domain prose (Moby Dick,
# Project Gutenberg text) taken from the Debian package r-cran-tokenizers (its R data set
# `mobydick`), without installing anything: apt-get download + dpkg -x into a temp folder, then a
# stdlib-Python reader for R's lazy-load database. Usage: reference/tokenizer_corpus.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=tests/fixtures/tokenizer/corpus/prose.txt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download -q r-cran-tokenizers >/dev/null 2>&1 && dpkg -x r-cran-tokenizers_*.deb x)
python3 - "$tmp/x/usr/lib/R/site-library/tokenizers/data/Rdata.rdb" "$out" <<'PY'
import struct, sys, zlib

class Reader:
    def __init__(self, b): self.b, self.i = b, 0
    def int(self):
        v = struct.unpack('>i', self.b[self.i:self.i + 4])[0]; self.i += 4; return v
    def header(self):
        assert self.b[:2] == b'X\n'; self.i = 2; ver = self.int(); self.int(); self.int()
        if ver == 3: n = self.int(); self.i += n
    def item(self):
        flags = self.int(); t = flags & 0xff; has_attr = flags & (1 << 9)
        if t == 254: return None
        if t == 9:
            n = self.int()
            if n == -1: return None
            v = self.b[self.i:self.i + n]; self.i += n; return v.decode('utf-8', 'replace')
        if t in (16, 19):
            n = self.int()
            return [self.item() for _ in range(n)]  # attributes (if any) follow; not needed
        raise ValueError(t)

rdb, out = open(sys.argv[1], 'rb').read(), sys.argv[2]
pos, best = 0, ''
while pos < len(rdb):  # blobs: 4-byte big-endian length + zlib stream
    z = zlib.decompressobj(); data = z.decompress(rdb[pos + 4:])
    used = len(rdb) - pos - 4 - len(z.unused_data)
    r = Reader(data); r.header()
    try: v = r.item()
    except Exception: v = None
    if isinstance(v, list) and v and all(isinstance(x, (str, type(None))) for x in v):
        text = '\n'.join(x or '' for x in v)
        if len(text) > len(best): best = text
    pos += 4 + used
# Keep about 1 MB, cut at a line end; normalise line ends to \n.
best = best.replace('\r\n', '\n').lstrip('\ufeff')
limit = 1_050_000
if len(best.encode()) > limit:
    cut = best.encode()[:limit].decode('utf-8', 'ignore')
    best = cut[:cut.rfind('\n') + 1]
open(out, 'w', encoding='utf-8', newline='\n').write(best)
print(f'{out}: {len(best.encode())} bytes, {best.count(chr(10))} lines')
PY
