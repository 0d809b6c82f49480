// The aligned decoded-operand product (matmul_aligned.h) with AVX-512 VNNI: 6 rows × 32 columns per
// step, one vpdpwssd per 2 k and 16 columns, each unit's int32 sums turned into D by one convert and
// one exact power-of-two multiply; lanes outside the exactness rule take the reference's float64
// sum. Every output's operations are matmulAlignedScalar's, so the bits are the reference's.
#include <immintrin.h>

#include <algorithm>
#include <climits>
#include <cmath>

#include "matmul_aligned.h"
#include "matmul_aligned_panel_avx512.h"

namespace fp4kit {

namespace {

// alignRowUnit for 16·Chunks values without Inf, NaN or subnormals (−1: the scalar one decides).
// Chunks is a constant so the vectors below stay in registers (an array indexed by a run-time
// count lives on the stack).
template <int Chunks>
inline int32_t alignUnitRegister(const float* values, __m512i& ints, int32_t& exp) {
  __m512i bits[Chunks], field[Chunks], sig[Chunks];
  __mmask16 nonzero[Chunks];
  // |x| as bits (floats of one sign order like integers) for the top, and per lane the exponent
  // of the lowest set bit for the bottom; one reduction each over the whole unit.
  __m512i magnitudeMax = _mm512_setzero_si512(), lowMin = _mm512_set1_epi32(INT32_MAX);
  __mmask16 special = 0;
  for (int c = 0; c < Chunks; c++) {
    bits[c] = _mm512_loadu_si512(values + 16 * c);
    const __m512i magnitude = _mm512_and_si512(bits[c], _mm512_set1_epi32(0x7fffffff));
    field[c] = _mm512_srli_epi32(magnitude, 23);
    nonzero[c] = _mm512_test_epi32_mask(magnitude, magnitude);
    // Inf/NaN (field 255) and subnormals (field 0, not zero): the scalar path decides.
    special |= _mm512_cmpeq_epi32_mask(field[c], _mm512_set1_epi32(0xff)) | (nonzero[c] & _mm512_cmpeq_epi32_mask(field[c], _mm512_setzero_si512()));
    sig[c] = _mm512_or_si512(_mm512_and_si512(bits[c], _mm512_set1_epi32(0x7fffff)), _mm512_set1_epi32(0x800000));
    // ctz(sig) from the exponent of its lowest set bit, converted to float (a power of two, exact).
    const __m512i lowest = _mm512_and_si512(sig[c], _mm512_sub_epi32(_mm512_setzero_si512(), sig[c]));
    const __m512i lowestExp = _mm512_srli_epi32(_mm512_castps_si512(_mm512_cvtepi32_ps(lowest)), 23);  // ctz + 127
    lowMin = _mm512_mask_min_epi32(lowMin, nonzero[c], lowMin, _mm512_add_epi32(field[c], lowestExp));  // low + 277
    magnitudeMax = _mm512_max_epi32(magnitudeMax, magnitude);
  }
  if (special) return -1;
  exp = 0;
  const int32_t top = (_mm512_reduce_max_epi32(magnitudeMax) >> 23) - 126;  // |x| < 2^top
  if (top == -126) {  // all zero
    ints = _mm512_setzero_si512();
    return 0;
  }
  const int32_t low = _mm512_reduce_min_epi32(lowMin) - 277;  // field − 150 + ctz
  if (top - low > kAlignedMaxSpan) return kUnaligned;
  exp = low;
  __m256i half[Chunks];
  for (int c = 0; c < Chunks; c++) {
    const __m512i shift = _mm512_sub_epi32(_mm512_set1_epi32(low + 150), field[c]);  // low − lsbExp
    __m512i magnitude = _mm512_maskz_mov_epi32(nonzero[c], _mm512_srlv_epi32(sig[c], shift));
    magnitude = _mm512_mask_sub_epi32(magnitude, _mm512_movepi32_mask(bits[c]), _mm512_setzero_si512(), magnitude);
    half[c] = _mm512_cvtepi32_epi16(magnitude);
  }
  // The 16·Chunks int16 in memory order (pairs as int32: the first of a pair in the low half).
  ints = Chunks == 2 ? _mm512_inserti64x4(_mm512_castsi256_si512(half[0]), half[Chunks - 1], 1) : _mm512_zextsi256_si512(half[0]);
  return top - low;
}

// alignUnitRegister with the integers stored to `ints`.
template <int Chunks>
inline int32_t alignUnitVector(const float* values, int16_t* ints, int32_t& exp) {
  __m512i v;
  const int32_t span = alignUnitRegister<Chunks>(values, v, exp);
  if (span >= 0 && span != kUnaligned) _mm512_mask_storeu_epi16(ints, Chunks == 2 ? ~__mmask32(0) : __mmask32(0xffff), v);
  return span;
}

// Units [j0, j1) of a panel of 32 columns prepared by preparePanel, for units of 2·Pairs k, 16
// columns at a time: each column's row-unit aligned in registers, the 16 transposed into the
// panel's [pair][column] order by shuffles, the per-lane entries and per-unit bounds as vectors.
// Over every unit, the panel of fillAlignedPanel (matmul_aligned.cc), entry for entry.
template <int Pairs>
void fillPanelAvx512(const DecodedOperand& b, int64_t col0, int64_t cols, int64_t j0, int64_t j1, AlignedPanel& p) {
  constexpr int64_t unit = 2 * Pairs;
  alignas(64) int16_t scalarInts[2 * Pairs];
  for (int g = 0; g < 2; g++) {
    const __mmask16 real = realLanes(cols, g);
    for (int64_t j = j0; j < j1; j++) {
      __m512i forms[16];
      alignas(64) int32_t spans[16], exps[16];
      for (int c = 0; c < 16; c++) {
        forms[c] = _mm512_setzero_si512();
        spans[c] = exps[c] = 0;
        if (!(real >> c & 1)) continue;  // padding: zero integers, span 0
        const float* values = b.values + (col0 + g * 16 + c) * b.paddedCols + j * unit;
        int32_t e = 0;
        int32_t span = alignUnitRegister<Pairs / 8>(values, forms[c], e);
        if (span < 0) {  // Inf, NaN or subnormals: the scalar twin
          span = alignRowUnit(values, unit, scalarInts, e);
          if (span != kUnaligned) forms[c] = _mm512_maskz_loadu_epi16(Pairs == 16 ? ~__mmask32(0) : __mmask32(0xffff), scalarInts);
        }
        if (span == kUnaligned) forms[c] = _mm512_setzero_si512();
        spans[c] = span;
        exps[c] = e;
      }
      storePanelGroup<Pairs>(b, col0, g, real, j, forms, _mm512_load_si512(spans), _mm512_load_si512(exps), p);
    }
  }
}

}  // namespace

int32_t alignRowUnitAvx512(const float* values, int64_t count, int16_t* ints, int32_t& exp) {
  const int32_t span = count == 32 ? alignUnitVector<2>(values, ints, exp) : count == 16 ? alignUnitVector<1>(values, ints, exp) : -1;
  return span >= 0 ? span : alignRowUnit(values, count, ints, exp);
}

// d with the lanes in `fallback` (of the 16 columns from col) replaced by the reference's float64
// sums of row `row`'s unit j.
static __m512 referenceLanes(__m512 d, __mmask16 fallback, const DecodedOperand& a, const DecodedOperand& b, int64_t row, int64_t j,
                             int64_t col) {
  if (!fallback) return d;
  const int64_t unit = std::min(a.blockSize, b.blockSize);
  alignas(64) float fixed[16];
  for (int c = 0; c < 16; c++)
    if (fallback & (1u << c))
      fixed[c] = static_cast<float>(referenceUnitDot(a.values + row * a.paddedCols + j * unit, b.values + (col + c) * b.paddedCols + j * unit, unit));
  return _mm512_mask_loadu_ps(d, fallback, fixed);
}


// d with the lanes outside the exactness rule replaced by the reference's float64 sums (kept out of
// line: the kernel's registers stay its own).
__attribute__((noinline)) static __m512 exactLanes(__m512 d, const DecodedOperand& a, const DecodedOperand& b, const AlignedPanel& p,
                                                   int64_t width, int64_t row, int64_t j, int64_t col0, int64_t cols, int t, int32_t spanA,
                                                   int32_t expA, int32_t sumBits) {
  const size_t at = static_cast<size_t>(j * width + t * 16);
  const __m512i spanB = _mm512_loadu_si512(p.spans.data() + at);
  const __m512i expB = _mm512_loadu_si512(p.exps.data() + at);
  const __mmask16 exact = _mm512_cmple_epi32_mask(spanB, _mm512_set1_epi32(sumBits - spanA)) &
                          _mm512_cmpge_epi32_mask(expB, _mm512_set1_epi32(kAlignedMinExp - expA)) &
                          _mm512_cmple_epi32_mask(expB, _mm512_set1_epi32(kAlignedMaxExp - expA));
  return referenceLanes(d, static_cast<__mmask16>(~exact & realLanes(cols, t)), a, b, row, j, col0 + t * 16);
}

// D of a split row-unit of a (AlignedRows) against 16 lanes: hiSum (the kernel's sum over the hi
// pairs) · 2^expHi + Σlo · 2^expLo, in float64 — exact while each int32 sum obeys the rule and
// 20 + spanB + expHi − expLo ≤ 53 (which also keeps the reference's float64 sum exact) — then
// rounded once to float32, as the reference rounds its sum. Lanes outside that: one sum each.
__attribute__((noinline)) static __m512 splitDot(__m512i hiSum, const DecodedOperand& a, const AlignedRows& aAligned, int32_t split,
                                                 const DecodedOperand& b, const AlignedPanel& p, int64_t width, int64_t row, int64_t j,
                                                 int64_t col0, int64_t cols, int t, int32_t sumBits) {
  const int64_t pairs = aAligned.unit / 2;
  const int32_t* form = aAligned.splitForms.data() + 4 * split;
  const int32_t expHi = form[0], spanHi = form[1], expLo = form[2], spanLo = form[3];
  const int32_t* lo = aAligned.splitLoPairs.data() + split * pairs;
  __m512i loSum = _mm512_setzero_si512();
  for (int64_t q = 0; q < pairs; q++)
    loSum = _mm512_dpwssd_epi32(loSum, _mm512_set1_epi32(lo[q]), _mm512_loadu_si512(p.pairs.data() + (j * pairs + q) * width + t * 16));
  const size_t at = static_cast<size_t>(j * width + t * 16);
  const __m512i spanB = _mm512_loadu_si512(p.spans.data() + at);
  const __m512i expB = _mm512_loadu_si512(p.exps.data() + at);
  const int32_t spanLimit = std::min({sumBits - spanHi, sumBits - spanLo, 33 - (expHi - expLo)});
  const __mmask16 exact = _mm512_cmple_epi32_mask(spanB, _mm512_set1_epi32(spanLimit));
  // Both halves in float64: hi·2^(expHi − expLo) + lo, times 2^(expLo + expB) per lane.
  const __m512d shift = _mm512_set1_pd(std::ldexp(1.0, expHi - expLo));
  const __m512i scaleExp = _mm512_add_epi32(expB, _mm512_set1_epi32(expLo + 1023));
  __m256 half[2];
  for (int h = 0; h < 2; h++) {
    const __m256i hi8 = h ? _mm512_extracti64x4_epi64(hiSum, 1) : _mm512_castsi512_si256(hiSum);
    const __m256i lo8 = h ? _mm512_extracti64x4_epi64(loSum, 1) : _mm512_castsi512_si256(loSum);
    const __m256i e8 = h ? _mm512_extracti64x4_epi64(scaleExp, 1) : _mm512_castsi512_si256(scaleExp);
    const __m512d scale = _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_cvtepi32_epi64(e8), 52));
    const __m512d sum = _mm512_add_pd(_mm512_mul_pd(_mm512_cvtepi32_pd(hi8), shift), _mm512_cvtepi32_pd(lo8));
    half[h] = _mm512_cvtpd_ps(_mm512_mul_pd(sum, scale));
  }
  const __m512 d = _mm512_insertf32x8(_mm512_castps256_ps512(half[0]), half[1], 1);
  return referenceLanes(d, static_cast<__mmask16>(~exact & realLanes(cols, t)), a, b, row, j, col0 + t * 16);
}

// One unit of a row step that the block test did not pass, row by row: the power-of-two epilogue
// where the row-unit passes it alone, else D per lane (the integer sum, or the split or float64
// sums where the rule fails) times f32(sa·sb). The step's int32 sums and accumulators come and go
// through memory (kept out of line: see the call).
template <int Rows, int Vectors>
__attribute__((noinline)) static void generalUnit(const DecodedOperand& a, const AlignedRows& aAligned, const DecodedOperand& b,
                                                  const AlignedPanel& p, int64_t width, int64_t unit, const int64_t* row, int64_t j,
                                                  int64_t col0, int64_t cols, int32_t sumBits, const int32_t (*sums)[16 * Vectors], float (*accs)[16 * Vectors]) {
  const size_t unitAt = static_cast<size_t>(j);
  for (int r = 0; r < Rows; r++) {
    const size_t ja = static_cast<size_t>(row[r] * aAligned.units + j);
    const int32_t spanA = aAligned.spans[ja], expA = aAligned.exps[ja];
    // The whole panel passes the rule for this row-unit: no lane needs a look.
    const bool allExact = spanA + p.maxSpan[unitAt] <= sumBits && expA + p.minExp[unitAt] >= kAlignedMinExp &&
                          expA + p.maxExp[unitAt] <= kAlignedMaxExp;
    const float saValue = a.blockScales[row[r] * a.blocksPerRow + (j * unit) / a.blockSize];
    int32_t rowExp;
    if (allExact && powerScalesExact(p, j, saValue, expA, rowExp)) {
      // Power-of-two scales: partial = (f32(Σ)·laneFactor)·2^rowExp, one rounding of the
      // reference's f32(D)·S (see powerScalesExact).
      const __m512 rowFactor = _mm512_set1_ps(powerOfTwo(rowExp));
      for (int t = 0; t < Vectors; t++) {
        const __m512 x = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_load_si512(sums[r] + t * 16)),
                                       _mm512_loadu_ps(p.laneFactors.data() + j * width + t * 16));
        _mm512_store_ps(accs[r] + t * 16, _mm512_add_ps(_mm512_load_ps(accs[r] + t * 16), _mm512_mul_ps(x, rowFactor)));
      }
      continue;
    }
    const __m512 sa = _mm512_set1_ps(saValue);
    for (int t = 0; t < Vectors; t++) {
      const size_t at = static_cast<size_t>(j * width + t * 16);
      const __m512i sum = _mm512_load_si512(sums[r] + t * 16);
      const __m512i expB = _mm512_loadu_si512(p.exps.data() + at);
      const __m512 power = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(expB, _mm512_set1_epi32(expA + 127)), 23));
      __m512 d = _mm512_mul_ps(_mm512_cvtepi32_ps(sum), power);
      if (!allExact) {
        const int32_t split = spanA == kUnaligned ? aAligned.split[ja] : -1;
        d = split >= 0 ? splitDot(sum, a, aAligned, split, b, p, width, row[r], j, col0, cols, t, sumBits)
                       : exactLanes(d, a, b, p, width, row[r], j, col0, cols, t, spanA, expA, sumBits);
      }
      const __m512 s = _mm512_mul_ps(sa, _mm512_loadu_ps(p.scales.data() + at));
      _mm512_store_ps(accs[r] + t * 16, _mm512_add_ps(_mm512_load_ps(accs[r] + t * 16), _mm512_mul_ps(d, s)));
    }
  }
}

// Units of 2·Pairs k (the inner loop unrolled whole: its sums stay in registers), Rows rows × 16·Vectors
// columns per step.
template <int Pairs, int Rows, int Vectors>
static void alignedProduct(const DecodedOperand& a, const AlignedRows& aAligned, const DecodedOperand& b, const float* bias, float* out,
                           int64_t nBegin, int64_t nEnd) {
  constexpr int64_t kWidth = 16 * Vectors;
  constexpr int kRows = Rows;
  constexpr int64_t unit = 2 * Pairs, pairs = Pairs;
  constexpr int64_t kChunkUnits = 256 / unit;  // 256 k: 16 KiB of panel
  const int64_t units = aAligned.units, n = b.rows;
  const int32_t sumBits = 31 - unitBits(unit);
  AlignedScratch& scratch = threadAlignedScratch();
  AlignedPanel& p = scratch.panel;
  const AlignedRowBlocks& rowBlocks = rowBlocksFor(a, aAligned, kRows, scratch.blocks);
  const AlignedCodes* codes = alignedCodesFor(b, unit);  // b's FP8 codes, where this CPU reads them
  for (int64_t col0 = nBegin; col0 < nEnd; col0 += kWidth) {
    const int64_t cols = std::min(kWidth, nEnd - col0);
    static_assert(kWidth == 32, "fillPanelAvx512 and the codes fill write 32 columns");
    preparePanel(p, units, unit, kWidth);
    __mmask16 lanes[Vectors];
    for (int t = 0; t < Vectors; t++) lanes[t] = realLanes(cols, t);
    // Units in chunks, each filled just before every row passes over it, so its panel (16 KiB)
    // is written and read in L1; between chunks the accumulators wait in `out` (the same floats:
    // the order is unchanged).
    for (int64_t j0 = 0; j0 < units; j0 += kChunkUnits) {
    const int64_t j1 = std::min(units, j0 + kChunkUnits);
    if (codes) codes->panel(b, col0, cols, j0, j1, p);
    else fillPanelAvx512<Pairs>(b, col0, cols, j0, j1, p);
    for (int64_t m0 = 0; m0 < a.rows; m0 += kRows) {
      const int64_t rows = std::min<int64_t>(kRows, a.rows - m0);
      const AlignedRowStep<kRows> step(aAligned, m0, rows);
      const int64_t* row = step.row;
      const int32_t* const* pa = step.pairs;
      __m512 acc[kRows][Vectors];
      for (int r = 0; r < kRows; r++) {
        for (int t = 0; t < Vectors; t++)
          acc[r][t] = j0 == 0 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(lanes[t], out + row[r] * n + col0 + t * 16);
      }
      for (int64_t j = j0; j < j1; j++) {
        __m512i sum[kRows][Vectors];
        for (int r = 0; r < kRows; r++)
          for (int t = 0; t < Vectors; t++) sum[r][t] = _mm512_setzero_si512();
        const int32_t* pb = p.pairs.data() + j * pairs * kWidth;
#pragma GCC unroll 16
        for (int64_t q = 0; q < pairs; q++) {
          __m512i bv[Vectors];
          for (int t = 0; t < Vectors; t++) bv[t] = _mm512_loadu_si512(pb + q * kWidth + 16 * t);
#pragma GCC unroll 8
          for (int r = 0; r < kRows; r++) {
            const __m512i av = _mm512_set1_epi32(pa[r][j * pairs + q]);
            for (int t = 0; t < Vectors; t++) sum[r][t] = _mm512_dpwssd_epi32(sum[r][t], av, bv[t]);
          }
        }
        if (rowBlockFast(rowBlocks.blocks[static_cast<size_t>((m0 / kRows) * units + j)], p, j, sumBits)) {
          // Power-of-two epilogue for every row: partial = (f32(Σ)·laneFactor)·2^rowExp (see
          // powerScalesExact), one rounding of the reference's f32(D)·S.
          __m512 lane[Vectors];
          for (int t = 0; t < Vectors; t++) lane[t] = _mm512_loadu_ps(p.laneFactors.data() + j * kWidth + 16 * t);
#pragma GCC unroll 8
          for (int r = 0; r < kRows; r++) {
            const __m512 rowFactor = _mm512_set1_ps(rowBlocks.rowFactors[static_cast<size_t>(row[r] * units + j)]);
            for (int t = 0; t < Vectors; t++)
              acc[r][t] = _mm512_add_ps(acc[r][t], _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(sum[r][t]), lane[t]), rowFactor));
          }
          continue;
        }
        // Any other unit: out of line, through memory. No vector register lives across the call
        // (the ABI keeps none), so the accumulators stay in registers on the fast path above.
        alignas(64) int32_t sums[kRows][kWidth];
        alignas(64) float accs[kRows][kWidth];
        for (int r = 0; r < kRows; r++) {
          for (int t = 0; t < Vectors; t++) {
            _mm512_store_si512(sums[r] + t * 16, sum[r][t]);
            _mm512_store_ps(accs[r] + t * 16, acc[r][t]);
          }
        }
        generalUnit<kRows, Vectors>(a, aAligned, b, p, kWidth, unit, row, j, col0, cols, sumBits, sums, accs);
        for (int r = 0; r < kRows; r++)
          for (int t = 0; t < Vectors; t++) acc[r][t] = _mm512_load_ps(accs[r] + t * 16);
      }
      // A constant bound (rows past the end skipped inside) keeps acc out of memory: an array
      // indexed by a run-time row would live on the stack through the whole step.
      for (int r = 0; r < kRows; r++) {
        if (r >= rows) break;
        for (int t = 0; t < Vectors; t++) {
          __m512 v = acc[r][t];
          if (bias && j1 == units) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(lanes[t], bias + col0 + t * 16));
          _mm512_mask_storeu_ps(out + (m0 + r) * n + col0 + t * 16, lanes[t], v);
        }
      }
    }
    }
  }
  releaseIfLarge(p);
}

void matmulAlignedAvx512(const DecodedOperand& a, const AlignedRows& aAligned, const DecodedOperand& b, const float* bias, float* out,
                         int64_t nBegin, int64_t nEnd) {
  // 6 rows × 2 vectors: 12 int32 sums and 12 float accumulators in registers (4 × 3 measured the
  // same, 3 × 4 slower).
  if (aAligned.unit == 16) alignedProduct<8, kAlignedAvx512Rows, 2>(a, aAligned, b, bias, out, nBegin, nEnd);
  else alignedProduct<16, kAlignedAvx512Rows, 2>(a, aAligned, b, bias, out, nBegin, nEnd);
}

}  // namespace fp4kit
