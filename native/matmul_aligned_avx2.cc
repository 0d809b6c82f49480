// The aligned decoded-operand product (matmul_aligned.h) with AVX2: 4 rows × 16 columns per step,
// vpmaddwd + vpaddd per 2 k and 8 columns, the whole-block power-of-two epilogue and split row-units
// as the AVX-512 kernel; every output's operations are matmulAlignedScalar's, so the bits are the
// reference's.
#include <immintrin.h>

#include <algorithm>
#include <climits>
#include <cmath>

#include "matmul_aligned.h"

namespace fp4kit {

namespace {

inline int32_t horizontalMax(__m256i v) {
  __m128i x = _mm_max_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  x = _mm_max_epi32(x, _mm_shuffle_epi32(x, 0x4e));
  return _mm_cvtsi128_si32(_mm_max_epi32(x, _mm_shuffle_epi32(x, 0xb1)));
}

inline int32_t horizontalMin(__m256i v) {
  __m128i x = _mm_min_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  x = _mm_min_epi32(x, _mm_shuffle_epi32(x, 0x4e));
  return _mm_cvtsi128_si32(_mm_min_epi32(x, _mm_shuffle_epi32(x, 0xb1)));
}

// alignRowUnit eight lanes at a time for 8·Chunks values without Inf, NaN or subnormals (−1: the
// scalar one decides): the same top, bottom and integers (the AVX-512 file's method). Chunks is a
// constant so the vectors stay out of stack arrays.
template <int Chunks>
inline int32_t alignUnitVector(const float* values, int16_t* ints, int32_t& exp) {
  __m256i bits[Chunks], field[Chunks], sig[Chunks], zero[Chunks];
  __m256i magnitudeMax = _mm256_setzero_si256(), lowMin = _mm256_set1_epi32(INT32_MAX), special = _mm256_setzero_si256();
  for (int c = 0; c < Chunks; c++) {
    bits[c] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(values + 8 * c));
    const __m256i magnitude = _mm256_and_si256(bits[c], _mm256_set1_epi32(0x7fffffff));
    field[c] = _mm256_srli_epi32(magnitude, 23);
    zero[c] = _mm256_cmpeq_epi32(magnitude, _mm256_setzero_si256());
    special = _mm256_or_si256(special, _mm256_or_si256(_mm256_cmpeq_epi32(field[c], _mm256_set1_epi32(0xff)),
                                                       _mm256_andnot_si256(zero[c], _mm256_cmpeq_epi32(field[c], _mm256_setzero_si256()))));
    sig[c] = _mm256_or_si256(_mm256_and_si256(bits[c], _mm256_set1_epi32(0x7fffff)), _mm256_set1_epi32(0x800000));
    const __m256i lowest = _mm256_and_si256(sig[c], _mm256_sub_epi32(_mm256_setzero_si256(), sig[c]));
    const __m256i lowestExp = _mm256_srli_epi32(_mm256_castps_si256(_mm256_cvtepi32_ps(lowest)), 23);  // ctz + 127
    const __m256i low = _mm256_blendv_epi8(_mm256_add_epi32(field[c], lowestExp), _mm256_set1_epi32(INT32_MAX), zero[c]);
    lowMin = _mm256_min_epi32(lowMin, low);
    magnitudeMax = _mm256_max_epi32(magnitudeMax, magnitude);
  }
  if (!_mm256_testz_si256(special, special)) return -1;
  exp = 0;
  const int32_t top = (horizontalMax(magnitudeMax) >> 23) - 126;
  if (top == -126) {
    std::memset(ints, 0, 16 * Chunks);
    return 0;
  }
  const int32_t low = horizontalMin(lowMin) - 277;
  if (top - low > kAlignedMaxSpan) return kUnaligned;
  exp = low;
  __m256i v[Chunks];
  for (int c = 0; c < Chunks; c++) {
    const __m256i shift = _mm256_sub_epi32(_mm256_set1_epi32(low + 150), field[c]);
    __m256i magnitude = _mm256_andnot_si256(zero[c], _mm256_srlv_epi32(sig[c], shift));
    v[c] = _mm256_blendv_epi8(magnitude, _mm256_sub_epi32(_mm256_setzero_si256(), magnitude), _mm256_srai_epi32(bits[c], 31));
  }
  for (int c = 0; c < Chunks; c += 2) {
    // packs interleaves 128-bit halves; the permute puts the 16 values back in order (|v| < 2^15: no saturation)
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packs_epi32(v[c], v[c + 1]), 0xd8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(ints + 8 * c), packed);
  }
  return top - low;
}

}  // namespace

int32_t alignRowUnitAvx2(const float* values, int64_t count, int16_t* ints, int32_t& exp) {
  const int32_t span = count == 32 ? alignUnitVector<4>(values, ints, exp) : count == 16 ? alignUnitVector<2>(values, ints, exp) : -1;
  return span >= 0 ? span : alignRowUnit(values, count, ints, exp);
}

namespace {

// D of a split row-unit of a against the 16 columns of the panel (splitDot of the AVX-512 kernel),
// into d; lanes outside its rule take the reference's float64 sum.
void splitLanes(const __m256i hiSum[2], const DecodedOperand& a, const AlignedRows& aAligned, int32_t split, const DecodedOperand& b,
                const AlignedPanel& p, int64_t width, int64_t row, int64_t j, int64_t col0, int64_t cols, int32_t sumBits, float* d) {
  const int64_t unit = aAligned.unit, pairs = unit / 2;
  const int32_t* form = aAligned.splitForms.data() + 4 * split;
  const int32_t expHi = form[0], spanHi = form[1], expLo = form[2], spanLo = form[3];
  const int32_t* lo = aAligned.splitLoPairs.data() + split * pairs;
  __m256i loSum[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
  for (int64_t q = 0; q < pairs; q++) {
    const __m256i x = _mm256_set1_epi32(lo[q]);
    for (int t = 0; t < 2; t++)
      loSum[t] = _mm256_add_epi32(loSum[t], _mm256_madd_epi16(x, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.pairs.data() + (j * pairs + q) * width + t * 8))));
  }
  const __m256d shift = _mm256_set1_pd(std::ldexp(1.0, expHi - expLo));
  const int32_t spanLimit = std::min({sumBits - spanHi, sumBits - spanLo, 33 - (expHi - expLo)});
  for (int t = 0; t < 2; t++) {
    for (int h = 0; h < 2; h++) {
      const __m128i hi4 = h ? _mm256_extracti128_si256(hiSum[t], 1) : _mm256_castsi256_si128(hiSum[t]);
      const __m128i lo4 = h ? _mm256_extracti128_si256(loSum[t], 1) : _mm256_castsi256_si128(loSum[t]);
      const __m128i e4 = _mm_add_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p.exps.data() + j * width + t * 8 + h * 4)), _mm_set1_epi32(expLo + 1023));
      const __m256d scale = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_cvtepi32_epi64(e4), 52));
      const __m256d sum = _mm256_add_pd(_mm256_mul_pd(_mm256_cvtepi32_pd(hi4), shift), _mm256_cvtepi32_pd(lo4));
      _mm_storeu_ps(d + t * 8 + h * 4, _mm256_cvtpd_ps(_mm256_mul_pd(sum, scale)));
    }
  }
  for (int64_t c = 0; c < cols; c++) {
    if (p.spans[static_cast<size_t>(j * width + c)] <= spanLimit) continue;
    d[c] = static_cast<float>(referenceUnitDot(a.values + row * a.paddedCols + j * unit, b.values + (col0 + c) * b.paddedCols + j * unit, unit));
  }
}

}  // namespace

void matmulAlignedAvx2(const DecodedOperand& a, const AlignedRows& aAligned, const DecodedOperand& b, const float* bias, float* out,
                       int64_t nBegin, int64_t nEnd) {
  constexpr int64_t kWidth = 16;
  constexpr int kRows = kAlignedAvx2Rows;
  const int64_t unit = aAligned.unit, units = aAligned.units, pairs = unit / 2, n = b.rows;
  const int32_t sumBits = 31 - unitBits(unit);
  AlignedScratch& scratch = threadAlignedScratch();
  AlignedPanel& p = scratch.panel;
  const AlignedRowBlocks& rowBlocks = rowBlocksFor(a, aAligned, kRows, scratch.blocks);
  alignas(32) float d[kWidth];
  for (int64_t col0 = nBegin; col0 < nEnd; col0 += kWidth) {
    const int64_t cols = std::min(kWidth, nEnd - col0);
    // The unit's vector alignment inlined into the fill (a call per row-unit cost as much as the work).
    fillAlignedPanelWith(b, unit, col0, cols, kWidth, p, [](const float* values, int64_t count, int16_t* ints, int32_t& exp) {
      const int32_t span = count == 32 ? alignUnitVector<4>(values, ints, exp) : count == 16 ? alignUnitVector<2>(values, ints, exp) : -1;
      return span >= 0 ? span : alignRowUnit(values, count, ints, exp);
    });
    for (int64_t m0 = 0; m0 < a.rows; m0 += kRows) {
      const int64_t rows = std::min<int64_t>(kRows, a.rows - m0);
      const AlignedRowStep<kRows> step(aAligned, m0, rows);
      const int64_t* row = step.row;
      const int32_t* const* pa = step.pairs;
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
        if (rowBlockFast(rowBlocks.blocks[static_cast<size_t>((m0 / kRows) * units + j)], p, j, sumBits)) {
          // Power-of-two epilogue for every row (powerScalesExact): (f32(Σ)·laneFactor)·2^rowExp.
          for (int r = 0; r < kRows; r++) {
            const __m256 rowFactor = _mm256_set1_ps(rowBlocks.rowFactors[static_cast<size_t>(row[r] * units + j)]);
            for (int t = 0; t < 2; t++) {
              const __m256 x = _mm256_mul_ps(_mm256_cvtepi32_ps(sum[r][t]), _mm256_loadu_ps(p.laneFactors.data() + j * kWidth + t * 8));
              _mm256_store_ps(acc[r] + t * 8, _mm256_add_ps(_mm256_load_ps(acc[r] + t * 8), _mm256_mul_ps(x, rowFactor)));
            }
          }
          continue;
        }
        const size_t unitAt = static_cast<size_t>(j);
        for (int r = 0; r < kRows; r++) {
          const size_t ja = static_cast<size_t>(row[r] * units + j);
          const int32_t spanA = aAligned.spans[ja], expA = aAligned.exps[ja];
          const bool allExact = spanA + p.maxSpan[unitAt] <= sumBits && expA + p.minExp[unitAt] >= kAlignedMinExp &&
                                expA + p.maxExp[unitAt] <= kAlignedMaxExp;
          const __m256 sa = _mm256_set1_ps(a.blockScales[row[r] * a.blocksPerRow + (j * unit) / a.blockSize]);
          const int32_t split = spanA == kUnaligned ? aAligned.split[ja] : -1;
          if (split >= 0) {
            splitLanes(sum[r], a, aAligned, split, b, p, kWidth, row[r], j, col0, cols, sumBits, d);
          } else {
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
