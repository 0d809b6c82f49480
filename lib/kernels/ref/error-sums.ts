// The sums behind a quantized tensor's error statistics (relative RMSE, max |error|, and the
// per-element error histogram; the checkpoint tool's per-tensor errors, lib/checkpoint/error-stats.ts):
// the readable reference of native/error_sums.cc (and its vector form, native/error_sums_simd.h)
// and assembly/error-sums.ts.
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
//
// The histogram (optional): every element counted in the bin of its d (errorBin below), read
// from the exponent field of d's float64 bits — integer operations only, so every backend counts
// the same. The binades of |d| are absolute; the checkpoint tool places each tensor's histogram
// relative to the tensor's RMS afterwards (lib/checkpoint/error-histogram.ts), an integer shift.
// A call counts its elements from zero and then adds each bin's count to histogram[bin], one
// float64 addition per bin (all ERROR_BINS of them, when the call has elements): counts are
// integers, exact below 2^53, so any split of the rows over calls or threads gives the same counts.

import type { DtypeIdValue } from '../../core/formats.js';
import { checkDisjoint } from '../../core/validate.js';
import { guardDims, guardDoubles, guardFloats, guardSource } from '../kernel-guards.js';
import type { Source } from '../contract.js';
import { loadBitsInto } from './dtype.js';

/** The histogram's bins, in increasing |d|: bin 0 counts d = 0 (exact); bins 1 … 278 the binades
 *  2^e ≤ |d| < 2^(e+1) for e = ERROR_BINADE_MIN … ERROR_BINADE_MAX; then ±Inf, then NaN. The
 *  binades span every nonzero |x − y| of float32 values (bf16 and f16 widen to float32): at least
 *  2^−149 (both are multiples of the smallest subnormal), below 2^129 (both below 2^128). */
export const ERROR_BIN_EXACT = 0;
export const ERROR_BINADE_MIN = -149;
export const ERROR_BINADE_MAX = 128;
export const ERROR_BIN_INFINITE = ERROR_BINADE_MAX - ERROR_BINADE_MIN + 2; // 279
export const ERROR_BIN_NAN = ERROR_BIN_INFINITE + 1; // 280
export const ERROR_BINS = ERROR_BIN_NAN + 1; // 281

/** The bin of binade e (floor(log2 |d|)). */
export const binadeBin = (e: number): number => e - ERROR_BINADE_MIN + 1;

const dBits = new DataView(new ArrayBuffer(8));

/**
 * The bin of one element's d = x − y (a float64): from the 11-bit exponent field E of d's bits.
 * A nonzero finite d is a float64 normal here (|d| ≥ 2^−149), so floor(log2 |d|) = E − 1023 and
 * its bin is E − 873, clamped to [0, ERROR_BIN_INFINITE]: E = 0 (d = ±0) gives 0 (exact), E = 2047
 * (±Inf or NaN) gives ERROR_BIN_INFINITE, one more for a NaN (a nonzero fraction).
 */
export function errorBin(d: number): number {
  dBits.setFloat64(0, d); // big-endian: the sign and exponent are the first 12 bits
  const high = dBits.getUint32(0);
  const exponent = (high >>> 20) & 0x7ff;
  const bin = Math.min(Math.max(exponent - (1023 + ERROR_BINADE_MIN - 1), 0), ERROR_BIN_INFINITE);
  return bin + (Number.isNaN(d) ? 1 : 0);
}

/** The checked arguments of errorSums (the js and wasm backends; the addon checks the same in C++):
 *  plain views of the caller's arrays, the outputs sharing memory with nothing else. */
export function guardErrorSums(
  src: unknown, dtype: DtypeIdValue, decoded: unknown, rows: number, cols: number, sums: unknown, histogram: unknown,
): { src: Source; decoded: Float32Array; sums: Float64Array; histogram: Float64Array | undefined } {
  const fn = 'errorSums';
  guardDims(fn, rows, cols);
  const s = guardSource(fn, src, dtype, rows * cols);
  const y = guardFloats(fn, 'decoded', decoded, rows * cols);
  const out = guardDoubles(fn, 'sums', sums, 3);
  const h = histogram === undefined ? undefined : guardDoubles(fn, 'histogram', histogram, ERROR_BINS);
  // Only the values the call uses: a longer sums or histogram may hold other data behind them.
  const used = { sums: out.subarray(0, 3), histogram: h?.subarray(0, ERROR_BINS) };
  checkDisjoint(fn, [['sums', used.sums], ['histogram', used.histogram]], [['src', s.subarray(0, rows * cols)], ['decoded', y.subarray(0, rows * cols)]]);
  return { src: s, decoded: y, sums: out, histogram: h };
}

/** ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)). */
export function laneTree(l: Float64Array): number {
  return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

/** Adds rows × cols elements of src (float32 or 16-bit floats) against `decoded` to sums =
 *  [Σ(x − y)², Σx², max |x − y|], in the order above, and with `histogram` (ERROR_BINS float64
 *  counts) each element to histogram[errorBin(x − y)]. */
export function errorSums(
  src: Source, dtype: DtypeIdValue, decoded: Float32Array, rows: number, cols: number, sums: Float64Array, histogram?: Float64Array,
): void {
  ({ src, decoded, sums, histogram } = guardErrorSums(src, dtype, decoded, rows, cols, sums, histogram));
  if (rows * cols === 0) return; // nothing to add, however many rows of nothing
  const bits = new Uint32Array(cols);
  const x = new Float32Array(bits.buffer);
  const num = new Float64Array(8);
  const den = new Float64Array(8);
  const counts = histogram === undefined ? null : new Float64Array(ERROR_BINS); // this call's, from zero
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
        if (counts !== null) counts[errorBin(d)]++;
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
  if (histogram !== undefined) for (let i = 0; i < ERROR_BINS; i++) histogram[i] += counts![i];
}
