// The B operand of the decoded-operand product (matmulDecoded*) laid out for the SIMD variants:
// `width` columns side by side per k (panel[k·width + c] = B[col0 + c][k], 0 past nEnd) and each
// unit's block multipliers the same way, so one vector load serves `width` output columns. Plain
// scalar code, included by matmul_decoded_avx2.cc and matmul_decoded_avx512.cc.
//
// A panel covers one chunk of K (decodedChunkUnits units), not all of it: the kernels carry each
// output's float32 accumulator from chunk to chunk through `out` (the same operations in the same
// order). A panel of the whole K took K·width floats and, for AVX-512, as many doubles again: at
// K = 2^22 (a weight gradient's reduction over a large batch) 805 MB written per 16 columns, and
// the product of one row and one column 8.5 s where the scalar loop takes 0.1 s.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "matmul.h"

namespace fp4kit {

struct DecodedPanel {
  std::vector<float> values;  // chunk K × width
  std::vector<float> scales;  // chunk units × width
};

// Units per panel: 2048 k (a panel of 16 columns, floats and doubles, is 384 KiB: in L2).
constexpr int64_t kDecodedChunkK = 2048;
static inline int64_t decodedChunkUnits(int64_t unit) { return std::max<int64_t>(1, kDecodedChunkK / unit); }

// Units [j0, j1) of columns [col0, col0 + cols).
static inline void fillDecodedPanel(const DecodedOperand& b, int64_t col0, int64_t cols, int64_t width, int64_t unit, int64_t j0,
                                    int64_t j1, DecodedPanel& p) {
  const int64_t k0 = j0 * unit, kLen = (j1 - j0) * unit;
  p.values.assign(static_cast<size_t>(kLen * width), 0.0f);
  p.scales.assign(static_cast<size_t>((j1 - j0) * width), 0.0f);
  for (int64_t c = 0; c < cols; c++) {
    const float* row = b.values + (col0 + c) * b.paddedCols + k0;
    for (int64_t k = 0; k < kLen; k++) p.values[static_cast<size_t>(k * width + c)] = row[k];
    for (int64_t j = j0; j < j1; j++) {
      p.scales[static_cast<size_t>((j - j0) * width + c)] = b.blockScales[(col0 + c) * b.blocksPerRow + (j * unit) / b.blockSize];
    }
  }
}

}  // namespace fp4kit
