#!/usr/bin/env bash
# Unpacks the Debian packages the GPU machine lacks (PCRE2 and utf8proc headers and libraries,
# CLI11) into the ignored folder .deps/gpu/, so a `run` call can carry them and configure with
#   cmake --preset cuda -DMLXS_DEPS_PREFIX=$PWD/.deps/gpu
# Run it here (where apt-get works), from the repo root. Idempotent.
set -euo pipefail
PKGS=(libpcre2-dev libpcre2-8-0 libutf8proc-dev libutf8proc2 libcli11-dev)
dest=.deps/gpu
mkdir -p "$dest" .deps/debs
cd .deps/debs
for p in "${PKGS[@]}"; do
  ls "${p}"_*.deb >/dev/null 2>&1 || apt-get download "$p"
done
cd ../..
for f in .deps/debs/*.deb; do dpkg -x "$f" "$dest"; done
echo "carry-deps: unpacked ${#PKGS[@]} packages into $dest"
ls "$dest/usr/include" | head
