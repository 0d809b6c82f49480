// Byte-plane weights (matmul_planes.h): the repacking, the activation preparation, and the scalar
// reference kernel that the SIMD variant (matmul_planes_avx512.cc) matches operation for operation.
#include "matmul_planes.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>

namespace fp4kit {

void repackPlaneWeights(const uint8_t* codes, const int32_t* valueTable, int shift, const float* blockScales,
                        int64_t n, int64_t k, int64_t blockSize, PackedPlaneWeights& out, bool keepCodes) {
  // The fewest planes whose offset makes every value a P-byte unsigned integer.
  int32_t lo = 0, hi = 0;
  for (int c = 0; c < 256; c++) {
    if (valueTable[c] == kPlaneNanValue) continue;
    lo = std::min(lo, valueTable[c]);
    hi = std::max(hi, valueTable[c]);
  }
  out.planeCount = lo >= -128 && hi <= 127 ? 1 : lo >= -32768 && hi <= 32767 ? 2 : 3;
  out.shift = shift;
  out.n = n;
  out.k = k;
  out.unit = blockSize;
  out.units = (k + blockSize - 1) / blockSize;
  out.tiles = (n + kTileColumns - 1) / kTileColumns;
  out.kQuads = out.units * blockSize / 4;
  const int64_t paddedK = out.units * blockSize;
  const int planes = out.planeCount;
  const uint32_t offset = static_cast<uint32_t>(out.offset());
  out.planes.assign(static_cast<size_t>(out.tiles * out.kQuads * planes * 64), 0);
  out.scales.assign(static_cast<size_t>(out.tiles * out.units * kTileColumns), 0.0f);
  bool nanLanes = false;
  for (int64_t row = 0; row < n; row++) {
    const int64_t tile = row / kTileColumns, lane = row % kTileColumns;
    for (int64_t kk = 0; kk < paddedK; kk++) {
      const int32_t v = valueTable[codes[row * paddedK + kk]];
      // Padding lanes and NaN codes hold v = 0 (plane bytes of the offset alone).
      const uint32_t w = static_cast<uint32_t>(v == kPlaneNanValue ? 0 : v) + offset;
      uint8_t* dst = &out.planes[static_cast<size_t>(((tile * out.kQuads + kk / 4) * planes) * 64 + 4 * lane + kk % 4)];
      for (int p = 0; p < planes; p++) dst[p * 64] = static_cast<uint8_t>(w >> (8 * p));
    }
    for (int64_t j = 0; j < out.units; j++) {
      float scale = blockScales[row * out.units + j];
      for (int64_t i = 0; i < blockSize; i++) {
        if (valueTable[codes[row * paddedK + j * blockSize + i]] == kPlaneNanValue) {
          scale = std::numeric_limits<float>::quiet_NaN();
          nanLanes = true;
        }
      }
      out.scales[static_cast<size_t>((tile * out.units + j) * kTileColumns + lane)] = scale;
    }
  }
  if (planes == 3 && keepCodes) {
    for (int c = 0; c < 256; c++) {
      const uint32_t w = static_cast<uint32_t>(valueTable[c] == kPlaneNanValue ? 0 : valueTable[c]) + offset;
      for (int p = 0; p < 3; p++) out.planeOfCode[p][c] = static_cast<uint8_t>(w >> (8 * p));
    }
    // Codes in the planes' layout; padding lanes and elements hold a code whose value is 0 (so
    // the rebuilt planes equal the stored ones there too).
    int zeroCode = 0;
    while (zeroCode < 255 && valueTable[zeroCode] != 0) zeroCode++;
    out.codes.assign(static_cast<size_t>(out.tiles * out.kQuads * 64), static_cast<uint8_t>(zeroCode));
    for (int64_t row = 0; row < n; row++) {
      const int64_t tile = row / kTileColumns, lane = row % kTileColumns;
      for (int64_t kk = 0; kk < paddedK; kk++)
        out.codes[static_cast<size_t>((tile * out.kQuads + kk / 4) * 64 + 4 * lane + kk % 4)] = codes[row * paddedK + kk];
    }
  }
  // Padding lanes: every plane byte is the offset's, so their dot is offset·Σk and the combine
  // step's −offset·Σk cancels it; their multiplier is 0.
  for (int64_t row = n; row < out.tiles * kTileColumns; row++) {
    const int64_t tile = row / kTileColumns, lane = row % kTileColumns;
    for (int64_t kk = 0; kk < paddedK; kk++) {
      uint8_t* dst = &out.planes[static_cast<size_t>(((tile * out.kQuads + kk / 4) * planes) * 64 + 4 * lane + kk % 4)];
      for (int p = 0; p < planes; p++) dst[p * 64] = static_cast<uint8_t>(offset >> (8 * p));
    }
  }
  out.scalesNormal = n > 0 && out.units > 0 && !nanLanes;
  out.scaleExpMin = INT32_MAX;
  out.scaleExpMax = INT32_MIN;
  for (int64_t i = 0; i < n * out.units; i++) {
    const int e = normalExponent(blockScales[i]);
    if (e == INT32_MIN) out.scalesNormal = false;
    out.scaleExpMin = std::min(out.scaleExpMin, e);
    out.scaleExpMax = std::max(out.scaleExpMax, e);
  }
}

void prepareInt8ActivationsForPlanes(Int8Activations& a, const PackedPlaneWeights& b) {
  prepareFastScales(a, b.scalesNormal, b.scaleExpMin, b.scaleExpMax, b.unitShift());
  sumActivationUnits(a, b.unit, b.units);
}

// Σk·v of one lane and unit, modulo 2^32 (the true value fits int32).
static inline int32_t planeDot(const Int8Activations& a, const PackedPlaneWeights& b, int64_t m, int64_t tile, int64_t j,
                               int lane) {
  const int8_t* ar = a.codes + m * a.paddedK + j * b.unit;
  uint32_t dot = 0;
  for (int p = 0; p < b.planeCount; p++) {
    uint32_t planeSum = 0;
    for (int64_t i = 0; i < b.unit; i++) {
      const int64_t q = j * (b.unit / 4) + i / 4;
      const uint8_t w = b.planes[static_cast<size_t>(((tile * b.kQuads + q) * b.planeCount + p) * 64 + 4 * lane + i % 4)];
      planeSum += static_cast<uint32_t>(w * ar[i]);
    }
    dot += planeSum << (8 * p);
  }
  dot -= static_cast<uint32_t>(b.offset()) * static_cast<uint32_t>(a.unitSums[static_cast<size_t>(m * a.units + j)]);
  return static_cast<int32_t>(dot);
}

void matmulPlanesScalar(const Int8Activations& a, const PackedPlaneWeights& b, const float* bias, float* out,
                        int64_t tileBegin, int64_t tileEnd) {
  outputsInOrder(
      a, b.n, b.units, b.unit, std::ldexp(1.0f, -b.unitShift()), tileBegin, tileEnd,
      [&](int64_t m, int64_t tile, int64_t j, int lane) { return planeDot(a, b, m, tile, j, lane); },
      [&](int64_t tile, int64_t j, int lane) { return b.scales[static_cast<size_t>((tile * b.units + j) * kTileColumns + lane)]; },
      bias, out);
}

}  // namespace fp4kit
