// The AVX-512 half of the aligned kernels' B panel (matmul_aligned.h, AlignedPanel): 16 columns of
// one unit at a time, from their int16 forms to the panel's [pair][column] order, per-lane entries
// and per-unit bounds. Shared by the fill from float values (matmul_aligned_avx512.cc) and the fill
// from FP8 codes (matmul_aligned_avx512_vbmi.cc); every function is static so each file's copy is
// compiled with its own flags.
#pragma once
#include <immintrin.h>

#include <algorithm>

#include "matmul_aligned.h"
#include "transpose16_avx512.h"

namespace fp4kit {

// The columns of lanes t·16 … t·16 + 15 of a panel of `cols` real columns, as a mask.
static inline __mmask16 realLanes(int64_t cols, int t) {
  const int64_t real = std::max<int64_t>(0, std::min<int64_t>(16, cols - t * 16));
  return static_cast<__mmask16>((1u << real) - 1);
}

// Unit j of the 16 columns col0 + g·16 … (lanes in `real`; the others are padding) into the panel
// of width 32: `forms[c]` is column c's row-unit as int16 pairs (zero where it has no form or is
// padding), `span` and `e` its span and exponent per lane (0 in padding). fillAlignedPanelWith's
// entries and rules, written as vectors; `forms` is transposed in place.
template <int Pairs>
static inline void storePanelGroup(const DecodedOperand& b, int64_t col0, int g, __mmask16 real, int64_t j, __m512i forms[16], __m512i span,
                                   __m512i e, AlignedPanel& p) {
  constexpr int64_t unit = 2 * Pairs, width = 32;
  // The 16 columns' multipliers of unit j, one gather (lane c at c · blocksPerRow; padding 0).
  const float* scaleBase = b.blockScales + (col0 + g * 16) * b.blocksPerRow + (j * unit) / b.blockSize;
  const __m512i scaleAt = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(static_cast<int32_t>(b.blocksPerRow)));
  const __m512 scale = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), real, scaleAt, scaleBase, 4);
  transpose16x16(forms);
  int32_t* dst = p.pairs.data() + j * Pairs * width + g * 16;
  for (int q = 0; q < Pairs; q++) _mm512_storeu_si512(dst + q * width, forms[q]);
  const size_t at = static_cast<size_t>(j * width + g * 16), u = static_cast<size_t>(j);
  _mm512_storeu_si512(p.spans.data() + at, span);
  _mm512_storeu_si512(p.exps.data() + at, e);
  _mm512_storeu_ps(p.scales.data() + at, scale);
  // powerOfTwoExponent: a positive normal power of two has mantissa 0 and field 1 … 254 (the
  // sign in bit 31 puts a negative one past 254).
  const __m512i bits = _mm512_castps_si512(scale), field = _mm512_srli_epi32(bits, 23);
  const __mmask16 power = _mm512_testn_epi32_mask(bits, _mm512_set1_epi32(0x7fffff)) & _mm512_cmpge_epi32_mask(field, _mm512_set1_epi32(1)) &
                          _mm512_cmple_epi32_mask(field, _mm512_set1_epi32(254));
  const __m512i y = _mm512_sub_epi32(field, _mm512_set1_epi32(127)), ey = _mm512_add_epi32(e, y);
  const __mmask16 ok = power & _mm512_cmpge_epi32_mask(ey, _mm512_set1_epi32(-126)) & _mm512_cmple_epi32_mask(ey, _mm512_set1_epi32(96));
  _mm512_storeu_si512(p.laneFactors.data() + at, _mm512_maskz_slli_epi32(ok & real, _mm512_add_epi32(ey, _mm512_set1_epi32(127)), 23));
  if (!real) return;
  p.maxSpan[u] = std::max(p.maxSpan[u], _mm512_mask_reduce_max_epi32(real, span));
  p.minExp[u] = std::min(p.minExp[u], _mm512_mask_reduce_min_epi32(real, e));
  p.maxExp[u] = std::max(p.maxExp[u], _mm512_mask_reduce_max_epi32(real, e));
  if ((ok & real) != real) p.powerUnit[u] = 0;
  if (ok & real) {
    p.minScaleExp[u] = std::min(p.minScaleExp[u], _mm512_mask_reduce_min_epi32(ok & real, y));
    p.maxScaleExp[u] = std::max(p.maxScaleExp[u], _mm512_mask_reduce_max_epi32(ok & real, y));
  }
}

}  // namespace fp4kit
