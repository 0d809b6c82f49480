// The decoded-operand product with AVX2: matmulDecodedScalar's order (float64 unit sums in k order,
// f32 rounding, f32 block multiplier, f32 accumulator) vectorized across 8 output columns × 4 rows.
// K runs in chunks (matmul_decoded_panel.h); between chunks each accumulator waits in `out`.
#include <immintrin.h>

#include "matmul_decoded_panel.h"

namespace fp4kit {

void matmulDecodedAvx2(const DecodedOperand& a, const DecodedOperand& b, const float* bias, float* out, int64_t nBegin, int64_t nEnd) {
  constexpr int64_t kWidth = 8, kRows = 4;
  // A range of a few columns would fill most of each panel's lanes with zeros (at n = 1 the scalar
  // loop is 5× faster): the reference runs it, with the same bits.
  if (nEnd - nBegin < kWidth / 4) return matmulDecodedScalar(a, b, bias, out, nBegin, nEnd);
  const int64_t unit = std::min(a.blockSize, b.blockSize);
  const int64_t units = (a.cols + unit - 1) / unit;
  const int64_t chunkUnits = decodedChunkUnits(unit);
  const int64_t n = b.rows;
  DecodedPanel panel;
  for (int64_t col0 = nBegin; col0 < nEnd; col0 += kWidth) {
    const int64_t cols = std::min(kWidth, nEnd - col0);
    for (int64_t j0 = 0; j0 < units; j0 += chunkUnits) {
      const int64_t j1 = std::min(units, j0 + chunkUnits);
      const int64_t k0 = j0 * unit;
      fillDecodedPanel(b, col0, cols, kWidth, unit, j0, j1, panel);
      for (int64_t m0 = 0; m0 < a.rows; m0 += kRows) {
        const int64_t rows = std::min(kRows, a.rows - m0);
        __m256 acc[kRows];
        for (int r = 0; r < kRows; r++) {
          alignas(32) float carried[8] = {};
          if (j0 > 0 && r < rows)
            for (int64_t c = 0; c < cols; c++) carried[c] = out[(m0 + r) * n + col0 + c];
          acc[r] = _mm256_load_ps(carried);
        }
        for (int64_t j = j0; j < j1; j++) {
          __m256d lo[kRows], hi[kRows];
          for (int r = 0; r < kRows; r++) lo[r] = hi[r] = _mm256_setzero_pd();
          for (int64_t i = 0; i < unit; i++) {
            const int64_t k = j * unit + i;
            const float* bk = panel.values.data() + (k - k0) * kWidth;
            const __m256d b0 = _mm256_cvtps_pd(_mm_loadu_ps(bk));
            const __m256d b1 = _mm256_cvtps_pd(_mm_loadu_ps(bk + 4));
            for (int r = 0; r < kRows; r++) {
              if (r >= rows) break;
              const __m256d av = _mm256_set1_pd(static_cast<double>(a.values[(m0 + r) * a.paddedCols + k]));
              lo[r] = _mm256_add_pd(lo[r], _mm256_mul_pd(av, b0));
              hi[r] = _mm256_add_pd(hi[r], _mm256_mul_pd(av, b1));
            }
          }
          const __m256 bs = _mm256_loadu_ps(panel.scales.data() + (j - j0) * kWidth);
          // These rows' multipliers of a's block holding unit j (one division per unit, not per row).
          const float* aScales = a.blockScales + m0 * a.blocksPerRow + (j * unit) / a.blockSize;
          for (int r = 0; r < kRows; r++) {
            if (r >= rows) break;
            const __m256 s = _mm256_mul_ps(_mm256_set1_ps(aScales[r * a.blocksPerRow]), bs);
            const __m256 d = _mm256_set_m128(_mm256_cvtpd_ps(hi[r]), _mm256_cvtpd_ps(lo[r]));
            acc[r] = _mm256_add_ps(acc[r], _mm256_mul_ps(d, s));
          }
        }
        const bool last = j1 == units;
        for (int r = 0; r < kRows; r++) {
          if (r >= rows) break;
          alignas(32) float lanes[8];
          _mm256_store_ps(lanes, acc[r]);
          float* o = out + (m0 + r) * n + col0;
          for (int64_t c = 0; c < cols; c++) o[c] = last && bias ? lanes[c] + bias[col0 + c] : lanes[c];
        }
      }
    }
  }
}

}  // namespace fp4kit
