// Float32 bit patterns and exact input widening (bf16, f16 → float32 bits): the twin of
// lib/kernels/ref/dtype.ts and assembly/dtype.ts.
// Every function is `static inline` so each translation unit (scalar, AVX2, AVX-512) gets its own
// copy compiled with its own flags: no shared COMDAT copy can carry AVX-512 instructions into the
// scalar path.
#pragma once
#include <cstdint>
#include <cstring>

#include "formats.h"

namespace fp4kit {

static inline uint32_t floatToBits(float x) {
  uint32_t b;
  std::memcpy(&b, &x, 4);
  return b;
}

static inline float bitsToFloat(uint32_t b) {
  float x;
  std::memcpy(&x, &b, 4);
  return x;
}

static inline uint32_t bf16ToF32Bits(uint16_t h) { return static_cast<uint32_t>(h) << 16; }

static inline uint32_t f16ToF32Bits(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  if (exp == 0x1f) return sign | 0x7f800000u | (mant << 13);
  if (exp != 0) return sign | ((exp + 112) << 23) | (mant << 13);
  if (mant == 0) return sign;
  const int lead = 31 - __builtin_clz(mant);
  const int e = lead - 24;
  return sign | (static_cast<uint32_t>(e + 127) << 23) | ((mant << (23 - lead)) & 0x7fffff);
}

// Bytes per source element of `dtype`: 4 for f32, 2 for bf16 and f16.
static inline int64_t sourceElementBytes(int32_t dtype) { return dtype == kF32 ? 4 : 2; }

static inline uint32_t loadBits(const void* src, int32_t dtype, int64_t i) {
  if (dtype == kF32) return static_cast<const uint32_t*>(src)[i];
  const uint16_t h = static_cast<const uint16_t*>(src)[i];
  return dtype == kBf16 ? bf16ToF32Bits(h) : f16ToF32Bits(h);
}

}  // namespace fp4kit
