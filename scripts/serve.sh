#!/usr/bin/env bash
# Installs the Debian packages, builds the CPU preset and serves the embedded default model over
# the OpenAI- and Anthropic-compatible HTTP API (Ctrl-C stops it gracefully).
# Usage: scripts/serve.sh [extra `mlx-serving serve` flags, e.g. --port 9000 --api-key KEY]
# Environment: MLXS_HOST / MLXS_PORT pick the address (default 127.0.0.1:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset cpu >/dev/null
cmake --build --preset cpu -j "$(nproc)" --target mlx-serving
HOST=${MLXS_HOST:-127.0.0.1}
PORT=${MLXS_PORT:-8080}
cat <<MSG

mlx-serving: serving models/default on http://$HOST:$PORT  (Ctrl-C to stop). Try:

  curl http://$HOST:$PORT/v1/chat/completions -H 'Content-Type: application/json' \\
    -d '{"model": "default", "messages": [{"role": "user", "content": "Call me Ishmael."}], "max_tokens": 40}'

  curl -N http://$HOST:$PORT/v1/completions -H 'Content-Type: application/json' \\
    -d '{"model": "default", "prompt": "It is a truth universally acknowledged, that", "max_tokens": 40, "stream": true}'

MSG
exec ./build/cpu/mlx-serving serve --model models/default --host "$HOST" --port "$PORT" "$@"
