#!/usr/bin/env bash
# Unpacks the Debian packages the GPU machine lacks (headers and libraries of PCRE2, utf8proc,
# xxhash, CLI11, valijson) into the ignored folder .deps/gpu/, so a device call can carry them and
# configure with -DMLXS_DEPS_PREFIX=$PWD/.deps/gpu. Run it here, from the repo root. Idempotent.
set -euo pipefail
PKGS=(libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3 libutf8proc-dev libutf8proc2
      libcli11-dev libxxhash-dev libxxhash0 libvalijson-dev)
dest=.deps/gpu
mkdir -p "$dest" .deps/debs
(cd .deps/debs && for p in "${PKGS[@]}"; do ls "${p}"_*.deb >/dev/null 2>&1 || apt-get download "$p"; done)
for f in .deps/debs/*.deb; do dpkg -x "$f" "$dest"; done
echo "carry-deps: unpacked ${#PKGS[@]} packages into $dest"
