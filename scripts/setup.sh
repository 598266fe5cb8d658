#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need (apt-get, as root; skips what is
# present). Usage: scripts/setup.sh
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  nlohmann-json3-dev libfmt-dev libspdlog-dev libpcre2-dev libutf8proc-dev
  libyaml-cpp-dev libcli11-dev libboost1.81-dev libxxhash-dev
  libgtest-dev libgmock-dev libbenchmark-dev librapidcheck-dev libstb-dev
  libvalijson-dev  # JSON Schema validator of the structured-output tests (header-only)
  libopenblas-dev  # bench_linear's comparison only (optional in CMake)
  curl python3 zlib1g-dev
  clang-format  # scripts/check-format.sh (clang-format 14 on Debian 12)
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node and npm may come from outside Debian (a newer node bundles its own npm): check the commands.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi
