// FGMP dequantization (fgmp_dequantize.h), the plain scalar loop: each block's elements through
// the E2M1 / E4M3 value tables.
#include "fgmp_dequantize.h"

#include <algorithm>
#include <cstring>

#include "fgmp.h"

namespace fp4kit {
namespace {

bool isFp8Block(const uint8_t* mask, int64_t block) { return ((mask[block >> 3] >> (block & 7)) & 1) != 0; }

}  // namespace

int64_t fgmpFp8BlocksBefore(const uint8_t* mask, int64_t block) {
  int64_t n = 0;
  const int64_t words = block >> 6;
  for (int64_t w = 0; w < words; w++) {
    uint64_t bits;
    std::memcpy(&bits, mask + 8 * w, 8);
    n += __builtin_popcountll(bits);
  }
  for (int64_t b = words << 6; b < block; b++) n += isFp8Block(mask, b);
  return n;
}

void dequantizeFgmpRows(const FgmpStream& s, int64_t rowBegin, int64_t rowEnd, float* out) {
  const FgmpValueTables& t = fgmpValueTables();
  const int64_t blocksPerRow = (s.cols + kFgmpDequantizeBlock - 1) / kFgmpDequantizeBlock;
  const int64_t firstBlock = rowBegin * blocksPerRow;
  const int64_t fp8Before = fgmpFp8BlocksBefore(s.mask, firstBlock);
  const uint8_t* data = s.data + fp8Before * 16 + (firstBlock - fp8Before) * 8;
  const uint8_t* scales = s.scales + (firstBlock - fp8Before);
  for (int64_t r = rowBegin; r < rowEnd; r++) {
    float* row = out + (r - rowBegin) * s.cols;
    for (int64_t j = 0; j < blocksPerRow; j++) {
      const int64_t col0 = j * kFgmpDequantizeBlock;
      const int64_t count = std::min(kFgmpDequantizeBlock, s.cols - col0);
      float* o = row + col0;
      if (isFp8Block(s.mask, r * blocksPerRow + j)) {
        for (int64_t e = 0; e < count; e++) o[e] = t.e4m3[data[e]] * s.fp8Scale;
        data += 16;
      } else {
        const float total = s.tensorScale * t.e4m3[*scales++];
        for (int64_t e = 0; e < count; e++) o[e] = t.e2m1[(e & 1) == 0 ? data[e >> 1] & 0xf : data[e >> 1] >> 4] * total;
        data += 8;
      }
    }
  }
}

}  // namespace fp4kit
