// Scalar block matmul: the reference order over decoded operands, the weight repacking, and the
// plain-C++ twin of the SIMD fast path (same integer dot products, same float32 steps).
#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "matmul.h"
#include "threads.h"

namespace fp4kit {

void matmulDecodedScalar(const DecodedOperand& a, const DecodedOperand& b, const float* bias, float* out,
                         int64_t nBegin, int64_t nEnd) {
  const int64_t unit = std::min(a.blockSize, b.blockSize);
  const int64_t units = (a.cols + unit - 1) / unit;
  const int64_t n = b.rows;
  for (int64_t m = 0; m < a.rows; m++) {
    const float* av = a.values + m * a.paddedCols;
    for (int64_t col = nBegin; col < nEnd; col++) {
      const float* bv = b.values + col * b.paddedCols;
      float acc = 0.0f;
      for (int64_t j = 0; j < units; j++) {
        const int64_t k0 = j * unit;
        double d = 0.0;
        for (int64_t i = 0; i < unit; i++) d += static_cast<double>(av[k0 + i]) * static_cast<double>(bv[k0 + i]);
        const float s = a.blockScales[m * a.blocksPerRow + k0 / a.blockSize] * b.blockScales[col * b.blocksPerRow + k0 / b.blockSize];
        const float partial = static_cast<float>(d) * s;
        acc = acc + partial;
      }
      out[m * n + col] = bias ? acc + bias[col] : acc;
    }
  }
}

// Whether a block of E4M3 codes holds a NaN (S.1111.111).
static bool holdsE4m3Nan(const uint8_t* codes, int64_t count) {
  for (int64_t i = 0; i < count; i++)
    if ((codes[i] & 0x7f) == 0x7f) return true;
  return false;
}

// An E4M3 value (exact, NaN for 0x7f/0xff) as binary16, which holds every one exactly.
static uint16_t e4m3AsHalf(uint8_t code) {
  if ((code & 0x7f) == 0x7f) return 0x7e00;
  const uint16_t sign = (code & 0x80) ? 0x8000 : 0;
  const int32_t magnitude = std::abs(e4m3AsInt(code));  // a multiple of 2^-9, < 2^18
  if (magnitude == 0) return sign;
  const int top = 31 - __builtin_clz(static_cast<uint32_t>(magnitude));  // value = 1.f · 2^(top − 9)
  const uint32_t m = static_cast<uint32_t>(magnitude);  // ≤ 4 significant bits, so both shifts are exact
  const uint32_t fraction = (top <= 10 ? m << (10 - top) : m >> (top - 10)) & 1023;
  return static_cast<uint16_t>(sign | ((top - 9 + 15) << 10) | fraction);
}

// The compact lane scales of matmul.h when the codes reproduce every float multiplier bit for bit
// (the floats stay the authority: a caller's inconsistent codes just keep the float storage).
static void compactLaneScales(const float* blockScales, const ScaleCodes& codes, int64_t n, int64_t blocksPerRow,
                              PackedFp4Weights& out) {
  if (!codes.compactAllowed || codes.codes == nullptr || out.hasFp8 || (codes.coding != 1 && codes.coding != 2)) return;
  const bool half = codes.coding == 2;
  const float tensorScale = static_cast<float>(codes.tensorScale);
  if (half && static_cast<double>(tensorScale) != codes.tensorScale) return;  // the reference multiplies by a float32
  const size_t width = half ? 2 : 1;
  std::vector<uint8_t> compact(static_cast<size_t>(out.tiles * out.units * kTileColumns) * width, 0);
  for (int64_t row = 0; row < n; row++) {
    const int64_t tile = row / kTileColumns, lane = row % kTileColumns;
    for (int64_t j = 0; j < blocksPerRow; j++) {
      const uint8_t code = codes.codes[row * blocksPerRow + j];
      const float want = blockScales[row * blocksPerRow + j];
      float got;
      uint16_t stored;
      if (half) {
        stored = e4m3AsHalf(code);
        got = tensorScale * halfToFloat(stored);
      } else {
        if (code == 0 || code == 0xff) return;  // 2^-127 is subnormal, 0xff is NaN: no exponent field
        stored = code;
        got = compactE8m0Multiplier(code);
      }
      if (std::memcmp(&got, &want, 4) != 0) return;
      const size_t at = static_cast<size_t>((tile * out.units + j) * kTileColumns + lane) * width;
      compact[at] = static_cast<uint8_t>(stored);
      if (half) compact[at + 1] = static_cast<uint8_t>(stored >> 8);
    }
  }
  out.scaleStorage = half ? ScaleStorage::Half : ScaleStorage::E8m0;
  out.tensorScale = tensorScale;
  out.compactScales = std::move(compact);
  out.scales.clear();
  out.scales.shrink_to_fit();
}

void repackFp4Weights(const uint8_t* nibbles, const float* blockScales, const uint8_t* fp8Blocks,
                      const uint8_t* fp8Codes, int64_t n, int64_t k, int64_t blockSize, PackedFp4Weights& out,
                      const ScaleCodes& scaleCodes) {
  const int64_t blocksPerRow = (k + blockSize - 1) / blockSize;
  const int64_t paddedK = blocksPerRow * blockSize;
  out.n = n;
  out.k = k;
  out.unit = blockSize;  // activations come in blocks of 32, so the unit is the weight block
  out.units = blocksPerRow;
  out.tiles = (n + kTileColumns - 1) / kTileColumns;
  out.kGroups = paddedK / 8;
  out.hasFp8 = fp8Blocks != nullptr;
  out.nibbles.assign(static_cast<size_t>(out.tiles * out.kGroups * 64), 0);
  out.scales.assign(static_cast<size_t>(out.tiles * out.units * kTileColumns), 0.0f);
  out.fp8Lanes.assign(out.hasFp8 ? static_cast<size_t>(out.tiles * out.units) : 0, 0);
  out.fp8Place.assign(out.hasFp8 ? static_cast<size_t>(out.tiles * out.units) : 0, 0);
  out.fp8Planes.clear();
  const int64_t rowBytes = paddedK / 2;
  bool nanLanes = false;
  auto code = [&](int64_t row, int64_t col) -> uint8_t {
    const uint8_t byte = nibbles[row * rowBytes + col / 2];
    return (col & 1) ? byte >> 4 : byte & 0x0f;
  };
  for (int64_t tile = 0; tile < out.tiles; tile++) {
    for (int64_t lane = 0; lane < kTileColumns; lane++) {
      const int64_t row = tile * kTileColumns + lane;
      if (row >= n) break;
      for (int64_t g = 0; g < out.kGroups; g++) {
        uint8_t* dst = &out.nibbles[static_cast<size_t>((tile * out.kGroups + g) * 64 + 4 * lane)];
        for (int t = 0; t < 4; t++) dst[t] = static_cast<uint8_t>(code(row, 8 * g + t) | (code(row, 8 * g + 4 + t) << 4));
      }
      for (int64_t j = 0; j < out.units; j++) {
        float scale = blockScales[row * blocksPerRow + j];
        if (out.hasFp8 && fp8Blocks[row * blocksPerRow + j]) {
          out.fp8Lanes[static_cast<size_t>(tile * out.units + j)] |= static_cast<uint16_t>(1u << lane);
          // An E4M3 NaN code makes the reference's dot product NaN; the integer split has no NaN,
          // so the lane's multiplier carries it instead (README.md, "Block matmul": NaN and Inf).
          if (holdsE4m3Nan(fp8Codes + row * paddedK + j * blockSize, blockSize)) {
            scale = std::numeric_limits<float>::quiet_NaN();
            nanLanes = true;
          }
        }
        out.scales[static_cast<size_t>((tile * out.units + j) * kTileColumns + lane)] = scale;
      }
    }
  }
  // The lane scales' exponent range, for the fast-scales epilogue (matmul.h).
  out.scalesNormal = n > 0 && blocksPerRow > 0;
  out.scaleExpMin = INT32_MAX;
  out.scaleExpMax = INT32_MIN;
  for (int64_t row = 0; row < n; row++) {
    for (int64_t j = 0; j < blocksPerRow; j++) {
      const int e = normalExponent(blockScales[row * blocksPerRow + j]);
      if (e == INT32_MIN) out.scalesNormal = false;
      out.scaleExpMin = std::min(out.scaleExpMin, e);
      out.scaleExpMax = std::max(out.scaleExpMax, e);
    }
  }
  if (nanLanes) out.scalesNormal = false;  // NaN multipliers: the plain order, never the exponent add
  compactLaneScales(blockScales, scaleCodes, n, blocksPerRow, out);
  if (!out.hasFp8) return;
  // FP8 lanes: the nibble becomes x, and A/B go to slot groups shared by tile pairs (matmul.h).
  out.fp8Planes.reserve(static_cast<size_t>(out.tiles * out.units * 8));
  auto emitGroup = [&](int64_t j, const int64_t* tiles, int members) {
    uint32_t a[4][kTileColumns] = {}, b[4][kTileColumns] = {};
    int span = 0;
    for (int mi = 0; mi < members; mi++) span += __builtin_popcount(out.fp8Lanes[static_cast<size_t>(tiles[mi] * out.units + j)]);
    const int64_t offset = static_cast<int64_t>(out.fp8Planes.size());
    int slot = 0;
    for (int mi = 0; mi < members; mi++) {
      const int64_t tile = tiles[mi];
      const uint32_t mask = out.fp8Lanes[static_cast<size_t>(tile * out.units + j)];
      out.fp8Place[static_cast<size_t>(tile * out.units + j)] = offset << 10 | span << 5 | slot;
      for (int lane = 0; lane < kTileColumns; lane++) {
        if (!((mask >> lane) & 1)) continue;
        const int64_t row = tile * kTileColumns + lane;
        for (int64_t i = 0; i < blockSize; i++) {
          const int64_t kk = j * blockSize + i;
          const Fp8Split sp = splitE4m3(fp8Codes[row * paddedK + kk]);
          a[i / 4][slot] |= uint32_t(sp.a) << (8 * (i % 4));
          b[i / 4][slot] |= uint32_t(sp.b) << (8 * (i % 4));
          uint8_t& byte = out.nibbles[static_cast<size_t>((tile * out.kGroups + kk / 8) * 64 + 4 * lane + kk % 4)];
          byte = (kk % 8) < 4 ? static_cast<uint8_t>((byte & 0xf0) | sp.nibble) : static_cast<uint8_t>((byte & 0x0f) | (sp.nibble << 4));
        }
        slot++;
      }
    }
    if (span == 0) return;
    auto put32 = [&](uint32_t v) {
      for (int t = 0; t < 4; t++) out.fp8Planes.push_back(static_cast<uint8_t>(v >> (8 * t)));
    };
    for (int q = 0; q < 4; q++) {
      uint32_t present = 0;
      for (int s2 = 0; s2 < span; s2++) present |= (a[q][s2] != 0 ? 1u : 0u) << s2;
      out.fp8Planes.push_back(static_cast<uint8_t>(present));
      out.fp8Planes.push_back(static_cast<uint8_t>(present >> 8));
    }
    for (int q = 0; q < 4; q++)
      for (int s2 = 0; s2 < span; s2++) put32(b[q][s2]);
    for (int q = 0; q < 4; q++)
      for (int s2 = 0; s2 < span; s2++)
        if (a[q][s2] != 0) put32(a[q][s2]);
  };
  for (int64_t tile = 0; tile < out.tiles; tile += 2) {
    for (int64_t j = 0; j < out.units; j++) {
      const int p0 = __builtin_popcount(out.fp8Lanes[static_cast<size_t>(tile * out.units + j)]);
      const int p1 = tile + 1 < out.tiles ? __builtin_popcount(out.fp8Lanes[static_cast<size_t>((tile + 1) * out.units + j)]) : 0;
      const int64_t pair[2] = {tile, tile + 1};
      if (tile + 1 >= out.tiles) {
        emitGroup(j, pair, 1);
      } else if (p0 + p1 <= kTileColumns) {
        emitGroup(j, pair, 2);
      } else {
        emitGroup(j, pair, 1);
        emitGroup(j, pair + 1, 1);
      }
    }
  }
  out.fp8Planes.resize(out.fp8Planes.size() + 64, 0);  // padding for full-vector loads
  out.fp8Planes.shrink_to_fit();
}

// Which rows may take the fast-scales epilogue (matmul.h) against weights whose lane scales are
// all normal with exponents in [scaleExpMin, scaleExpMax] (scalesNormal) and units of 2^-unitShift.
void prepareFastScales(Int8Activations& a, bool scalesNormal, int scaleExpMin, int scaleExpMax, int shift) {
  const int64_t blocks = a.paddedK / 32;
  a.fastScaleRow.assign(static_cast<size_t>(a.rows), 0);
  a.exponentShift.assign(static_cast<size_t>(a.rows * blocks), 0);
  if (!scalesNormal) return;
  // Rows over the thread pool (each row writes only its own entries): serial, this and the unit
  // sums were ~10 % of a one-thread 4096 × 128 × 512 product, and did not shrink with threads.
  parallelFor(a.rows, std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(1, blocks)), [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; m++) {
      bool ok = true;
      int eMin = INT32_MAX, eMax = INT32_MIN;
      for (int64_t i = 0; i < blocks && ok; i++) {
        const float s = a.blockScales[m * blocks + i];
        const int e = normalExponent(s);
        uint32_t bits;
        std::memcpy(&bits, &s, 4);
        ok = e != INT32_MIN && (bits & 0x807fffffu) == 0;  // 2^e: positive, zero mantissa
        eMin = std::min(eMin, e);
        eMax = std::max(eMax, e);
        // Only rows whose every scale is a normal power of two use it (e − shift cannot overflow then).
        if (ok) a.exponentShift[static_cast<size_t>(m * blocks + i)] = static_cast<int32_t>(static_cast<uint32_t>(e - shift) << 23);
      }
      if (ok && blocks > 0) ok = eMin + scaleExpMin - shift >= -126 && eMax + scaleExpMax <= 127;
      a.fastScaleRow[static_cast<size_t>(m)] = ok ? 1 : 0;
    }
  });
}

// Σ codes per unit of every activation row.
void sumActivationUnits(Int8Activations& a, int64_t unit, int64_t units) {
  a.units = units;
  a.unit = unit;
  a.unitSums.resize(static_cast<size_t>(a.rows * units));  // every entry written below
  parallelFor(a.rows, std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(1, a.paddedK)), [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; m++) {
      for (int64_t j = 0; j < units; j++) {
        int32_t s = 0;
        for (int64_t i = 0; i < unit; i++) s += a.codes[m * a.paddedK + j * unit + i];
        a.unitSums[static_cast<size_t>(m * units + j)] = s;
      }
    }
  });
}

// R rows of codes (stride apart) interleaved by groups of 4: the R rows as constants, so each has a
// register of its own (a run-time count made this the slowest part of a narrow product).
template <int R>
static void interleaveCodes(const int8_t* rows, int64_t stride, int64_t quads, int32_t* out) {
  for (int64_t q = 0; q < quads; q++, out += R)
    for (int r = 0; r < R; r++) std::memcpy(out + r, rows + r * stride + 4 * q, 4);
}

// The blocks of rows [r0, r1) of the layout (r0 and r1 at block starts; out sized for all of them),
// block by block so the writes run in order.
static void layoutRowBlockRange(const Int8Activations& a, int64_t r0, int64_t r1, RowBlocks& out) {
  const int64_t whole = out.stepRows > 0 ? a.rows / out.stepRows * out.stepRows : 0;
  for (int64_t m0 = r0; m0 < r1;) {
    // Whole steps, then the rest as one block after at least one whole step, else one row each.
    const int64_t rows = m0 < whole ? out.stepRows : whole > 0 ? a.rows - whole : 1;
    int32_t* codes = out.codes.data() + m0 * out.quads;
    const int8_t* from = a.codes + m0 * a.paddedK;
    if (rows == 8) interleaveCodes<8>(from, a.paddedK, out.quads, codes);
    else if (rows == 4) interleaveCodes<4>(from, a.paddedK, out.quads, codes);
    else if (rows == 1) std::memcpy(codes, from, static_cast<size_t>(out.quads) * 4);
    else
      for (int64_t q = 0; q < out.quads; q++)
        for (int64_t r = 0; r < rows; r++) std::memcpy(codes + q * rows + r, from + r * a.paddedK + 4 * q, 4);
    for (int64_t j = 0; j < out.units; j++) {
      for (int64_t r = 0; r < rows; r++) {
        const uint32_t sum = static_cast<uint32_t>(a.unitSums[static_cast<size_t>((m0 + r) * a.units + j)]);
        const size_t at = static_cast<size_t>(m0 * out.units + j * rows + r);
        out.starts[at] = static_cast<int32_t>(0u - static_cast<uint32_t>(out.startFactor) * sum);
        if (out.fixFactor != 0) out.fixes[at] = static_cast<int32_t>(static_cast<uint32_t>(out.fixFactor) * sum);
      }
    }
    for (int64_t i = 0; i < out.blocks; i++) {
      for (int64_t r = 0; r < rows; r++) {
        const size_t at = static_cast<size_t>(m0 * out.blocks + i * rows + r);
        out.shifts[at] = a.exponentShift[static_cast<size_t>((m0 + r) * out.blocks + i)];
        out.scales[at] = a.blockScales[(m0 + r) * out.blocks + i];
      }
    }
    m0 += rows;
  }
}

static void sizeRowBlocks(const Int8Activations& a, int32_t startFactor, int32_t fixFactor, int64_t stepRows, RowBlocks& out) {
  out.quads = a.paddedK / 4;
  out.units = a.units;
  out.blocks = a.paddedK / 32;
  out.stepRows = stepRows;
  out.startFactor = startFactor;
  out.fixFactor = fixFactor;
  const size_t rows = static_cast<size_t>(a.rows);
  out.codes.resize(rows * static_cast<size_t>(out.quads));
  out.starts.resize(rows * static_cast<size_t>(out.units));
  out.fixes.resize(fixFactor != 0 ? rows * static_cast<size_t>(out.units) : 0);
  out.shifts.resize(rows * static_cast<size_t>(out.blocks));
  out.scales.resize(rows * static_cast<size_t>(out.blocks));
}

void layoutRowBlocks(const Int8Activations& a, int32_t startFactor, int32_t fixFactor, int64_t stepRows, RowBlocks& out) {
  sizeRowBlocks(a, startFactor, fixFactor, stepRows, out);
  layoutRowBlockRange(a, 0, a.rows, out);
}

void layoutRowBlocksShared(const Int8Activations& a, int32_t startFactor, int32_t fixFactor, int64_t stepRows, RowBlocks& out) {
  sizeRowBlocks(a, startFactor, fixFactor, stepRows, out);
  // Over whole blocks: the last range also takes the one-row blocks past the last whole step.
  const int64_t step = std::max<int64_t>(1, stepRows), blocks = a.rows / step;
  if (blocks == 0) {
    layoutRowBlockRange(a, 0, a.rows, out);
    return;
  }
  parallelFor(blocks, std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(1, a.paddedK * step)), [&](int64_t b0, int64_t b1) {
    layoutRowBlockRange(a, b0 * step, b1 == blocks ? a.rows : b1 * step, out);
  });
}

const RowBlocks& rowBlocksFor(const Int8Activations& a, int32_t startFactor, int32_t fixFactor, int64_t stepRows, RowBlocks& own) {
  if (a.rowBlocks && a.rowBlocks->fits(startFactor, fixFactor, stepRows)) return *a.rowBlocks;
  layoutRowBlocks(a, startFactor, fixFactor, stepRows, own);
  return own;
}

void prepareInt8Activations(Int8Activations& a, const PackedFp4Weights& b) {
  prepareFastScales(a, b.scalesNormal, b.scaleExpMin, b.scaleExpMax, unitShift(b));
  sumActivationUnits(a, b.unit, b.units);
}

// D for one lane, as an integer multiple of 2^-15: FP4 lanes give Σ k·(2w)·2^8, FP8 lanes Σ k·(512e)
// through the split of matmul.h (256·Σk·x + Σk·A + 2048·Σk·B − kFp8Bias·Σk).
static inline int32_t unitDot(const Int8Activations& a, const PackedFp4Weights& b, int64_t m, int64_t tile,
                              int64_t j, int lane) {
  const int8_t* ar = a.codes + m * a.paddedK + j * b.unit;
  int64_t fp4 = 0;
  for (int64_t i = 0; i < b.unit; i++) {
    const int64_t kk = j * b.unit + i;
    const uint8_t byte = b.nibbles[static_cast<size_t>((tile * b.kGroups + kk / 8) * 64 + 4 * lane + (kk % 8) % 4)];
    const uint8_t c = (kk % 8) < 4 ? byte & 0x0f : byte >> 4;
    fp4 += ar[i] * e2m1AsInt(c);
  }
  int64_t fp8 = 0;
  const uint32_t mask = b.hasFp8 ? b.fp8Lanes[static_cast<size_t>(tile * b.units + j)] : 0;
  if ((mask >> lane) & 1) {
    const Fp8Place place = fp8Place(b, tile * b.units + j);
    const int slot = place.first + __builtin_popcount(mask & ((1u << lane) - 1));
    const uint8_t* group = &b.fp8Planes[static_cast<size_t>(place.offset)];
    uint32_t present[4];
    for (int q = 0; q < 4; q++) present[q] = group[2 * q] | (group[2 * q + 1] << 8);
    const uint8_t* planeB = group + 8;
    int64_t sum = 0;
    for (int64_t i = 0; i < b.unit; i++) {
      const int q = static_cast<int>(i / 4);
      int64_t aByte = 0;
      if ((present[q] >> slot) & 1) {
        int64_t index = 0;  // A dwords of earlier q, then of earlier slots of this q
        for (int q2 = 0; q2 < q; q2++) index += __builtin_popcount(present[q2]);
        index += __builtin_popcount(present[q] & ((1u << slot) - 1));
        aByte = planeB[4 * (4 * place.span + index) + i % 4];
      }
      const int64_t w = aByte + (int64_t(planeB[4 * (q * place.span + slot) + i % 4]) << kFp8HighShift);
      fp8 += ar[i] * w;
      sum += ar[i];
    }
    fp8 -= kFp8Bias * sum;
  }
  return static_cast<int32_t>(fp4 * 256 + fp8);
}

void matmulFp4Int8Scalar(const Int8Activations& a, const PackedFp4Weights& b, const float* bias, float* out,
                         int64_t tileBegin, int64_t tileEnd) {
  outputsInOrder(
      a, b.n, b.units, b.unit, 1.0f / 32768.0f /* 2^-15 */, tileBegin, tileEnd,
      [&](int64_t m, int64_t tile, int64_t j, int lane) { return unitDot(a, b, m, tile, j, lane); },
      [&](int64_t tile, int64_t j, int lane) { return laneScale(b, tile * b.units + j, lane); }, bias, out);
}

}  // namespace fp4kit
