// The float steps of the defined order (matmul.h) for 16 output columns at once, shared by the
// AVX-512 integer kernels (FP4 tiles: matmul_avx512_kernel.h; byte planes: matmul_planes_avx512.cc).
// Included inside their anonymous namespaces, compiled with each file's own flags.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "matmul.h"

namespace fp4kit {
namespace {

// acc + f32(f32(D)·S) for one activation row and unit, D = dot·2^-u (unitScale), S = f32(sa·sb);
// with FastScales, the same float by matmul.h's identity: S' = 2^(e − u)·sb by an exponent add,
// then f32(dot·S').
template <bool FastScales>
inline __m512 addUnit(__m512 acc, __m512i dot, __m512 sb, const Int8Activations& a, int64_t row, int64_t aBlock, __m512 unitScale) {
  const int64_t aBlocksPerRow = a.paddedK / 32;
  if (FastScales) {
    const __m512i shift = _mm512_set1_epi32(a.exponentShift[static_cast<size_t>(row * aBlocksPerRow + aBlock)]);
    const __m512 s = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(sb), shift));
    return _mm512_add_ps(acc, _mm512_mul_ps(_mm512_cvtepi32_ps(dot), s));
  }
  const __m512 d = _mm512_mul_ps(_mm512_cvtepi32_ps(dot), unitScale);
  const __m512 s = _mm512_mul_ps(_mm512_set1_ps(a.blockScales[row * aBlocksPerRow + aBlock]), sb);
  return _mm512_add_ps(acc, _mm512_mul_ps(d, s));
}

// out[m0 + r][tile (tile0 + t)'s columns] = acc[r][t] (+ bias), the columns past n masked off.
template <int Rows, int Tiles>
inline void storeTiles(__m512 (&acc)[Rows][Tiles], const float* bias, float* out, int64_t n, int64_t tile0, int64_t m0) {
  for (int t = 0; t < Tiles; t++) {
    const int64_t col0 = (tile0 + t) * kTileColumns;
    const int lanes = static_cast<int>(std::min<int64_t>(kTileColumns, n - col0));
    if (lanes <= 0) continue;
    const __mmask16 valid = static_cast<__mmask16>((1u << lanes) - 1);
    for (int r = 0; r < Rows; r++) {
      __m512 v = acc[r][t];
      if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(valid, bias + col0));
      _mm512_mask_storeu_ps(out + (m0 + r) * n + col0, valid, v);
    }
  }
}

}  // namespace
}  // namespace fp4kit
