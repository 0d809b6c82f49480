// The bit-plane row kernel with AVX-512 VPOPCNTDQ: one 512-bit load is one word of a panel's 8
// signs rows, so two code rows × four panels (32 columns) share every load; counts are exact
// integers, the same as bitplaneRowsScalar's in any order.
#include <immintrin.h>

#include <algorithm>

#include "bitplane_gemm.h"

namespace fp4kit {
namespace {

constexpr int kPanelsPerStep = 4;

// Counts of rows r.a[0..rowCount) against `panels` (the pos or the non-zero array) into out.
void countAgainst(const BitplaneRows& r, const uint64_t* panels, int32_t* const* out) {
  const int64_t panelCount = (r.n + kBitplanePanelRows - 1) / kBitplanePanelRows;
  const int64_t panelWords = r.words * kBitplanePanelRows;
  for (int64_t q0 = 0; q0 < panelCount; q0 += kPanelsPerStep) {
    const int panelsHere = static_cast<int>(std::min<int64_t>(kPanelsPerStep, panelCount - q0));
    __m512i total[2][kPanelsPerStep];
    for (int i = 0; i < 2; i++)
      for (int t = 0; t < kPanelsPerStep; t++) total[i][t] = _mm512_setzero_si512();
    for (int p = 0; p < r.bits; p++) {
      __m512i count[2][kPanelsPerStep];
      for (int i = 0; i < 2; i++)
        for (int t = 0; t < kPanelsPerStep; t++) count[i][t] = _mm512_setzero_si512();
      const uint64_t* plane0 = r.a[0] + p * r.words;
      const uint64_t* plane1 = r.a[r.rowCount - 1] + p * r.words;
      for (int64_t w = 0; w < r.words; w++) {
        const __m512i a0 = _mm512_set1_epi64(static_cast<long long>(plane0[w]));
        const __m512i a1 = _mm512_set1_epi64(static_cast<long long>(plane1[w]));
        for (int t = 0; t < kPanelsPerStep; t++) {
          if (t >= panelsHere) break;
          const __m512i s = _mm512_loadu_si512(panels + (q0 + t) * panelWords + w * kBitplanePanelRows);
          count[0][t] = _mm512_add_epi64(count[0][t], _mm512_popcnt_epi64(_mm512_and_si512(a0, s)));
          count[1][t] = _mm512_add_epi64(count[1][t], _mm512_popcnt_epi64(_mm512_and_si512(a1, s)));
        }
      }
      for (int i = 0; i < 2; i++)
        for (int t = 0; t < kPanelsPerStep; t++) total[i][t] = _mm512_add_epi64(total[i][t], _mm512_slli_epi64(count[i][t], static_cast<unsigned>(p)));
    }
    for (int i = 0; i < r.rowCount; i++) {
      for (int t = 0; t < panelsHere; t++) {
        const int64_t j0 = (q0 + t) * kBitplanePanelRows;
        const int valid = static_cast<int>(std::min<int64_t>(kBitplanePanelRows, r.n - j0));
        const __m256i v = _mm512_cvtepi64_epi32(total[i][t]);
        _mm256_mask_storeu_epi32(out[i] + j0, static_cast<__mmask8>((1u << valid) - 1), v);
      }
    }
  }
}

}  // namespace

void bitplaneRowsAvx512(const BitplaneRows& r) {
  countAgainst(r, r.pos, r.rPos);
  if (r.nonzero) countAgainst(r, r.nonzero, r.rNonzero);
}

}  // namespace fp4kit
