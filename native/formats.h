// The element formats as plain data, numbered as in lib/core/formats.ts (ElementId). The kernels of
// every backend receive these ids, so this table and lib/core/formats.ts must agree; the conformance
// vectors check both against ml_dtypes.
#pragma once
#include <cstdint>

namespace fp4kit {

enum ElementId : int32_t { kE2m1 = 0, kE2m3 = 1, kE3m2 = 2, kE4m3 = 3, kE5m2 = 4, kE8m0 = 5, kInt8 = 6, kElementCount = 7 };
enum DtypeId : int32_t { kF32 = 0, kBf16 = 1, kF16 = 2 };
enum RoundingId : int32_t { kNearest = 0, kStochastic = 1 };
enum ScaleRuleId : int32_t { kScaleFloor = 0, kScaleCeil = 1 };
enum class Overflow : int32_t { kSaturate, kNan, kInf };

struct ElementFormat {
  int32_t id;
  int32_t bits;
  int32_t mantissaBits;
  int32_t minNormalExponent;  // 1 − bias (int8: see lib/core/formats.ts)
  int32_t maxExponent;        // the OCP MX emax
  float maxFinite;
  int32_t maxFiniteCode;      // without the sign bit
  int32_t signBit;
  Overflow overflow;
  int32_t nanCode;            // −1: no NaN
};

static constexpr ElementFormat kElementFormats[kElementCount] = {
    {kE2m1, 4, 1, 0, 2, 6.0f, 0x7, 0x8, Overflow::kSaturate, -1},
    {kE2m3, 6, 3, 0, 2, 7.5f, 0x1f, 0x20, Overflow::kSaturate, -1},
    {kE3m2, 6, 2, -2, 4, 28.0f, 0x1f, 0x20, Overflow::kSaturate, -1},
    {kE4m3, 8, 3, -6, 8, 448.0f, 0x7e, 0x80, Overflow::kNan, 0x7f},
    {kE5m2, 8, 2, -14, 15, 57344.0f, 0x7b, 0x80, Overflow::kInf, 0x7e},
    {kE8m0, 8, 0, -127, 127, 1.7014118346046923e38f, 0xfe, 0, Overflow::kNan, 0xff},
    {kInt8, 8, 7, 1, 0, 127.0f / 64.0f, 127, 0x80, Overflow::kSaturate, -1},
};

constexpr int32_t kE8m0Bias = 127;
constexpr int32_t kMxBlock = 32;
constexpr int32_t kNvfp4Block = 16;

// The block formats by the id the kernels take (BLOCK_FORMATS in lib/core/formats.ts, same order):
// the MX formats (E8M0 scale per 32) and NVFP4 (E4M3 scale per 16 under a float32 tensor scale).
struct BlockFormat {
  int32_t element;      // ElementId
  int32_t blockSize;
  bool tensorScale;     // NVFP4
};
static constexpr BlockFormat kBlockFormats[] = {
    {kE2m1, kMxBlock, false}, {kE2m3, kMxBlock, false}, {kE3m2, kMxBlock, false}, {kE4m3, kMxBlock, false},
    {kE5m2, kMxBlock, false}, {kInt8, kMxBlock, false}, {kE2m1, kNvfp4Block, true},
};
constexpr int32_t kBlockFormatCount = static_cast<int32_t>(sizeof(kBlockFormats) / sizeof(kBlockFormats[0]));

}  // namespace fp4kit
