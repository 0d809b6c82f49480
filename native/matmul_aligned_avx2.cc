// The aligned decoded-operand product (matmul_aligned.h) with AVX2: 4 rows × 16 columns per step,
// vpmaddwd + vpaddd per 2 k and 8 columns; the rest as matmulAlignedScalar (same operations per
// output, same bits).
#include <immintrin.h>

#include <algorithm>

#include "matmul_aligned.h"

namespace fp4kit {

void matmulAlignedAvx2(const DecodedOperand& a, const AlignedRows& aAligned, const DecodedOperand& b, const float* bias, float* out,
                       int64_t nBegin, int64_t nEnd) {
  constexpr int64_t kWidth = 16;
  constexpr int kRows = 4;
  const int64_t unit = aAligned.unit, units = aAligned.units, pairs = unit / 2, n = b.rows;
  const int32_t sumBits = 31 - unitBits(unit);
  static thread_local AlignedPanel kept;  // a fresh panel costs page faults on every call
  AlignedPanel& p = kept;
  alignas(32) float d[kWidth];
  for (int64_t col0 = nBegin; col0 < nEnd; col0 += kWidth) {
    const int64_t cols = std::min(kWidth, nEnd - col0);
    fillAlignedPanel(b, unit, col0, cols, kWidth, p);
    for (int64_t m0 = 0; m0 < a.rows; m0 += kRows) {
      const int64_t rows = std::min<int64_t>(kRows, a.rows - m0);
      int64_t row[kRows];  // rows past the end repeat the last one (computed, never stored)
      const int32_t* pa[kRows];
      for (int r = 0; r < kRows; r++) {
        row[r] = m0 + std::min<int64_t>(r, rows - 1);
        pa[r] = aAligned.rowPairs(row[r]);
      }
      alignas(32) float acc[kRows][kWidth] = {};
      for (int64_t j = 0; j < units; j++) {
        __m256i sum[kRows][2];
        for (int r = 0; r < kRows; r++) sum[r][0] = sum[r][1] = _mm256_setzero_si256();
        const int32_t* pb = p.pairs.data() + j * pairs * kWidth;
        for (int64_t q = 0; q < pairs; q++) {
          const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pb + q * kWidth));
          const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pb + q * kWidth + 8));
#pragma GCC unroll 4
          for (int r = 0; r < kRows; r++) {
            const __m256i av = _mm256_set1_epi32(pa[r][j * pairs + q]);
            sum[r][0] = _mm256_add_epi32(sum[r][0], _mm256_madd_epi16(av, b0));
            sum[r][1] = _mm256_add_epi32(sum[r][1], _mm256_madd_epi16(av, b1));
          }
        }
        const size_t unitAt = static_cast<size_t>(j);
        for (int r = 0; r < kRows; r++) {
          const size_t ja = static_cast<size_t>(row[r] * units + j);
          const int32_t spanA = aAligned.spans[ja], expA = aAligned.exps[ja];
          const bool allExact = spanA + p.maxSpan[unitAt] <= sumBits && expA + p.minExp[unitAt] >= kAlignedMinExp &&
                                expA + p.maxExp[unitAt] <= kAlignedMaxExp;
          const __m256 sa = _mm256_set1_ps(a.blockScales[row[r] * a.blocksPerRow + (j * unit) / a.blockSize]);
          for (int t = 0; t < 2; t++) {
            const size_t at = static_cast<size_t>(j * kWidth + t * 8);
            const __m256i expB = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.exps.data() + at));
            const __m256 power = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(expB, _mm256_set1_epi32(expA + 127)), 23));
            _mm256_store_ps(d + t * 8, _mm256_mul_ps(_mm256_cvtepi32_ps(sum[r][t]), power));
          }
          if (!allExact) {
            for (int64_t c = 0; c < cols; c++) {
              const size_t at = static_cast<size_t>(j * kWidth + c);
              if (alignedPairExact(spanA, expA, p.spans[at], p.exps[at], unit)) continue;
              d[c] = static_cast<float>(referenceUnitDot(a.values + row[r] * a.paddedCols + j * unit, b.values + (col0 + c) * b.paddedCols + j * unit, unit));
            }
          }
          for (int t = 0; t < 2; t++) {
            const size_t at = static_cast<size_t>(j * kWidth + t * 8);
            const __m256 s = _mm256_mul_ps(sa, _mm256_loadu_ps(p.scales.data() + at));
            const __m256 partial = _mm256_mul_ps(_mm256_load_ps(d + t * 8), s);
            _mm256_store_ps(acc[r] + t * 8, _mm256_add_ps(_mm256_load_ps(acc[r] + t * 8), partial));
          }
        }
      }
      for (int r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++) out[(m0 + r) * n + col0 + c] = bias ? acc[r][c] + bias[col0 + c] : acc[r][c];
      }
    }
  }
  releaseIfLarge(p);
}

}  // namespace fp4kit
