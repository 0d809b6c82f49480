// The vectorised quantizers, written once with GCC vector extensions (one register of 32-bit
// lanes: FP4KIT_LANES = 4, 8 or 16) and compiled once per ISA: by quantize_neon.cc (4 lanes),
// quantize_avx2.cc with -mavx2 (8) and quantize_avx512.cc with -mavx512f/bw/vl/dq (16, where
// hand-written intrinsics replace the hot E2M1 paths).
// Each lane runs exactly the integer steps of roundMagnitude (element_codec.h), with every shift
// count clamped so no lane relies on what an out-of-range shift does; the float steps (NVFP4's
// x / total) are single IEEE operations, so the bits equal the scalar kernels'.
//
// Include once per ISA file, each built alone with its own -m flags: the copies never meet.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

#include "block_scale.h"
#include "element_codec.h"
#include "pack_codes.h"
#include "quantize.h"
#include "tanh.h"
#include "transpose.h"

#ifndef FP4KIT_LANES
#error "define FP4KIT_LANES (8 for AVX2, 16 for AVX-512) before including quantize_simd.h"
#endif
constexpr int kLanes = FP4KIT_LANES;  // 32-bit lanes per vector: one native register

typedef uint32_t U32v __attribute__((vector_size(4 * kLanes)));
typedef int32_t I32v __attribute__((vector_size(4 * kLanes)));
typedef float F32v __attribute__((vector_size(4 * kLanes)));
typedef uint16_t U16v __attribute__((vector_size(2 * kLanes)));
typedef uint32_t U32half __attribute__((vector_size(2 * kLanes)));  // half a vector
typedef uint8_t U8half __attribute__((vector_size(kLanes / 2)));
typedef uint8_t U8v __attribute__((vector_size(kLanes)));

static inline I32v splat(int32_t v) { return I32v{} + v; }
static inline I32v minv(I32v a, I32v b) { return a < b ? a : b; }
static inline I32v maxv(I32v a, I32v b) { return a > b ? a : b; }

static inline uint32_t horizontalMax(U32v v) {
  // Values are |x| bits (< 2^31), so a signed compare orders them.
  I32v a = (I32v)v;
#if FP4KIT_LANES == 16
  a = maxv(a, __builtin_shufflevector(a, a, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7));
  a = maxv(a, __builtin_shufflevector(a, a, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11));
  a = maxv(a, __builtin_shufflevector(a, a, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13));
  a = maxv(a, __builtin_shufflevector(a, a, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14));
#elif FP4KIT_LANES == 8
  a = maxv(a, __builtin_shufflevector(a, a, 4, 5, 6, 7, 0, 1, 2, 3));
  a = maxv(a, __builtin_shufflevector(a, a, 2, 3, 0, 1, 6, 7, 4, 5));
  a = maxv(a, __builtin_shufflevector(a, a, 1, 0, 3, 2, 5, 4, 7, 6));
#else
  a = maxv(a, __builtin_shufflevector(a, a, 2, 3, 0, 1));
  a = maxv(a, __builtin_shufflevector(a, a, 1, 0, 3, 2));
#endif
  return static_cast<uint32_t>(a[0]);
}

static inline U32v laneIndex() {
  U32v v;
  for (int l = 0; l < kLanes; l++) v[l] = static_cast<uint32_t>(l);
  return v;
}

// kLanes float32 bit patterns from src[i..i+kLanes) of the given dtype.
// kLanes 16-bit values zero-extended to 32-bit lanes (vpmovzxwd on x86: GCC 12 scalarizes the
// generic conversion).
static inline U32v loadHalfWords(const uint16_t* p) {
#if defined(__AVX512F__) && FP4KIT_LANES == 16
  return (U32v)_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
#elif defined(__AVX2__) && FP4KIT_LANES == 8
  return (U32v)_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
#else
  U16v h;
  std::memcpy(&h, p, sizeof h);
  return __builtin_convertvector(h, U32v);
#endif
}

// binary16 bit patterns → float32 bit patterns, exactly as f16ToF32Bits (NaN payloads kept, not
// quieted): normal values rebiased by an integer add, subnormals through an exact int → float
// conversion times 2^-24, Inf/NaN with the exponent field set.
static inline U32v f16LanesToF32Bits(U32v h) {
  const U32v sign = (h & 0x8000u) << 16;
  const U32v exponent = (h >> 10) & 31u;
  const U32v mantissa = h & 0x3ffu;
  const U32v normal = ((h & 0x7fffu) << 13) + (112u << 23);
  const U32v special = (mantissa << 13) | 0x7f800000u;
  const U32v subnormal = (U32v)(__builtin_convertvector((I32v)mantissa, F32v) * (1.0f / 16777216.0f));
  const U32v magnitude = (U32v)(exponent == 31u ? (I32v)special : (exponent == 0u ? (I32v)subnormal : (I32v)normal));
  return sign | magnitude;
}

static inline U32v loadBitsVector(const void* src, int32_t dtype, int64_t i) {
  U32v v;
  if (dtype == fp4kit::kF32) {
    std::memcpy(&v, static_cast<const uint32_t*>(src) + i, sizeof v);
  } else if (dtype == fp4kit::kBf16) {
    v = loadHalfWords(static_cast<const uint16_t*>(src) + i) << 16;
  } else {
    v = f16LanesToF32Bits(loadHalfWords(static_cast<const uint16_t*>(src) + i));
  }
  return v;
}

// Random bits for kLanes consecutive elements from `index`, or false if the run crosses 2^32
// (then the caller uses the scalar path, which handles any index).
static inline bool randomVector(uint32_t seed, uint64_t index, U32v& out) {
  const uint32_t lo = static_cast<uint32_t>(index);
  if (lo > 0xffffffffu - (kLanes - 1)) return false;
  const uint32_t key = fp4kit::streamKey(seed, static_cast<uint32_t>(index >> 32));
  U32v h = (laneIndex() + lo) ^ key;
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  out = h;
  return true;
}

// quantizeScaledElement for every lane: codes of |x|·2^−s, saturated (block formats).
static inline U32v quantizeScaledVector(U32v bits, int32_t s, const fp4kit::ElementFormat& f, bool stochastic, U32v random) {
  const U32v abs = bits & 0x7fffffffu;
  const I32v biased = (I32v)(abs >> 23);
  // float32 subnormals: the leading bit's position from an exact int → float conversion.
  const I32v asInt = (I32v)abs;
  const F32v asFloat = __builtin_convertvector(asInt, F32v);
  const I32v lead = maxv(((I32v)asFloat >> 23) - 127, splat(0));
  const I32v subnormal = biased == 0;
  const U32v m = subnormal ? (U32v)(abs << (U32v)maxv(minv(splat(23) - lead, splat(23)), splat(0))) : ((abs & 0x7fffffu) | 0x800000u);
  const I32v e = subnormal ? lead - 149 - s : biased - 127 - s;
  const I32v binade = maxv(e, splat(f.minNormalExponent));
  const I32v shift = 23 + binade - f.mantissaBits - e;  // ≥ 16
  U32v r;
  if (!stochastic) {
    const U32v sh = (U32v)minv(shift, splat(25));
    const U32v lsb = (m >> sh) & 1u;
    r = (m + ((1u << (sh - 1u)) - 1u) + lsb) >> sh;
  } else {
    const U32v sh31 = (U32v)minv(shift, splat(31));
    const U32v rem = m & ((1u << sh31) - 1u);
    const U32v up = (U32v)(splat(32) - minv(shift, splat(32)));
    const U32v down = (U32v)minv(maxv(shift - 32, splat(0)), splat(31));
    const U32v frac = shift <= 32 ? (rem << up) : (m >> down);
    r = (m >> sh31) + (U32v)(random < frac ? splat(1) : splat(0));
  }
  I32v mag = ((binade - f.minNormalExponent) << f.mantissaBits) + (I32v)r;
  mag = minv(mag, splat(f.maxFiniteCode));
  mag = abs == 0u ? splat(0) : mag;
  const I32v negative = (I32v)bits < 0;
  if (f.id == fp4kit::kInt8) return (U32v)((negative ? -mag : mag) & 0xff);
  return (U32v)(negative ? (mag | f.signBit) : mag);
}

// E2M1 codes of a vector of values by nearest-even, from the midpoints between neighbours (a tie goes
// to the even code: 0.25→0, 0.75→1.0, 1.25→1.0, 1.75→2, 2.5→2, 3.5→4, 5→4), saturating at 6.
// Equal to quantizeScaledVector for e2m1 once |x|·2^−s is formed exactly: multiplying by a
// power of two is exact unless the product is below 2^−126, where every rule gives code 0.
static inline U32v e2m1NearestFromScaled(F32v scaled, U32v signBits) {
  // Per binade the E2M1 quantum is 0.5 ([0, 2)), 1 ([2, 4)) or 2 ([4, ∞)): scale by its inverse
  // (exact: a power of two), round to an integer with the FPU's own nearest-even (adding and
  // removing 2^23), and add the binade's first code. Codes past 7 saturate to 6.0.
  const F32v v = (F32v)((U32v)scaled & 0x7fffffffu);
  const I32v atLeast2 = v >= 2.0f, atLeast4 = v >= 4.0f;
  const F32v inverseQuantum = atLeast4 ? F32v{} + 0.5f : (atLeast2 ? F32v{} + 1.0f : F32v{} + 2.0f);
  const F32v rounded = (v * inverseQuantum + 8388608.0f) - 8388608.0f;
  const I32v code = __builtin_convertvector(rounded, I32v) - ((atLeast2 + atLeast4) << 1);
  return (U32v)minv(code, splat(7)) | ((signBits >> 28) & 8u);
}

// FP6/FP8 element codes of already-scaled magnitudes |x|·2^−s by nearest-even, saturating at the
// largest finite value (the MX rule). The FPU rounds: adding and removing C = 2^(e + 23 − mantissa
// bits), e the value's binade (at least the format's smallest normal one), leaves v rounded to a
// multiple of that binade's quantum, ties to even. The rounded value's float32 fields then give
// the code (rebiased exponent and top mantissa bits), or for the subnormal range, v / quantum.
// Equal to quantizeScaledVector for these formats once |x|·2^−s is formed exactly: multiplying by a
// power of two is exact unless the product is below 2^−126, where every rule gives code 0.
template <int32_t Format>
static inline U32v floatNearestFromScaled(F32v scaled, U32v signBits) {
  using namespace fp4kit;
  constexpr ElementFormat f = kElementFormats[Format];
  constexpr int32_t bias = 1 - f.minNormalExponent;
  const F32v v = (F32v)((U32v)scaled & 0x7fffffffu);
  const I32v binade = maxv(((I32v)v >> 23) - 127, splat(f.minNormalExponent));
  const F32v c = (F32v)((binade + (23 - f.mantissaBits + 127)) << 23);
  F32v r = (v + c) - c;
  r = r < f.maxFinite ? r : F32v{} + f.maxFinite;
  const float smallestNormal = bitsToFloat(static_cast<uint32_t>(f.minNormalExponent + 127) << 23);
  const float perQuantum = bitsToFloat(static_cast<uint32_t>(f.mantissaBits - f.minNormalExponent + 127) << 23);
  const I32v subnormal = __builtin_convertvector(r * perQuantum, I32v);
  const I32v normal = ((I32v)r >> (23 - f.mantissaBits)) - ((127 - bias) << f.mantissaBits);
  const I32v code = r < smallestNormal ? subnormal : normal;
  return (U32v)code | ((signBits >> 31) << (f.bits - 1));
}

// MXINT8 codes of |x|·2^(6−s) (the code's own scale: value = code/64) by nearest-even, saturating
// at ±127. Equal to quantizeScaledVector for int8: the product is exact unless it is below
// 2^−126, where every rule gives code 0; the FPU's nearest-even (adding and removing 2^23) rounds.
static inline U32v int8NearestFromScaled(F32v scaled, U32v signBits) {
  const F32v rounded = (scaled + 8388608.0f) - 8388608.0f;  // scaled < 2^8: an integer, ties to even
  const I32v magnitude = minv(__builtin_convertvector(rounded, I32v), splat(127));
  return (U32v)(((I32v)signBits < 0 ? -magnitude : magnitude) & 0xff);
}

static inline float powerOfTwo(int32_t e) {  // 2^e for −126 ≤ e ≤ 127
  return fp4kit::bitsToFloat(static_cast<uint32_t>(e + 127) << 23);
}

// The E8M0 decode multiplier 2^(code−127), NaN for 0xff (code 0 is the subnormal 2^−127).
static inline float e8m0Multiplier(uint8_t code) {
  if (code == 0xff) return NAN;
  return fp4kit::bitsToFloat(code == 0 ? 0x00400000u : static_cast<uint32_t>(code) << 23);
}

// kLanes codes (< 16) → kLanes/2 bytes, element 2i in the low nibble of byte i.
static inline void storeNibbles(U32v codes, uint8_t* out) {
#if FP4KIT_LANES == 16
  const U32half even = __builtin_shufflevector(codes, codes, 0, 2, 4, 6, 8, 10, 12, 14);
  const U32half odd = __builtin_shufflevector(codes, codes, 1, 3, 5, 7, 9, 11, 13, 15);
#elif FP4KIT_LANES == 8
  const U32half even = __builtin_shufflevector(codes, codes, 0, 2, 4, 6);
  const U32half odd = __builtin_shufflevector(codes, codes, 1, 3, 5, 7);
#else
  const U32half even = __builtin_shufflevector(codes, codes, 0, 2);
  const U32half odd = __builtin_shufflevector(codes, codes, 1, 3);
#endif
  const U8half bytes = __builtin_convertvector(even | (odd << 4), U8half);
  std::memcpy(out, &bytes, sizeof bytes);
}

// kLanes codes (< 256) → kLanes bytes. GCC 12 scalarizes the generic u32 → u8 conversion, so the
// x86 builds narrow with vpmovdb (AVX-512) or two packs (AVX2).
static inline void storeBytes(U32v codes, uint8_t* out) {
#if defined(__AVX512F__) && FP4KIT_LANES == 16
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_cvtepi32_epi8((__m512i)codes));
#elif defined(__AVX2__) && FP4KIT_LANES == 8
  const __m256i v = (__m256i)codes;
  const __m128i words = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packus_epi16(words, words));
#else
  const U8v bytes = __builtin_convertvector(codes, U8v);
  std::memcpy(out, &bytes, sizeof bytes);
#endif
}

// One MX block's 32 six-bit codes → 24 bytes in packCodes' order (code i in bits [6i, 6i + 6)).
static inline void storeSixBitBlock(const U32v* codes, uint8_t* out) {
#if defined(__AVX512BW__) && defined(__AVX512VL__) && FP4KIT_LANES == 16
  for (int v = 0; v < 2; v++) {
    // Each group of 4 codes → one 24-bit word in its first dword: shift into place, OR the group.
    __m512i x = _mm512_sllv_epi32((__m512i)codes[v], _mm512_setr_epi32(0, 6, 12, 18, 0, 6, 12, 18, 0, 6, 12, 18, 0, 6, 12, 18));
    x = _mm512_or_si512(x, _mm512_shuffle_epi32(x, _MM_PERM_CDAB));
    x = _mm512_or_si512(x, _mm512_shuffle_epi32(x, _MM_PERM_BADC));
    const __m128i words = _mm512_castsi512_si128(_mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), x));
    const __m128i bytes = _mm_shuffle_epi8(words, _mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1));
    _mm_mask_storeu_epi8(out + 12 * v, 0x0fff, bytes);
  }
#else
  uint8_t bytes[fp4kit::kMxBlock];
  for (int v = 0; v < fp4kit::kMxBlock / kLanes; v++) storeBytes(codes[v], bytes + kLanes * v);
  fp4kit::packCodes(bytes, fp4kit::kMxBlock, 6, out);
#endif
}

static inline void storeCodes(const U32v* codes, int vectors, int32_t bits, uint8_t* out) {
  if (bits == 4) {
    for (int v = 0; v < vectors; v++) storeNibbles(codes[v], out + (kLanes / 2) * v);
  } else if (bits == 8) {
    for (int v = 0; v < vectors; v++) storeBytes(codes[v], out + kLanes * v);
  } else if (kLanes * vectors == fp4kit::kMxBlock) {
    storeSixBitBlock(codes, out);
  } else {
    uint8_t bytes[64];
    for (int v = 0; v < vectors; v++) storeBytes(codes[v], bytes + kLanes * v);
    fp4kit::packCodes(bytes, kLanes * vectors, bits, out);
  }
}

// One block's kLanes·V float32 bits: whole blocks load directly, the last (short) one zero-padded.
template <int V>
static inline uint32_t loadBlockVectors(const void* src, int32_t dtype, int64_t start, int64_t count, U32v* bits) {
  if (count == kLanes * V) {
    for (int v = 0; v < V; v++) bits[v] = loadBitsVector(src, dtype, start + kLanes * v);
  } else {
    uint32_t tmp[kLanes * V] = {};
    for (int64_t i = 0; i < count; i++) tmp[i] = fp4kit::loadBits(src, dtype, start + i);
    std::memcpy(bits, tmp, sizeof tmp);
  }
  U32v amax = bits[0] & 0x7fffffffu;
  for (int v = 1; v < V; v++) {
    const U32v a = bits[v] & 0x7fffffffu;
    amax = (I32v)a > (I32v)amax ? a : amax;
  }
  return horizontalMax(amax);
}

// Random bits for the block's real elements; false sends the block to the scalar kernel.
template <int V>
static inline bool blockRandoms(const fp4kit::BlockArgs& a, int64_t start, U32v* random) {
  for (int v = 0; v < V; v++) {
    if (!randomVector(a.seed, a.firstIndex + static_cast<uint64_t>(start + kLanes * v), random[v])) return false;
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
      constexpr int V = kMxBlock / kLanes;
      U32v bits[V], random[V] = {}, codes[V] = {};
      if (stochastic && !blockRandoms<V>(a, start, random)) {
        scalar(a, row, row + 1);  // rare: a 2^32 index boundary inside the block
        break;
      }
      const uint32_t amax = loadBlockVectors<V>(a.src, a.dtype, start, count, bits);
      if (amax >= 0x7f800000u) {
        a.scales[blockIndex] = 0xff;
      } else {
        const int32_t s = mxScaleExponent(amax, f, a.scaleRule == kScaleCeil);
        a.scales[blockIndex] = static_cast<uint8_t>(s + kE8m0Bias);
        if (f.id == kE2m1 && !stochastic) {
          const float inverse = powerOfTwo(-s);  // s ∈ [−127, 125]
          for (int v = 0; v < V; v++) codes[v] = e2m1NearestFromScaled((F32v)(bits[v] & 0x7fffffffu) * inverse, bits[v]);
        } else if (f.id == kInt8 && !stochastic && s >= -120 && s <= 125) {
          const float toCode = powerOfTwo(6 - s);  // code = RNE(|x|·2^(6−s)), the multiplier representable
          for (int v = 0; v < V; v++) codes[v] = int8NearestFromScaled((F32v)(bits[v] & 0x7fffffffu) * toCode, bits[v]);
        } else if ((f.id == kE2m3 || f.id == kE3m2 || f.id == kE4m3 || f.id == kE5m2) && !stochastic && s >= -126 && s <= 126) {
          const float inverse = powerOfTwo(-s);
          for (int v = 0; v < V; v++) {
            const F32v scaled = (F32v)(bits[v] & 0x7fffffffu) * inverse;
            switch (f.id) {
              case kE2m3: codes[v] = floatNearestFromScaled<kE2m3>(scaled, bits[v]); break;
              case kE3m2: codes[v] = floatNearestFromScaled<kE3m2>(scaled, bits[v]); break;
              case kE4m3: codes[v] = floatNearestFromScaled<kE4m3>(scaled, bits[v]); break;
              default: codes[v] = floatNearestFromScaled<kE5m2>(scaled, bits[v]); break;
            }
          }
        } else {
          for (int v = 0; v < V; v++) codes[v] = quantizeScaledVector(bits[v], s, f, stochastic, random[v]);
        }
        // Padding lanes were loaded as +0, so their codes are already +0.
      }
      storeCodes(codes, V, f.bits, a.data + blockIndex * blockBytes);
    }
  }
}

// Elements of one NVFP4 block under its decode multiplier `total`: x / total (one IEEE division,
// as the reference does), clamped to ±6, then rounded to E2M1.
static inline U32v nvfp4BlockCodes(U32v bits, float total, bool stochastic, U32v random) {
  F32v v = (F32v)bits / total;
  v = v > 6.0f ? F32v{} + 6.0f : v;
  v = v < -6.0f ? F32v{} - 6.0f : v;
  if (!stochastic) return e2m1NearestFromScaled(v, (U32v)v);
  return quantizeScaledVector((U32v)v, 0, fp4kit::kElementFormats[fp4kit::kE2m1], true, random);
}

static void quantizeNvfp4Vector(const fp4kit::BlockArgs& a, int64_t rowBegin, int64_t rowEnd, fp4kit::BlockKernel scalar) {
  using namespace fp4kit;
  constexpr int V = kNvfp4Block / kLanes;  // vectors per block
  const ElementFormat& e4m3 = kElementFormats[kE4m3];
  float e4m3Values[256];
  for (int c = 0; c < 256; c++) e4m3Values[c] = decodeElement(c, e4m3);
  const int64_t blocksPerRow = (a.cols + kNvfp4Block - 1) / kNvfp4Block;
  const int64_t fullBlocks = a.cols / kNvfp4Block;
  const bool stochastic = a.rounding == kStochastic;
  for (int64_t row = rowBegin; row < rowEnd; row++) {
    int64_t b = 0;
    // kLanes blocks at a time: their scales are computed together, one block per lane.
    for (; !stochastic && b + kLanes <= fullBlocks; b += kLanes) {
      const int64_t start = row * a.cols + b * kNvfp4Block;
      U32v bits[kLanes][V];
      U32v amax;
      for (int j = 0; j < kLanes; j++) {
        U32v m = {};
        for (int v = 0; v < V; v++) {
          bits[j][v] = loadBitsVector(a.src, a.dtype, start + kNvfp4Block * j + kLanes * v);
          const U32v abs = bits[j][v] & 0x7fffffffu;
          m = (I32v)abs > (I32v)m ? abs : m;
        }
        amax[j] = horizontalMax(m);
      }
      F32v scaled = ((F32v)amax / 6.0f) / a.tensorScale;  // NaN lanes stay NaN, as in the reference
      scaled = scaled < 0.015625f ? F32v{} + 0.015625f : scaled;
      scaled = scaled > 448.0f ? F32v{} + 448.0f : scaled;
      U32v scaleCodes = quantizeScaledVector((U32v)scaled, 0, e4m3, false, U32v{});
      bool anyNan = false;
      for (int j = 0; j < kLanes; j++) anyNan |= amax[j] > 0x7f800000u;
      if (anyNan) {  // NaN blocks take the scalar encode (the caller normally rejects NaN input)
        for (int j = 0; j < kLanes; j++) scaleCodes[j] = encodeElementBits(floatToBits(scaled[j]), e4m3, -1);
      }
      const int64_t blockIndex = row * blocksPerRow + b;
      for (int j = 0; j < kLanes; j++) {
        const uint8_t code = static_cast<uint8_t>(scaleCodes[j]);
        a.scales[blockIndex + j] = code;
        const float total = a.tensorScale * e4m3Values[code];
        for (int v = 0; v < V; v++) {
          const U32v codes = total != total ? U32v{} : nvfp4BlockCodes(bits[j][v], total, false, U32v{});  // NaN block: codes 0
          storeNibbles(codes, a.data + (blockIndex + j) * 8 + (kLanes / 2) * v);
        }
      }
    }
    for (; b < blocksPerRow; b++) {
      const int64_t col0 = b * kNvfp4Block;
      const int64_t count = std::min<int64_t>(kNvfp4Block, a.cols - col0);
      const int64_t start = row * a.cols + col0;
      const int64_t blockIndex = row * blocksPerRow + b;
      U32v bits[V], random[V] = {}, codes[V];
      if (stochastic && !blockRandoms<V>(a, start, random)) {
        scalar(a, row, row + 1);
        break;
      }
      const uint32_t amax = loadBlockVectors<V>(a.src, a.dtype, start, count, bits);
      const float scaled = nvfp4ScaledBlockScale(bitsToFloat(amax), a.tensorScale);
      const uint8_t scaleCode = encodeElementBits(floatToBits(scaled), e4m3, -1);
      a.scales[blockIndex] = scaleCode;
      const float total = a.tensorScale * e4m3Values[scaleCode];
      for (int v = 0; v < V; v++) codes[v] = total != total ? U32v{} : nvfp4BlockCodes(bits[v], total, stochastic, random[v]);  // NaN block: codes 0
      for (int i = static_cast<int>(count); i < kNvfp4Block; i++) codes[i / kLanes][i % kLanes] = 0;
      for (int v = 0; v < V; v++) storeNibbles(codes[v], a.data + blockIndex * 8 + (kLanes / 2) * v);
    }
  }
}

static uint32_t absMaxVector(const void* src, int32_t dtype, int64_t begin, int64_t end) {
  U32v amax = {};
  I32v nan = {};
  int64_t i = begin;
  for (; i + kLanes <= end; i += kLanes) {
    const U32v a = loadBitsVector(src, dtype, i) & 0x7fffffffu;
    nan |= (I32v)a > 0x7f800000;
    amax = (I32v)a > (I32v)amax ? a : amax;
  }
  uint32_t m = horizontalMax(amax);
  for (int l = 0; l < kLanes; l++) {
    if (nan[l]) return 0x7fc00000u;
  }
  for (; i < end; i++) {
    const uint32_t a = fp4kit::loadBits(src, dtype, i) & 0x7fffffff;
    if (a > 0x7f800000u) return a;
    m = std::max(m, a);
  }
  return m;
}

// FP4 codes of kLanes·V elements (kLanes/2·V bytes) → values · scale, element 2i from the low
// nibble. `magnitudes` holds the 8 E2M1 magnitudes (repeated to fill the vector); the sign bit
// is ORed in, so −0 stays −0.
template <int V>
static inline void dequantizeNibbles(const uint8_t* packed, const F32v& magnitudes, float scale, float* out) {
  for (int v = 0; v < V; v++) {
    U8half bytes;
    std::memcpy(&bytes, packed + (kLanes / 2) * v, sizeof bytes);
    const U32half w = __builtin_convertvector(bytes, U32half);
    const U32half lo = w & 15u, hi = w >> 4;
#if FP4KIT_LANES == 16
    const U32v codes = __builtin_shufflevector(lo, hi, 0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
#elif FP4KIT_LANES == 8
    const U32v codes = __builtin_shufflevector(lo, hi, 0, 4, 1, 5, 2, 6, 3, 7);
#else
    const U32v codes = __builtin_shufflevector(lo, hi, 0, 2, 1, 3);
#endif
#if FP4KIT_LANES >= 8
    const F32v magnitude = __builtin_shuffle(magnitudes, (I32v)(codes & 7u));
#else  // 4 lanes hold half the table: pick from the pair (magnitudes of codes 0–3, 4–7)
    (void)magnitudes;
    const F32v magnitude = __builtin_shuffle(F32v{0.0f, 0.5f, 1.0f, 1.5f}, F32v{2.0f, 3.0f, 4.0f, 6.0f}, (I32v)(codes & 7u));
#endif
    const F32v values = (F32v)((U32v)magnitude | ((codes & 8u) << 28)) * scale;
    std::memcpy(out + kLanes * v, &values, sizeof values);
  }
}

static inline F32v e2m1Magnitudes() {
  F32v t;
  for (int l = 0; l < kLanes; l++) t[l] = fp4kit::decodeElement(l & 7, fp4kit::kElementFormats[fp4kit::kE2m1]);
  return t;
}

// Element codes (FP6, FP8, INT8; one per 32-bit lane) → their exact values, by moving the code's
// exponent and mantissa into a float32's fields; subnormal, NaN and Inf codes are selected. Checked against
// decodeElement for every code before use (elementDecoderMatches).
template <int32_t Format>
static inline F32v decodeElementsVector(U32v codes) {
  using namespace fp4kit;
  constexpr ElementFormat f = kElementFormats[Format];
  if constexpr (f.id == kInt8) {
    return __builtin_convertvector(((I32v)(codes << 24)) >> 24, F32v) * (1.0f / 64.0f);
  } else {
    const U32v mag = codes & (uint32_t)(f.signBit - 1);
    const U32v sign = (codes & (uint32_t)f.signBit) << (31 - (f.bits - 1));
    constexpr int32_t exponentBits = f.bits - 1 - f.mantissaBits;
    constexpr int32_t bias = (1 << (exponentBits - 1)) - 1;  // E2M3 1, E3M2 3, E4M3 7, E5M2 15
    // Normal codes: the fields moved into place and the exponent rebiased by an integer add.
    // Subnormal codes (exponent field 0): m · 2^(1 − bias − mantissaBits) from an exact int →
    // float conversion, so no float32 subnormal is ever an operand (those cost a microcode assist).
    const U32v normal = (mag << (23 - f.mantissaBits)) + (uint32_t)((127 - bias) << 23);
    const float quantum = bitsToFloat(static_cast<uint32_t>(1 - bias - f.mantissaBits + 127) << 23);
    const F32v small = __builtin_convertvector((I32v)mag, F32v) * quantum;
    U32v value = (U32v)((mag >> f.mantissaBits) == 0u ? (I32v)small : (I32v)normal);
    if constexpr (f.overflow == Overflow::kInf) {  // E5M2: Inf above the largest finite code, then NaN
      const I32v special = (I32v)mag > f.maxFiniteCode;
      value = (U32v)(special ? ((I32v)mag == f.maxFiniteCode + 1 ? splat(0x7f800000) : splat(0x7fc00000)) : (I32v)value);
    } else if constexpr (f.nanCode >= 0) {
      value = (U32v)((I32v)mag == f.nanCode ? splat(0x7fc00000) : (I32v)value);
    }
    return (F32v)(value | sign);
  }
}

// kLanes byte codes, one per 32-bit lane. GCC 12 turns a generic u8 → u32 vector conversion into
// scalar inserts, so the x86 builds say vpmovzxbd themselves.
static inline U32v loadByteCodes(const uint8_t* p) {
#if defined(__AVX512F__) && FP4KIT_LANES == 16
  return (U32v)_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
#elif defined(__AVX2__) && FP4KIT_LANES == 8
  return (U32v)_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
#else
  U8v bytes;
  std::memcpy(&bytes, p, sizeof bytes);
  return __builtin_convertvector(bytes, U32v);
#endif
}

// One MX block's 32 six-bit codes (24 bytes; code i in bits [6i, 6i + 6), little-endian, the order
// of packCodes), kLanes per vector: each lane takes the two bytes its code spans as a 16-bit word
// (vpshufb) and shifts its code out. Loads stay inside the block's 24 bytes.
static inline void unpackSixBitBlock(const uint8_t* packed, U32v* codes) {
#if defined(__AVX512BW__) && defined(__AVX512VL__) && FP4KIT_LANES == 16
  const __m512i shift = _mm512_setr_epi32(0, 6, 4, 2, 0, 6, 4, 2, 0, 6, 4, 2, 0, 6, 4, 2);
  for (int v = 0; v < 2; v++) {
    // 12 bytes (a masked load reads nothing past them), in both 128-bit halves for vpshufb.
    const __m128i bytes = _mm_maskz_loadu_epi8(0x0fff, packed + 12 * v);
    const __m256i pairs = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(bytes),
                                              _mm256_setr_epi8(0, 1, 0, 1, 1, 2, 2, 3, 3, 4, 3, 4, 4, 5, 5, 6,  //
                                                               6, 7, 6, 7, 7, 8, 8, 9, 9, 10, 9, 10, 10, 11, 11, 11));
    codes[v] = (U32v)_mm512_and_si512(_mm512_srlv_epi32(_mm512_cvtepu16_epi32(pairs), shift), _mm512_set1_epi32(63));
  }
#elif defined(__AVX2__) && FP4KIT_LANES == 8
  // Bytes 0–15 and 8–23 hold every 6-byte group of 8 codes: 0, 6 | 12 − 8, 18 − 8.
  const __m128i low = _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed));
  const __m128i high = _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed + 8));
  const __m128i pattern = _mm_setr_epi8(0, 1, 0, 1, 1, 2, 2, 3, 3, 4, 3, 4, 4, 5, 5, 5);  // the last code needs one byte
  const __m256i shift = _mm256_setr_epi32(0, 6, 4, 2, 0, 6, 4, 2);
  const __m128i pairs[4] = {_mm_shuffle_epi8(low, pattern), _mm_shuffle_epi8(low, _mm_add_epi8(pattern, _mm_set1_epi8(6))),
                            _mm_shuffle_epi8(high, _mm_add_epi8(pattern, _mm_set1_epi8(4))),
                            _mm_shuffle_epi8(high, _mm_add_epi8(pattern, _mm_set1_epi8(10)))};
  for (int v = 0; v < 4; v++) {
    codes[v] = (U32v)_mm256_and_si256(_mm256_srlv_epi32(_mm256_cvtepu16_epi32(pairs[v]), shift), _mm256_set1_epi32(63));
  }
#else
  uint8_t bytes[fp4kit::kMxBlock];
  fp4kit::unpackCodes(packed, fp4kit::kMxBlock, 6, bytes);
  for (int v = 0; v < fp4kit::kMxBlock / kLanes; v++) {
    U8v b;
    std::memcpy(&b, bytes + kLanes * v, sizeof b);
    codes[v] = __builtin_convertvector(b, U32v);
  }
#endif
}

// Whether decodeElementsVector gives decodeElement's bits for every code of `format` (once per format).
static bool elementDecoderMatches(int32_t format) {
  using namespace fp4kit;
  static const auto verdicts = [] {
    std::array<bool, kElementCount> ok{};
    auto check = [&ok](int32_t id, F32v (*decode)(U32v)) {
      const ElementFormat& f = kElementFormats[id];
      bool all = true;
      for (uint32_t c0 = 0; c0 < (1u << f.bits); c0 += kLanes) {
        U32v codes;
        for (int l = 0; l < kLanes; l++) codes[l] = (c0 + l) & ((1u << f.bits) - 1);
        const F32v got = decode(codes);
        for (int l = 0; l < kLanes; l++) all = all && floatToBits(got[l]) == floatToBits(decodeElement(codes[l], f));
      }
      ok[static_cast<size_t>(id)] = all;
    };
    check(kE2m3, decodeElementsVector<kE2m3>);
    check(kE3m2, decodeElementsVector<kE3m2>);
    check(kE4m3, decodeElementsVector<kE4m3>);
    check(kE5m2, decodeElementsVector<kE5m2>);
    check(kInt8, decodeElementsVector<kInt8>);
    return ok;
  }();
  return verdicts[static_cast<size_t>(format)];
}

// MX blocks of FP6/FP8/INT8 codes × the block's scale, as the scalar kernel computes them (table
// value × scale, one multiply); a row with a NaN scale goes to the scalar kernel, the short last
// block of a ragged row to a scalar loop.
template <int32_t Format>
static void dequantizeMxElementsVector(const fp4kit::BlockArgs& a, int64_t rowBegin, int64_t rowEnd, fp4kit::BlockKernel scalar) {
  using namespace fp4kit;
  constexpr ElementFormat f = kElementFormats[Format];
  const int64_t blocksPerRow = (a.cols + kMxBlock - 1) / kMxBlock;
  const int64_t blockBytes = kMxBlock * f.bits / 8;
  for (int64_t row = rowBegin; row < rowEnd; row++) {
    for (int64_t b = 0; b < blocksPerRow; b++) {
      const int64_t blockIndex = row * blocksPerRow + b;
      const uint8_t scaleCode = a.scales[blockIndex];
      if (scaleCode == 0xff) {  // the scalar kernel's own NaN propagation, not the vector unit's
        scalar(a, row, row + 1);
        break;
      }
      const float scale = e8m0Multiplier(scaleCode);
      const uint8_t* packed = a.data + blockIndex * blockBytes;
      float* out = a.out + row * a.cols + b * kMxBlock;
      const int64_t count = std::min<int64_t>(kMxBlock, a.cols - b * kMxBlock);
      if (count < kMxBlock) {  // the zero-padded last block of a ragged row: its stored codes, its real elements
        uint8_t codes[kMxBlock];
        unpackCodes(packed, kMxBlock, f.bits, codes);
        for (int64_t i = 0; i < count; i++) out[i] = decodeElement(codes[i], f) * scale;
        continue;
      }
      U32v codes[kMxBlock / kLanes];
      if constexpr (f.bits == 6) {
        unpackSixBitBlock(packed, codes);
      } else {
        for (int v = 0; v < kMxBlock / kLanes; v++) codes[v] = loadByteCodes(packed + kLanes * v);
      }
      for (int v = 0; v < kMxBlock / kLanes; v++) {
        const F32v values = decodeElementsVector<Format>(codes[v]) * scale;
        std::memcpy(out + kLanes * v, &values, sizeof values);
      }
    }
  }
}

static void dequantizeMxVector(const fp4kit::BlockArgs& a, int64_t rowBegin, int64_t rowEnd, fp4kit::BlockKernel scalar) {
  using namespace fp4kit;
  if ((a.format == kE2m1 && a.cols % kMxBlock != 0) || (a.format != kE2m1 && !elementDecoderMatches(a.format))) {
    scalar(a, rowBegin, rowEnd);
    return;
  }
  switch (a.format) {
    case kE2m3: return dequantizeMxElementsVector<kE2m3>(a, rowBegin, rowEnd, scalar);
    case kE3m2: return dequantizeMxElementsVector<kE3m2>(a, rowBegin, rowEnd, scalar);
    case kE4m3: return dequantizeMxElementsVector<kE4m3>(a, rowBegin, rowEnd, scalar);
    case kE5m2: return dequantizeMxElementsVector<kE5m2>(a, rowBegin, rowEnd, scalar);
    case kInt8: return dequantizeMxElementsVector<kInt8>(a, rowBegin, rowEnd, scalar);
    default: break;  // E2M1 below
  }
  const F32v table = e2m1Magnitudes();
  const int64_t blocksPerRow = a.cols / kMxBlock;
  for (int64_t row = rowBegin; row < rowEnd; row++) {
    for (int64_t b = 0; b < blocksPerRow; b++) {
      const int64_t blockIndex = row * blocksPerRow + b;
      const uint8_t code = a.scales[blockIndex];
      const float scale = e8m0Multiplier(code);
      dequantizeNibbles<kMxBlock / kLanes>(a.data + blockIndex * 16, table, scale, a.out + row * a.cols + b * kMxBlock);
    }
  }
}

static void dequantizeNvfp4Vector(const fp4kit::BlockArgs& a, int64_t rowBegin, int64_t rowEnd, fp4kit::BlockKernel scalar) {
  using namespace fp4kit;
  if (a.cols % kNvfp4Block != 0) {
    scalar(a, rowBegin, rowEnd);
    return;
  }
  const F32v table = e2m1Magnitudes();
  float e4m3Values[256];
  for (int c = 0; c < 256; c++) e4m3Values[c] = decodeElement(c, kElementFormats[kE4m3]);
  const int64_t blocksPerRow = a.cols / kNvfp4Block;
  for (int64_t row = rowBegin; row < rowEnd; row++) {
    for (int64_t b = 0; b < blocksPerRow; b++) {
      const int64_t blockIndex = row * blocksPerRow + b;
      const float total = a.tensorScale * e4m3Values[a.scales[blockIndex]];
      dequantizeNibbles<kNvfp4Block / kLanes>(a.data + blockIndex * 8, table, total, a.out + row * a.cols + b * kNvfp4Block);
    }
  }
}

// encodeElements (a cast of each value to the element format, no scale) a vector at a time: the
// block quantizer's rounding with scale 1 — nearest-even by the midpoint tables, stochastic by
// quantizeScaledVector — then every lane at or past the format's largest finite value (overflow,
// Inf, NaN, each with the format's own rule, which a block quantizer never meets) and the run's tail
// again through the scalar encoder. INT8 and E8M0 casts stay scalar.
static inline int64_t encodeElementsVector(const fp4kit::ElementArgs& a, int64_t begin, int64_t end, fp4kit::ElementKernel scalar) {
  using namespace fp4kit;
  const ElementFormat& f = kElementFormats[a.format];
  if (f.id == kE8m0 || f.id == kInt8) return scalar(a, begin, end);
  const bool stochastic = a.rounding == kStochastic;
  const float largest = decodeElement(static_cast<uint32_t>(f.maxFiniteCode), f);
  uint32_t largestBits;
  std::memcpy(&largestBits, &largest, 4);
  int64_t nans = 0, i = begin;
  for (; i + kLanes <= end; i += kLanes) {
    const U32v bits = loadBitsVector(a.src, a.dtype, i);
    U32v codes;
    if (stochastic) {
      U32v random;
      if (!randomVector(a.seed, a.firstIndex + i, random)) {
        nans += scalar(a, i, i + kLanes);
        continue;
      }
      codes = quantizeScaledVector(bits, 0, f, true, random);
    } else {
      const F32v magnitude = (F32v)(bits & 0x7fffffffu);
      switch (f.id) {
        case kE2m1: codes = e2m1NearestFromScaled(magnitude, bits); break;
        case kE2m3: codes = floatNearestFromScaled<kE2m3>(magnitude, bits); break;
        case kE3m2: codes = floatNearestFromScaled<kE3m2>(magnitude, bits); break;
        case kE4m3: codes = floatNearestFromScaled<kE4m3>(magnitude, bits); break;
        default: codes = floatNearestFromScaled<kE5m2>(magnitude, bits); break;
      }
    }
    storeBytes(codes, a.out + i);
    const U32v edge = (U32v)((bits & 0x7fffffffu) >= largestBits);
    for (int l = 0; l < kLanes; l++)
      if (edge[l]) nans += scalar(a, i + l, i + l + 1);
  }
  if (i < end) nans += scalar(a, i, end);
  return nans;
}

// Element codes (one byte each, bits above the format's masked off as the scalar kernel does) →
// their values, kLanes at a time; returns where it stopped (the tail is the caller's).
template <int32_t Format>
static inline int64_t decodeElementRuns(const uint8_t* codes, float* out, int64_t begin, int64_t end) {
  constexpr uint32_t mask = (1u << fp4kit::kElementFormats[Format].bits) - 1;
  int64_t i = begin;
  for (; i + kLanes <= end; i += kLanes) {
    const F32v values = decodeElementsVector<Format>(loadByteCodes(codes + i) & mask);
    std::memcpy(out + i, &values, sizeof values);
  }
  return i;
}

// decodeElements on vectors for the formats whose vector decoder is checked (elementDecoderMatches:
// FP6, FP8, INT8); the others (E2M1, E8M0), any format that fails the check, and the tail on `scalar`.
static inline void decodeElementsVectorKernel(const uint8_t* codes, int32_t format, float* out, int64_t begin, int64_t end,
                                              fp4kit::DecodeKernel scalar) {
  using namespace fp4kit;
  int64_t done = begin;
  if (elementDecoderMatches(format)) {
    switch (format) {
      case kE2m3: done = decodeElementRuns<kE2m3>(codes, out, begin, end); break;
      case kE3m2: done = decodeElementRuns<kE3m2>(codes, out, begin, end); break;
      case kE4m3: done = decodeElementRuns<kE4m3>(codes, out, begin, end); break;
      case kE5m2: done = decodeElementRuns<kE5m2>(codes, out, begin, end); break;
      case kInt8: done = decodeElementRuns<kInt8>(codes, out, begin, end); break;
      default: break;
    }
  }
  if (done < end) scalar(codes, format, out, done, end);
}

// The wrapper functions and kernel table of an ISA file built on this vector code: `Isa` names
// the functions (quantizeMxAvx2 …), `label` is what availableBackends() reports.
#include "error_sums_simd.h"  // errorSumsVector, in every table below
#include "fgmp_simd.h"  // fgmpCandidatesVector, in every table below

#define FP4KIT_VECTOR_KERNEL_TABLE(Isa, label)                                                                 \
  namespace fp4kit {                                                                                          \
  namespace {                                                                                                 \
  void quantizeMx##Isa(const BlockArgs& a, int64_t b, int64_t e) { quantizeMxVector(a, b, e, kScalarKernels.quantizeMx); }       \
  void dequantizeMx##Isa(const BlockArgs& a, int64_t b, int64_t e) { dequantizeMxVector(a, b, e, kScalarKernels.dequantizeMx); } \
  void quantizeNvfp4##Isa(const BlockArgs& a, int64_t b, int64_t e) { quantizeNvfp4Vector(a, b, e, kScalarKernels.quantizeNvfp4); } \
  void dequantizeNvfp4##Isa(const BlockArgs& a, int64_t b, int64_t e) {                                        \
    dequantizeNvfp4Vector(a, b, e, kScalarKernels.dequantizeNvfp4);                                            \
  }                                                                                                           \
  uint32_t absMax##Isa(const void* src, int32_t dtype, int64_t b, int64_t e) { return absMaxVector(src, dtype, b, e); } \
  int64_t encodeElements##Isa(const ElementArgs& a, int64_t b, int64_t e) { return encodeElementsVector(a, b, e, kScalarKernels.encodeElements); } \
  void decodeElements##Isa(const uint8_t* c, int32_t f, float* o, int64_t b, int64_t e) {                      \
    decodeElementsVectorKernel(c, f, o, b, e, kScalarKernels.decodeElements);                                  \
  }                                                                                                           \
  }                                                                                                           \
  const QuantizeKernels k##Isa##Kernels = {label, encodeElements##Isa, decodeElements##Isa,                      \
                                           quantizeMx##Isa, dequantizeMx##Isa, absMax##Isa, quantizeNvfp4##Isa,   \
                                           dequantizeNvfp4##Isa, fgmpCandidatesVector, transposeMatrices32, tanhFloat32, \
                                           errorSumsVector};   \
  }
