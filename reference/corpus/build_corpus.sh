#!/usr/bin/env bash
# Builds the public-domain training corpus from Debian packages (issue 4 point 1).
#
#   bash reference/corpus/build_corpus.sh        # from the repo root; needs apt-get and python3
#
# Downloads the .deb files with `apt-get download` (no system-wide install), unpacks them with
# `dpkg -x` into .deps/corpus-debs/x, and writes .deps/corpus/{train,valid}.txt and
# .deps/corpus/sources.json (package versions, characters per source, split settings).
# Both folders are under .deps/, which .gitignore ignores. Sources and licences: models/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
PKGS=(r-cran-janeaustenr r-cran-tokenizers sword-text-kjv sword-text-web dict-devil dict-jargon
      abs-guide)
DEBS=.deps/corpus-debs
OUT=.deps/corpus
mkdir -p "$DEBS" "$OUT"
PY=python3
command -v "$PY" >/dev/null || PY=/usr/bin/python3

missing=()
for p in "${PKGS[@]}"; do
  ls "$DEBS"/"${p}"_*.deb >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "downloading: ${missing[*]}"
  # apt-get download writes into the current directory; as root it warns that the download
  # runs unsandboxed, which is harmless.
  (cd "$DEBS" && apt-get download "${missing[@]}")
fi

rm -rf "$DEBS/x"
mkdir -p "$DEBS/x"
versions="{"
sep=""
for p in "${PKGS[@]}"; do
  deb=$(ls "$DEBS"/"${p}"_*.deb | sort -V | tail -1)
  dpkg -x "$deb" "$DEBS/x"
  v=$(dpkg-deb -f "$deb" Version)
  versions+="$sep\"$p\": \"$v\""
  sep=", "
  echo "$p $v $(sha256sum "$deb" | cut -c1-16)"
done
versions+="}"
echo "$versions" > "$DEBS/versions.json"

"$PY" reference/corpus/extract_corpus.py "$DEBS/x" "$OUT" --versions "$DEBS/versions.json"
ls -l "$OUT"
