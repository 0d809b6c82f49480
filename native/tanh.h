// tanhf as tfjs's wasm backend computes it (musl's tanhf and expm1f, float32 arithmetic
// throughout), for the tfjs backend's Tanh on the wasm base: the base's bits, faster. The
// reference is lib/tfjs/tanh.ts (the same code, each float operation rounded with Math.fround);
// built with -ffp-contract=off, so every operation stays one float32 operation.
#pragma once
#include <cstdint>

namespace fp4kit {

// out[i] = tanhf(x[i]) for i in [begin, end): the plain scalar loop (tanh.cc) and the AVX-512 one
// (tanh_avx512.cc: 16 lanes, every branch computed and selected), in the quantize tables as tanh32.
void tanhFloat32(const float* x, float* out, int64_t begin, int64_t end);
void tanhFloat32Avx512(const float* x, float* out, int64_t begin, int64_t end);

}  // namespace fp4kit
