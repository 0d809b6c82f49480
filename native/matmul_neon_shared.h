// Pieces the NEON matmul kernels share (AArch64): the FP4 kernel (matmul_neon_kernel.h) and the
// byte-plane kernels (matmul_planes_neon.cc, matmul_planes_neon_dotprod.cc). Every function is
// static: each file's copy is compiled with that file's flags (baseline or +dotprod).
#pragma once
#include <arm_neon.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "matmul.h"

namespace fp4kit {

// Four activation codes, repeated in each 32-bit lane: column l's 4 k sit at bytes 4l … 4l + 3.
static inline int8x16_t activations4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return vreinterpretq_s8_s32(vdupq_n_s32(v));
}

// One unit of a tile row in the defined order: acc = f32(acc + f32(f32(D)·2^−u · f32(sa·sb))), the
// 16 lanes as 4 vectors (sb: the unit's 16 lane multipliers).
static inline void addUnit16(float32x4_t (&acc)[4], const int32x4_t (&dot)[4], const float* sb, float sa, float32x4_t unitScale) {
  const float32x4_t saVector = vdupq_n_f32(sa);
  for (int c = 0; c < 4; c++) {
    const float32x4_t d = vmulq_f32(vcvtq_f32_s32(dot[c]), unitScale);
    const float32x4_t s = vmulq_f32(saVector, vld1q_f32(sb + 4 * c));
    acc[c] = vaddq_f32(acc[c], vmulq_f32(d, s));
  }
}

// A tile row's 16 outputs (those past n dropped), f32(acc + bias) where there is one.
static inline void storeTileRow(const float32x4_t (&acc)[4], const float* bias, float* out, int64_t n, int64_t tile, int64_t m) {
  const int64_t col0 = tile * kTileColumns;
  const int lanes = static_cast<int>(std::min<int64_t>(kTileColumns, n - col0));
  float lane[kTileColumns];
  for (int c = 0; c < 4; c++) vst1q_f32(lane + 4 * c, acc[c]);
  float* o = out + m * n + col0;
  for (int l = 0; l < lanes; l++) o[l] = bias ? lane[l] + bias[col0 + l] : lane[l];
}

}  // namespace fp4kit
