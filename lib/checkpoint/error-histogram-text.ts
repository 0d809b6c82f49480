// The per-element error histogram of a checkpoint run as `fp4kit inspect` prints it: for the run,
// a sparkline of |x − Q(x)| / RMS (each tensor's elements relative to its own RMS, as
// aggregateErrorHistograms adds them up) and what a reader of a quantization report asks of it —
// the share of exact elements, and bounds under which half, 99 %, 99.9 % and all of the errors
// lie; for each tensor, its exact share and its 99th-percentile and largest error bounds.
//
// A bound is the upper edge of the binade that holds the element of that rank (nearest rank over
// every element, exact ones counting as error 0 and Inf or NaN ones above every binade): "99 %
// below 2^-1" is true of the counts as stored, not an interpolation. Each tensor's RMS is rounded
// to a power of two (within a factor √2), so a bound relative to the exact RMS is within that too.

import type { FormatErrorHistogram, TensorErrorHistogram, TensorSummary } from './summary.js';
import { aggregateErrorHistograms, checkedHistogram, histogramElements } from './error-histogram.js';

/** Counts in rank order: `exact` (error 0), then counts[i] in binade firstBinade + i, then the
 *  `infinite` and `nan` ones (above every binade). */
type RankedCounts = Pick<TensorErrorHistogram, 'exact' | 'firstBinade' | 'counts' | 'infinite' | 'nan'>;

/** Where the element of nearest rank ⌈q·n⌉ lies: 'exact', a binade, or 'nonfinite'; null for no elements. */
export function quantileBinade(h: RankedCounts, q: number): 'exact' | 'nonfinite' | number | null {
  const n = histogramElements(h);
  if (n === 0) return null;
  const rank = Math.max(1, Math.ceil(q * n));
  let seen = h.exact;
  if (rank <= seen) return 'exact';
  for (let i = 0; i < h.counts.length; i++) {
    seen += h.counts[i];
    if (rank <= seen) return h.firstBinade + i;
  }
  return 'nonfinite';
}

/** A bound for a cell: the binade's upper edge "2^-3"; "0" for exact, "Inf/NaN" beyond, "-" for no elements. */
function bound(where: ReturnType<typeof quantileBinade>): string {
  if (where === null) return '-';
  if (where === 'exact') return '0';
  if (where === 'nonfinite') return 'Inf/NaN';
  return `2^${where + 1}`;
}

/** "99 % below 2^-1", "50 % exact", "99.9 %: reaches Inf/NaN". */
function phrase(label: string, where: ReturnType<typeof quantileBinade>): string {
  if (where === 'exact') return `${label} exact`;
  if (where === 'nonfinite') return `${label}: reaches Inf/NaN`;
  return `${label} below ${bound(where)}`;
}

const LEVELS = '▁▂▃▄▅▆▇█';

/** Widest sparkline: the lowest binades (the smallest errors) fold into its first column beyond it. */
export const SPARKLINE_MAX_COLUMNS = 48;

/**
 * One character a binade, its height the count on a log scale (1 → ▁, the largest count → █; an
 * empty binade is a space, so a lone outlier stays visible), labelled with the binades' edges.
 */
export function sparkline(firstBinade: number, counts: readonly number[]): string {
  if (counts.length === 0) return '';
  const cut = Math.max(0, counts.length - SPARKLINE_MAX_COLUMNS);
  const columns = cut === 0 ? [...counts] : [counts.slice(0, cut + 1).reduce((a, b) => a + b, 0), ...counts.slice(cut + 1)];
  const largest = Math.max(...columns);
  const bar = columns.map((n) => {
    if (n === 0) return ' ';
    if (largest <= 1) return LEVELS[LEVELS.length - 1];
    return LEVELS[Math.round(((LEVELS.length - 1) * Math.log(n)) / Math.log(largest))];
  }).join('');
  const left = cut === 0 ? `2^${firstBinade}` : `…2^${firstBinade + cut + 1}`;
  return `${left} ${bar} 2^${firstBinade + counts.length}`;
}

/** A share as a percentage with one decimal; never 0 % or 100 % unless it is. */
function percent(n: number, of: number): string {
  const p = (100 * n) / Math.max(1, of);
  return n === 0 ? '0 %' : n >= of ? '100 %' : p < 0.1 ? '<0.1 %' : p > 99.9 ? '>99.9 %' : `${p.toFixed(1)} %`;
}

/** The run's lines: what its histogram says, or why there is none. */
export function runErrorHistogramLines(format: FormatErrorHistogram['format'], tensors: readonly TensorSummary[]): string[] {
  const quantized = tensors.filter((t) => t.action === 'quantized');
  if (quantized.length === 0) return [];
  const h = aggregateErrorHistograms(format, tensors);
  if (h === null) {
    const measured = quantized.some((t) => t.relRmse !== undefined);
    return [`element error histogram: absent (${measured ? 'this summary was written by an fp4kit from before per-element histograms' : 'the run had --no-error-stats'})`];
  }
  if (h.elements === 0) return ['element errors: the quantized tensors hold no elements'];
  const ranked: RankedCounts = h; // its unscaled elements are in none of its counts: the ranks are those of the placed ones
  const placed = h.elements - h.unscaled;
  const lines = [`element errors |x − Q(x)| / RMS of their tensor (RMS rounded to a power of two), ${h.elements} elements of ${h.tensors} tensors:`];
  if (h.counts.length > 0) lines.push(`  ${sparkline(h.firstBinade, h.counts)}   (a column a binade, heights log count)`);
  const bounds = ([[0.5, '50 %'], [0.99, '99 %'], [0.999, '99.9 %']] as const).map(([q, label]) => phrase(label, quantileBinade(ranked, q)));
  if (h.infinite + h.nan === 0) bounds.push(phrase('all', quantileBinade(ranked, 1)));
  if (placed > 0) lines.push(`  exact ${percent(h.exact, placed)}; ${bounds.join(', ')}`); // else every element is unplaced (below)
  const odd = [
    ...(h.infinite > 0 ? [`${h.infinite} decoded to ±Inf`] : []),
    ...(h.nan > 0 ? [`${h.nan} NaN`] : []),
    ...(h.unscaled > 0 ? [`${h.unscaled} in tensors with no finite nonzero RMS, not placed (left out of the figures above)`] : []),
  ];
  if (odd.length > 0) lines.push(`  ${odd.join('; ')}`);
  return lines;
}

/** Whether any quantized tensor has a histogram (inspect's table then has its columns). */
export function hasTensorHistograms(tensors: readonly TensorSummary[]): boolean {
  return tensors.some((t) => t.action === 'quantized' && t.errorHistogram !== undefined);
}

/** A tensor's cells: its exact share, and bounds of its 99th-percentile and largest |x − Q(x)| / RMS
 *  ('-' without a histogram, or without an RMS to place a nonzero error by). */
export function tensorHistogramCells(t: TensorSummary): { exact: string; p99: string; max: string } {
  if (t.action !== 'quantized' || t.errorHistogram === undefined) return { exact: '-', p99: '-', max: '-' };
  const h = checkedHistogram(t);
  const elements = histogramElements(h);
  const ranked: RankedCounts = { ...h, firstBinade: h.firstBinade - (h.rmsBinade ?? 0) };
  const cell = (q: number) => {
    const where = quantileBinade(ranked, q);
    return typeof where === 'number' && h.rmsBinade === null ? '-' : bound(where);
  };
  return { exact: elements === 0 ? '-' : percent(h.exact, elements).replace(' ', ''), p99: cell(0.99), max: cell(1) };
}
