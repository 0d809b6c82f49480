// FGMP candidates, scalar (see fgmp.h). The per-block work is a few hundred float operations,
// so rows are split over the addon's threads by the binding.
#include "fgmp.h"

#include <algorithm>
#include <cmath>

#include "block_scale.h"
#include "dtype.h"
#include "element_codec.h"

namespace fp4kit {
namespace {

// Saturating RNE code of a float32 already scaled into the format's range (saturatingCode).
uint8_t saturatingCode(float v, const ElementFormat& f) {
  const uint32_t bits = floatToBits(v);
  const uint32_t abs = bits & 0x7fffffff;
  int32_t mag = abs == 0 ? 0 : roundMagnitude(abs, 0, f, -1);
  if (mag > f.maxFiniteCode) mag = f.maxFiniteCode;
  return static_cast<uint8_t>((bits >> 31) ? (mag | f.signBit) : mag);
}

// quantizeFp4Block: codes and dequantized values under E4M3 scale code `scaleCode`.
void quantizeFp4Block(const float* x, int64_t count, float tensorScale, uint8_t scaleCode, uint8_t* codes, float* values) {
  const FgmpValueTables& t = fgmpValueTables();
  const float total = tensorScale * t.e4m3[scaleCode];
  for (int64_t i = 0; i < kFgmpBlock; i++) {
    if (i >= count) {
      codes[i] = 0;
      values[i] = 0;
      continue;
    }
    const float v = std::min(std::max(x[i] / total, -6.0f), 6.0f);  // clamp as the reference (no NaN here)
    codes[i] = e2m1NearestCode(v);
    values[i] = t.e2m1[codes[i]] * total;
  }
}

void quantizeFp8Block(const float* x, int64_t count, float fp8Scale, uint8_t* codes, float* values) {
  const FgmpValueTables& t = fgmpValueTables();
  for (int64_t i = 0; i < kFgmpBlock; i++) {
    if (i >= count) {
      codes[i] = 0;
      values[i] = 0;
      continue;
    }
    const float v = std::min(std::max(x[i] / fp8Scale, -448.0f), 448.0f);
    codes[i] = saturatingCode(v, kElementFormats[kE4m3]);
    values[i] = t.e4m3[codes[i]] * fp8Scale;
  }
}

// Σ w_i (x_i − q_i)² in float64, in element order (weightedError).
double weightedError(const float* x, const float* q, const float* w, int64_t count) {
  double e = 0;
  for (int64_t i = 0; i < count; i++) {
    const double d = static_cast<double>(x[i]) - static_cast<double>(q[i]);
    e += (w ? static_cast<double>(w[i]) : 1.0) * d * d;
  }
  return e;
}

// clippedFp4ScaleCode: the E4M3 scale among the recipe's code and those down to half its value
// with the least weighted error; ties keep the larger scale.
uint8_t clippedScaleCode(const float* x, int64_t count, float tensorScale, uint8_t base, const float* w) {
  const FgmpValueTables& t = fgmpValueTables();
  uint8_t best = base;
  double bestError = INFINITY;
  const double floorValue = static_cast<double>(t.e4m3[base]) / 2;
  uint8_t codes[kFgmpBlock];
  float values[kFgmpBlock];
  for (int c = base; c >= 1 && static_cast<double>(t.e4m3[c]) >= floorValue; c--) {
    quantizeFp4Block(x, count, tensorScale, static_cast<uint8_t>(c), codes, values);
    const double err = weightedError(x, values, w, count);
    if (err < bestError) {
      bestError = err;
      best = static_cast<uint8_t>(c);
    }
  }
  return best;
}

}  // namespace

void fgmpCandidatesScalar(const FgmpArgs& a, int64_t rowBegin, int64_t rowEnd) {
  const int64_t blocksPerRow = (a.cols + kFgmpBlock - 1) / kFgmpBlock;
  float block[kFgmpBlock], q4[kFgmpBlock], q8[kFgmpBlock];
  for (int64_t r = rowBegin; r < rowEnd; r++) {
    for (int64_t j = 0; j < blocksPerRow; j++) {
      const int64_t b = r * blocksPerRow + j;
      const int64_t col0 = j * kFgmpBlock;
      const int64_t count = std::min<int64_t>(kFgmpBlock, a.cols - col0);
      float amax = 0;
      for (int64_t i = 0; i < kFgmpBlock; i++) {
        block[i] = i < count ? bitsToFloat(loadBits(a.x, a.dtype, r * a.cols + col0 + i)) : 0.0f;
        amax = std::max(amax, std::fabs(block[i]));
      }
      const float* w = a.fisher ? a.fisher + (a.fisherPerElement ? r * a.cols : 0) + col0 : nullptr;
      uint8_t code = encodeElementBits(floatToBits(nvfp4ScaledBlockScale(amax, a.tensorScale)), kElementFormats[kE4m3], -1);
      if (a.clipping) code = clippedScaleCode(block, count, a.tensorScale, code, w);
      a.fp4Scales[b] = code;
      quantizeFp4Block(block, count, a.tensorScale, code, a.fp4Codes + b * kFgmpBlock, q4);
      quantizeFp8Block(block, count, a.fp8Scale, a.fp8Codes + b * kFgmpBlock, q8);
      double impact = 0;
      for (int64_t i = 0; i < count; i++) {
        const double d = static_cast<double>(q4[i]) - static_cast<double>(q8[i]);
        impact += (w ? static_cast<double>(w[i]) : 1.0) * d * d;
      }
      a.impacts[b] = impact;
    }
  }
}

const FgmpValueTables& fgmpValueTables() {
  static const FgmpValueTables t = [] {
    FgmpValueTables v;
    for (int c = 0; c < 16; c++) v.e2m1[c] = decodeElement(c, kElementFormats[kE2m1]);
    for (int c = 0; c < 256; c++) v.e4m3[c] = decodeElement(c, kElementFormats[kE4m3]);
    return v;
  }();
  return t;
}

}  // namespace fp4kit
