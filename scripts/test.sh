#!/usr/bin/env bash
# Runs the whole test suite on the CPU build: installs packages, checks the formatting, fetches
# pinned fixtures from npm, builds, and runs ctest. When nvcc is present it also builds the CUDA
# preset (the CUDA code must always compile) and runs its GPU tests, which skip on a machine
# without a GPU. Then the sanitizer job: the asan preset (AddressSanitizer + UndefinedBehavior-
# Sanitizer) builds the tests again and runs them but the slow golden/reference ones (the asan
# test preset in CMakePresets.json; docs/security.md says which and why); any report fails it.
# Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/check-format.sh
if [ -x scripts/fetch-fixtures.sh ]; then bash scripts/fetch-fixtures.sh; fi
cmake --preset cpu
cmake --build --preset cpu -j "$(nproc)"
if [ -z "${CUDACXX:-}" ] && ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi
if [ -n "${CUDACXX:-}" ] || command -v nvcc >/dev/null 2>&1; then
  echo "test.sh: nvcc found, building the cuda preset"
  cmake --preset cuda
  cmake --build --preset cuda -j "$(nproc)" --target mlxs_tests mlx-serving
  ./build/cuda/mlxs_tests --gtest_filter='*Cuda*' --gtest_brief=1
fi
ctest --preset cpu
cmake --preset asan
cmake --build --preset asan -j "$(nproc)"
ctest --preset asan
