// Block matmul kernels: out[M,N] = a[M,K] · b[N,K]ᵀ in the accumulation order documented in
// lib/matmul.ts (the readable reference):
//   per unit j of u elements (u = min(block of a, block of b)):
//     D = exact dot of element values;  S = f32(scaleA · scaleB);  acc = f32(acc + f32(f32(D) · S))
//   out = bias ? f32(acc + bias[n]) : acc
//
// Two families:
// - matmulDecoded*: any operands, given as exact element values (float) plus one float32 decode
//   multiplier per block; D is a float64 sum in element order. The plain reference.
// - matmulFp4Int8*: the fast path for E2M1 weights (MXFP4, NVFP4, FGMP — whose FP8 blocks ride
//   along as exact int32 dot products) against MXINT8 activations, on weights repacked once
//   into column tiles (repackFp4Weights). D is an exact integer, so SIMD and scalar agree.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace fp4kit {

struct DecodedOperand {
  const float* values;       // rows × paddedCols exact element values
  const float* blockScales;  // rows × blocksPerRow decode multipliers
  int64_t rows, cols, paddedCols, blockSize, blocksPerRow;
};

// Reference order over decoded operands, output columns [nBegin, nEnd).
void matmulDecodedScalar(const DecodedOperand& a, const DecodedOperand& b, const float* bias, float* out,
                         int64_t nBegin, int64_t nEnd);

// Columns per tile of repacked weights: one 512-bit vector of int32 lanes.
constexpr int kTileColumns = 16;

// E2M1 weights repacked into tiles of 16 columns. Within a tile, each group of 8 k values takes
// 64 bytes: byte 4·l + t holds code(k + t) in its low nibble and code(k + 4 + t) in its high
// nibble for column l, so a nibble split gives 16 lanes × 4 consecutive k — the operand shape of
// a u8×s8 dot-product instruction.
struct PackedFp4Weights {
  std::vector<uint8_t> nibbles;    // [tiles][kGroups][64]
  std::vector<float> scales;       // [tiles][units][16] decode multiplier per lane (0 in padding lanes)
  std::vector<uint16_t> fp8Lanes;  // [tiles][units] bit l set: lane l's block is FGMP FP8 (empty if none)
  std::vector<uint8_t> fp8Codes;   // [tiles][units][unit][16] E4M3 codes of FP8 lanes, element-major
  int64_t n = 0, k = 0, unit = 0, units = 0, tiles = 0, kGroups = 0;
  bool hasFp8 = false;
};

// Inputs in the library's own layouts: `nibbles` [N][paddedK/2] (element 2i in the low nibble),
// `blockScales` [N][paddedK/blockSize] decode multipliers, and for FGMP `fp8Blocks`
// [N][paddedK/blockSize] (1 = FP8) with `fp8Codes` [N][paddedK] (E4M3 codes where FP8, else 0).
void repackFp4Weights(const uint8_t* nibbles, const float* blockScales, const uint8_t* fp8Blocks,
                      const uint8_t* fp8Codes, int64_t n, int64_t k, int64_t blockSize, PackedFp4Weights& out);

// MXINT8 activations: int8 codes [M][paddedK] (paddedK a multiple of 32), one decode multiplier
// per block of 32, and Σ codes per unit (computed by prepareInt8Activations).
struct Int8Activations {
  const int8_t* codes;
  const float* blockScales;  // [M][paddedK / 32]
  std::vector<int32_t> unitSums;  // [M][units]
  int64_t rows = 0, paddedK = 0, units = 0, unit = 0;
};
void prepareInt8Activations(Int8Activations& a, int64_t units, int64_t unit);

// The fast path over tiles [tileBegin, tileEnd): scalar reference, AVX-512 VNNI and AVX2 variants.
void matmulFp4Int8Scalar(const Int8Activations& a, const PackedFp4Weights& b, const float* bias, float* out,
                         int64_t tileBegin, int64_t tileEnd);
void matmulFp4Int8Avx512(const Int8Activations& a, const PackedFp4Weights& b, const float* bias, float* out,
                         int64_t tileBegin, int64_t tileEnd);
void matmulFp4Int8Avx2(const Int8Activations& a, const PackedFp4Weights& b, const float* bias, float* out,
                       int64_t tileBegin, int64_t tileEnd);

// The matmul kernel chosen once for this CPU (dispatch.cc), with its name for availableBackends().
using Fp4Int8Kernel = void (*)(const Int8Activations&, const PackedFp4Weights&, const float*, float*, int64_t, int64_t);
struct MatmulKernel {
  const char* simd;  // "avx512-vnni", "avx2", "scalar"
  Fp4Int8Kernel fp4Int8;
};
const MatmulKernel& activeMatmulKernel();

// An E4M3 code as a signed integer multiple of 2^-9 (exact: the smallest subnormal is 2^-9).
// NaN (0x7f/0xff) never appears in FGMP data, whose FP8 blocks are saturated.
static inline int32_t e4m3AsInt(uint8_t code) {
  const int32_t mag = code & 0x7f;
  const int32_t exponent = mag >> 3, mantissa = mag & 7;
  const int32_t v = exponent == 0 ? mantissa : (8 | mantissa) << (exponent - 1);
  return (code & 0x80) ? -v : v;
}

// An E2M1 code as a signed integer multiple of 2^-1 (value · 2): 0, ±1, ±2, ±3, ±4, ±6, ±8, ±12.
static inline int32_t e2m1AsInt(uint8_t code) {
  static const int8_t magnitude[8] = {0, 1, 2, 3, 4, 6, 8, 12};
  const int32_t v = magnitude[code & 7];
  return (code & 8) ? -v : v;
}

}  // namespace fp4kit
