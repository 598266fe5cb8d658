#!/usr/bin/env bash
# Builds everything (CPU preset) and runs the embedded default model.
# Usage: scripts/serve.sh [extra mlx-serving generate flags]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset cpu >/dev/null
cmake --build --preset cpu -j "$(nproc)" --target mlx-serving
exec ./build/cpu/mlx-serving generate --model models/default \
  --prompt "It is a truth universally acknowledged, that" --max-tokens 64 --temperature 0.7 --seed 1 "$@"
