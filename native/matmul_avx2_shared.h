// What the AVX2 matmul kernels share (FP4 tiles: matmul_avx2.cc; int16 planes:
// matmul_planes_avx2.cc): the store of finished tiles. Internal linkage, so each file compiles its
// own copy with its own flags (as matmul_avx512_shared.h).
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "matmul.h"

namespace fp4kit {
namespace {

// out[m0 + r][tile's columns] = acc[r] (two 8-lane halves, + bias), the columns past n left out.
template <int Rows>
inline void storeTileRows(const __m256 (&acc)[Rows][2], const float* bias, float* out, int64_t n, int64_t tile, int64_t m0) {
  const int64_t col0 = tile * kTileColumns;
  const int lanes = static_cast<int>(std::min<int64_t>(kTileColumns, n - col0));
  for (int r = 0; r < Rows; r++) {
    alignas(32) float lane[kTileColumns];
    _mm256_store_ps(lane, acc[r][0]);
    _mm256_store_ps(lane + 8, acc[r][1]);
    float* o = out + (m0 + r) * n + col0;
    for (int l = 0; l < lanes; l++) o[l] = bias ? lane[l] + bias[col0 + l] : lane[l];
  }
}

}  // namespace
}  // namespace fp4kit
