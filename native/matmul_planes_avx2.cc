// Byte-plane weights × MXINT8 activations with AVX2 (matmul_planes.h), over the int16 form: AVX2
// has no u8×s8 dot that cannot saturate, but vpmaddwd multiplies int16 pairs exactly, so h (16
// signed bits) is one int16 plane and the low bits l another, read only over the groups of 4 k
// that hold one. Per unit D = 2^s·Σk a·h + Σk a·l, exact in int32, then the defined float32 steps
// (plain order, no fast-scales identity) — the same bits as matmulPlanesScalar. A 256-bit vector
// holds 4 lanes × 4 k; vpmaddwd leaves each lane's sum in two dwords, folded at the end of a unit.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "matmul_avx2_shared.h"
#include "matmul_planes.h"

namespace fp4kit {
namespace {

constexpr int kRows = 2;

// Four activation codes as int16, repeated in every 64-bit lane: the other vpmaddwd operand.
inline __m256i activations4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  const __m128i w = _mm_cvtepi8_epi16(_mm_cvtsi32_si128(v));
  return _mm256_set1_epi64x(_mm_cvtsi128_si64(w));
}

// Lanes 0–7 and 8–15 of one unit from the four pair-split sums [lane 4v: 2 dwords, 4v+1, 4v+2, 4v+3].
inline void fold(const __m256i (&p)[4], __m256i& lo, __m256i& hi) {
  lo = _mm256_permute4x64_epi64(_mm256_hadd_epi32(p[0], p[1]), 0xD8);
  hi = _mm256_permute4x64_epi64(_mm256_hadd_epi32(p[2], p[3]), 0xD8);
}

// Σ a·plane over groups of 4 k (all `quads` of them, or those set in `mask`) for Rows rows.
template <int Rows>
inline void planeDots(const int16_t* plane, const int8_t* aUnit, int64_t aStride, int quads, unsigned mask, bool masked,
                      __m256i (&lo)[Rows], __m256i (&hi)[Rows]) {
  __m256i p[Rows][4];
  for (int r = 0; r < Rows; r++)
    for (int v = 0; v < 4; v++) p[r][v] = _mm256_setzero_si256();
  for (int q = 0; masked ? mask != 0 : q < quads; q++) {
    int g = q;
    if (masked) {
      g = __builtin_ctz(mask);
      mask &= mask - 1;
    }
    const int16_t* w = plane + g * 64;
    for (int r = 0; r < Rows; r++) {
      const __m256i a4 = activations4(aUnit + r * aStride + 4 * g);
      for (int v = 0; v < 4; v++)
        p[r][v] = _mm256_add_epi32(p[r][v], _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 16 * v)), a4));
    }
  }
  for (int r = 0; r < Rows; r++) fold(p[r], lo[r], hi[r]);
}

template <int Rows>
void step(const Int8Activations& a, const PackedPlaneWeights& b, const float* bias, float* out, int64_t tile, int64_t m0) {
  const __m256 unitScale = _mm256_set1_ps(std::ldexp(1.0f, -b.unitShift()));
  const __m128i shift = _mm_cvtsi32_si128(b.lowShift);
  const int quads = static_cast<int>(b.unit / 4);
  const int64_t aBlocksPerRow = a.paddedK / 32;
  __m256 acc[Rows][2];
  for (int r = 0; r < Rows; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int64_t j = 0; j < b.units; j++) {
    const size_t planeAt = static_cast<size_t>((tile * b.kQuads + j * quads) * 64);
    const int8_t* aUnit = a.codes + m0 * a.paddedK + j * b.unit;
    __m256i lo[Rows], hi[Rows];
    planeDots<Rows>(b.h16.data() + planeAt, aUnit, a.paddedK, quads, 0, false, lo, hi);
    for (int r = 0; r < Rows; r++) {
      lo[r] = _mm256_sll_epi32(lo[r], shift);
      hi[r] = _mm256_sll_epi32(hi[r], shift);
    }
    if (const unsigned mask = b.lowQuadMask(tile, j)) {
      __m256i lowLo[Rows], lowHi[Rows];
      planeDots<Rows>(b.low16.data() + planeAt, aUnit, a.paddedK, quads, mask, true, lowLo, lowHi);
      for (int r = 0; r < Rows; r++) {
        lo[r] = _mm256_add_epi32(lo[r], lowLo[r]);
        hi[r] = _mm256_add_epi32(hi[r], lowHi[r]);
      }
    }
    const float* sb = b.scales.data() + (tile * b.units + j) * kTileColumns;
    for (int r = 0; r < Rows; r++) {
      const __m256 sa = _mm256_set1_ps(a.blockScales[(m0 + r) * aBlocksPerRow + (j * b.unit) / 32]);
      const __m256 dLo = _mm256_mul_ps(_mm256_cvtepi32_ps(lo[r]), unitScale);
      const __m256 dHi = _mm256_mul_ps(_mm256_cvtepi32_ps(hi[r]), unitScale);
      acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_mul_ps(dLo, _mm256_mul_ps(sa, _mm256_loadu_ps(sb))));
      acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_mul_ps(dHi, _mm256_mul_ps(sa, _mm256_loadu_ps(sb + 8))));
    }
  }
  storeTileRows<Rows>(acc, bias, out, b.n, tile, m0);
}

}  // namespace

void matmulPlanesAvx2(const Int8Activations& a, const PackedPlaneWeights& b, const float* bias, float* out, int64_t tileBegin,
                      int64_t tileEnd) {
  if ((b.h16.empty() && b.tiles > 0) || b.scaleStorage != ScaleStorage::Float32) {
    matmulPlanesScalar(a, b, bias, out, tileBegin, tileEnd);  // byte planes or byte multipliers: not this kernel's form
    return;
  }
  for (int64_t tile = tileBegin; tile < tileEnd; tile++) {
    int64_t m = 0;
    for (; m + kRows <= a.rows; m += kRows) step<kRows>(a, b, bias, out, tile, m);
    for (; m < a.rows; m++) step<1>(a, b, bias, out, tile, m);
  }
}

}  // namespace fp4kit
