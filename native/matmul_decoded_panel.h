// The B operand of the decoded-operand product (matmulDecoded*) laid out for the SIMD variants:
// `width` columns side by side per k (panel[k·width + c] = B[col0 + c][k], 0 past nEnd) and each
// unit's block multipliers the same way, so one vector load serves `width` output columns. Plain
// scalar code, included by matmul_decoded_avx2.cc and matmul_decoded_avx512.cc.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "matmul.h"

namespace fp4kit {

struct DecodedPanel {
  std::vector<float> values;  // K × width
  std::vector<float> scales;  // units × width
};

static inline void fillDecodedPanel(const DecodedOperand& b, int64_t col0, int64_t cols, int64_t width, int64_t unit, int64_t units,
                                    DecodedPanel& p) {
  const int64_t K = units * unit;
  p.values.assign(static_cast<size_t>(K * width), 0.0f);
  p.scales.assign(static_cast<size_t>(units * width), 0.0f);
  for (int64_t c = 0; c < cols; c++) {
    const float* row = b.values + (col0 + c) * b.paddedCols;
    for (int64_t k = 0; k < K; k++) p.values[static_cast<size_t>(k * width + c)] = row[k];
    for (int64_t j = 0; j < units; j++) {
      p.scales[static_cast<size_t>(j * width + c)] = b.blockScales[(col0 + c) * b.blocksPerRow + (j * unit) / b.blockSize];
    }
  }
}

}  // namespace fp4kit
