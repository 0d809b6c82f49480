#!/usr/bin/env bash
# Builds test/native/kernels_selftest.cc with the addon's kernel sources and flags (no Node), runs
# it on this CPU, and — when an AArch64 cross compiler and qemu-user are installed
# (apt-get install g++-aarch64-linux-gnu qemu-user) — builds the NEON variant and runs it under qemu.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
flags="-O3 -std=c++17 -ffp-contract=off -Wno-psabi"
if [ "$(uname -m)" = x86_64 ]; then
  g++ $flags -c native/quantize_scalar.cc -o "$out/scalar.o"
  g++ $flags -mavx2 -c native/quantize_avx2.cc -o "$out/avx2.o"
  g++ $flags -mavx512f -mavx512bw -mavx512vl -mavx512dq -c native/quantize_avx512.cc -o "$out/avx512.o"
  g++ $flags test/native/kernels_selftest.cc "$out/scalar.o" "$out/avx2.o" "$out/avx512.o" -o "$out/selftest"
  "$out/selftest"
fi
if command -v aarch64-linux-gnu-g++ >/dev/null && command -v qemu-aarch64 >/dev/null; then
  aarch64-linux-gnu-g++ $flags native/quantize_scalar.cc native/quantize_neon.cc test/native/kernels_selftest.cc -o "$out/selftest-arm64"
  qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/selftest-arm64"
else
  echo "no AArch64 cross compiler or qemu-aarch64: NEON self-test skipped"
fi
rm -rf "$out"
