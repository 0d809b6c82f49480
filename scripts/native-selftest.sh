#!/usr/bin/env bash
# Builds test/native/kernels_selftest.cc from CMakeLists.txt (FP4KIT_SELFTEST=ON: the addon's
# kernel sources and flags, no Node), runs it on this CPU, and — when an AArch64 cross compiler and
# qemu-user are installed (apt-get install g++-aarch64-linux-gnu qemu-user) — builds the NEON
# variant with cmake/aarch64-linux-gnu.cmake and runs it under qemu.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
build() { # <dir> [cmake args...]
  local dir=$1
  shift
  cmake -S . -B "$dir" -DFP4KIT_SELFTEST=ON "$@" >/dev/null
  cmake --build "$dir" -j 2 >/dev/null
}
if [ "$(uname -m)" = x86_64 ]; then
  build "$out/native"
  "$out/native/fp4kit_selftest"
fi
if command -v aarch64-linux-gnu-g++ >/dev/null && command -v qemu-aarch64 >/dev/null; then
  build "$out/arm64" -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
  qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/arm64/fp4kit_selftest"
else
  echo "no AArch64 cross compiler or qemu-aarch64: NEON self-test skipped"
fi
