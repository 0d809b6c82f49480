// Scalar element codec: the exact integer steps of lib/kernels/ref/element-codec.ts (and
// assembly/element-codec.ts), one for one: rounding on the float32 bit pattern, encode, decode.
// Every function is `static inline` so each translation unit (scalar, AVX2, AVX-512) gets its own
// copy compiled with its own flags: no shared COMDAT copy can carry AVX-512 instructions into the
// scalar path.
#pragma once
#include <cstdint>
#include <algorithm>
#include <cmath>

#include "dtype.h"
#include "formats.h"
#include "stochastic.h"

namespace fp4kit {

// Exact rounding on the float32 bit pattern.
static inline int32_t floorLog2Bits(uint32_t absBits) {
  const int32_t biased = static_cast<int32_t>(absBits >> 23);
  if (biased != 0) return biased - 127;
  return -149 + 31 - __builtin_clz(absBits);
}

static inline int32_t ceilLog2Bits(uint32_t absBits) {
  const int32_t floor = floorLog2Bits(absBits);
  const bool exact = (absBits >> 23) != 0 ? (absBits & 0x7fffff) == 0 : (absBits & (absBits - 1)) == 0;
  return exact ? floor : floor + 1;
}

// Code magnitude of |x|·2^−scaleExponent (no overflow handling). random < 0: nearest-even;
// otherwise a 32-bit uniform draw for stochastic rounding. absBits finite and nonzero.
static inline int32_t roundMagnitude(uint32_t absBits, int32_t scaleExponent, const ElementFormat& f, int64_t random) {
  const int32_t biased = static_cast<int32_t>(absBits >> 23);
  uint32_t m;
  int32_t e;
  if (biased != 0) {
    m = (absBits & 0x7fffff) | 0x800000;
    e = biased - 127 - scaleExponent;
  } else {
    const int32_t lead = 31 - __builtin_clz(absBits);
    m = absBits << (23 - lead);
    e = lead - 149 - scaleExponent;
  }
  const int32_t emin = f.minNormalExponent;
  const int32_t binade = e > emin ? e : emin;
  const int32_t shift = 23 + binade - f.mantissaBits - e;
  uint32_t r;
  if (random < 0) {
    if (shift >= 25) {
      r = 0;
    } else {
      // Round half to even without a data-dependent branch: adding half − 1 plus the kept lsb
      // carries exactly when the remainder is above half, or equal to it with an odd lsb.
      r = (m + ((1u << (shift - 1)) - 1) + ((m >> shift) & 1)) >> shift;
    }
  } else {
    uint64_t frac32;
    if (shift <= 32) {
      r = shift == 32 ? 0 : m >> shift;
      const uint64_t rem = shift == 32 ? m : (m & ((1u << shift) - 1));
      frac32 = rem << (32 - shift);
    } else {
      r = 0;
      frac32 = shift - 32 >= 32 ? 0 : (m >> (shift - 32));
    }
    if (static_cast<uint64_t>(random) < frac32) r += 1;
  }
  return ((binade - emin) << f.mantissaBits) + static_cast<int32_t>(r);
}

// Code of one block element |x|·2^−s, saturated to the largest finite code (block formats).
static inline uint8_t quantizeScaledElement(uint32_t bits, int32_t scaleExponent, const ElementFormat& f, int64_t random) {
  const bool negative = (bits >> 31) != 0;
  const uint32_t abs = bits & 0x7fffffff;
  int32_t mag = abs == 0 ? 0 : roundMagnitude(abs, scaleExponent, f, random);
  if (mag > f.maxFiniteCode) mag = f.maxFiniteCode;
  if (f.id == kInt8) return static_cast<uint8_t>(negative ? -mag : mag);
  return static_cast<uint8_t>(negative ? (mag | f.signBit) : mag);
}

// E2M1 code of a float32 already clamped to ±6, by nearest even: per binade scale by the inverse
// quantum (exact), round with the FPU's nearest-even (adding and removing 2^23), add the binade's
// first code — equal to quantizeScaledElement(bits, 0, e2m1, -1), several times cheaper (FGMP's FP4 blocks).
static inline uint8_t e2m1NearestCode(float v) {
  const float a = std::fabs(v);
  const int32_t atLeast2 = a >= 2.0f, atLeast4 = a >= 4.0f;  // no branches: the data is random
  const float inverseQuantum = 2.0f - static_cast<float>(atLeast2) - 0.5f * static_cast<float>(atLeast4);
  const int32_t code = std::min(static_cast<int32_t>((a * inverseQuantum + 8388608.0f) - 8388608.0f) + 2 * (atLeast2 + atLeast4), 7);
  return static_cast<uint8_t>(code | (static_cast<int32_t>(floatToBits(v) >> 31) << 3));
}

static inline uint8_t encodeE8m0Bits(uint32_t bits, int64_t random) {
  if (bits == 0 || bits >= 0x7f800000u) return 0xff;
  if (bits <= 0x400000u) return 0;
  if (random < 0) return static_cast<uint8_t>((bits + 0x400000u) >> 23);
  if (bits < 0x800000u) return static_cast<uint64_t>(random) < static_cast<uint64_t>(bits - 0x400000u) * 1024 ? 1 : 0;
  // Rounded up past 2^127 (0xff, NaN): as round-to-nearest does (encodeE8m0Bits in lib/kernels/ref/element-codec.ts).
  const uint32_t code = (bits + (static_cast<uint32_t>(random) >> 9)) >> 23;
  return static_cast<uint8_t>(code == 0xff ? (bits + 0x400000u) >> 23 : code);
}

// Element cast with the format's own overflow and NaN rules (encode()).
static inline uint8_t encodeElementBits(uint32_t bits, const ElementFormat& f, int64_t random) {
  if (f.id == kE8m0) return encodeE8m0Bits(bits, random);
  const int32_t sign = (bits >> 31) ? f.signBit : 0;
  const uint32_t abs = bits & 0x7fffffff;
  if (abs > 0x7f800000u) return static_cast<uint8_t>(f.nanCode >= 0 ? (f.nanCode | sign) : 0);
  if (abs == 0x7f800000u) {
    if (f.overflow == Overflow::kSaturate) return static_cast<uint8_t>(f.maxFiniteCode | sign);
    if (f.overflow == Overflow::kInf) return static_cast<uint8_t>((f.maxFiniteCode + 1) | sign);
    return static_cast<uint8_t>(f.nanCode | sign);
  }
  if (abs == 0) return static_cast<uint8_t>(sign);
  int32_t mag = roundMagnitude(abs, 0, f, random);
  if (mag > f.maxFiniteCode && random >= 0) mag = roundMagnitude(abs, 0, f, -1);
  if (mag > f.maxFiniteCode) {
    if (f.overflow == Overflow::kSaturate) mag = f.maxFiniteCode;
    else if (f.overflow == Overflow::kInf) mag = f.maxFiniteCode + 1;
    else return static_cast<uint8_t>(f.nanCode | sign);
  }
  return static_cast<uint8_t>(mag | sign);
}

// Code → value, sign of −0 kept (decode tables are indexed by the whole code).
static inline float decodeElement(uint32_t code, const ElementFormat& f) {
  if (f.id == kE8m0) return code == 0xff ? NAN : std::ldexp(1.0f, static_cast<int>(code) - 127);
  if (f.id == kInt8) return static_cast<float>(static_cast<int8_t>(code)) / 64.0f;
  const bool negative = (code & f.signBit) != 0;
  const int32_t mag = code & (f.signBit - 1);
  float value;
  if (f.overflow == Overflow::kInf && mag > f.maxFiniteCode) value = mag == f.maxFiniteCode + 1 ? INFINITY : NAN;
  else if (f.nanCode >= 0 && mag == f.nanCode) value = NAN;
  else {
    const int32_t field = mag >> f.mantissaBits;
    const int32_t mant = mag & ((1 << f.mantissaBits) - 1);
    value = field == 0 ? std::ldexp(static_cast<float>(mant), f.minNormalExponent - f.mantissaBits)
                       : std::ldexp(static_cast<float>((1 << f.mantissaBits) + mant), field - 1 + f.minNormalExponent - f.mantissaBits);
  }
  return negative ? -value : value;
}

}  // namespace fp4kit
