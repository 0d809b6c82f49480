// Block scales: the OCP MX E8M0 exponent rule (floor, or ceil as NVIDIA/torchao) and the NVFP4
// E4M3 block scale under a tensor scale, the twin of lib/kernels/ref/block-scale.ts.
// Every function is `static inline` so each translation unit (scalar, AVX2, AVX-512) gets its own
// copy compiled with its own flags: no shared COMDAT copy can carry AVX-512 instructions into the
// scalar path.
#pragma once
#include <cstdint>

#include "element_codec.h"

namespace fp4kit {

static inline int32_t mxScaleExponent(uint32_t amaxBits, const ElementFormat& f, bool ceilRule) {
  int32_t s;
  if (!ceilRule) {
    s = (amaxBits == 0 ? -126 : floorLog2Bits(amaxBits)) - f.maxExponent;
  } else {
    if (amaxBits == 0) return -127;
    const uint32_t d = floatToBits(bitsToFloat(amaxBits) / f.maxFinite);
    s = d == 0 ? -127 : ceilLog2Bits(d);
    if (s > 127) s = 127;
  }
  return s < -127 ? -127 : s;
}

// clamp((amax_b / 6) / tensorScale, 2^−6, 448) in float32 (NaN stays NaN).
static inline float nvfp4ScaledBlockScale(float blockAmax, float tensorScale) {
  const float blockScale = blockAmax / 6.0f;
  const float scaled = blockScale / tensorScale;
  return scaled < 0.015625f ? 0.015625f : scaled > 448.0f ? 448.0f : scaled;
}

}  // namespace fp4kit
