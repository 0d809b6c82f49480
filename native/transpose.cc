// The transpose loop (transpose.h): per work item, one matrix's tile of output rows, walked
// source-tile by source-tile so both tiles stay in L1.
#include "transpose.h"

#include <algorithm>
#include <cstring>

namespace fp4kit {

void transposeMatrices32(const uint32_t* src, int64_t rows, int64_t cols, uint32_t* dst, int64_t dstStride, int64_t itemBegin,
                         int64_t itemEnd) {
  for (int64_t w = itemBegin; w < itemEnd; w++) {
    const auto [from, to, c0, c1] = transposeItem(src, rows, cols, dst, dstStride, w);
    for (int64_t r0 = 0; r0 < rows; r0 += kTransposeTile) {
      const int64_t r1 = std::min(rows, r0 + kTransposeTile);
      for (int64_t c = c0; c < c1; c++) {
        uint32_t* row = to + c * dstStride;
        for (int64_t r = r0; r < r1; r++) row[r] = from[r * cols + c];
      }
    }
  }
}

void swapMiddleAxes32(const uint32_t* src, int64_t b, int64_t c, int64_t d, uint32_t* dst, int64_t itemBegin, int64_t itemEnd) {
  for (int64_t w = itemBegin; w < itemEnd; w++) {
    const int64_t a = w / b, bi = w % b;
    const uint32_t* from = src + w * c * d;
    uint32_t* to = dst + (a * c * b + bi) * d;
    for (int64_t ci = 0; ci < c; ci++) std::memcpy(to + ci * b * d, from + ci * d, static_cast<size_t>(d) * 4);
  }
}

}  // namespace fp4kit
