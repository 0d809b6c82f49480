// FP4KIT_WEIGHTS = 'none': float32 products on fp4kit's decoded-operand kernel (the reference loop
// of lib/core/matmul.ts, run by the active backend — the native addon or the WebAssembly module —
// else by the pure-TS reference), so every fp4kit backend gives the same bits. The operands are the
// float32 values themselves, with blocks of 32 and every block multiplier 1. The order, from lib/core/matmul.ts's header with S = 1:
//
//   for each unit j of 32 columns (in increasing order):
//     D   = ((a_0·b_0 + a_1·b_1) + a_2·b_2) + …   float64 (each product of two float32 is exact)
//     acc = f32(acc + f32(D))                     acc starts at +0
//   out = bias ? f32(acc + bias[n]) : acc
//
// That is 32 terms summed in float64 per rounding instead of tfjs cpu's float32 sum per term, so
// results agree with tfjs's backends within float32 reassociation error, not bit for bit.

import type { DecodedOperand } from '../kernels/contract.js';
import { decodedProduct } from '../core/matmul.js';
import { scratch } from '../core/scratch.js';

export const FLOAT_BLOCK = 32;

/** K rounded up to whole blocks: the row stride of a float operand. */
export function floatStride(k: number): number {
  return Math.ceil(k / FLOAT_BLOCK) * FLOAT_BLOCK;
}

let ones = new Float32Array(0);
/** `count` block multipliers of 1 (one shared, read-only array). */
function unitScales(count: number): Float32Array {
  if (ones.length < count) ones = new Float32Array(Math.max(count, 2 * ones.length)).fill(1);
  return ones.subarray(0, count);
}

/** rows × K float32 values laid out with row stride floatStride(K) (zeros in the padding). */
export function floatOperand(values: Float32Array, rows: number, k: number): DecodedOperand {
  const paddedCols = floatStride(k);
  const blocksPerRow = paddedCols / FLOAT_BLOCK;
  if (values.length !== rows * paddedCols) throw new RangeError(`floatOperand: expected ${rows * paddedCols} values (${rows} rows of ${paddedCols}), got ${values.length}`);
  return { rows, cols: k, blockSize: FLOAT_BLOCK, values, paddedCols, blockScales: unitScales(rows * blocksPerRow), blocksPerRow };
}

/**
 * a [m, k] · b [n, k]ᵀ of unpadded row-major float32 arrays → [m, n] on the same kernel: the float32
 * products of fp4kit's training layers, the same bits on every tfjs and fp4kit backend (as tf ops on
 * the fp4kit backend they could be quantized as weights: FP4KIT_WEIGHT_TENSORS = 'all').
 */
export function floatTimesTransposed(a: Float32Array, m: number, b: Float32Array, n: number, k: number): Float32Array {
  if (k === 0) return new Float32Array(m * n);
  return decodedProduct(floatOperand(floatRows(a, 0, m, k), m, k), floatOperand(floatRows(b, 0, n, k), n, k), undefined);
}

/** `rows` rows of `k` values of `v` from element `offset`, with row stride floatStride(k) and zeros
 *  in the padding (a float operand's layout): a view when k needs no padding, else a copy — in
 *  reused scratch `slot` when given, else a new array. */
export function floatRows(v: Float32Array, offset: number, rows: number, k: number, slot?: string): Float32Array {
  const stride = floatStride(k);
  if (stride === k) return v.subarray(offset, offset + rows * k);
  const out = slot === undefined ? new Float32Array(rows * stride) : scratch(slot, Float32Array, rows * stride).fill(0);
  for (let r = 0; r < rows; r++) out.set(v.subarray(offset + r * k, offset + (r + 1) * k), r * stride);
  return out;
}

/**
 * One piece of a reduction too long to lay out whole (a filter gradient over every pixel of a
 * batch), with the bits of the whole product: a [k, cols] · b [n, cols]ᵀ whose reduction columns
 * are `rows` of the piece's, after `floatStride(n)` leading columns that hold the running sums
 * `carried` [k, n] in a against the identity in b. Each leading unit's D is then one carried value
 * times 1, exact, and acc picks the sums up where the previous piece left them; the piece must
 * start on a unit (a multiple of FLOAT_BLOCK rows into the reduction) and every carried value must
 * be finite. Both operands are zeroed, reused scratch (`names`); `fill(a, b, lead, stride)` writes
 * the piece's columns from `lead` on, rows of `stride` values.
 */
export function continuedProduct(names: readonly [string, string], k: number, n: number, rows: number, carried: Float32Array | undefined,
  fill: (a: Float32Array, b: Float32Array, lead: number, stride: number) => void): Float32Array {
  const lead = carried ? floatStride(n) : 0;
  const cols = lead + rows;
  const stride = floatStride(cols);
  const a = scratch(names[0], Float32Array, k * stride).fill(0);
  const b = scratch(names[1], Float32Array, n * stride).fill(0);
  if (carried) {
    for (let t = 0; t < k; t++) a.set(carried.subarray(t * n, (t + 1) * n), t * stride);
    for (let c = 0; c < n; c++) b[c * stride + c] = 1;
  }
  fill(a, b, lead, stride);
  return decodedProduct(floatOperand(a, k, cols), floatOperand(b, n, cols), undefined);
}
