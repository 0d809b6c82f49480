// The per-element error histogram of a checkpoint run: each quantized tensor's counts by binade of
// |x − Q(x)| (the errorSums kernel's, lib/kernels/ref/error-sums.ts: integer operations on the
// float64 bits, so every backend counts the same), kept per tensor in the summary, and their sum
// over the run's tensors with each tensor's binades taken relative to its own RMS.
//
// Why relative to the tensor's RMS: a reader of a quantization report asks how large the errors
// are next to the weights they change, and wants one picture for a model whose tensors differ in
// scale by orders of magnitude; the RMS is known once a tensor's sums are done, and rounded to a
// power of two it moves a binade histogram by a whole number of bins — exact, and free. (Relative
// to each element's block absmax instead, the histogram would mostly show the element format's
// grid, known beforehand, and the kernel would need each format's block layout and a division per
// element; relative to |x| itself it is undefined at x = 0, where FP4 puts many weights.) The
// price: the reference is the RMS within a factor √2, so a bin's edges are those of the exact
// ratio within half a binade.

import type { FormatErrorHistogram, TensorErrorHistogram, TensorSummary } from './summary.js';
import type { QuantFormat } from './layouts/index.js';
import { ERROR_BIN_EXACT, ERROR_BIN_INFINITE, ERROR_BIN_NAN, ERROR_BINADE_MIN } from '../kernels/ref/error-sums.js';
import { logBinadeHistogram } from './plots.js';

const bits = new DataView(new ArrayBuffer(8));

/** floor(log2 v) of a positive normal float64, from its exponent field. */
function binadeOf(v: number): number {
  bits.setFloat64(0, v);
  return ((bits.getUint16(0) >>> 4) & 0x7ff) - 1023;
}

/**
 * The RMS √(Σx²/n) rounded to the nearest power of two: 2^s with s = ceil(E / 2), E = floor(log2 q),
 * q = Σx²/n (one float64 division; q is a normal float64 whenever Σx² > 0, as x² ≥ 2^−298). For
 * q in [2^E, 2^(E+1)), log2 RMS lies in [E/2, (E+1)/2), whose nearest integer is ceil(E / 2).
 * Null when there is no RMS to compare with (Σx² is 0, NaN or Inf, or no elements).
 */
export function rmsBinade(squaredSource: number, elements: number): number | null {
  if (!(elements > 0 && squaredSource > 0 && Number.isFinite(squaredSource))) return null;
  return Math.ceil(binadeOf(squaredSource / elements) / 2);
}

/** A tensor's summary entry from the kernel's ERROR_BINS counts and its Σx²: the binades with
 *  counts, from the first to the last nonzero one. */
export function tensorErrorHistogram(bins: Float64Array, squaredSource: number, elements: number): TensorErrorHistogram {
  let first = ERROR_BIN_EXACT + 1;
  let last = ERROR_BIN_INFINITE - 1;
  while (first <= last && bins[first] === 0) first++;
  while (last >= first && bins[last] === 0) last--;
  return {
    firstBinade: first <= last ? first - 1 + ERROR_BINADE_MIN : 0,
    counts: Array.from(bins.subarray(first, last + 1)),
    exact: bins[ERROR_BIN_EXACT],
    infinite: bins[ERROR_BIN_INFINITE],
    nan: bins[ERROR_BIN_NAN],
    rmsBinade: rmsBinade(squaredSource, elements),
  };
}

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** The elements a histogram counts: exact, in a binade, ±Inf and NaN — every element of its tensor
 *  once. (Of a run's FormatErrorHistogram, the elements placed relative to an RMS: its `unscaled`
 *  ones are in none of these.) */
export function histogramElements(h: Pick<TensorErrorHistogram, 'exact' | 'counts' | 'infinite' | 'nan'>): number {
  return h.exact + h.counts.reduce((a, b) => a + b, 0) + h.infinite + h.nan;
}

/** A summary's histogram as written, or a RangeError naming the tensor (a hand-edited summary
 *  must not end in a wrong plot or "Cannot read properties of undefined"). */
export function checkedHistogram(t: TensorSummary): TensorErrorHistogram {
  const h = t.errorHistogram as Partial<TensorErrorHistogram> | null;
  const ok = h !== null && typeof h === 'object' && Number.isSafeInteger(h.firstBinade)
    && Array.isArray(h.counts) && h.counts.length <= ERROR_BIN_INFINITE && h.counts.every(isCount)
    && isCount(h.exact) && isCount(h.infinite) && isCount(h.nan)
    && (h.rmsBinade === null || Number.isSafeInteger(h.rmsBinade))
    // Every binade within the binades a difference of float32 values can have, and its place
    // relative to the RMS within twice that range: a plot's bins stay a few hundred.
    && h.firstBinade! >= ERROR_BINADE_MIN && h.firstBinade! + h.counts.length <= ERROR_BIN_INFINITE + ERROR_BINADE_MIN - 1
    && (h.rmsBinade === null || Math.abs(h.rmsBinade!) <= 1024);
  if (!ok) throw new RangeError(`tensor ${JSON.stringify(t.name)}: errorHistogram is not { firstBinade, counts, exact, infinite, nan, rmsBinade } of whole counts within float32's binades`);
  // Every element is counted once, in a binade or as exact, ±Inf or NaN: a total other than the
  // tensor's element count (or past 2^53, where sums stop being exact) is a damaged summary.
  const total = histogramElements(h as TensorErrorHistogram);
  const shape = (t as Partial<TensorSummary>).shape;
  const elements = Array.isArray(shape) && shape.every((d) => Number.isSafeInteger(d) && d >= 0) ? shape.reduce((a, b) => a * b, 1) : NaN;
  if (!Number.isSafeInteger(total) || total !== elements) {
    throw new RangeError(`tensor ${JSON.stringify(t.name)}: errorHistogram counts ${total} elements, its shape ${JSON.stringify(shape)} holds ${elements}`);
  }
  return h as TensorErrorHistogram;
}

/**
 * The run's per-element error histogram: every quantized tensor's counts with its binades shifted
 * by −rmsBinade (error relative to the tensor's RMS), added up; exact, Inf and NaN elements
 * counted apart, and the finite errors of a tensor without an RMS as `unscaled`. Null when no
 * tensor has a histogram (a run without error statistics, or a summary of an older fp4kit).
 */
export function aggregateErrorHistograms(format: QuantFormat, tensors: readonly TensorSummary[]): FormatErrorHistogram | null {
  const withHistogram = tensors.filter((t) => t.action === 'quantized' && t.errorHistogram !== undefined);
  if (withHistogram.length === 0) return null;
  const placed = new Map<number, number>(); // relative binade → count
  const total: FormatErrorHistogram = { format, firstBinade: 0, counts: [], exact: 0, infinite: 0, nan: 0, unscaled: 0, tensors: 0, elements: 0 };
  for (const t of withHistogram) {
    const h = checkedHistogram(t);
    total.tensors++;
    total.exact += h.exact;
    total.infinite += h.infinite;
    total.nan += h.nan;
    total.elements += histogramElements(h);
    h.counts.forEach((n, i) => {
      if (n === 0) return;
      if (h.rmsBinade === null) total.unscaled += n;
      else {
        const b = h.firstBinade + i - h.rmsBinade;
        placed.set(b, (placed.get(b) ?? 0) + n);
      }
    });
  }
  if (placed.size > 0) {
    const binades = [...placed.keys()];
    const lo = binades.reduce((a, b) => Math.min(a, b));
    const hi = binades.reduce((a, b) => Math.max(a, b));
    total.firstBinade = lo;
    total.counts = Array.from({ length: hi - lo + 1 }, (_v, i) => placed.get(lo + i) ?? 0);
  }
  return total;
}

/** The plot of aggregateErrorHistograms (inspect --plot's element-error-histogram.svg), or null
 *  when the summary's tensors have no histogram. */
export function elementErrorHistogramPlot(format: QuantFormat, layout: string, tensors: readonly TensorSummary[]): string | null {
  const h = aggregateErrorHistograms(format, tensors);
  if (h === null) return null;
  const share = (n: number) => `${((100 * n) / Math.max(1, h.elements)).toPrecision(3)} %`;
  const notes = [
    `${h.elements} elements of ${h.tensors} tensors`,
    ...(h.exact > 0 ? [`${h.exact} exact (${share(h.exact)}, not shown)`] : []),
    ...(h.infinite > 0 ? [`${h.infinite} decoded to ±Inf`] : []),
    ...(h.nan > 0 ? [`${h.nan} NaN`] : []),
    ...(h.unscaled > 0 ? [`${h.unscaled} in tensors with no finite nonzero RMS (not shown)`] : []),
  ];
  return logBinadeHistogram(
    `error of every element relative to the RMS of its tensor (${format}, ${layout} layout)`,
    '|x − Q(x)| / RMS of the tensor (RMS rounded to a power of two; one bin a binade)',
    h.firstBinade, h.counts, notes, h.infinite + h.nan > 0,
  );
}
