// Scalar block matmul: the reference order over decoded operands, the weight repacking, and the
// plain-C++ twin of the SIMD fast path (same integer dot products, same float32 steps).
#include <algorithm>
#include <cstring>

#include "matmul.h"

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

void repackFp4Weights(const uint8_t* nibbles, const float* blockScales, const uint8_t* fp8Blocks,
                      const uint8_t* fp8Codes, int64_t n, int64_t k, int64_t blockSize, PackedFp4Weights& out) {
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
  out.fp8Codes.assign(out.hasFp8 ? static_cast<size_t>(out.tiles * out.units * blockSize * kTileColumns) : 0, 0);
  const int64_t rowBytes = paddedK / 2;
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
        out.scales[static_cast<size_t>((tile * out.units + j) * kTileColumns + lane)] = blockScales[row * blocksPerRow + j];
        if (out.hasFp8 && fp8Blocks[row * blocksPerRow + j]) {
          out.fp8Lanes[static_cast<size_t>(tile * out.units + j)] |= static_cast<uint16_t>(1u << lane);
          for (int64_t i = 0; i < blockSize; i++) {
            out.fp8Codes[static_cast<size_t>(((tile * out.units + j) * blockSize + i) * kTileColumns + lane)] =
                fp8Codes[row * paddedK + j * blockSize + i];
          }
        }
      }
    }
  }
}

void prepareInt8Activations(Int8Activations& a, int64_t units, int64_t unit) {
  a.units = units;
  a.unit = unit;
  a.unitSums.assign(static_cast<size_t>(a.rows * units), 0);
  for (int64_t m = 0; m < a.rows; m++) {
    for (int64_t j = 0; j < units; j++) {
      int32_t s = 0;
      for (int64_t i = 0; i < unit; i++) s += a.codes[m * a.paddedK + j * unit + i];
      a.unitSums[static_cast<size_t>(m * units + j)] = s;
    }
  }
}

// D for one lane, as an integer multiple of 2^-15: FP4 lanes give Σ k·(2w)·2^8, FP8 lanes Σ k·(512e).
static inline int32_t unitDot(const Int8Activations& a, const PackedFp4Weights& b, int64_t m, int64_t tile,
                              int64_t j, int lane) {
  const int8_t* ar = a.codes + m * a.paddedK + j * b.unit;
  int32_t fp4 = 0;
  for (int64_t i = 0; i < b.unit; i++) {
    const int64_t kk = j * b.unit + i;
    const uint8_t byte = b.nibbles[static_cast<size_t>((tile * b.kGroups + kk / 8) * 64 + 4 * lane + (kk % 8) % 4)];
    const uint8_t c = (kk % 8) < 4 ? byte & 0x0f : byte >> 4;
    fp4 += ar[i] * e2m1AsInt(c);
  }
  int32_t fp8 = 0;
  if (b.hasFp8 && ((b.fp8Lanes[static_cast<size_t>(tile * b.units + j)] >> lane) & 1)) {
    for (int64_t i = 0; i < b.unit; i++) {
      fp8 += ar[i] * e4m3AsInt(b.fp8Codes[static_cast<size_t>(((tile * b.units + j) * b.unit + i) * kTileColumns + lane)]);
    }
  }
  return fp4 * 256 + fp8;
}

void matmulFp4Int8Scalar(const Int8Activations& a, const PackedFp4Weights& b, const float* bias, float* out,
                         int64_t tileBegin, int64_t tileEnd) {
  const float unitScale = 1.0f / 32768.0f;  // 2^-15
  const int64_t aBlocksPerRow = a.paddedK / 32;
  for (int64_t tile = tileBegin; tile < tileEnd; tile++) {
    for (int64_t m = 0; m < a.rows; m++) {
      for (int lane = 0; lane < kTileColumns; lane++) {
        const int64_t col = tile * kTileColumns + lane;
        if (col >= b.n) break;
        float acc = 0.0f;
        for (int64_t j = 0; j < b.units; j++) {
          const float d = static_cast<float>(unitDot(a, b, m, tile, j, lane)) * unitScale;
          const float s = a.blockScales[m * aBlocksPerRow + (j * b.unit) / 32] *
                          b.scales[static_cast<size_t>((tile * b.units + j) * kTileColumns + lane)];
          const float partial = d * s;
          acc = acc + partial;
        }
        out[m * b.n + col] = bias ? acc + bias[col] : acc;
      }
    }
  }
}

}  // namespace fp4kit
