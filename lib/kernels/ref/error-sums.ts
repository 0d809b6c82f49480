// The sums behind a quantized tensor's error statistics (relative RMSE, max |error|; the checkpoint
// tool's per-tensor errors, lib/checkpoint/error-stats.ts): the readable reference of
// native/error_sums.cc (and its vector form, native/error_sums_simd.h) and assembly/error-sums.ts.
//
// The defined order, which every backend keeps so that the sums have the same bits everywhere and
// do not depend on how the rows are split over threads or calls:
// - every element in float64: x (the source, widened exactly) and y (its decoded copy, float32);
//   d = x − y, one float64 subtraction; d·d and x·x, one float64 multiply each (never fused);
// - per row, eight lanes: element c goes to lane c mod 8, added in increasing c; the row's sum is
//   ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7));
// - the row sums are added to the running totals (sums[0] for Σd², sums[1] for Σx²) in row order;
// - sums[2] = max(sums[2], |d| of every element), where a NaN |d| counts for nothing (a NaN
//   element makes Σd² NaN instead).
// So a caller may pass its rows in any number of calls, in order, carrying `sums` between them.
// An empty tensor (rows or cols 0) leaves `sums` as it is.
// NaN sums have no specified payload.

import type { DtypeIdValue } from '../../core/formats.js';
import { guardDims, guardDoubles, guardFloats, guardSource } from '../kernel-guards.js';
import type { Source } from '../contract.js';
import { loadBitsInto } from './dtype.js';

/** ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)). */
export function laneTree(l: Float64Array): number {
  return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

/** Adds rows × cols elements of src (float32 or 16-bit floats) against `decoded` to sums =
 *  [Σ(x − y)², Σx², max |x − y|], in the order above. */
export function errorSums(src: Source, dtype: DtypeIdValue, decoded: Float32Array, rows: number, cols: number, sums: Float64Array): void {
  guardDims('errorSums', rows, cols);
  src = guardSource('errorSums', src, dtype, rows * cols);
  decoded = guardFloats('errorSums', 'decoded', decoded, rows * cols);
  sums = guardDoubles('errorSums', 'sums', sums, 3);
  if (rows * cols === 0) return; // nothing to add, however many rows of nothing
  const bits = new Uint32Array(cols);
  const x = new Float32Array(bits.buffer);
  const num = new Float64Array(8);
  const den = new Float64Array(8);
  let squaredError = sums[0], squaredSource = sums[1], maxAbs = sums[2];
  for (let r = 0; r < rows; r++) {
    loadBitsInto(src, dtype, r * cols, cols, bits);
    const y = decoded.subarray(r * cols, (r + 1) * cols);
    // One lane at a time (columns lane, lane + 8, …, in increasing order): the same sums as
    // walking the row once, with each lane's running sums in locals instead of a typed array.
    for (let lane = 0; lane < 8; lane++) {
      let laneError = 0, laneSource = 0;
      for (let c = lane; c < cols; c += 8) {
        const d = x[c] - y[c];
        laneError += d * d;
        laneSource += x[c] * x[c];
        const a = Math.abs(d);
        if (a > maxAbs) maxAbs = a;
      }
      num[lane] = laneError;
      den[lane] = laneSource;
    }
    squaredError += laneTree(num);
    squaredSource += laneTree(den);
  }
  sums[0] = squaredError;
  sums[1] = squaredSource;
  sums[2] = maxAbs;
}
