// An FGMP tensor's block stream decoded to float32, a range of rows at a time, as
// lib/kernels/ref/fgmp-dequantize.ts (the readable reference) defines it: an FP8 block's element
// is f32(E4M3[code] · fp8Scale), an FP4 block's f32(E2M1[nibble] · f32(tensorScale · E4M3[scale]));
// elements past a row's last column are padding, not written. One float32 multiply per element
// (with -ffp-contract=off), so the bits are those of the reference.
#pragma once
#include <cstdint>

namespace fp4kit {

// The stream (lib/fgmp/stream.ts): blocks of 16 in row-major order; mask bit b (bit b & 7 of byte
// b >> 3) set when block b is FP8, which takes 16 code bytes in `data`; an FP4 block takes 8
// bytes of nibbles (element 2i low) in `data` and one E4M3 scale byte in `scales`.
struct FgmpStream {
  const uint8_t* mask;
  const uint8_t* data;
  const uint8_t* scales;
  int64_t cols;
  float tensorScale, fp8Scale;
};

constexpr int64_t kFgmpDequantizeBlock = 16;

// FP8 blocks among mask bits [0, block).
int64_t fgmpFp8BlocksBefore(const uint8_t* mask, int64_t block);

// Rows [rowBegin, rowEnd) into out (row rowBegin at out[0]); the stream must reach row rowEnd.
// Scalar: a table lookup and a multiply per element, ~0.5 ns — far below the callers' other work.
void dequantizeFgmpRows(const FgmpStream& s, int64_t rowBegin, int64_t rowEnd, float* out);

}  // namespace fp4kit
