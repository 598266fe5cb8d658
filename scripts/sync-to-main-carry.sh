#!/usr/bin/env bash
# The device tool sends the session's checkout (/work/main), not this worktree: copy this
# worktree's sources (and .deps/gpu) into main's ignored .deps/cuda-wt so a run can carry them.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
dst=/work/main/.deps/cuda-wt
rm -rf "$dst"
mkdir -p "$dst"
(cd "$src" && tar cf - --exclude=./build --exclude=./.git --exclude=./.deps/debs .) | (cd "$dst" && tar xf -)
du -sh "$dst"
