// Element code packing (lib/core/pack.ts): FP4 two per byte, element 2i in the low nibble; FP6 four
// per three bytes, element j at bits 6j..6j+5 of the little-endian 24-bit word; 8-bit one per byte.
#pragma once
#include <cstdint>
#include <cstring>

namespace fp4kit {

// count is a whole block (a multiple of 4).
static inline void packCodes(const uint8_t* codes, int64_t count, int32_t bits, uint8_t* out) {
  if (bits == 8) {
    std::memcpy(out, codes, static_cast<size_t>(count));
  } else if (bits == 4) {
    for (int64_t i = 0; i < count; i += 2) out[i >> 1] = static_cast<uint8_t>((codes[i] & 0xf) | ((codes[i + 1] & 0xf) << 4));
  } else {
    for (int64_t i = 0; i < count; i += 4, out += 3) {
      const uint32_t word = (codes[i] & 0x3fu) | ((codes[i + 1] & 0x3fu) << 6) | ((codes[i + 2] & 0x3fu) << 12) | ((codes[i + 3] & 0x3fu) << 18);
      out[0] = static_cast<uint8_t>(word);
      out[1] = static_cast<uint8_t>(word >> 8);
      out[2] = static_cast<uint8_t>(word >> 16);
    }
  }
}

static inline void unpackCodes(const uint8_t* packed, int64_t count, int32_t bits, uint8_t* codes) {
  if (bits == 8) {
    std::memcpy(codes, packed, static_cast<size_t>(count));
  } else if (bits == 4) {
    for (int64_t i = 0; i < count; i += 2) {
      codes[i] = packed[i >> 1] & 0xf;
      codes[i + 1] = packed[i >> 1] >> 4;
    }
  } else {
    for (int64_t i = 0; i < count; i += 4, packed += 3) {
      const uint32_t word = packed[0] | (packed[1] << 8) | (packed[2] << 16);
      codes[i] = word & 0x3f;
      codes[i + 1] = (word >> 6) & 0x3f;
      codes[i + 2] = (word >> 12) & 0x3f;
      codes[i + 3] = (word >> 18) & 0x3f;
    }
  }
}

}  // namespace fp4kit
