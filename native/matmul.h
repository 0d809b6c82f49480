// Block matmul kernels: out[M,N] = a[M,K] · b[N,K]ᵀ in the accumulation order documented in
// lib/core/matmul.ts (the readable reference):
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

#include "dtype.h"

namespace fp4kit {

struct DecodedOperand {
  const float* values;       // rows × paddedCols exact element values
  const float* blockScales;  // rows × blocksPerRow decode multipliers
  int64_t rows, cols, paddedCols, blockSize, blocksPerRow;
  // The one-byte FP8 codes (kE4m3, kE5m2) the values were decoded from, rows × paddedCols, or null:
  // the aligned kernels read their row-units from these where they can (matmul_aligned.h).
  const uint8_t* codes = nullptr;
  int32_t codeElement = -1;
};

// Reference order over decoded operands, output columns [nBegin, nEnd); the SIMD variants
// (matmul_decoded_avx2.cc, matmul_decoded_avx512.cc) keep every output's operations and order.
void matmulDecodedScalar(const DecodedOperand& a, const DecodedOperand& b, const float* bias, float* out,
                         int64_t nBegin, int64_t nEnd);
void matmulDecodedAvx2(const DecodedOperand& a, const DecodedOperand& b, const float* bias, float* out, int64_t nBegin, int64_t nEnd);
void matmulDecodedAvx512(const DecodedOperand& a, const DecodedOperand& b, const float* bias, float* out, int64_t nBegin, int64_t nEnd);
using DecodedKernel = void (*)(const DecodedOperand&, const DecodedOperand&, const float*, float*, int64_t, int64_t);

// Columns per tile of repacked weights: one 512-bit vector of int32 lanes.
constexpr int kTileColumns = 16;

// E2M1 weights repacked into tiles of 16 columns. Within a tile, each group of 8 k values takes
// 64 bytes: byte 4·l + t holds code(k + t) in its low nibble and code(k + 4 + t) in its high
// nibble for column l, so a nibble split gives 16 lanes × 4 consecutive k — the operand shape of
// a u8×s8 dot-product instruction.
//
// FGMP FP8 lanes ride on the same integer dot products. An E4M3 value v (an integer multiple of
// 2^-9, |v| ≤ 229376) is offset to w = v + 2^18 ∈ [32768, 491520) and split as
//   w = 2048·B + 1024 + 256·x + A      with A = w mod 256, x = ((w mod 2048) >> 8) − 4 ∈ [−4, 3],
//                                       B = w >> 11 ≤ 240
// x is an E2M1 value (0, ±1, ±2, ±3, −4 as 2w), so it is stored as the lane's E2M1 nibble (an FP8
// lane has no FP4 data) and the FP4 path adds 256·Σk·x for free. A and B are two unsigned byte
// planes in the nibbles' operand shape (per 4 consecutive k: one dword per lane), stored only for
// the lanes that are FP8 ("slots"). The slots of tiles 2i and 2i+1 for one unit share one group
// of S ≤ 16 slots when they fit (tile 2i's FP8 lanes in lane order, then tile 2i+1's), else each
// tile has its own group, so a SIMD kernel computes a group's dot products once over its slots (a
// 16-lane vector, slots past S never selected) and permutes them into the lanes of both tiles.
// A group (S slots; per 4 k q = 0..3) is: 4 uint16 masks (bit s of mask q: slot s has a nonzero
// A dword for q), then per q S dwords of B, then per q the nonzero A dwords of the slots in its
// mask (A is w mod 256 = v mod 256: zero for every E4M3 value that is a multiple of 0.5 — most of
// a tensor's FP8 elements — so A costs little memory). Then
//   D_fp8lane = 256·Σk·x + Σk·A + 2048·Σk·B − kFp8Bias·Σk,   kFp8Bias = 2^18 − 1024,
// every partial sum within int32 (|Σk·B·2048| ≤ 16·128·240·2048 < 2^30, kFp8Bias·|Σk| < 2^30).
constexpr int32_t kFp8Offset = 1 << 18;
constexpr int32_t kFp8Bias = kFp8Offset - 1024;
constexpr int kFp8HighShift = 11;

// How the lane scales (one decode multiplier per lane and unit, 0 in padding lanes) are stored.
// A product with one activation row reads every weight byte once, so the scales' bytes count:
// float32 per 16 NVFP4 elements is half as much again as the nibbles. Kernels that can decode
// them (MatmulKernel::readsCompactScales) get the compact forms, checked bit for bit at repack:
// - Float32: `scales`, the multipliers themselves (FGMP, and any tensor the compact forms miss);
// - Half (NVFP4): `compactScales` holds each block's E4M3 value as binary16 (exact: every E4M3
//   value is one), and the multiplier is f32(tensorScale · value), as the reference decodes it;
// - E8m0 (MXFP4): `compactScales` holds the E8M0 code, 1..254: the multiplier's bits are code << 23.
// - E4m3OrOther (FGMP's byte planes only, matmul_planes.h): one byte per lane; bit 7 clear: the
//   E4M3 code of a value v, multiplier f32(tensorScale · v); bit 7 set: `otherScale`.
enum class ScaleStorage : uint8_t { Float32, Half, E8m0, E4m3OrOther };

// The block scales as codes, for the compact forms: `coding` 1 = E8M0 codes, 2 = E4M3 codes times
// `tensorScale`; 0 (or no codes) = floats only.
struct ScaleCodes {
  const uint8_t* codes = nullptr;  // [N][blocksPerRow]
  int coding = 0;
  double tensorScale = 0;
  bool compactAllowed = false;     // the active kernel reads the compact forms
};

struct PackedFp4Weights {
  std::vector<uint8_t> nibbles;    // [tiles][kGroups][64]
  ScaleStorage scaleStorage = ScaleStorage::Float32;
  std::vector<float> scales;       // Float32: [tiles][units][16] decode multiplier per lane (0 in padding lanes)
  std::vector<uint8_t> compactScales;  // Half: [tiles][units][16] binary16; E8m0: [tiles][units][16] codes
  float tensorScale = 0;           // Half: the multiplier of every E4M3 value
  std::vector<uint16_t> fp8Lanes;  // [tiles][units] bit l set: lane l's block is FGMP FP8 (empty if none)
  std::vector<uint8_t> fp8Planes;  // slot groups of A/B planes (see above), + 64 bytes of padding
  std::vector<int64_t> fp8Place;   // [tiles][units] the tile-unit's group: offset << 10 | S << 5 | first slot
  int64_t n = 0, k = 0, unit = 0, units = 0, tiles = 0, kGroups = 0;
  bool hasFp8 = false;
  // Exponents (floor(log2|s|)) of the smallest and largest lane scale when every real lane's scale
  // is a finite normal float; scalesNormal = false otherwise (see fastScaleRows).
  bool scalesNormal = false;
  int scaleExpMin = 0, scaleExpMax = 0;
};

// Where a tile-unit's FP8 slots are: its group at byte `offset` of fp8Planes with `span` slots (see
// above; B of (q, slot s) at offset + 8 + 4·(q·span + s)); the tile's i-th FP8 lane (in lane
// order) is slot first + i.
struct Fp8Place {
  int64_t offset;
  int span, first;
};
static inline Fp8Place fp8Place(const PackedFp4Weights& b, int64_t tileUnit) {
  const int64_t v = b.fp8Place[static_cast<size_t>(tileUnit)];
  return {v >> 10, static_cast<int>((v >> 5) & 31), static_cast<int>(v & 31)};
}

// The FP8 split of one E4M3 code: planes A, B and the E2M1 nibble code of x.
struct Fp8Split {
  uint8_t a, b, nibble;
};

// Inputs in the library's own layouts: `nibbles` [N][paddedK/2] (element 2i in the low nibble),
// `blockScales` [N][paddedK/blockSize] decode multipliers, and for FGMP `fp8Blocks`
// [N][paddedK/blockSize] (1 = FP8) with `fp8Codes` [N][paddedK] (E4M3 codes where FP8, else 0).
void repackFp4Weights(const uint8_t* nibbles, const float* blockScales, const uint8_t* fp8Blocks,
                      const uint8_t* fp8Codes, int64_t n, int64_t k, int64_t blockSize, PackedFp4Weights& out,
                      const ScaleCodes& scaleCodes = ScaleCodes());


// MXINT8 activations: int8 codes [M][paddedK] (paddedK a multiple of 32), one decode multiplier
// per block of 32, and Σ codes per unit (computed by prepareInt8Activations).
struct Int8Activations {
  const int8_t* codes;
  const float* blockScales;  // [M][paddedK / 32]
  std::vector<int32_t> unitSums;  // [M][units]
  int64_t rows = 0, paddedK = 0, units = 0, unit = 0;
  // Fast scales (used by the AVX-512 kernel): for a row whose flag is set, every block scale is
  // 2^e (a normal power of two) and exponentShift[m][block] = (e − unitShift(b)) << 23 (see below).
  std::vector<uint8_t> fastScaleRow;      // [M]
  std::vector<int32_t> exponentShift;     // [M][paddedK / 32]
  const struct RowBlocks* rowBlocks = nullptr;  // the rows laid out for the AVX-512 row steps, when made once per product (below)
};
void prepareInt8Activations(Int8Activations& a, const PackedFp4Weights& b);
// Its two halves, shared with the byte-plane weights (matmul_planes.h): the fast-scales rows for
// weights with these lane-scale exponents and unit shift, and Σ codes per unit.
void prepareFastScales(Int8Activations& a, bool scalesNormal, int scaleExpMin, int scaleExpMax, int unitShift);
void sumActivationUnits(Int8Activations& a, int64_t unit, int64_t units);

// The activation rows laid out for the AVX-512 row steps: one pointer per step where a.codes,
// a.unitSums and the scale arrays need one per row (at 4–8 rows those addresses took more
// registers than there are, and their spills and reloads ran about as many instructions as the dot
// products). Rows come in blocks: `stepRows` rows each up to the last whole step, then the rest as
// one block of fewer rows (so a product of 4n + 3 rows runs n + 1 multi-row steps, not n steps
// and 3 one-row ones) — or, with no whole step (fewer rows than one), one row each. The block
// that starts at row m0 and holds R rows has, for its row r, group of 4 k q, unit j
// and activation block i (32 k): codes (four as a dword) at m0·quads + q·R + r, the start of the
// unit's dot chain, −startFactor·Σk (modulo 2^32), and fixFactor·Σk (FGMP's FP8 lanes; only when
// fixFactor ≠ 0) at m0·units + j·R + r, the exponent shift and block scale at m0·blocks + i·R + r.
// Made once per product over the thread pool (layoutRowBlocksShared, the binding: a.rowBlocks), or
// by a kernel thread for itself when there is none with its shape (a copy of every activation per
// thread, which costs as much as the product when N is small).
struct RowBlocks {
  std::vector<int32_t> codes, starts, fixes, shifts;
  std::vector<float> scales;
  int64_t quads = 0, units = 0, blocks = 0;
  int64_t stepRows = 0;
  int32_t startFactor = 0, fixFactor = 0;
  bool fits(int32_t start, int32_t fix, int64_t rows) const { return start == startFactor && fix == fixFactor && rows == stepRows; }
};
void layoutRowBlocks(const Int8Activations& a, int32_t startFactor, int32_t fixFactor, int64_t stepRows, RowBlocks& out);
void layoutRowBlocksShared(const Int8Activations& a, int32_t startFactor, int32_t fixFactor, int64_t stepRows, RowBlocks& out);
// a.rowBlocks when it fits this shape, else `own` laid out by the calling thread.
const RowBlocks& rowBlocksFor(const Int8Activations& a, int32_t startFactor, int32_t fixFactor, int64_t stepRows, RowBlocks& own);
// The rows per step of the AVX-512 FP4 kernel (matmul_avx512_kernel.h), and whether the active
// kernels (FP4 tiles and byte planes) read RowBlocks: the AVX-512 VNNI ones do.
constexpr int64_t kAvx512Fp4StepRows = 4;
// The step its rows are laid out for: 4, or all of them when there are 2 or 3 (decoding a few
// sequences: one step for them all instead of one per row, which decoded the weights once per row).
inline int64_t avx512Fp4LayoutRows(int64_t rows) { return rows >= 2 && rows < kAvx512Fp4StepRows ? rows : kAvx512Fp4StepRows; }
constexpr int32_t kAvx512Fp4StartFactor = 12;  // its E2M1 table adds 12 to every weight (2w + 12, an unsigned byte)
bool activeKernelsReadRowBlocks();

// D of a unit is an integer dot product times 2^-unitShift: 2^-7 for E2M1 lanes (activation code
// ·2^-6 times 2w·2^-1), 2^-15 on FGMP weights, whose FP4 dot is shifted left by 8 to line up with
// the FP8 lanes' multiples of 2^-9.
static inline int unitShift(const PackedFp4Weights& b) { return b.hasFp8 ? 15 : 7; }

// The fast-scales identity. The defined order computes per unit
//   S = f32(sa · sb),  partial = f32(f32(D) · S)       with D = dot · 2^-u exactly (|dot| < 2^24).
// When sa = 2^e and 2^e·sb and 2^(e−u)·sb are both normal floats, S = 2^e·sb exactly, so S' =
// 2^(e−u)·sb is exact too and is sb's bit pattern plus (e − u) << 23 (an integer add on the
// exponent field); dot · S' is the same real number as f32(D) · S, so one rounding of it gives the
// same float. That replaces two float multiplies per unit and lane by one integer add. A row
// qualifies when all its block scales are normal powers of two and, with the weights' scale
// exponents in [wMin, wMax], e_min + wMin − u ≥ −126 and e_max + wMax ≤ 127; other rows run the
// plain order.

// The scalar fast kernels' outputs (matmul_scalar.cc, matmul_planes.cc) for tiles [tileBegin, tileEnd):
// each output in the defined order from its units' integer dots — D = dot(m, tile, j, lane)·2^-u
// (unitScale), S = f32(sa·laneScale(tile, j, lane)), acc = f32(acc + f32(f32(D)·S)), then the bias.
template <class Dot, class LaneScale>
inline void outputsInOrder(const Int8Activations& a, int64_t n, int64_t units, int64_t unit, float unitScale, int64_t tileBegin,
                           int64_t tileEnd, Dot dot, LaneScale laneScale, const float* bias, float* out) {
  const int64_t aBlocksPerRow = a.paddedK / 32;
  for (int64_t tile = tileBegin; tile < tileEnd; tile++) {
    for (int64_t m = 0; m < a.rows; m++) {
      for (int lane = 0; lane < kTileColumns; lane++) {
        const int64_t col = tile * kTileColumns + lane;
        if (col >= n) break;
        float acc = 0.0f;
        for (int64_t j = 0; j < units; j++) {
          const float d = static_cast<float>(dot(m, tile, j, lane)) * unitScale;
          const float s = a.blockScales[m * aBlocksPerRow + (j * unit) / 32] * laneScale(tile, j, lane);
          const float partial = d * s;
          acc = acc + partial;
        }
        out[m * n + col] = bias ? acc + bias[col] : acc;
      }
    }
  }
}

// The fast path over tiles [tileBegin, tileEnd): scalar reference, AVX-512 VNNI (with VBMI, or
// without), AVX2 and NEON (baseline, and with the dot-product extension) variants.
void matmulFp4Int8Scalar(const Int8Activations& a, const PackedFp4Weights& b, const float* bias, float* out,
                         int64_t tileBegin, int64_t tileEnd);
void matmulFp4Int8Avx512(const Int8Activations& a, const PackedFp4Weights& b, const float* bias, float* out,
                         int64_t tileBegin, int64_t tileEnd);
void matmulFp4Int8Avx512Vbmi(const Int8Activations& a, const PackedFp4Weights& b, const float* bias, float* out,
                             int64_t tileBegin, int64_t tileEnd);
void matmulFp4Int8Avx2(const Int8Activations& a, const PackedFp4Weights& b, const float* bias, float* out,
                       int64_t tileBegin, int64_t tileEnd);
void matmulFp4Int8Neon(const Int8Activations& a, const PackedFp4Weights& b, const float* bias, float* out,
                       int64_t tileBegin, int64_t tileEnd);
void matmulFp4Int8NeonDotprod(const Int8Activations& a, const PackedFp4Weights& b, const float* bias, float* out,
                              int64_t tileBegin, int64_t tileEnd);

// The matmul kernel chosen once for this CPU (dispatch.cc), with its name for availableBackends().
using Fp4Int8Kernel = void (*)(const Int8Activations&, const PackedFp4Weights&, const float*, float*, int64_t, int64_t);
struct MatmulKernel {
  const char* simd;  // "avx512-vnni-vbmi", "avx512-vnni", "avx2", "neon-dotprod", "neon", "scalar"
  Fp4Int8Kernel fp4Int8;
  bool readsCompactScales;  // decodes ScaleStorage::Half and ::E8m0
  DecodedKernel decoded;    // matmulDecoded* of the same level (AVX-512F, AVX2 or scalar)
  bool readsFp8Slots;       // runs FGMP's FP8 slots itself (else it hands them to the scalar kernel)
};
const MatmulKernel& activeMatmulKernel();

// An E4M3 code as a signed integer multiple of 2^-9 (exact: the smallest subnormal is 2^-9).
// NaN (0x7f/0xff) has no integer: quantize never writes it (FP8 blocks are saturated), and a
// block that holds one anyway gets a NaN lane multiplier at repack, so the output is NaN as in
// the reference (README.md, "Block matmul": NaN and Inf).
static inline int32_t e4m3AsInt(uint8_t code) {
  const int32_t mag = code & 0x7f;
  const int32_t exponent = mag >> 3, mantissa = mag & 7;
  const int32_t v = exponent == 0 ? mantissa : (8 | mantissa) << (exponent - 1);
  return (code & 0x80) ? -v : v;
}

static inline Fp8Split splitE4m3(uint8_t code) {
  const int32_t w = e4m3AsInt(code) + kFp8Offset;
  const int32_t x = ((w & 2047) >> 8) - 4;
  return {static_cast<uint8_t>(w & 255), static_cast<uint8_t>(w >> kFp8HighShift),
          static_cast<uint8_t>(x >= 0 ? x : 8 | -x)};
}

// floor(log2|x|) of a finite normal float, or INT32_MIN for zero, subnormals, Inf and NaN.
static inline int normalExponent(float x) {
  const uint32_t bits = floatToBits(x);
  const int field = static_cast<int>((bits >> 23) & 0xff);
  return field == 0 || field == 255 ? INT32_MIN : field - 127;
}

// binary16 → float32, exactly (every binary16 value is a float32).
static inline float halfToFloat(uint16_t h) { return bitsToFloat(f16ToF32Bits(h)); }

// An E8M0 code's multiplier as the compact storages hold it: the code in a float's exponent field
// (2^(code − 127) for codes 1..254; code 0 gives +0, the padding lanes' multiplier — unlike the
// quantizers' e8m0Multiplier, whose code 0 is 2^-127: repack keeps floats for such blocks).
static inline float compactE8m0Multiplier(uint8_t code) { return bitsToFloat(static_cast<uint32_t>(code) << 23); }

// One lane's multiplier in any ScaleStorage (the scalar kernel's reader; SIMD kernels decode 16 at once).
static inline float laneScale(const PackedFp4Weights& b, int64_t tileUnit, int lane) {
  const size_t i = static_cast<size_t>(tileUnit * 16 + lane);
  switch (b.scaleStorage) {
    case ScaleStorage::Half: {
      const uint16_t h = static_cast<uint16_t>(b.compactScales[2 * i] | (b.compactScales[2 * i + 1] << 8));
      return b.tensorScale * halfToFloat(h);
    }
    case ScaleStorage::E8m0:
      return compactE8m0Multiplier(b.compactScales[i]);
    default:
      return b.scales[i];
  }
}

// An E2M1 code as a signed integer multiple of 2^-1 (value · 2): 0, ±1, ±2, ±3, ±4, ±6, ±8, ±12.
static inline int32_t e2m1AsInt(uint8_t code) {
  static const int8_t magnitude[8] = {0, 1, 2, 3, 4, 6, 8, 12};
  const int32_t v = magnitude[code & 7];
  return (code & 8) ? -v : v;
}

}  // namespace fp4kit
