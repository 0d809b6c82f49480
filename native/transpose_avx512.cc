// The transpose (transpose.h) with AVX-512: 16 × 16 blocks of 4-byte elements through registers
// (transpose16_avx512.h), masked at a matrix's edges; the same work items and element moves as
// transposeMatrices32, so the same bytes.
#include <immintrin.h>

#include <algorithm>

#include "transpose.h"
#include "transpose16_avx512.h"

namespace fp4kit {

void transposeMatrices32Avx512(const uint32_t* src, int64_t rows, int64_t cols, uint32_t* dst, int64_t dstStride, int64_t itemBegin,
                               int64_t itemEnd) {
  for (int64_t w = itemBegin; w < itemEnd; w++) {
    const auto [from, to, c0, c1] = transposeItem(src, rows, cols, dst, dstStride, w);
    for (int64_t r0 = 0; r0 < rows; r0 += 16) {
      const int64_t rn = std::min<int64_t>(16, rows - r0);
      const __mmask16 rowLanes = static_cast<__mmask16>((1u << rn) - 1);
      for (int64_t cb = c0; cb < c1; cb += 16) {
        const int64_t cn = std::min<int64_t>(16, c1 - cb);
        const __mmask16 colLanes = static_cast<__mmask16>((1u << cn) - 1);
        __m512i r[16];
        for (int64_t i = 0; i < 16; i++) r[i] = i < rn ? _mm512_maskz_loadu_epi32(colLanes, from + (r0 + i) * cols + cb) : _mm512_setzero_si512();
        transpose16x16(r);
        for (int64_t c = 0; c < cn; c++) _mm512_mask_storeu_epi32(to + (cb + c) * dstStride + r0, rowLanes, r[c]);
      }
    }
  }
}

}  // namespace fp4kit
