// Byte-plane weights × MXINT8 activations with NEON (AArch64; matmul_planes.h), over the int16 form
// that the AVX2 kernel reads: h (16 signed bits) as one int16 plane, the low bits l as another read
// only over the groups of 4 k that hold one. Per group, lane l's 4 products h·a are exact int32
// (smull/smlal on int16: |h·a| < 2^22) accumulated per lane and folded by pairwise adds at the end
// of a unit; D = 2^s·Σk a·h + Σk a·l is exact in int32, then the defined float32 steps in the plain
// order — the same bits as matmulPlanesScalar.
#include <arm_neon.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "matmul_neon_shared.h"
#include "matmul_planes.h"

namespace fp4kit {
namespace {

// Four activation codes as int16 [a0 a1 a2 a3 a0 a1 a2 a3]: lane l's 4 k sit at int16 4l … 4l + 3.
inline int16x8_t activations4Int16(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return vmovl_s8(vreinterpret_s8_s32(vdup_n_s32(v)));
}

// Σ a·plane over the unit's groups of 4 k (all `quads` of them, or those set in `mask`) for one
// row: 16 lanes as 4 vectors. (The AVX2 twin's loop: counted where it runs every group.)
inline void planeDots(const int16_t* plane, const int8_t* aUnit, int quads, unsigned mask, bool masked, int32x4_t (&dot)[4]) {
  int32x4_t perLane[16];  // lane l: its 4 products' running sums
  for (int l = 0; l < 16; l++) perLane[l] = vdupq_n_s32(0);
  for (int q = 0; masked ? mask != 0 : q < quads; q++) {
    int g = q;
    if (masked) {
      g = __builtin_ctz(mask);
      mask &= mask - 1;
    }
    const int16_t* w = plane + g * 64;
    const int16x8_t a4 = activations4Int16(aUnit + 4 * g);
    for (int v = 0; v < 8; v++) {  // lanes 2v and 2v + 1
      const int16x8_t wv = vld1q_s16(w + 8 * v);
      perLane[2 * v] = vmlal_s16(perLane[2 * v], vget_low_s16(wv), vget_low_s16(a4));
      perLane[2 * v + 1] = vmlal_high_s16(perLane[2 * v + 1], wv, a4);
    }
  }
  for (int c = 0; c < 4; c++)
    dot[c] = vpaddq_s32(vpaddq_s32(perLane[4 * c], perLane[4 * c + 1]), vpaddq_s32(perLane[4 * c + 2], perLane[4 * c + 3]));
}

void row(const Int8Activations& a, const PackedPlaneWeights& b, const float* bias, float* out, int64_t tile, int64_t m) {
  const float32x4_t unitScale = vdupq_n_f32(std::ldexp(1.0f, -b.unitShift()));
  const int32x4_t shift = vdupq_n_s32(b.lowShift);
  const int quads = static_cast<int>(b.unit / 4);
  const int64_t aBlocksPerRow = a.paddedK / 32;
  float32x4_t acc[4];
  for (int c = 0; c < 4; c++) acc[c] = vdupq_n_f32(0.0f);
  for (int64_t j = 0; j < b.units; j++) {
    const size_t planeAt = static_cast<size_t>((tile * b.kQuads + j * quads) * 64);
    const int8_t* aUnit = a.codes + m * a.paddedK + j * b.unit;
    int32x4_t dot[4];
    planeDots(b.h16.data() + planeAt, aUnit, quads, 0, false, dot);
    for (int c = 0; c < 4; c++) dot[c] = vshlq_s32(dot[c], shift);
    if (const unsigned mask = b.lowQuadMask(tile, j)) {
      int32x4_t low[4];
      planeDots(b.low16.data() + planeAt, aUnit, quads, mask, true, low);
      for (int c = 0; c < 4; c++) dot[c] = vaddq_s32(dot[c], low[c]);
    }
    addUnit16(acc, dot, b.scales.data() + (tile * b.units + j) * kTileColumns, a.blockScales[m * aBlocksPerRow + (j * b.unit) / 32], unitScale);
  }
  storeTileRow(acc, bias, out, b.n, tile, m);
}

}  // namespace

void matmulPlanesNeon(const Int8Activations& a, const PackedPlaneWeights& b, const float* bias, float* out, int64_t tileBegin,
                      int64_t tileEnd) {
  if ((b.h16.empty() && b.tiles > 0) || b.scaleStorage != ScaleStorage::Float32) {
    matmulPlanesScalar(a, b, bias, out, tileBegin, tileEnd);  // byte planes or byte multipliers: not this kernel's form
    return;
  }
  for (int64_t tile = tileBegin; tile < tileEnd; tile++)
    for (int64_t m = 0; m < a.rows; m++) row(a, b, bias, out, tile, m);
}

}  // namespace fp4kit
