// A 16 × 16 transpose of 32-bit elements in AVX-512 registers (64 shuffles), for kernels that turn
// lanes into rows: the aligned kernel's panels (matmul_aligned_panel_avx512.h), FGMP's blocks
// (fgmp_simd.h). Static: each ISA file's copy is compiled with its own flags.
#pragma once
#include <immintrin.h>

namespace fp4kit {

// r[0..15] (rows of 16 int32) transposed in place: r[i] lane c ← r[c] lane i.
static inline void transpose16x16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  // u[4g + e]: element e (of each 128-bit lane) of rows 4g … 4g + 3.
  for (int g = 0; g < 4; g++) {
    u[4 * g] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
    u[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
    u[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
    u[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
  }
  for (int e = 0; e < 4; e++) {
    const __m512i v02 = _mm512_shuffle_i32x4(u[e], u[4 + e], 0x88), v13 = _mm512_shuffle_i32x4(u[e], u[4 + e], 0xdd);
    const __m512i w02 = _mm512_shuffle_i32x4(u[8 + e], u[12 + e], 0x88), w13 = _mm512_shuffle_i32x4(u[8 + e], u[12 + e], 0xdd);
    r[e] = _mm512_shuffle_i32x4(v02, w02, 0x88);       // 128-bit lane 0
    r[8 + e] = _mm512_shuffle_i32x4(v02, w02, 0xdd);   // lane 2
    r[4 + e] = _mm512_shuffle_i32x4(v13, w13, 0x88);   // lane 1
    r[12 + e] = _mm512_shuffle_i32x4(v13, w13, 0xdd);  // lane 3
  }
}

}  // namespace fp4kit
