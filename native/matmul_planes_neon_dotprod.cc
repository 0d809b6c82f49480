// Byte-plane weights × MXINT8 activations with NEON and the dot-product extension (ARMv8.2 DotProd:
// Apple M-series, Neoverse N1/V1 and later), compiled alone with -march=armv8.2-a+dotprod and
// chosen at run time (dispatch.cc): the byte planes the AVX-512 kernel reads (matmul_planes.h),
// one sdot per plane, 4 columns and 4 k — 16 products per instruction where the baseline NEON
// kernel (matmul_planes_neon.cc) makes 4 from int16 planes with smlal.
//
// sdot multiplies signed bytes, and a plane byte is 0…255: it goes in as plane − 128 (its top bit
// flipped), so each plane's dot S_p comes out 128·Σa short, and
//   Σp 256^p·(S_p + 128·Σa) − offset·Σa = Σp 256^p·S_p + c·Σa,   c = 128·Σp 256^p − 2^(8P−1),
// all modulo 2^32 (the true dot fits int32): the correction is c times the unit's activation sum,
// which prepareInt8ActivationsForPlanes has made (a.unitSums). The low plane (0 ≤ l < 8) is a
// signed byte as it is. D is then matmulPlanesScalar's, and the float32 steps follow in the plain
// order (outputsInOrder): the same bits.
#if defined(__aarch64__)
#include <arm_neon.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "matmul_neon_shared.h"
#include "matmul_planes.h"

namespace fp4kit {
namespace {

template <int P>
void row(const Int8Activations& a, const PackedPlaneWeights& b, const float* bias, float* out, int64_t tile, int64_t m) {
  const float32x4_t unitScale = vdupq_n_f32(std::ldexp(1.0f, -b.unitShift()));
  const int32x4_t shift = vdupq_n_s32(b.lowShift);
  const int quads = static_cast<int>(b.unit / 4);
  const int64_t aBlocksPerRow = a.paddedK / 32;
  uint32_t perSum = 0u - static_cast<uint32_t>(b.offset());  // c (see above), modulo 2^32
  for (int p = 0; p < P; p++) perSum += 128u << (8 * p);
  const uint8x16_t flip = vdupq_n_u8(0x80);
  float32x4_t acc[4];
  for (int c = 0; c < 4; c++) acc[c] = vdupq_n_f32(0.0f);
  for (int64_t j = 0; j < b.units; j++) {
    const int8_t* aUnit = a.codes + m * a.paddedK + j * b.unit;
    const uint8_t* planes = b.planes.data() + static_cast<size_t>((tile * b.kQuads + j * quads) * P * 64);
    int32x4_t s[P][4];
    for (int p = 0; p < P; p++)
      for (int c = 0; c < 4; c++) s[p][c] = vdupq_n_s32(0);
    for (int q = 0; q < quads; q++) {
      const int8x16_t a4 = activations4(aUnit + 4 * q);
      for (int p = 0; p < P; p++)
        for (int c = 0; c < 4; c++)
          s[p][c] = vdotq_s32(s[p][c], vreinterpretq_s8_u8(veorq_u8(vld1q_u8(planes + (q * P + p) * 64 + 16 * c), flip)), a4);
    }
    // Σp 256^p·S_p + c·Σa, shifted by s, plus the low bits' dot: unsigned, wrapping.
    const uint32x4_t fix = vdupq_n_u32(perSum * static_cast<uint32_t>(a.unitSums[static_cast<size_t>(m * a.units + j)]));
    int32x4_t dot[4];
    for (int c = 0; c < 4; c++) {
      uint32x4_t d = vaddq_u32(vreinterpretq_u32_s32(s[0][c]), fix);
      for (int p = 1; p < P; p++) d = vaddq_u32(d, vshlq_n_u32(vreinterpretq_u32_s32(s[p][c]), 8));
      dot[c] = vshlq_s32(vreinterpretq_s32_u32(d), shift);
    }
    for (unsigned mask = b.lowQuadMask(tile, j); mask != 0; mask &= mask - 1) {
      const int q = __builtin_ctz(mask);
      const int8x16_t a4 = activations4(aUnit + 4 * q);
      const int8_t* low = reinterpret_cast<const int8_t*>(b.low.data()) + static_cast<size_t>((tile * b.kQuads + j * quads + q) * 64);
      for (int c = 0; c < 4; c++) dot[c] = vdotq_s32(dot[c], vld1q_s8(low + 16 * c), a4);
    }
    addUnit16(acc, dot, b.scales.data() + (tile * b.units + j) * kTileColumns, a.blockScales[m * aBlocksPerRow + (j * b.unit) / 32], unitScale);
  }
  storeTileRow(acc, bias, out, b.n, tile, m);
}

}  // namespace

void matmulPlanesNeonDotprod(const Int8Activations& a, const PackedPlaneWeights& b, const float* bias, float* out, int64_t tileBegin,
                             int64_t tileEnd) {
  if ((b.planes.empty() && b.tiles > 0) || b.planeCount < 1 || b.planeCount > 2 || b.scaleStorage != ScaleStorage::Float32) {
    matmulPlanesScalar(a, b, bias, out, tileBegin, tileEnd);  // not byte planes of 1 or 2 with float multipliers: not this kernel's form
    return;
  }
  for (int64_t tile = tileBegin; tile < tileEnd; tile++) {
    for (int64_t m = 0; m < a.rows; m++) {
      if (b.planeCount == 1) row<1>(a, b, bias, out, tile, m);
      else row<2>(a, b, bias, out, tile, m);
    }
  }
}

}  // namespace fp4kit
#endif  // __aarch64__
