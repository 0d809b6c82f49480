// The bit-plane row kernel with AVX2 (no vector popcount: a nibble table and VPSADBW give each
// 64-bit lane's count). A panel's word is two 256-bit loads; two code rows share them. Counts are
// exact integers, the same as bitplaneRowsScalar's in any order.
#include <immintrin.h>

#include <algorithm>

#include "bitplane_gemm.h"

namespace fp4kit {
namespace {

inline __m256i popcount64(__m256i v) {
  const __m256i table = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  const __m256i lo = _mm256_shuffle_epi8(table, _mm256_and_si256(v, nibble));
  const __m256i hi = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble));
  return _mm256_sad_epu8(_mm256_add_epi8(lo, hi), _mm256_setzero_si256());
}

void countAgainst(const BitplaneRows& r, const uint64_t* panels, int32_t* const* out) {
  const int64_t panelCount = (r.n + kBitplanePanelRows - 1) / kBitplanePanelRows;
  const int64_t panelWords = r.words * kBitplanePanelRows;
  for (int64_t q = 0; q < panelCount; q++) {
    __m256i total[2][2];
    for (int i = 0; i < 2; i++) total[i][0] = total[i][1] = _mm256_setzero_si256();
    const uint64_t* panel = panels + q * panelWords;
    for (int p = 0; p < r.bits; p++) {
      __m256i count[2][2];
      for (int i = 0; i < 2; i++) count[i][0] = count[i][1] = _mm256_setzero_si256();
      const uint64_t* plane0 = r.a[0] + p * r.words;
      const uint64_t* plane1 = r.a[r.rowCount - 1] + p * r.words;
      for (int64_t w = 0; w < r.words; w++) {
        const __m256i a0 = _mm256_set1_epi64x(static_cast<long long>(plane0[w]));
        const __m256i a1 = _mm256_set1_epi64x(static_cast<long long>(plane1[w]));
        const __m256i s0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + w * kBitplanePanelRows));
        const __m256i s1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + w * kBitplanePanelRows + 4));
        count[0][0] = _mm256_add_epi64(count[0][0], popcount64(_mm256_and_si256(a0, s0)));
        count[0][1] = _mm256_add_epi64(count[0][1], popcount64(_mm256_and_si256(a0, s1)));
        count[1][0] = _mm256_add_epi64(count[1][0], popcount64(_mm256_and_si256(a1, s0)));
        count[1][1] = _mm256_add_epi64(count[1][1], popcount64(_mm256_and_si256(a1, s1)));
      }
      const __m128i shift = _mm_cvtsi32_si128(p);
      for (int i = 0; i < 2; i++)
        for (int h = 0; h < 2; h++) total[i][h] = _mm256_add_epi64(total[i][h], _mm256_sll_epi64(count[i][h], shift));
    }
    const int64_t j0 = q * kBitplanePanelRows;
    const int valid = static_cast<int>(std::min<int64_t>(kBitplanePanelRows, r.n - j0));
    for (int i = 0; i < r.rowCount; i++) {
      alignas(32) int64_t lanes[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), total[i][0]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes + 4), total[i][1]);
      for (int c = 0; c < valid; c++) out[i][j0 + c] = static_cast<int32_t>(lanes[c]);
    }
  }
}

}  // namespace

void bitplaneRowsAvx2(const BitplaneRows& r) {
  countAgainst(r, r.pos, r.rPos);
  if (r.nonzero) countAgainst(r, r.nonzero, r.rNonzero);
}

}  // namespace fp4kit
