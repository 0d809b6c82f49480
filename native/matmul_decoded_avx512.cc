// The decoded-operand product (float32 'none' products of the tfjs backend, FGMP/FP8 fallbacks) with
// AVX-512: the reference order of matmulDecodedScalar (per output: float64 sum of each unit's
// products in k order, then f32, times the f32 block multiplier, added to an f32 accumulator),
// vectorized across 16 output columns × 8 rows, so every output's operations are the scalar ones.
// K runs in chunks (matmul_decoded_panel.h); between chunks each accumulator waits in `out`.
#include <immintrin.h>

#include "matmul_decoded_panel.h"

namespace fp4kit {

void matmulDecodedAvx512(const DecodedOperand& a, const DecodedOperand& b, const float* bias, float* out, int64_t nBegin, int64_t nEnd) {
  constexpr int64_t kWidth = 16, kRows = 8;
  // A range of a few columns would fill most of each panel's lanes with zeros (at n = 1 the scalar
  // loop is 5× faster): the reference runs it, with the same bits.
  if (nEnd - nBegin < kWidth / 4) return matmulDecodedScalar(a, b, bias, out, nBegin, nEnd);
  const int64_t unit = std::min(a.blockSize, b.blockSize);
  const int64_t units = (a.cols + unit - 1) / unit;
  const int64_t chunkUnits = decodedChunkUnits(unit);
  const int64_t n = b.rows;
  DecodedPanel panel;
  std::vector<double> wide;  // the panel's values as float64, converted once for all rows
  std::vector<double> rowsWide;
  for (int64_t col0 = nBegin; col0 < nEnd; col0 += kWidth) {
    const int64_t cols = std::min(kWidth, nEnd - col0);
    const __mmask16 lanes = static_cast<__mmask16>((1u << cols) - 1);
    for (int64_t j0 = 0; j0 < units; j0 += chunkUnits) {
      const int64_t j1 = std::min(units, j0 + chunkUnits);
      const int64_t k0 = j0 * unit, kLen = (j1 - j0) * unit;
      fillDecodedPanel(b, col0, cols, kWidth, unit, j0, j1, panel);
      wide.assign(panel.values.begin(), panel.values.end());
      for (int64_t m0 = 0; m0 < a.rows; m0 += kRows) {
        const int64_t rows = std::min(kRows, a.rows - m0);
        // This chunk of these rows of A as float64 (one broadcast load per row and k in the loop below).
        rowsWide.resize(static_cast<size_t>(kRows * kLen));
        for (int64_t r = 0; r < rows; r++)
          for (int64_t k = 0; k < kLen; k++) rowsWide[static_cast<size_t>(r * kLen + k)] = a.values[(m0 + r) * a.paddedCols + k0 + k];
        __m512 acc[kRows];
        for (int r = 0; r < kRows; r++)
          acc[r] = j0 == 0 || r >= rows ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(lanes, out + (m0 + r) * n + col0);
        for (int64_t j = j0; j < j1; j++) {
          __m512d lo[kRows], hi[kRows];
          for (int r = 0; r < kRows; r++) lo[r] = hi[r] = _mm512_setzero_pd();
          for (int64_t i = 0; i < unit; i++) {
            const int64_t k = (j - j0) * unit + i;
            const double* bk = wide.data() + k * kWidth;
            const __m512d b0 = _mm512_loadu_pd(bk);
            const __m512d b1 = _mm512_loadu_pd(bk + 8);
            for (int r = 0; r < kRows; r++) {
              if (r >= rows) break;
              const __m512d av = _mm512_set1_pd(rowsWide[static_cast<size_t>(r * kLen + k)]);
              // A product of two floats is exact in float64, so the fused multiply-add rounds
              // once, exactly as the reference's d += a·b does.
              lo[r] = _mm512_fmadd_pd(av, b0, lo[r]);
              hi[r] = _mm512_fmadd_pd(av, b1, hi[r]);
            }
          }
          const __m512 bs = _mm512_loadu_ps(panel.scales.data() + (j - j0) * kWidth);
          // These rows' multipliers of a's block holding unit j (one division per unit, not per row).
          const float* aScales = a.blockScales + m0 * a.blocksPerRow + (j * unit) / a.blockSize;
          for (int r = 0; r < kRows; r++) {
            if (r >= rows) break;
            const __m512 s = _mm512_mul_ps(_mm512_set1_ps(aScales[r * a.blocksPerRow]), bs);
            const __m512 d = _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(lo[r])), _mm512_cvtpd_ps(hi[r]), 1);
            acc[r] = _mm512_add_ps(acc[r], _mm512_mul_ps(d, s));
          }
        }
        const bool last = j1 == units;
        for (int r = 0; r < kRows; r++) {
          if (r >= rows) break;
          __m512 v = acc[r];
          if (last && bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(lanes, bias + col0));
          _mm512_mask_storeu_ps(out + (m0 + r) * n + col0, lanes, v);
        }
      }
    }
  }
}

}  // namespace fp4kit
