// x² and x³ of float32 elements (the tfjs backend's Pow by a scalar 2 or 3 on the wasm base:
// GELU's tanh form cubes its input, Pow's gradient squares it): f32(x·x), and f32(x·x·x) with the
// products in float64 — lib/tfjs/kernels/pow.ts's squareOrCube, the reference, whose JavaScript
// multiplies in float64 too. x·x is exact in float64; the cube rounds to 53 bits, then to 24.
#pragma once
#include <cstdint>

namespace fp4kit {

// out[i] = x[i]^exponent for i in [begin, end), exponent 2 or 3.
void powerFloat32(const float* x, int exponent, float* out, int64_t begin, int64_t end);

}  // namespace fp4kit
