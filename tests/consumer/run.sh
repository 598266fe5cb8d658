#!/usr/bin/env bash
# Installs the build in BUILD_DIR into a temporary prefix, builds tests/consumer against it with
# find_package(mlxs), and runs it on the default model. Usage: run.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
work=$(mktemp -d /tmp/mlxs_consumer.XXXXXX)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
# Only the public headers are installed: nothing from src/.
test -f "$work/prefix/include/mlxs/engine.h"
! find "$work/prefix/include" -name '*.h' | grep -v '/include/mlxs/' | grep -q .
cmake -S "$src/tests/consumer" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix" > "$work/configure.log"
cmake --build "$work/build" > "$work/build.log" || { cat "$work/build.log"; exit 1; }
"$work/build/consumer" "$src/models/default"
