// Byte-plane weights (matmul_planes.h): the repacking, the activation preparation, and the scalar
// reference kernel that the SIMD variant (matmul_planes_avx512.cc) matches operation for operation.
#include "matmul_planes.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>

#include "dtype.h"

namespace fp4kit {

namespace {

// Each multiplier as the byte that laneScale decodes to its bits, in `storage`; false where one has
// none.
bool encodeLaneScales(const std::vector<float>& scales, ScaleStorage storage, const PackedPlaneWeights& b, std::vector<uint8_t>& bytes) {
  bytes.resize(scales.size());
  if (storage == ScaleStorage::E8m0) {
    for (size_t i = 0; i < scales.size(); i++) {
      const uint32_t bits = floatToBits(scales[i]);
      if ((bits & 0x807fffffu) != 0 || (bits >> 23) == 255) return false;  // not +2^e (or +0), or Inf/NaN
      bytes[i] = static_cast<uint8_t>(bits >> 23);
    }
    return true;
  }
  // E4m3OrOther: the multipliers of the 127 codes 0x00–0x7e, non-decreasing for a finite
  // tensorScale ≥ 0 whose 2^8 multiple is finite (laneScale's product), which a search needs.
  if (!(b.tensorScale >= 0.0f) || !std::isfinite(b.tensorScale * 256.0f)) return false;
  uint32_t decoded[127];
  float values[127];
  for (int c = 0; c < 127; c++) {
    values[c] = e4m3OrOtherMultiplier(static_cast<uint8_t>(c), b.tensorScale, b.otherScale);
    decoded[c] = floatToBits(values[c]);
  }
  const uint32_t other = floatToBits(b.otherScale);
  for (size_t i = 0; i < scales.size(); i++) {
    const uint32_t bits = floatToBits(scales[i]);
    if (bits == other) {
      bytes[i] = 0x80;
      continue;
    }
    const int c = static_cast<int>(std::lower_bound(values, values + 127, scales[i]) - values);
    if (c == 127 || decoded[c] != bits) return false;
    bytes[i] = static_cast<uint8_t>(c);
  }
  return true;
}

// The codes form's multipliers as bytes where every one decodes to its own bits (matmul_planes.h).
void compactLaneScales(PackedPlaneWeights& out, const FgmpMultipliers* fgmp) {
  std::vector<uint8_t> bytes;
  if (fgmp != nullptr) {
    out.tensorScale = fgmp->tensorScale;
    out.otherScale = fgmp->fp8Scale;
  }
  const ScaleStorage storage = fgmp != nullptr ? ScaleStorage::E4m3OrOther : ScaleStorage::E8m0;
  if (!encodeLaneScales(out.scales, storage, out, bytes)) return;
  out.scaleStorage = storage;
  out.compactScales = std::move(bytes);
  std::vector<float>().swap(out.scales);
}

}  // namespace

void repackPlaneWeights(const uint8_t* codes, const int32_t* valueTable, int shift, const float* blockScales,
                        int64_t n, int64_t k, int64_t blockSize, PackedPlaneWeights& out, PlaneForm form,
                        const FgmpMultipliers* fgmp) {
  int32_t lo = 0, hi = 0;
  for (int c = 0; c < 256; c++) {
    if (valueTable[c] == kPlaneNanValue) continue;
    lo = std::min(lo, valueTable[c]);
    hi = std::max(hi, valueTable[c]);
  }
  // The fewest low bits s that leave h = v >> s within 16 signed bits, then the fewest planes
  // whose offset makes every h a P-byte unsigned integer.
  int lowShift = 0;
  while ((lo >> lowShift) < -32768 || (hi >> lowShift) > 32767) lowShift++;
  const int32_t hLo = lo >> lowShift, hHi = hi >> lowShift;
  out.planeCount = hLo >= -128 && hHi <= 127 ? 1 : 2;
  out.lowShift = lowShift;
  out.shift = shift;
  out.n = n;
  out.k = k;
  out.unit = blockSize;
  out.units = (k + blockSize - 1) / blockSize;
  out.tiles = (n + kTileColumns - 1) / kTileColumns;
  out.kQuads = out.units * blockSize / 4;
  const int64_t paddedK = out.units * blockSize;
  const int planes = out.planeCount;
  // Each code's plane bytes: w = h + offset, and its low bits l (NaN codes as v = 0; their lanes get
  // a NaN multiplier).
  // For int16 planes, h itself.
  const uint32_t offset = static_cast<uint32_t>(out.offset());
  int16_t hOfCode[256];
  for (int c = 0; c < 256; c++) {
    const int32_t v = valueTable[c] == kPlaneNanValue ? 0 : valueTable[c];
    hOfCode[c] = static_cast<int16_t>(v >> lowShift);
    const uint32_t w = static_cast<uint32_t>(v >> lowShift) + offset;
    for (int p = 0; p < planes; p++) out.planeOfCode[p][c] = static_cast<uint8_t>(w >> (8 * p));
    out.planeOfCode[planes][c] = static_cast<uint8_t>(v & ((1 << lowShift) - 1));
  }
  const uint8_t* lowOfCode = out.planeOfCode[planes];
  out.signMagnitude = true;
  for (int c = 0; c < 128; c++) {
    const int32_t v = valueTable[c], negative = valueTable[c + 128];
    const bool nan = v == kPlaneNanValue;
    if (nan ? negative != kPlaneNanValue : v < 0 || negative != -v) out.signMagnitude = false;
    const int32_t magnitude = nan ? 0 : v;
    for (int p = 0; p < planes; p++) out.magnitudePlaneOfCode[p][c] = static_cast<uint8_t>((magnitude >> lowShift) >> (8 * p));
    out.magnitudePlaneOfCode[planes][c] = static_cast<uint8_t>(magnitude & ((1 << lowShift) - 1));
  }
  // Padding lanes hold a code whose value is 0: plane bytes of the offset alone, so their dot is
  // offset·Σk, which the combine step's −offset·Σk cancels; no low bits; their multiplier is 0.
  int zeroCode = 0;
  while (zeroCode < 255 && valueTable[zeroCode] != 0) zeroCode++;
  const bool split = lowShift > 0;
  // The compact int16 form where every h has its byte (hCodeByteOf), else the int16 planes.
  uint8_t hCodeOfCode[256];
  bool everyHCoded = true;
  for (int c = 0; c < 256; c++) everyHCoded = hCodeByteOf(hOfCode[c], hCodeOfCode[c]) && everyHCoded;
  if (form == PlaneForm::Int16Codes && !everyHCoded) form = PlaneForm::Int16;
  const bool withCodes = split && form == PlaneForm::Codes;  // instead of the byte planes
  const bool int16Codes = form == PlaneForm::Int16Codes;
  const bool int16Planes = form == PlaneForm::Int16;
  const bool bytePlanes = !int16Planes && !int16Codes && !withCodes;
  const size_t planeSize = static_cast<size_t>(out.tiles * out.kQuads * 64);
  out.planes.assign(bytePlanes ? planeSize * planes : 0, 0);
  out.low.assign(split && bytePlanes ? planeSize : 0, 0);
  out.h16.assign(int16Planes ? planeSize : 0, 0);
  out.low16.assign(split && int16Planes ? planeSize : 0, 0);
  out.hCodes.assign(int16Codes ? planeSize : 0, 0);
  out.hCodesLow.assign(split && int16Codes ? planeSize : 0, 0);
  out.lowQuads.assign(split ? static_cast<size_t>(out.tiles * out.units) : 0, 0);
  out.codes.assign(withCodes ? static_cast<size_t>(out.tiles * out.kQuads * 64) : 0, 0);
  out.scales.assign(static_cast<size_t>(out.tiles * out.units * kTileColumns), 0.0f);
  bool nanLanes = false;
  for (int64_t row = 0; row < out.tiles * kTileColumns; row++) {
    const int64_t tile = row / kTileColumns, lane = row % kTileColumns;
    for (int64_t j = 0; j < out.units; j++) {
      bool nanUnit = false;
      unsigned lowQuads = 0;
      for (int64_t i = 0; i < blockSize; i++) {
        const int64_t kk = j * blockSize + i;
        const uint8_t code = row < n ? codes[row * paddedK + kk] : static_cast<uint8_t>(zeroCode);
        nanUnit = nanUnit || valueTable[code] == kPlaneNanValue;
        const int64_t quad = tile * out.kQuads + kk / 4, byte = 4 * lane + kk % 4;
        if (int16Planes) {
          out.h16[static_cast<size_t>(quad * 64 + byte)] = hOfCode[code];
          if (split) out.low16[static_cast<size_t>(quad * 64 + byte)] = static_cast<int16_t>(lowOfCode[code]);
        } else if (int16Codes) {
          const size_t at = static_cast<size_t>(quad * 64 + int16CodesPosition(static_cast<int>(byte)));
          out.hCodes[at] = hCodeOfCode[code];
          if (split) out.hCodesLow[at] = lowOfCode[code];
        } else if (bytePlanes) {
          for (int p = 0; p < planes; p++) out.planes[static_cast<size_t>((quad * planes + p) * 64 + byte)] = out.planeOfCode[p][code];
          if (split) out.low[static_cast<size_t>(quad * 64 + byte)] = lowOfCode[code];
        }
        if (split && lowOfCode[code] != 0) lowQuads |= 1u << (i / 4);
        if (withCodes) out.codes[static_cast<size_t>(quad * 64 + byte)] = code;
      }
      if (split) out.lowQuads[static_cast<size_t>(tile * out.units + j)] |= static_cast<uint8_t>(lowQuads);
      if (row >= n) continue;
      nanLanes = nanLanes || nanUnit;
      out.scales[static_cast<size_t>((tile * out.units + j) * kTileColumns + lane)] =
          nanUnit ? std::numeric_limits<float>::quiet_NaN() : blockScales[row * out.units + j];
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
  if (form == PlaneForm::Codes) compactLaneScales(out, fgmp);
}

void prepareInt8ActivationsForPlanes(Int8Activations& a, const PackedPlaneWeights& b) {
  prepareFastScales(a, b.scalesNormal, b.scaleExpMin, b.scaleExpMax, b.unitShift());
  sumActivationUnits(a, b.unit, b.units);
}

// Σk·v of one lane and unit, modulo 2^32 (the true value fits int32): the planes' dot, shifted
// back by s, plus the low bits' dot.
static inline int32_t planeDot(const Int8Activations& a, const PackedPlaneWeights& b, int64_t m, int64_t tile, int64_t j,
                               int lane) {
  const int8_t* ar = a.codes + m * a.paddedK + j * b.unit;
  const auto byteAt = [&](int64_t i) { return static_cast<size_t>((tile * b.kQuads + j * (b.unit / 4) + i / 4) * 64 + 4 * lane + i % 4); };
  uint32_t dot = 0;
  for (int p = 0; p < b.planeCount; p++) {
    uint32_t planeSum = 0;
    for (int64_t i = 0; i < b.unit; i++) {
      const size_t q = byteAt(i) / 64, byte = byteAt(i) % 64;
      planeSum += static_cast<uint32_t>(b.planes[(q * b.planeCount + p) * 64 + byte] * ar[i]);
    }
    dot += planeSum << (8 * p);
  }
  dot -= static_cast<uint32_t>(b.offset()) * static_cast<uint32_t>(a.unitSums[static_cast<size_t>(m * a.units + j)]);
  dot <<= b.lowShift;
  if (b.lowShift > 0)
    for (int64_t i = 0; i < b.unit; i++) dot += static_cast<uint32_t>(b.low[byteAt(i)] * ar[i]);
  return static_cast<int32_t>(dot);
}

void matmulPlanesScalar(const Int8Activations& a, const PackedPlaneWeights& b, const float* bias, float* out,
                        int64_t tileBegin, int64_t tileEnd) {
  outputsInOrder(
      a, b.n, b.units, b.unit, std::ldexp(1.0f, -b.unitShift()), tileBegin, tileEnd,
      [&](int64_t m, int64_t tile, int64_t j, int lane) { return planeDot(a, b, m, tile, j, lane); },
      [&](int64_t tile, int64_t j, int lane) { return laneScale(b, tile * b.units + j, lane); },
      bias, out);
}

}  // namespace fp4kit
