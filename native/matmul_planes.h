// Byte-plane weights: the fast path for MX weights whose element values are integers in a fixed
// unit — E4M3 (multiples of 2^-9), E3M2 (2^-4), E2M3 (2^-3), INT8 (2^-6) — against MXINT8
// activations. Same defined order as every matmul (lib/core/matmul.ts; matmul.h): per unit of 32,
// D = exact dot of element values, S = f32(sa · sb), acc = f32(acc + f32(f32(D) · S)).
//
// An element value times 2^shift is an integer v with |v| < 2^23. It is split as v = h·2^s + l
// (l = v mod 2^s, the low bits, 0 ≤ l < 2^s; s = lowShift, the fewest low bits that leave h within
// 16 signed bits: 0 for every format but E4M3, whose s = 3). Offset to w = h + 2^(8P−1) (unsigned,
// P bytes), h splits into P byte planes, w = Σp 256^p · plane_p, so
//   Σk·v = 2^s · (Σp 256^p · (Σk·plane_p) − 2^(8P−1) · Σk) + Σk·l
// — P unsigned-byte × signed-byte dot products (vpdpbusd), the activation sums the FP4 path already
// has, and the low bits' dot as one more byte plane. P = 1 for INT8 and E2M3 (|v| ≤ 128), 2 for E3M2
// (|v| ≤ 448) and E4M3 (|h| ≤ 229376 / 8). The low plane is zero wherever the values are multiples
// of 2^s: for E4M3 every value ≥ 2^-3 (in MX blocks all but a block's smallest elements, and every
// E2M1 value in FGMP weights), so it is multiplied only in the groups of 4 k (per tile) that hold a
// non-zero low byte (`lowQuads`): ~2 planes' work instead of 3. The true dot fits int32 (|Σk·v| ≤
// 229376·128·32 < 2^30); the partial terms may not, so every kernel works modulo 2^32 (unsigned in
// C++, wrapping SIMD adds), which gives the true value at the end. D = dot · 2^-(shift + 6)
// (activation codes are multiples of 2^-6), and f32(D) = f32(dot) · 2^-(shift+6) exactly, so the
// epilogue is the FP4 path's (matmul.h), including its fast-scales identity.
//
// FGMP weights take this form too for many-row products (every element as the E4M3 code of its
// value: E2M1 values are E4M3 values; unit 16): see matmul_binding.cc.
//
// Layout: tiles of 16 columns (kTileColumns); per tile, per group q of 4 consecutive k, per plane p,
// 64 bytes: byte 4·l + t = plane_p of element (k = 4q + t, column l) — one dword per lane, the
// operand shape of vpdpbusd; the low plane and the codes in the same layout, one plane each. A NaN
// element code (E4M3 0x7f/0xff) has no integer: its lane-unit multiplier is NaN instead, so the
// output is NaN as in the reference.
#pragma once
#include <cstdint>
#include <vector>

#include "matmul.h"

namespace fp4kit {

// A value-table entry that marks a NaN code.
constexpr int32_t kPlaneNanValue = INT32_MIN;

struct PackedPlaneWeights {
  std::vector<uint8_t> planes;  // [tiles][kQuads][planeCount][64]: the bytes of h + offset
  // Or, for the NEON kernel (no u8×s8 dot without saturation; it multiplies int16), h itself and
  // l as int16 planes, [tiles][kQuads][64] each: lane l's 4 k at 4·l … 4·l + 3 (the wasm layout).
  // The AVX2 kernel (vpmaddwd takes int16) reads them too where its compact form (below) cannot hold h.
  std::vector<int16_t> h16, low16;
  // The AVX2 kernel's compact form (PlaneForm::Int16Codes): each element's h as one byte, rebuilt
  // to int16 in registers (hFromCodeByte: an odd factor by its low nibble times a power of two by
  // its high nibble), and l as a byte, [tiles][kQuads][64] each in the int16 planes' element order
  // with the middle two 8-byte chunks of each 32 swapped (int16CodesPosition), so that the unpacks
  // that widen 32 bytes to two int16 vectors give the planes' order. 2 bytes per weight stored
  // instead of 4, and 1 read (the low bytes only where lowQuads marks them).
  std::vector<uint8_t> hCodes, hCodesLow;
  std::vector<uint8_t> low;     // [tiles][kQuads][64]: l, the low bits (lowShift > 0 only)
  std::vector<uint8_t> lowQuads;  // [tiles][units]: bit q set where the unit's group q of 4 k holds a non-zero l
  std::vector<float> scales;    // [tiles][units][16] decode multiplier per lane (0 in padding lanes)
  int64_t n = 0, k = 0, unit = 32, units = 0, tiles = 0, kQuads = 0;  // unit: the weight block, 16 or 32
  int planeCount = 1;
  int lowShift = 0;  // s: v = h·2^s + l
  int shift = 0;     // element value = v · 2^-shift
  // Each plane's byte per code (planeOfCode[p][code], p < planeCount; the low byte as
  // planeOfCode[planeCount]: the repack's table, and the from-codes kernel's lookups), and in the
  // codes form (PlaneForm::Codes, split weights) the codes themselves in the planes' layout
  // ([tiles][kQuads][64], one byte per element) instead of the planes: the from-codes kernel
  // rebuilds them (matmul_planes_avx512_vbmi.cc).
  std::vector<uint8_t> codes;
  uint8_t planeOfCode[3][256] = {};
  // Sign-magnitude codes (the FP formats: for c < 128, v(c) ≥ 0 and v(c + 128) = −v(c), NaN codes in pairs):
  // the plane bytes of |v| by the code's low 7 bits, with no offset, for a kernel that moves each
  // weight's sign onto its activation (Σ v·a = Σ |v|·(±a)) and so looks up one table per plane.
  bool signMagnitude = false;
  uint8_t magnitudePlaneOfCode[3][128] = {};
  // The lane multipliers as one byte each instead of `scales` (then empty), in the codes form only
  // (the from-codes kernel decodes them; at one activation row a product reads every weight byte
  // once, and float multipliers were a ninth of what it read for E4M3 weights, a fifth for FGMP's
  // blocks of 16), and
  // only where every multiplier decodes to its own bits: ScaleStorage::E8m0 (MX block scales) or
  // ::E4m3OrOther (FGMP: `tensorScale` for its FP4 blocks' E4M3 scales, `otherScale` its FP8
  // blocks' multiplier). Read them with laneScale (below) or loadPlaneLaneScales (AVX-512).
  ScaleStorage scaleStorage = ScaleStorage::Float32;
  std::vector<uint8_t> compactScales;  // [tiles][units][16]
  float tensorScale = 0, otherScale = 0;
  // As PackedFp4Weights: the lane scales' exponent range, for the fast-scales epilogue.
  bool scalesNormal = false;
  int scaleExpMin = 0, scaleExpMax = 0;
  int unitShift() const { return shift + 6; }
  int32_t offset() const { return int32_t(1) << (8 * planeCount - 1); }
  unsigned lowQuadMask(int64_t tile, int64_t j) const { return lowShift > 0 ? lowQuads[static_cast<size_t>(tile * units + j)] : 0u; }
};

// One lane's multiplier (tile-unit tileUnit = tile · units + j) in either storage, and the decode of
// an E4m3OrOther byte (the repack's encoder searches its values). An E4M3 code c
// shifted left by 7 is the binary16 bit pattern of e4m3(c) · 2^-8, for subnormals too, which is how
// the AVX-512 kernels convert 16 at once (vcvtph2ps); times tensorScale · 2^8 it is f32(tensorScale
// · e4m3(c)) exactly when tensorScale · 2^8 is finite (repack checks every lane's bits).
static inline float e4m3OrOtherMultiplier(uint8_t code, float tensorScale, float otherScale) {
  return code & 0x80 ? otherScale : (tensorScale * 256.0f) * halfToFloat(static_cast<uint16_t>(code << 7));
}

// The compact int16 form's byte of h (PackedPlaneWeights::hCodes): h = ±odd · 2^j with odd ≤ 15
// and j ≤ 14 is (j << 4) | index of ±odd in kHCodeOddFactors; 0 is 0xf0 (kHCodePowers[15] = 0).
// Every E4M3, E3M2, E2M3 and E2M1 h has that form; INT8's (odd factors up to 127) do not.
constexpr int8_t kHCodeOddFactors[16] = {1, 3, 5, 7, 9, 11, 13, 15, -1, -3, -5, -7, -9, -11, -13, -15};
constexpr int16_t kHCodePowers[16] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 0};
static inline bool hCodeByteOf(int32_t h, uint8_t& byte) {
  if (h == 0) {
    byte = 0xf0;
    return true;
  }
  const uint32_t magnitude = static_cast<uint32_t>(h < 0 ? -static_cast<int64_t>(h) : h);
  const int j = __builtin_ctz(magnitude);
  const uint32_t odd = magnitude >> j;
  if (odd > 15 || j > 14) return false;
  byte = static_cast<uint8_t>((j << 4) | ((odd - 1) / 2 + (h < 0 ? 8 : 0)));
  return true;
}
static inline int32_t hFromCodeByte(uint8_t byte) { return kHCodeOddFactors[byte & 15] * kHCodePowers[byte >> 4]; }
// Where element e (0–63, the planes' order) of a group of 4 k sits in the compact form's 64 bytes.
static inline int int16CodesPosition(int e) {
  static constexpr int kChunk[4] = {0, 2, 1, 3};
  return (e & 32) | (kChunk[(e >> 3) & 3] << 3) | (e & 7);
}

static inline float laneScale(const PackedPlaneWeights& b, int64_t tileUnit, int lane) {
  const size_t i = static_cast<size_t>(tileUnit * kTileColumns + lane);
  switch (b.scaleStorage) {
    case ScaleStorage::E8m0:
      return compactE8m0Multiplier(b.compactScales[i]);
    case ScaleStorage::E4m3OrOther:
      return e4m3OrOtherMultiplier(b.compactScales[i], b.tensorScale, b.otherScale);
    default:
      return b.scales[i];
  }
}

// FGMP's two block multipliers: f32(tensorScale · E4M3 scale) for an FP4 block, fp8Scale for an FP8
// block. Given to repackPlaneWeights, they let the codes form keep one byte per lane multiplier.
struct FgmpMultipliers {
  float tensorScale = 0, fp8Scale = 0;
};

// codes [n][paddedK] (one byte per element; paddedK = whole blocks of blockSize, 16 or 32),
// valueTable[256] the integer v of each code (kPlaneNanValue for NaN; |v| < 2^23), blockScales
// [n][paddedK/blockSize] multipliers. The unit is the weight block (activations come in blocks of 32).
// The form is the one the active kernel reads: byte planes (AVX-512, the scalar kernel), int16
// planes (baseline NEON: h16/low16), the compact int16 form (AVX2: hCodes/hCodesLow, or int16
// planes where some h has no byte: INT8), or, for split weights (lowShift > 0: E4M3) where the
// from-codes kernel runs (AVX-512 VBMI), their codes alone — a quarter of the bytes of planes, low
// plane and codes (weights that do not split take byte planes in that form too).
enum class PlaneForm { Bytes, Int16, Int16Codes, Codes };
// In the codes form the lane multipliers take one byte where they can (E8M0 powers of two, or FGMP's
// with `fgmp`); in the others they stay floats (the AVX2 and NEON kernels read floats).
void repackPlaneWeights(const uint8_t* codes, const int32_t* valueTable, int shift, const float* blockScales,
                        int64_t n, int64_t k, int64_t blockSize, PackedPlaneWeights& out, PlaneForm form = PlaneForm::Bytes,
                        const FgmpMultipliers* fgmp = nullptr);

// Activation sums and fast-scale rows for these weights.
void prepareInt8ActivationsForPlanes(Int8Activations& a, const PackedPlaneWeights& b);

// Tiles [tileBegin, tileEnd): the scalar reference and the AVX-512 VNNI and NEON dot-product variants
// (byte planes), the AVX2 and baseline NEON variants (int16 planes).
void matmulPlanesScalar(const Int8Activations& a, const PackedPlaneWeights& b, const float* bias, float* out,
                        int64_t tileBegin, int64_t tileEnd);
void matmulPlanesAvx512(const Int8Activations& a, const PackedPlaneWeights& b, const float* bias, float* out,
                        int64_t tileBegin, int64_t tileEnd);
void matmulPlanesAvx2(const Int8Activations& a, const PackedPlaneWeights& b, const float* bias, float* out,
                      int64_t tileBegin, int64_t tileEnd);
void matmulPlanesNeon(const Int8Activations& a, const PackedPlaneWeights& b, const float* bias, float* out,
                      int64_t tileBegin, int64_t tileEnd);
// With the dot-product extension: byte planes, sdot (matmul_planes_neon_dotprod.cc).
void matmulPlanesNeonDotprod(const Int8Activations& a, const PackedPlaneWeights& b, const float* bias, float* out,
                             int64_t tileBegin, int64_t tileEnd);
// Units [unitBegin, unitEnd) of every row of tile `tile`, with that stretch's planes read from
// `planes` ([quads][planeCount][64]) and its low plane from `low` ([quads][64], read in the groups of
// 4 k that `lowQuads` marks): a stretch of a tile rebuilt from its codes (the from-codes kernel
// below), with matmulPlanesAvx512's steps and bits; called for consecutive stretches, the first
// from unit 0 and the last to the end (out holds the running sums between calls). Its first row step
// also brings `prefetch` (quads · 64 bytes, the next stretch's codes; nullptr: none) into cache.
// `rows`: a laid out by layoutRowBlocks (matmul.h) for these weights: matmulPlanesStepRows(b) rows per
// step, chains starting at −offset·Σk.
void matmulPlanesTileAvx512(const Int8Activations& a, const RowBlocks& rows, const PackedPlaneWeights& b, const uint8_t* planes,
                            const uint8_t* low, int64_t unitBegin, int64_t unitEnd, const uint8_t* prefetch, const float* bias, float* out,
                            int64_t tile);
// The rows per step of matmulPlanesAvx512's steps for P planes and units of `unit` k (the dot
// chains, weights and float accumulators within the 32 vector registers; 8 rows of unit 32 measured
// slower).
constexpr int64_t planesStepRows(int planeCount, int64_t unit) { return planeCount == 2 && unit == 16 ? 8 : 4; }
inline int64_t matmulPlanesStepRows(const PackedPlaneWeights& b) { return planesStepRows(b.planeCount, b.unit); }
// The same products from `codes` (split weights only), the planes rebuilt by vpermi2b table
// lookups, so a product reads one byte per weight instead of two or three: few activation rows
// rebuild them in registers for every step, more rows rebuild each tile once into a per-thread
// buffer that stays in L2 while every row step passes over it.
void matmulPlanesFromCodesAvx512Vbmi(const Int8Activations& a, const PackedPlaneWeights& b, const float* bias, float* out,
                                     int64_t tileBegin, int64_t tileEnd);
using PlanesKernel = void (*)(const Int8Activations&, const PackedPlaneWeights&, const float*, float*, int64_t, int64_t);

// The planes kernel of the active level (the scalar one where no SIMD variant runs), and the form
// of the weights it reads: Int16Codes (AVX2), Int16 (baseline NEON), Codes (with the from-codes
// kernel, AVX-512 VBMI) or Bytes.
PlanesKernel activePlanesKernel();
PlaneForm activePlaneForm();
// The from-codes kernel where the CPU has AVX-512 VBMI, else nullptr.
PlanesKernel activePlanesFromCodesKernel();

}  // namespace fp4kit
