// Transposes of 4-byte elements (float32 moved as bits, never converted): the tfjs backend lays its
// operands out for fp4kit's products ([K, N] → [N, K], the backward products' transposed
// activations), the checkpoint tool swaps a tensor's last two axes. lib/core/transpose.ts holds
// the reference loop; transposeMatrices32 is the same loop in plain C++ (element moves give the
// same bits on any backend); transpose_avx512.cc moves 16 × 16 blocks through registers. Both
// sit in the quantize tables (quantize.h: transpose32), the single dispatch point.
#pragma once
#include <cstdint>

namespace fp4kit {

// Tiles of this many rows and columns (64 × 64 × 4 bytes = 16 KiB per side).
constexpr int64_t kTransposeTile = 64;

// `count` matrices, each [rows, cols] row-major one after the other from src, into [cols, dstStride]
// (dstStride ≥ rows; columns rows … dstStride − 1 left as they are) one after the other from dst, at
// cols · dstStride apart: dst[c · dstStride + r] = src[r · cols + c]. Work item w of
// [itemBegin, itemEnd) is matrix w / colTiles, output rows (source columns) of tile w % colTiles —
// items write disjoint output rows, so threads may take any of them.
void transposeMatrices32(const uint32_t* src, int64_t rows, int64_t cols, uint32_t* dst, int64_t dstStride, int64_t itemBegin,
                         int64_t itemEnd);
#if defined(__x86_64__) || defined(_M_X64)
void transposeMatrices32Avx512(const uint32_t* src, int64_t rows, int64_t cols, uint32_t* dst, int64_t dstStride, int64_t itemBegin,
                               int64_t itemEnd);
#endif
inline int64_t transposeColumnTiles(int64_t cols) { return (cols + kTransposeTile - 1) / kTransposeTile; }

// Work item w: its matrix's source and destination, and its source columns [c0, c1).
struct TransposeItem {
  const uint32_t* from;
  uint32_t* to;
  int64_t c0, c1;
};
inline TransposeItem transposeItem(const uint32_t* src, int64_t rows, int64_t cols, uint32_t* dst, int64_t dstStride, int64_t w) {
  const int64_t colTiles = transposeColumnTiles(cols), matrix = w / colTiles, c0 = (w % colTiles) * kTransposeTile;
  return {src + matrix * rows * cols, dst + matrix * cols * dstStride, c0, c0 + kTransposeTile < cols ? c0 + kTransposeTile : cols};
}

// [A, B, C, D] → [A, C, B, D] (the middle two axes swapped, blocks of D elements moved whole: an
// attention's [batch, time, heads, width] ↔ [batch, heads, time, width]): dst[((a·C + c)·B + b)·D + d]
// = src[((a·B + b)·C + c)·D + d]. Work item w of [itemBegin, itemEnd) is the source rows a·B + b
// (each writes its C blocks; items write disjoint blocks).
void swapMiddleAxes32(const uint32_t* src, int64_t b, int64_t c, int64_t d, uint32_t* dst, int64_t itemBegin, int64_t itemEnd);

}  // namespace fp4kit
