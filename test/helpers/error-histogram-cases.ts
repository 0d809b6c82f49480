// Sources and decoded copies for the per-element error histogram (errorSums with a histogram,
// lib/kernels/ref/error-sums.ts): realistic quantization errors of float32, bf16 and f16 sources,
// and edge inputs — ±0, subnormal differences, float32's extremes, exact powers of two, NaN and
// ±Inf on either side, errors spread over a hundred binades (the native vector counting's window
// moves and misses), mostly exact copies, all errors in one binade (its counters fill up), column
// counts around the lanes and vector widths.
// Shared by the in-process tests and the child processes that run each native SIMD level.
import { DtypeId, type DtypeName } from '../../lib/core/formats.js';
import { dequantize, quantize } from '../../lib/index.js';
import { loadBitsInto } from '../../lib/kernels/ref/dtype.js';
import { ERROR_BIN_EXACT, ERROR_BIN_INFINITE, ERROR_BIN_NAN, ERROR_BINADE_MAX, ERROR_BINADE_MIN, ERROR_BINS, binadeBin } from '../../lib/kernels/ref/error-sums.js';
import { adversarial, gaussian, rng, toBf16, toF16, variedMagnitude } from './data.js';

export interface HistogramCase {
  name: string;
  src: Float32Array | Uint16Array;
  dtype: DtypeName;
  /** The source's values as float32 (16-bit sources widened). */
  values: Float32Array;
  decoded: Float32Array;
  rows: number;
  cols: number;
}

function make(name: string, src: Float32Array | Uint16Array, dtype: DtypeName, decoded: (values: Float32Array) => Float32Array, rows: number, cols: number): HistogramCase {
  const bits = new Uint32Array(rows * cols);
  loadBitsInto(src, DtypeId[dtype], 0, rows * cols, bits);
  const values = new Float32Array(bits.buffer);
  return { name, src, dtype, values, decoded: decoded(values), rows, cols };
}

const dequantized = (format: 'nvfp4' | 'mxfp4' | 'mxfp8_e4m3', rows: number, cols: number) => (v: Float32Array) =>
  dequantize(quantize(v, { format, shape: [rows, cols] }));

/** One float32 ulp up from each of every `every`-th value (a mostly exact copy). */
function ulpOff(v: Float32Array, every: number): Float32Array {
  const out = v.slice();
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < out.length; i += every) bits[i] += 1;
  return out;
}

/** Far from the source: errors over the source's whole range of magnitudes. */
const farOff = (v: Float32Array) => v.map((x, i) => x * 0.75 + (i % 5));

/** Hand-picked pairs [x, y]: every special case of d = x − y. */
const F32_MAX = 3.4028234663852886e38;
const EDGE_PAIRS: Array<[number, number]> = [
  [0, 0], [0, -0], [-0, 0], [1.5, 1.5], // exact (±0 − ∓0 is ±0: exact too)
  [2 ** -149, 0], [2 ** -149, -(2 ** -149)], [-(2 ** -149), 2 ** -148], // the smallest differences: binades −149, −148, −147 (|d| = 3·2^−149)
  [2 ** -126, 2 ** -126 - 2 ** -149], // normal minus subnormal
  [F32_MAX, -F32_MAX], [F32_MAX, 0], [-F32_MAX, 2 ** 127], // the largest: binade 128, 127, 128
  [1, 1 - 2 ** -24], [1, 1 - 2 ** -23], [2, 1], [3, 1], [1, 3], // |d| exactly 2^−24, 2^−23, 1, 2 (powers of two: the binade they start)
  [2 - 2 ** -22, 1 - 2 ** -24], // |d| = 1 − 2^−22 + 2^−24: just below 1
  [1, Infinity], [1, -Infinity], [-Infinity, 0], [Infinity, 0], // ±Inf
  [Infinity, Infinity], [-Infinity, -Infinity], [NaN, 1], [1, NaN], [NaN, NaN], // NaN
];

export function errorHistogramCases(): HistogramCase[] {
  const cases: HistogramCase[] = [];
  const g = gaussian(64 * 1000, 11, 0.02);
  cases.push(make('f32 source, nvfp4 copy', g, 'f32', dequantized('nvfp4', 64, 1000), 64, 1000));
  cases.push(make('bf16 source, mxfp4 copy', toBf16(gaussian(48 * 512, 12)), 'bf16', dequantized('mxfp4', 48, 512), 48, 512));
  cases.push(make('f16 source, mxfp8_e4m3 copy', toF16(gaussian(40 * 300, 13, 3)), 'f16', dequantized('mxfp8_e4m3', 40, 300), 40, 300));
  // Subnormal bf16 and f16 sources: their differences in the lowest binades.
  const tiny = gaussian(16 * 96, 14, 2 ** -130);
  cases.push(make('subnormal bf16 source, zero copy', toBf16(tiny), 'bf16', (v) => new Float32Array(v.length), 16, 96));
  cases.push(make('subnormal f16 source, half of it kept', toF16(gaussian(16 * 96, 15, 2 ** -18)), 'f16', (v) => v.map((x, i) => (i % 2 ? x : 0)), 16, 96));
  // Adversarial values with NaN, ±Inf, subnormals and ±0, against a coarse copy and an Inf here and there.
  const adv = adversarial(40 * 257, 16, true);
  cases.push(make('adversarial f32 with NaN, Inf, subnormals', adv, 'f32', (v) => v.map((x, i) => (i % 97 === 0 ? (i % 2 ? Infinity : -Infinity) : Math.round(x * 8) / 8)), 40, 257));
  cases.push(make('adversarial bf16', toBf16(adv), 'bf16', (v) => v.map((x) => x * 0.5), 40, 257));
  // Errors over ~100 binades, rows of 4096 (512 vector steps: the byte counters are emptied mid-row).
  const wide = variedMagnitude(12 * 4096, 17);
  cases.push(make('errors over a hundred binades', wide, 'f32', farOff, 12, 4096));
  // Magnitudes rising along the rows: the largest error keeps moving up (the window with it).
  const rising = new Float32Array(6 * 4096).map((_v, i) => (rng(i)() - 0.5) * 2 ** ((i % 4096) / 40 - 60));
  cases.push(make('errors rising along each row', rising, 'f32', (v) => v.map((x) => Math.fround(x * 0.9)), 6, 4096));
  cases.push(make('mostly exact copy', gaussian(8 * 4096, 18), 'f32', (v) => ulpOff(v, 3), 8, 4096));
  // Every error in one binade: each counter of the native window fills to its limit (255).
  cases.push(make('one binade throughout', new Float32Array(8 * 4096).fill(1), 'f32', (v) => v.map((_x, i) => 1 - 2 ** -24 * (1 + (i % 2))), 8, 4096));
  cases.push(make('exact copy', gaussian(3 * 2100, 19), 'f32', (v) => v.slice(), 3, 2100));
  const edgeX = new Float32Array(EDGE_PAIRS.map((p) => p[0]));
  const edgeY = new Float32Array(EDGE_PAIRS.map((p) => p[1]));
  cases.push(make('edge pairs', edgeX, 'f32', () => edgeY, 1, EDGE_PAIRS.length));
  // The edge pairs repeated in rows of every length around the eight lanes and the vector widths.
  for (const cols of [1, 7, 8, 9, 15, 16, 17, 33, 100]) {
    const rows = Math.ceil((3 * EDGE_PAIRS.length) / cols) + 2;
    const x = new Float32Array(rows * cols).map((_v, i) => edgeX[i % edgeX.length]);
    const y = new Float32Array(rows * cols).map((_v, i) => edgeY[(i * 7) % edgeY.length]);
    cases.push(make(`edge values, ${cols} columns`, x, 'f32', () => y, rows, cols));
  }
  return cases;
}

/** floor(log2 a) of a positive finite float64, without reading its bits: a first guess from
 *  Math.log2, corrected by comparing with exact powers of two. */
export function floorLog2(a: number): number {
  let k = Math.floor(Math.log2(a));
  while (2 ** k > a) k--;
  while (2 ** (k + 1) <= a) k++;
  return k;
}

/** The histogram's counts of x against y computed element by element, independently of the
 *  kernels' exponent fields (x − y in float64, its binade by floorLog2). */
export function independentCounts(x: Float32Array, y: Float32Array, n = x.length): Float64Array {
  const counts = new Float64Array(ERROR_BINS);
  for (let i = 0; i < n; i++) {
    const d = x[i] - y[i];
    if (Number.isNaN(d)) counts[ERROR_BIN_NAN]++;
    else if (!Number.isFinite(d)) counts[ERROR_BIN_INFINITE]++;
    else if (d === 0) counts[ERROR_BIN_EXACT]++;
    else {
      const k = floorLog2(Math.abs(d));
      if (k < ERROR_BINADE_MIN || k > ERROR_BINADE_MAX) throw new Error(`binade ${k} outside the histogram`);
      counts[binadeBin(k)]++;
    }
  }
  return counts;
}
