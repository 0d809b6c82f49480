// The bit-plane row kernel with NEON (AArch64): VCNT counts bytes, pairwise widening adds give
// each 64-bit lane's count. A panel's word is four 128-bit loads. Counts are exact integers, the
// same as bitplaneRowsScalar's in any order.
#include <arm_neon.h>

#include <algorithm>

#include "bitplane_gemm.h"

namespace fp4kit {
namespace {

inline uint64x2_t popcount64(uint64x2_t v) {
  return vpaddlq_u32(vpaddlq_u16(vpaddlq_u8(vcntq_u8(vreinterpretq_u8_u64(v)))));
}

void countAgainst(const BitplaneRows& r, const uint64_t* panels, int32_t* const* out) {
  const int64_t panelCount = (r.n + kBitplanePanelRows - 1) / kBitplanePanelRows;
  const int64_t panelWords = r.words * kBitplanePanelRows;
  for (int64_t q = 0; q < panelCount; q++) {
    const uint64_t* panel = panels + q * panelWords;
    for (int i = 0; i < r.rowCount; i++) {
      uint64x2_t total[4] = {vdupq_n_u64(0), vdupq_n_u64(0), vdupq_n_u64(0), vdupq_n_u64(0)};
      for (int p = 0; p < r.bits; p++) {
        uint64x2_t count[4] = {vdupq_n_u64(0), vdupq_n_u64(0), vdupq_n_u64(0), vdupq_n_u64(0)};
        const uint64_t* plane = r.a[i] + p * r.words;
        for (int64_t w = 0; w < r.words; w++) {
          const uint64x2_t a = vdupq_n_u64(plane[w]);
          for (int h = 0; h < 4; h++) {
            const uint64x2_t s = vld1q_u64(panel + w * kBitplanePanelRows + 2 * h);
            count[h] = vaddq_u64(count[h], popcount64(vandq_u64(a, s)));
          }
        }
        const int64x2_t shift = vdupq_n_s64(p);
        for (int h = 0; h < 4; h++) total[h] = vaddq_u64(total[h], vshlq_u64(count[h], shift));
      }
      const int64_t j0 = q * kBitplanePanelRows;
      const int valid = static_cast<int>(std::min<int64_t>(kBitplanePanelRows, r.n - j0));
      uint64_t lanes[8];
      for (int h = 0; h < 4; h++) vst1q_u64(lanes + 2 * h, total[h]);
      for (int c = 0; c < valid; c++) out[i][j0 + c] = static_cast<int32_t>(lanes[c]);
    }
  }
}

}  // namespace

void bitplaneRowsNeon(const BitplaneRows& r) {
  countAgainst(r, r.pos, r.rPos);
  if (r.nonzero) countAgainst(r, r.nonzero, r.rNonzero);
}

}  // namespace fp4kit
