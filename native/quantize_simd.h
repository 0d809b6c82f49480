// The vectorised quantizers, written once with GCC vector extensions (16 lanes of 32 bits) and
// compiled twice: by quantize_avx2.cc with -mavx2 and by quantize_avx512.cc with -mavx512f/bw/vl.
// Each lane runs exactly the integer steps of roundMagnitude (element_codec.h), with every shift
// count clamped so no lane relies on what an out-of-range shift does; the float steps (NVFP4's
// x / total) are single IEEE operations, so the bits equal the scalar kernels'.
//
// Include only inside an anonymous namespace of an ISA file: each copy is compiled for its ISA.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "element_codec.h"
#include "pack_codes.h"
#include "quantize.h"

typedef uint32_t U32x16 __attribute__((vector_size(64)));
typedef int32_t I32x16 __attribute__((vector_size(64)));
typedef float F32x16 __attribute__((vector_size(64)));
typedef uint16_t U16x16 __attribute__((vector_size(32)));
typedef uint32_t U32x8 __attribute__((vector_size(32)));
typedef uint8_t U8x8 __attribute__((vector_size(8)));
typedef uint8_t U8x16 __attribute__((vector_size(16)));

static inline I32x16 splat(int32_t v) { return I32x16{} + v; }
static inline I32x16 minv(I32x16 a, I32x16 b) { return a < b ? a : b; }
static inline I32x16 maxv(I32x16 a, I32x16 b) { return a > b ? a : b; }

static inline uint32_t horizontalMax(U32x16 v) {
  // Values are |x| bits (< 2^31), so a signed compare orders them.
  I32x16 a = (I32x16)v;
  I32x16 b = __builtin_shufflevector(a, a, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
  a = maxv(a, b);
  b = __builtin_shufflevector(a, a, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11);
  a = maxv(a, b);
  b = __builtin_shufflevector(a, a, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
  a = maxv(a, b);
  b = __builtin_shufflevector(a, a, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
  a = maxv(a, b);
  return static_cast<uint32_t>(a[0]);
}

// 16 float32 bit patterns from src[i..i+16) of the given dtype.
static inline U32x16 loadBitsVector(const void* src, int32_t dtype, int64_t i) {
  U32x16 v;
  if (dtype == fp4kit::kF32) {
    std::memcpy(&v, static_cast<const uint32_t*>(src) + i, 64);
  } else if (dtype == fp4kit::kBf16) {
    U16x16 h;
    std::memcpy(&h, static_cast<const uint16_t*>(src) + i, 32);
    v = __builtin_convertvector(h, U32x16) << 16;
  } else {
    const uint16_t* p = static_cast<const uint16_t*>(src) + i;
    for (int l = 0; l < 16; l++) v[l] = fp4kit::f16ToF32Bits(p[l]);
  }
  return v;
}

// Random bits for 16 consecutive elements from `index`, or false if the run crosses 2^32
// (then the caller uses the scalar path, which handles any index).
static inline bool randomVector(uint32_t seed, uint64_t index, U32x16& out) {
  const uint32_t lo = static_cast<uint32_t>(index);
  if (lo > 0xffffffffu - 15) return false;
  const uint32_t key = fp4kit::streamKey(seed, static_cast<uint32_t>(index >> 32));
  U32x16 h = (U32x16{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15} + lo) ^ key;
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  out = h;
  return true;
}

// quantizeScaledElement for 16 lanes: codes of |x|·2^−s, saturated (block formats).
static inline U32x16 quantizeScaledVector(U32x16 bits, int32_t s, const fp4kit::ElementFormat& f, bool stochastic, U32x16 random) {
  const U32x16 abs = bits & 0x7fffffffu;
  const I32x16 biased = (I32x16)(abs >> 23);
  // float32 subnormals: the leading bit's position from an exact int → float conversion.
  const I32x16 asInt = (I32x16)abs;
  const F32x16 asFloat = __builtin_convertvector(asInt, F32x16);
  const I32x16 lead = maxv(((I32x16)asFloat >> 23) - 127, splat(0));
  const I32x16 subnormal = biased == 0;
  const U32x16 m = subnormal ? (U32x16)(abs << (U32x16)maxv(minv(splat(23) - lead, splat(23)), splat(0))) : ((abs & 0x7fffffu) | 0x800000u);
  const I32x16 e = subnormal ? lead - 149 - s : biased - 127 - s;
  const I32x16 binade = maxv(e, splat(f.minNormalExponent));
  const I32x16 shift = 23 + binade - f.mantissaBits - e;  // ≥ 16
  U32x16 r;
  if (!stochastic) {
    const U32x16 sh = (U32x16)minv(shift, splat(25));
    const U32x16 lsb = (m >> sh) & 1u;
    r = (m + ((1u << (sh - 1u)) - 1u) + lsb) >> sh;
  } else {
    const U32x16 sh31 = (U32x16)minv(shift, splat(31));
    const U32x16 rem = m & ((1u << sh31) - 1u);
    const U32x16 up = (U32x16)(splat(32) - minv(shift, splat(32)));
    const U32x16 down = (U32x16)minv(maxv(shift - 32, splat(0)), splat(31));
    const U32x16 frac = shift <= 32 ? (rem << up) : (m >> down);
    r = (m >> sh31) + (U32x16)(random < frac ? splat(1) : splat(0));
  }
  I32x16 mag = ((binade - f.minNormalExponent) << f.mantissaBits) + (I32x16)r;
  mag = minv(mag, splat(f.maxFiniteCode));
  mag = abs == 0u ? splat(0) : mag;
  const I32x16 negative = (I32x16)bits < 0;
  if (f.id == fp4kit::kInt8) return (U32x16)((negative ? -mag : mag) & 0xff);
  return (U32x16)(negative ? (mag | f.signBit) : mag);
}

// 16 codes (< 16) → 8 bytes, element 2i in the low nibble of byte i.
static inline void storeNibbles(U32x16 codes, uint8_t* out) {
  const U32x8 even = __builtin_shufflevector(codes, codes, 0, 2, 4, 6, 8, 10, 12, 14);
  const U32x8 odd = __builtin_shufflevector(codes, codes, 1, 3, 5, 7, 9, 11, 13, 15);
  const U8x8 bytes = __builtin_convertvector(even | (odd << 4), U8x8);
  std::memcpy(out, &bytes, 8);
}

static inline void storeBytes(U32x16 codes, uint8_t* out) {
  const U8x16 bytes = __builtin_convertvector(codes, U8x16);
  std::memcpy(out, &bytes, 16);
}

static inline void storeCodes(const U32x16* codes, int vectors, int32_t bits, uint8_t* out) {
  if (bits == 4) {
    for (int v = 0; v < vectors; v++) storeNibbles(codes[v], out + 8 * v);
  } else if (bits == 8) {
    for (int v = 0; v < vectors; v++) storeBytes(codes[v], out + 16 * v);
  } else {
    uint8_t bytes[64];
    for (int v = 0; v < vectors; v++) storeBytes(codes[v], bytes + 16 * v);
    fp4kit::packCodes(bytes, 16 * vectors, bits, out);
  }
}

// One block's 16·V float32 bits: whole blocks load directly, the last (short) one zero-padded.
template <int V>
static inline uint32_t loadBlockVectors(const void* src, int32_t dtype, int64_t start, int64_t count, U32x16* bits) {
  if (count == 16 * V) {
    for (int v = 0; v < V; v++) bits[v] = loadBitsVector(src, dtype, start + 16 * v);
  } else {
    uint32_t tmp[16 * V] = {};
    for (int64_t i = 0; i < count; i++) tmp[i] = fp4kit::loadBits(src, dtype, start + i);
    std::memcpy(bits, tmp, sizeof tmp);
  }
  U32x16 amax = bits[0] & 0x7fffffffu;
  for (int v = 1; v < V; v++) {
    const U32x16 a = bits[v] & 0x7fffffffu;
    amax = (I32x16)a > (I32x16)amax ? a : amax;
  }
  return horizontalMax(amax);
}

// Random bits for the block's real elements; false sends the block to the scalar kernel.
template <int V>
static inline bool blockRandoms(const fp4kit::BlockArgs& a, int64_t start, U32x16* random) {
  for (int v = 0; v < V; v++) {
    if (!randomVector(a.seed, a.firstIndex + static_cast<uint64_t>(start + 16 * v), random[v])) return false;
  }
  return true;
}

static void quantizeMxVector(const fp4kit::BlockArgs& a, int64_t rowBegin, int64_t rowEnd, fp4kit::BlockKernel scalar) {
  using namespace fp4kit;
  const ElementFormat& f = kElementFormats[a.format];
  const int64_t blocksPerRow = (a.cols + kMxBlock - 1) / kMxBlock;
  const int64_t blockBytes = kMxBlock * f.bits / 8;
  const bool stochastic = a.rounding == kStochastic;
  for (int64_t row = rowBegin; row < rowEnd; row++) {
    for (int64_t b = 0; b < blocksPerRow; b++) {
      const int64_t col0 = b * kMxBlock;
      const int64_t count = std::min<int64_t>(kMxBlock, a.cols - col0);
      const int64_t start = row * a.cols + col0;
      const int64_t blockIndex = row * blocksPerRow + b;
      U32x16 bits[2], random[2] = {}, codes[2] = {};
      if (stochastic && !blockRandoms<2>(a, start, random)) {
        scalar(a, row, row + 1);  // rare: a 2^32 index boundary inside the block
        break;
      }
      const uint32_t amax = loadBlockVectors<2>(a.src, a.dtype, start, count, bits);
      if (amax >= 0x7f800000u) {
        a.scales[blockIndex] = 0xff;
      } else {
        const int32_t s = mxScaleExponent(amax, f, a.scaleRule == kScaleCeil);
        a.scales[blockIndex] = static_cast<uint8_t>(s + kE8m0Bias);
        for (int v = 0; v < 2; v++) codes[v] = quantizeScaledVector(bits[v], s, f, stochastic, random[v]);
        if (count < kMxBlock) {
          for (int i = static_cast<int>(count); i < kMxBlock; i++) codes[i >> 4][i & 15] = 0;  // padding codes are +0
        }
      }
      storeCodes(codes, 2, f.bits, a.data + blockIndex * blockBytes);
    }
  }
}

static void quantizeNvfp4Vector(const fp4kit::BlockArgs& a, int64_t rowBegin, int64_t rowEnd, fp4kit::BlockKernel scalar) {
  using namespace fp4kit;
  const ElementFormat& e2m1 = kElementFormats[kE2m1];
  const ElementFormat& e4m3 = kElementFormats[kE4m3];
  float e4m3Values[256];
  for (int c = 0; c < 256; c++) e4m3Values[c] = decodeElement(c, e4m3);
  const int64_t blocksPerRow = (a.cols + kNvfp4Block - 1) / kNvfp4Block;
  const bool stochastic = a.rounding == kStochastic;
  for (int64_t row = rowBegin; row < rowEnd; row++) {
    for (int64_t b = 0; b < blocksPerRow; b++) {
      const int64_t col0 = b * kNvfp4Block;
      const int64_t count = std::min<int64_t>(kNvfp4Block, a.cols - col0);
      const int64_t start = row * a.cols + col0;
      const int64_t blockIndex = row * blocksPerRow + b;
      U32x16 bits, random = {};
      if (stochastic && !blockRandoms<1>(a, start, &random)) {
        scalar(a, row, row + 1);
        break;
      }
      const uint32_t amax = loadBlockVectors<1>(a.src, a.dtype, start, count, &bits);
      const float scaled = nvfp4ScaledBlockScale(bitsToFloat(amax), a.tensorScale);
      const uint8_t scaleCode = encodeElementBits(floatToBits(scaled), e4m3, -1);
      a.scales[blockIndex] = scaleCode;
      const float total = a.tensorScale * e4m3Values[scaleCode];
      F32x16 v = (F32x16)bits / total;
      v = v > 6.0f ? F32x16{} + 6.0f : v;
      v = v < -6.0f ? F32x16{} - 6.0f : v;
      U32x16 codes = quantizeScaledVector((U32x16)v, 0, e2m1, stochastic, random);
      if (count < kNvfp4Block) {
        for (int i = static_cast<int>(count); i < kNvfp4Block; i++) codes[i] = 0;
      }
      storeNibbles(codes, a.data + blockIndex * 8);
    }
  }
}

static uint32_t absMaxVector(const void* src, int32_t dtype, int64_t begin, int64_t end) {
  U32x16 amax = {};
  I32x16 nan = {};
  int64_t i = begin;
  for (; i + 16 <= end; i += 16) {
    const U32x16 a = loadBitsVector(src, dtype, i) & 0x7fffffffu;
    nan |= (I32x16)a > 0x7f800000;
    amax = (I32x16)a > (I32x16)amax ? a : amax;
  }
  uint32_t m = horizontalMax(amax);
  for (int l = 0; l < 16; l++) {
    if (nan[l]) return 0x7fc00000u;
  }
  for (; i < end; i++) {
    const uint32_t a = fp4kit::loadBits(src, dtype, i) & 0x7fffffff;
    if (a > 0x7f800000u) return a;
    m = std::max(m, a);
  }
  return m;
}

// FP4 codes of 16·V elements (8·V bytes) → values · scale, element 2i from the low nibble.
template <int V>
static inline void dequantizeNibbles(const uint8_t* packed, const F32x16& table, float scale, float* out) {
  for (int v = 0; v < V; v++) {
    U8x8 bytes;
    std::memcpy(&bytes, packed + 8 * v, 8);
    const U32x8 w = __builtin_convertvector(bytes, U32x8);
    const U32x8 lo = w & 15u, hi = w >> 4;
    const U32x16 codes = __builtin_shufflevector(lo, hi, 0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
    const F32x16 values = __builtin_shuffle(table, (I32x16)codes) * scale;
    std::memcpy(out + 16 * v, &values, 64);
  }
}

static void dequantizeMxVector(const fp4kit::BlockArgs& a, int64_t rowBegin, int64_t rowEnd, fp4kit::BlockKernel scalar) {
  using namespace fp4kit;
  if (a.format != kE2m1 || a.cols % kMxBlock != 0) {
    scalar(a, rowBegin, rowEnd);
    return;
  }
  F32x16 table;
  for (int c = 0; c < 16; c++) table[c] = decodeElement(c, kElementFormats[kE2m1]);
  const int64_t blocksPerRow = a.cols / kMxBlock;
  for (int64_t row = rowBegin; row < rowEnd; row++) {
    for (int64_t b = 0; b < blocksPerRow; b++) {
      const int64_t blockIndex = row * blocksPerRow + b;
      const uint8_t code = a.scales[blockIndex];
      const float scale = code == 0xff ? NAN : std::ldexp(1.0f, code - kE8m0Bias);
      dequantizeNibbles<2>(a.data + blockIndex * 16, table, scale, a.out + row * a.cols + b * kMxBlock);
    }
  }
}

static void dequantizeNvfp4Vector(const fp4kit::BlockArgs& a, int64_t rowBegin, int64_t rowEnd, fp4kit::BlockKernel scalar) {
  using namespace fp4kit;
  if (a.cols % kNvfp4Block != 0) {
    scalar(a, rowBegin, rowEnd);
    return;
  }
  F32x16 table;
  for (int c = 0; c < 16; c++) table[c] = decodeElement(c, kElementFormats[kE2m1]);
  float e4m3Values[256];
  for (int c = 0; c < 256; c++) e4m3Values[c] = decodeElement(c, kElementFormats[kE4m3]);
  const int64_t blocksPerRow = a.cols / kNvfp4Block;
  for (int64_t row = rowBegin; row < rowEnd; row++) {
    for (int64_t b = 0; b < blocksPerRow; b++) {
      const int64_t blockIndex = row * blocksPerRow + b;
      const float total = a.tensorScale * e4m3Values[a.scales[blockIndex]];
      dequantizeNibbles<1>(a.data + blockIndex * 8, table, total, a.out + row * a.cols + b * kNvfp4Block);
    }
  }
}
