// Counter-based random bits for stochastic rounding: the twin of lib/kernels/ref/stochastic.ts and
// assembly/stochastic.ts (same bits for the same seed and element index).
// Every function is `static inline` so each translation unit (scalar, AVX2, AVX-512) gets its own
// copy compiled with its own flags: no shared COMDAT copy can carry AVX-512 instructions into the
// scalar path.
#pragma once
#include <cstdint>

namespace fp4kit {

static inline uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

static inline uint32_t streamKey(uint32_t seed, uint32_t indexHigh) { return fmix32(seed ^ fmix32(indexHigh ^ 0x9e3779b9u)); }

static inline uint32_t randomBits(uint32_t seed, uint64_t index) {
  return fmix32(static_cast<uint32_t>(index) ^ streamKey(seed, static_cast<uint32_t>(index >> 32)));
}

}  // namespace fp4kit
