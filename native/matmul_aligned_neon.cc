// The aligned decoded-operand product (matmul_aligned.h) with NEON (AArch64): 2 rows × 16 columns
// per step. A pair of int16 (k even, k odd) per column meets the broadcast pair of a's row through
// widening multiply-adds (vmlal_s16 on columns 0–1 of four, vmlal_high_s16 on 2–3: a lane per column
// and k parity), and one pairwise add per unit folds the parities back into the four columns — every partial sum is a sum of some of the unit's products, so within the exactness rule
// none overflows int32. Row-units outside the rule (and split ones) take the reference's float64
// sums; the epilogue is the scalar twin's, vectorized. Same bits as matmulAlignedScalar.
#include <arm_neon.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "matmul_aligned.h"

namespace fp4kit {

namespace {

// alignRowUnit four lanes at a time for 4·Chunks values without Inf, NaN or subnormals (−1: the
// scalar one decides): the same top, bottom and integers (the AVX-512 file's method; ctz from clz
// of the lowest set bit, as NEON has no ctz).
template <int Chunks>
inline int32_t alignUnitVector(const float* values, int16_t* ints, int32_t& exp) {
  uint32x4_t bits[Chunks], field[Chunks], sig[Chunks], nonzero[Chunks];
  uint32x4_t magnitudeMax = vdupq_n_u32(0), lowMin = vdupq_n_u32(UINT32_MAX), special = vdupq_n_u32(0);
  for (int c = 0; c < Chunks; c++) {
    bits[c] = vreinterpretq_u32_f32(vld1q_f32(values + 4 * c));
    const uint32x4_t magnitude = vandq_u32(bits[c], vdupq_n_u32(0x7fffffff));
    field[c] = vshrq_n_u32(magnitude, 23);
    nonzero[c] = vtstq_u32(magnitude, magnitude);
    special = vorrq_u32(special, vorrq_u32(vceqq_u32(field[c], vdupq_n_u32(0xff)), vandq_u32(nonzero[c], vceqzq_u32(field[c]))));
    sig[c] = vorrq_u32(vandq_u32(bits[c], vdupq_n_u32(0x7fffff)), vdupq_n_u32(0x800000));
    const uint32x4_t lowest = vandq_u32(sig[c], vreinterpretq_u32_s32(vnegq_s32(vreinterpretq_s32_u32(sig[c]))));
    const uint32x4_t ctz = vsubq_u32(vdupq_n_u32(31), vclzq_u32(lowest));
    lowMin = vminq_u32(lowMin, vbslq_u32(nonzero[c], vaddq_u32(field[c], ctz), vdupq_n_u32(UINT32_MAX)));  // low + 150
    magnitudeMax = vmaxq_u32(magnitudeMax, magnitude);
  }
  if (vmaxvq_u32(special)) return -1;
  exp = 0;
  const int32_t top = static_cast<int32_t>(vmaxvq_u32(magnitudeMax) >> 23) - 126;  // |x| < 2^top
  if (top == -126) {  // all zero
    std::memset(ints, 0, 8 * Chunks);
    return 0;
  }
  const int32_t low = static_cast<int32_t>(vminvq_u32(lowMin)) - 150;  // field − 150 + ctz
  if (top - low > kAlignedMaxSpan) return kUnaligned;
  exp = low;
  for (int c = 0; c < Chunks; c++) {
    const int32x4_t shift = vsubq_s32(vreinterpretq_s32_u32(field[c]), vdupq_n_s32(low + 150));  // −(low − lsbExp): a right shift
    const int32x4_t magnitude = vreinterpretq_s32_u32(vandq_u32(nonzero[c], vshlq_u32(sig[c], shift)));
    const uint32x4_t negative = vcltzq_s32(vreinterpretq_s32_u32(bits[c]));
    vst1_s16(ints + 4 * c, vmovn_s32(vbslq_s32(negative, vnegq_s32(magnitude), magnitude)));
  }
  return top - low;
}

}  // namespace

int32_t alignRowUnitNeon(const float* values, int64_t count, int16_t* ints, int32_t& exp) {
  const int32_t span = count == 32 ? alignUnitVector<8>(values, ints, exp) : count == 16 ? alignUnitVector<4>(values, ints, exp) : -1;
  return span >= 0 ? span : alignRowUnit(values, count, ints, exp);
}

void matmulAlignedNeon(const DecodedOperand& a, const AlignedRows& aAligned, const DecodedOperand& b, const float* bias, float* out,
                       int64_t nBegin, int64_t nEnd) {
  constexpr int64_t kWidth = 16;
  constexpr int kRows = 2;
  const int64_t unit = aAligned.unit, units = aAligned.units, pairs = unit / 2, n = b.rows;
  const int32_t sumBits = 31 - unitBits(unit);
  AlignedScratch& scratch = threadAlignedScratch();
  AlignedPanel& p = scratch.panel;
  alignas(16) float d[kWidth];
  for (int64_t col0 = nBegin; col0 < nEnd; col0 += kWidth) {
    const int64_t cols = std::min(kWidth, nEnd - col0);
    // The unit's vector alignment inlined into the fill (the x86 files do the same).
    fillAlignedPanelWith(b, unit, col0, cols, kWidth, p, [](const float* values, int64_t count, int16_t* ints, int32_t& exp) {
      const int32_t span = count == 32 ? alignUnitVector<8>(values, ints, exp) : count == 16 ? alignUnitVector<4>(values, ints, exp) : -1;
      return span >= 0 ? span : alignRowUnit(values, count, ints, exp);
    });
    for (int64_t m0 = 0; m0 < a.rows; m0 += kRows) {
      const int64_t rows = std::min<int64_t>(kRows, a.rows - m0);
      const AlignedRowStep<kRows> step(aAligned, m0, rows);
      float32x4_t acc[kRows][4];
      for (int r = 0; r < kRows; r++)
        for (int g = 0; g < 4; g++) acc[r][g] = vdupq_n_f32(0.0f);
      for (int64_t j = 0; j < units; j++) {
        // Per group g of four columns: lanes (4g, k even), (4g, k odd), (4g+1, k even), (4g+1, k odd) in
        // first, the same for columns 4g+2 and 4g+3 in second.
        int32x4_t first[kRows][4], second[kRows][4];
        for (int r = 0; r < kRows; r++)
          for (int g = 0; g < 4; g++) first[r][g] = second[r][g] = vdupq_n_s32(0);
        const int32_t* pb = p.pairs.data() + j * pairs * kWidth;
        for (int64_t q = 0; q < pairs; q++) {
          int16x8_t bv[4];
          for (int g = 0; g < 4; g++) bv[g] = vreinterpretq_s16_s32(vld1q_s32(pb + q * kWidth + 4 * g));
          for (int r = 0; r < kRows; r++) {
            const int16x8_t av = vreinterpretq_s16_s32(vdupq_n_s32(step.pairs[r][j * pairs + q]));
            for (int g = 0; g < 4; g++) {
              first[r][g] = vmlal_s16(first[r][g], vget_low_s16(bv[g]), vget_low_s16(av));
              second[r][g] = vmlal_high_s16(second[r][g], bv[g], av);
            }
          }
        }
        const size_t unitAt = static_cast<size_t>(j);
        for (int r = 0; r < kRows; r++) {
          const int64_t row = step.row[r];
          const size_t ja = static_cast<size_t>(row * units + j);
          const int32_t spanA = aAligned.spans[ja], expA = aAligned.exps[ja];
          const bool allExact = spanA + p.maxSpan[unitAt] <= sumBits && expA + p.minExp[unitAt] >= kAlignedMinExp &&
                                expA + p.maxExp[unitAt] <= kAlignedMaxExp;
          for (int g = 0; g < 4; g++) {
            const int32x4_t sum = vpaddq_s32(first[r][g], second[r][g]);  // columns 4g … 4g+3
            const int32x4_t expB = vld1q_s32(p.exps.data() + j * kWidth + 4 * g);
            const float32x4_t power = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(expB, vdupq_n_s32(expA + 127)), 23));
            vst1q_f32(d + 4 * g, vmulq_f32(vcvtq_f32_s32(sum), power));
          }
          if (!allExact) {
            for (int64_t c = 0; c < cols; c++) {
              const size_t at = static_cast<size_t>(j * kWidth + c);
              if (alignedPairExact(spanA, expA, p.spans[at], p.exps[at], unit)) continue;
              d[c] = static_cast<float>(referenceUnitDot(a.values + row * a.paddedCols + j * unit, b.values + (col0 + c) * b.paddedCols + j * unit, unit));
            }
          }
          const float32x4_t sa = vdupq_n_f32(a.blockScales[row * a.blocksPerRow + (j * unit) / a.blockSize]);
          for (int g = 0; g < 4; g++) {
            const float32x4_t s = vmulq_f32(sa, vld1q_f32(p.scales.data() + j * kWidth + 4 * g));
            acc[r][g] = vaddq_f32(acc[r][g], vmulq_f32(vld1q_f32(d + 4 * g), s));
          }
        }
      }
      for (int r = 0; r < kRows; r++) {  // a constant bound keeps acc in registers (see the AVX-512 twin)
        if (r >= rows) break;
        alignas(16) float v[kWidth];
        for (int g = 0; g < 4; g++) vst1q_f32(v + 4 * g, acc[r][g]);
        for (int64_t c = 0; c < cols; c++) out[(m0 + r) * n + col0 + c] = bias ? v[c] + bias[col0 + c] : v[c];
      }
    }
  }
  releaseIfLarge(p);
}

}  // namespace fp4kit
