// Moving a matrix into the layout fp4kit's products take: row-major [rows, K] with each row
// padded to `stride` columns (zeros beyond K). tfjs hands operands over as [K, N] (a Dense kernel)
// or as [K, M] (a transposed activation in a backward product); a tiled transpose makes the
// [N, K] / [M, K] copy in one cache-friendly pass (core/transpose.ts: natively on the addon).

import { scratch } from '../core/scratch.js';
import { transposeInto } from '../core/transpose.js';

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
  if (transposed) transposeInto(src, offset, cols, rows, out, 0, stride, count);
  else for (let i = 0; i < count; i++) copyRowsInto(src, offset + i * size, rows, cols, out, i * rows * stride, stride);
  return out;
}
