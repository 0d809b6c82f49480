// Column sums over leading rows in float32 (the tfjs backend's Sum over leading axes on the wasm
// base: every bias and LayerNorm gradient): out[i] = (((0 + x[0][i]) + x[1][i]) + …) with a float32
// rounding after each add, rows in increasing order — lib/tfjs/kernels/sum.ts's loop, which is the
// reference. Vectorised across columns only, so every column keeps its order and its bits.
#pragma once
#include <cstdint>

namespace fp4kit {

// Columns [colBegin, colEnd) of out (n columns) from x [rows][n].
void sumLeadingRows32(const float* x, int64_t rows, int64_t n, float* out, int64_t colBegin, int64_t colEnd);

}  // namespace fp4kit
