#!/usr/bin/env bash
# Installs what the fuzzers need on top of scripts/setup.sh: clang 14 with its runtime libraries
# (libFuzzer, AddressSanitizer, UndefinedBehaviorSanitizer) and LLVM's OpenMP, all from Debian
# (apt-get, as root; skips what is present). Kept out of setup.sh so that the README's test
# command does not install a second compiler on every CI run. Usage: scripts/setup-fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PKGS=(clang-14 libclang-rt-14-dev libomp-14-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup-fuzz: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup-fuzz: all packages present"
fi
