// The NEON block matmul kernel (AArch64), included by one source file per dot-product form, each
// built with its own flags (matmul_neon.cc: baseline NEON, smull + sadalp; matmul_neon_dotprod.cc:
// the ARMv8.2 dot-product extension, sdot). Everything here has internal linkage, so each file
// gets its own copy compiled for its own flags.
//
// A tile's 16 columns are four quarters of 4 lanes (byte 4l + t of a 16-byte quarter is k + t of
// column l: matmul.h). E2M1 nibbles decode by one table lookup (tbl) to 2w ∈ [−12, 12] as int8;
// the activation codes are int8; `Dot` sums their products per lane into int32 (|Σ| ≤ 12·128·unit),
// so D is the same integer as the scalar kernel's. Then the defined float32 steps in the plain
// order (float scales: readsCompactScales = false; no fast-scales identity) — the same bits as
// matmulFp4Int8Scalar. FGMP weights (FP8 slots) take the scalar kernel here; the binding runs them
// on their int16 planes instead (matmul_binding.cc, runsOnPlanes).
#pragma once
#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "matmul.h"
#include "matmul_neon_shared.h"

namespace fp4kit {
namespace {

// Rows [m0, m0 + Rows) against one tile, `Dot::Sums` per row: a quarter's running sums.
template <class Dot, int Rows>
void step(const Int8Activations& a, const PackedFp4Weights& b, const float* bias, float* out, int64_t tile, int64_t m0) {
  static const int8_t kTwiceE2m1[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
  const int8x16_t lut = vld1q_s8(kTwiceE2m1);
  const uint8x16_t lowNibble = vdupq_n_u8(0x0f);
  const float32x4_t unitScale = vdupq_n_f32(1.0f / 128.0f);  // 2^-unitShift, E2M1 lanes
  const int64_t aBlocksPerRow = a.paddedK / 32;
  const int64_t groupsPerUnit = b.unit / 8;
  float32x4_t acc[Rows][4];
  for (int r = 0; r < Rows; r++)
    for (int c = 0; c < 4; c++) acc[r][c] = vdupq_n_f32(0.0f);
  for (int64_t j = 0; j < b.units; j++) {
    typename Dot::Sums sums[Rows][4];
    for (int r = 0; r < Rows; r++)
      for (int c = 0; c < 4; c++) Dot::clear(sums[r][c]);
    for (int64_t g = j * groupsPerUnit; g < (j + 1) * groupsPerUnit; g++) {
      const uint8_t* w = b.nibbles.data() + (tile * b.kGroups + g) * 64;
      int8x16_t lo[4], hi[4];  // k … k+3 and k+4 … k+7 of lanes 4c … 4c+3
      for (int c = 0; c < 4; c++) {
        const uint8x16_t v = vld1q_u8(w + 16 * c);
        lo[c] = vqtbl1q_s8(lut, vandq_u8(v, lowNibble));
        hi[c] = vqtbl1q_s8(lut, vshrq_n_u8(v, 4));
      }
      for (int r = 0; r < Rows; r++) {
        const int8_t* ar = a.codes + (m0 + r) * a.paddedK + g * 8;
        const int8x16_t a0 = activations4(ar), a1 = activations4(ar + 4);
        for (int c = 0; c < 4; c++) {
          Dot::add(sums[r][c], lo[c], a0);
          Dot::add(sums[r][c], hi[c], a1);
        }
      }
    }
    const float* sb = b.scales.data() + (tile * b.units + j) * kTileColumns;
    for (int r = 0; r < Rows; r++) {
      const float32x4_t sa = vdupq_n_f32(a.blockScales[(m0 + r) * aBlocksPerRow + (j * b.unit) / 32]);
      for (int c = 0; c < 4; c++) {
        const float32x4_t d = vmulq_f32(vcvtq_f32_s32(Dot::total(sums[r][c])), unitScale);
        const float32x4_t s = vmulq_f32(sa, vld1q_f32(sb + 4 * c));
        acc[r][c] = vaddq_f32(acc[r][c], vmulq_f32(d, s));
      }
    }
  }
  const int64_t col0 = tile * kTileColumns;
  const int lanes = static_cast<int>(std::min<int64_t>(kTileColumns, b.n - col0));
  for (int r = 0; r < Rows; r++) {
    float row[kTileColumns];
    for (int c = 0; c < 4; c++) vst1q_f32(row + 4 * c, acc[r][c]);
    float* dst = out + (m0 + r) * b.n + col0;
    for (int l = 0; l < lanes; l++) dst[l] = bias ? row[l] + bias[col0 + l] : row[l];
  }
}

// The kernel over tiles [tileBegin, tileEnd), Dot::kRowsPerStep rows at a time.
template <class Dot>
void matmulFp4Int8NeonWith(const Int8Activations& a, const PackedFp4Weights& b, const float* bias, float* out, int64_t tileBegin,
                           int64_t tileEnd) {
  // Compact scales are not made for this kernel (readsCompactScales = false); FGMP's FP8 slots
  // have no NEON form.
  if (b.scaleStorage != ScaleStorage::Float32 || b.hasFp8) {
    matmulFp4Int8Scalar(a, b, bias, out, tileBegin, tileEnd);
    return;
  }
  for (int64_t tile = tileBegin; tile < tileEnd; tile++) {
    int64_t m = 0;
    for (; m + Dot::kRowsPerStep <= a.rows; m += Dot::kRowsPerStep) step<Dot, Dot::kRowsPerStep>(a, b, bias, out, tile, m);
    for (; m < a.rows; m++) step<Dot, 1>(a, b, bias, out, tile, m);
  }
}

}  // namespace
}  // namespace fp4kit
