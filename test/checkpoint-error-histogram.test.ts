// The per-element error histogram of a checkpoint run (lib/checkpoint/error-histogram.ts): each
// quantized tensor's counts in the summary written beside the output equal the binades of
// |x − Q(x)| computed here from the input and the stored tensor read back; its RMS binade is the
// RMS rounded to the nearest power of two; the run's histogram adds the tensors up relative to
// their RMS; the plot draws it; a run without error statistics and a damaged summary are handled.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quantizeCheckpoint, SUMMARY_NAME, type CheckpointSummary, type TensorSummary } from '../lib/checkpoint/quantize-checkpoint.js';
import { aggregateErrorHistograms, elementErrorHistogramPlot, histogramElements, rmsBinade } from '../lib/checkpoint/error-histogram.js';
import { quantileBinade, runErrorHistogramLines, sparkline, SPARKLINE_MAX_COLUMNS, tensorHistogramCells } from '../lib/checkpoint/error-histogram-text.js';
import { readBackValues } from '../lib/checkpoint/layouts/index.js';
import { SafetensorsFile } from '../lib/checkpoint/safetensors/read.js';
import { writeSafetensors } from '../lib/checkpoint/safetensors/write.js';
import { ERROR_BIN_EXACT, ERROR_BIN_INFINITE, ERROR_BIN_NAN, ERROR_BINADE_MIN } from '../lib/kernels/ref/error-sums.js';
import { f16BitsToF32Bits } from '../lib/kernels/ref/dtype.js';
import { gaussian, toBf16, toF16 } from './helpers/data.js';
import { independentCounts } from './helpers/error-histogram-cases.js';

const root = mkdtempSync(join(tmpdir(), 'fp4kit-error-histogram-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

// Weights of very different scales (2^−12 … 2^6), in every source dtype, an all-zero one (no RMS
// to place its errors by) and one whose last axis is not a multiple of the block.
const weights: Record<string, { dtype: 'BF16' | 'F32' | 'F16'; shape: number[]; values: Float32Array }> = {
  'model.layers.0.mlp.up_proj.weight': { dtype: 'BF16', shape: [64, 128], values: gaussian(64 * 128, 1, 2 ** -12) },
  'model.layers.0.mlp.down_proj.weight': { dtype: 'F32', shape: [128, 64], values: gaussian(128 * 64, 2, 40) },
  'model.layers.0.mlp.gate_proj.weight': { dtype: 'F16', shape: [64, 128], values: gaussian(64 * 128, 3, 0.3) },
  'model.layers.0.self_attn.q_proj.weight': { dtype: 'BF16', shape: [16, 40], values: gaussian(16 * 40, 4) },
  'model.layers.0.self_attn.k_proj.weight': { dtype: 'BF16', shape: [16, 64], values: new Float32Array(16 * 64) },
};
const quantizedNames = Object.keys(weights);

/** The source as stored (bf16/f16 bits) and its values as float32. */
function source(name: string): { data: Uint8Array; values: Float32Array } {
  const w = weights[name];
  if (w.dtype === 'F32') return { data: bytesOf(w.values), values: w.values };
  const bits = w.dtype === 'BF16' ? toBf16(w.values) : toF16(w.values);
  const values = new Float32Array(bits.length);
  new Uint32Array(values.buffer).set(Array.from(bits, (b) => (w.dtype === 'BF16' ? b << 16 : f16BitsToF32Bits(b)) >>> 0));
  return { data: bytesOf(bits), values };
}

let input = '';
beforeAll(async () => {
  input = join(root, 'input');
  mkdirSync(input);
  await writeSafetensors(join(input, 'model.safetensors'), [
    ...quantizedNames.map((name) => ({ name, dtype: weights[name].dtype, shape: weights[name].shape, data: source(name).data })),
    { name: 'model.norm.weight', dtype: 'BF16', shape: [64], data: bytesOf(toBf16(new Float32Array(64).fill(1))) },
  ], { format: 'pt' });
});

/** A run's summary as written beside its output (JSON: what a later `inspect` reads). */
async function runAndRead(name: string, format: 'nvfp4' | 'mxfp4' | 'fgmp', measureError = true) {
  const out = join(root, name);
  await quantizeCheckpoint(input, out, { format, measureError, ...(format === 'fgmp' ? { fp4Fraction: 0.6 } : {}) });
  const summary = JSON.parse(readFileSync(join(out, SUMMARY_NAME), 'utf8')) as CheckpointSummary;
  return { out, summary };
}

describe.each(['nvfp4', 'mxfp4', 'fgmp'] as const)('a %s run', (format) => {
  let out = '';
  let summary: CheckpointSummary;
  beforeAll(async () => {
    ({ out, summary } = await runAndRead(`run-${format}`, format));
  });

  it('writes each quantized tensor\'s counts: the binades of |x − Q(x)| of the stored tensor, every element once', async () => {
    const file = await SafetensorsFile.open(join(out, 'model.safetensors'));
    try {
      const get = async (n: string) => file.read(file.tensor(n)!);
      for (const name of quantizedNames) {
        const t = summary.tensors.find((e) => e.name === name)!;
        expect(t.action, name).toBe('quantized');
        const h = t.errorHistogram!;
        const stored = await readBackValues('fp4kit', get, name, format, weights[name].shape);
        const want = independentCounts(source(name).values, stored);
        expect([h.exact, h.infinite, h.nan], name).toEqual([want[ERROR_BIN_EXACT], want[ERROR_BIN_INFINITE], want[ERROR_BIN_NAN]]);
        // The counts between the first and last nonzero binade, nothing outside.
        const binades = Array.from(want.subarray(ERROR_BIN_EXACT + 1, ERROR_BIN_INFINITE));
        const first = binades.findIndex((n) => n > 0);
        const last = binades.length - 1 - [...binades].reverse().findIndex((n) => n > 0);
        if (first < 0) expect(h.counts, name).toEqual([]);
        else {
          expect(h.firstBinade, name).toBe(first + ERROR_BINADE_MIN);
          expect(h.counts, name).toEqual(binades.slice(first, last + 1));
          expect(h.counts[0] > 0 && h.counts[h.counts.length - 1] > 0, name).toBe(true);
        }
        const elements = weights[name].values.length;
        expect(h.counts.reduce((a, b) => a + b, 0) + h.exact + h.infinite + h.nan, name).toBe(elements);
      }
    } finally {
      await file.close();
    }
  });

  it('gives each tensor its RMS rounded to the nearest power of two, and none to an all-zero tensor', () => {
    for (const name of quantizedNames) {
      const h = summary.tensors.find((e) => e.name === name)!.errorHistogram!;
      const x = source(name).values;
      let sum = 0;
      for (const v of x) sum += v * v;
      if (sum === 0) {
        expect(h.rmsBinade, name).toBeNull();
        continue;
      }
      const rms = Math.sqrt(sum / x.length);
      expect(h.rmsBinade, name).not.toBeNull();
      expect(rms / 2 ** h.rmsBinade!, name).toBeGreaterThanOrEqual(Math.SQRT1_2);
      expect(rms / 2 ** h.rmsBinade!, name).toBeLessThan(Math.SQRT2);
    }
  });

  it('adds the tensors up relative to their RMS, and the plot draws those counts', () => {
    const total = aggregateErrorHistograms(summary.format, summary.tensors)!;
    const placed = new Map<number, number>();
    let elements = 0, exact = 0, unscaled = 0;
    for (const name of quantizedNames) {
      const h = summary.tensors.find((e) => e.name === name)!.errorHistogram!;
      elements += weights[name].values.length;
      exact += h.exact;
      h.counts.forEach((n, i) => {
        if (h.rmsBinade === null) unscaled += n;
        else placed.set(h.firstBinade + i - h.rmsBinade, (placed.get(h.firstBinade + i - h.rmsBinade) ?? 0) + n);
      });
    }
    expect(total).toMatchObject({ format, tensors: quantizedNames.length, elements, exact, unscaled, infinite: 0, nan: 0 });
    expect(total.counts.length).toBeGreaterThan(0);
    total.counts.forEach((n, i) => expect(n, `relative binade ${total.firstBinade + i}`).toBe(placed.get(total.firstBinade + i) ?? 0));
    expect(total.counts.reduce((a, b) => a + b, 0)).toBe([...placed.values()].reduce((a, b) => a + b, 0));
    // Tensors 2^18 apart in scale land on the same few relative binades: the run's histogram is
    // narrower than the absolute binades of its tensors together.
    const absolute = summary.tensors.filter((t) => t.errorHistogram?.counts.length).map((t) => t.errorHistogram!);
    const absoluteSpan = Math.max(...absolute.map((h) => h.firstBinade + h.counts.length)) - Math.min(...absolute.map((h) => h.firstBinade));
    expect(total.counts.length).toBeLessThan(absoluteSpan);

    const svg = elementErrorHistogramPlot(summary.format, summary.layout, summary.tensors)!;
    const bars = [...svg.matchAll(/<title>(\d+) \([^)]*\) in \[2\^(-?\d+), 2\^(-?\d+)\)<\/title>/g)].map((m) => [Number(m[2]), Number(m[1])]);
    expect(new Map(bars)).toEqual(new Map([...placed].filter(([, n]) => n > 0)));
    expect(svg).toContain(`${elements} elements of ${quantizedNames.length} tensors`);
    expect(svg).toContain(`error of every element relative to the RMS of its tensor (${format}, fp4kit layout)`);
  });

  it('inspect\'s text: the quantiles are those of every element sorted, and the all-zero tensor is all exact', () => {
    // Each element's binade relative to its tensor's RMS, sorted (exact = -Infinity), from the counts.
    const all = quantizedNames.flatMap((name) => {
      const h = summary.tensors.find((e) => e.name === name)!.errorHistogram!;
      return [...new Array<number>(h.exact).fill(-Infinity), ...h.counts.flatMap((n, i) => new Array<number>(h.rmsBinade === null ? 0 : n).fill(h.firstBinade + i - (h.rmsBinade ?? 0)))];
    }).sort((a, b) => a - b);
    const total = aggregateErrorHistograms(summary.format, summary.tensors)!;
    expect(all.length).toBe(total.elements - total.unscaled);
    const ranked = { exact: total.exact, firstBinade: total.firstBinade, counts: total.counts, infinite: 0, nan: 0 };
    for (const q of [1e-9, 0.25, 0.5, 0.9, 0.99, 0.999, 1]) {
      const want = all[Math.ceil(q * all.length) - 1];
      expect(quantileBinade(ranked, q), String(q)).toBe(want === -Infinity ? 'exact' : want);
    }
    const lines = runErrorHistogramLines(summary.format, summary.tensors);
    expect(lines[0]).toBe(`element errors |x − Q(x)| / RMS of their tensor (RMS rounded to a power of two), ${total.elements} elements of ${quantizedNames.length} tensors:`);
    expect(lines[2]).toContain(`99 % below 2^${(quantileBinade(ranked, 0.99) as number) + 1}, `);
    // The all-zero tensor: every element exact, nothing to place relative to an RMS it does not have.
    expect(tensorHistogramCells(summary.tensors.find((e) => e.name === 'model.layers.0.self_attn.k_proj.weight')!)).toEqual({ exact: '100%', p99: '0', max: '0' });
    expect(tensorHistogramCells(summary.tensors.find((e) => e.name === 'model.norm.weight')!)).toEqual({ exact: '-', p99: '-', max: '-' }); // copied
  });
});

describe('without error statistics, and from a damaged summary', () => {
  it('a run without them writes no histogram, and there is nothing to aggregate or plot', async () => {
    const { summary } = await runAndRead('no-stats', 'nvfp4', false);
    expect(summary.tensors.some((t) => t.errorHistogram !== undefined)).toBe(false);
    expect(aggregateErrorHistograms(summary.format, summary.tensors)).toBeNull();
    expect(elementErrorHistogramPlot(summary.format, summary.layout, summary.tensors)).toBeNull();
  });

  it('a hand-edited histogram is refused naming its tensor, not summed into a wrong plot', () => {
    const good = { firstBinade: -10, counts: [1, 2], exact: 0, infinite: 0, nan: 0, rmsBinade: -3 };
    const tensor = (errorHistogram: unknown): TensorSummary => ({
      name: 'w', dtype: 'BF16', shape: [3], action: 'quantized', format: 'nvfp4', file: 'f', outputs: [], inputBytes: 6, outputBytes: 2, errorHistogram,
    } as TensorSummary);
    expect(aggregateErrorHistograms('nvfp4', [tensor(good)])).toMatchObject({ firstBinade: -7, counts: [1, 2], elements: 3 });
    for (const bad of [null, 'x', { ...good, counts: [1, -1] }, { ...good, counts: [0.5] }, { ...good, exact: '1' }, { ...good, firstBinade: 1e6 },
      { ...good, firstBinade: -150 }, { ...good, counts: new Array(300).fill(1) }, { ...good, rmsBinade: 2 ** 60 }, { ...good, rmsBinade: undefined }]) {
      expect(() => aggregateErrorHistograms('nvfp4', [tensor(bad)]), JSON.stringify(bad)).toThrow(/tensor "w": errorHistogram is not/);
    }
    // Whole counts that do not add up to the tensor's elements (shape [3]), or past exact sums.
    for (const bad of [{ ...good, exact: 1 }, { ...good, counts: [1, 1] }, { ...good, counts: [Number.MAX_SAFE_INTEGER], exact: 5 }]) {
      expect(() => aggregateErrorHistograms('nvfp4', [tensor(bad)]), JSON.stringify(bad)).toThrow(/tensor "w": errorHistogram counts \d+ elements, its shape \[3\] holds 3/);
    }
  });

  it('inspect\'s text says why a summary has no histogram, and names Inf, NaN and unplaced elements', async () => {
    const { summary } = await runAndRead('no-stats-text', 'mxfp4', false);
    expect(runErrorHistogramLines(summary.format, summary.tensors)).toEqual(['element error histogram: absent (the run had --no-error-stats)']);
    const older = summary.tensors.map((t) => (t.action === 'quantized' ? { ...t, relRmse: 0.1, maxAbsError: 0.2 } : t)); // measured, no histogram
    expect(runErrorHistogramLines(summary.format, older)).toEqual(['element error histogram: absent (this summary was written by an fp4kit from before per-element histograms)']);
    expect(runErrorHistogramLines(summary.format, summary.tensors.filter((t) => t.action === 'copied'))).toEqual([]); // nothing quantized: nothing to say

    const tensor = (name: string, errorHistogram: TensorSummary['errorHistogram']): TensorSummary => {
      const h = errorHistogram!;
      const elements = h.counts.reduce((a, b) => a + b, 0) + h.exact + h.infinite + h.nan; // the shape its counts cover
      return { name, dtype: 'F32', shape: [elements], action: 'quantized', format: 'mxfp4', file: 'f', outputs: [], inputBytes: 4 * elements, outputBytes: elements, errorHistogram };
    };
    // 996 elements placed around the RMS, a tensor of NaN blocks: its 3 finite errors have no RMS to go by.
    const ts = [tensor('a', { firstBinade: -6, counts: [900, 0, 90], exact: 6, infinite: 0, nan: 0, rmsBinade: -2 }), tensor('b', { firstBinade: -8, counts: [3], exact: 0, infinite: 1, nan: 4, rmsBinade: null })];
    expect(runErrorHistogramLines('mxfp4', ts)).toEqual([
      'element errors |x − Q(x)| / RMS of their tensor (RMS rounded to a power of two), 1004 elements of 2 tensors:',
      '  2^-4 █ ▆ 2^-1   (a column a binade, heights log count)', // 90 of 900: 7 · ln 90 / ln 900 = 4.6 → level 5 of 0…7
      '  exact 0.6 %; 50 % below 2^-3, 99 % below 2^-1, 99.9 %: reaches Inf/NaN', // 5 of 1001 placed elements are Inf or NaN
      '  1 decoded to ±Inf; 4 NaN; 3 in tensors with no finite nonzero RMS, not placed (left out of the figures above)',
    ]);
    // Tensors with no elements: said, not "50 % below -"; only unplaceable elements: no bounds line.
    expect(runErrorHistogramLines('mxfp4', [tensor('e', { firstBinade: 0, counts: [], exact: 0, infinite: 0, nan: 0, rmsBinade: null })]))
      .toEqual(['element errors: the quantized tensors hold no elements']);
    expect(runErrorHistogramLines('mxfp4', [tensor('u', { firstBinade: -8, counts: [5], exact: 0, infinite: 0, nan: 0, rmsBinade: null })])).toEqual([
      'element errors |x − Q(x)| / RMS of their tensor (RMS rounded to a power of two), 5 elements of 1 tensors:',
      '  5 in tensors with no finite nonzero RMS, not placed (left out of the figures above)',
    ]);
    expect(tensorHistogramCells(ts[0])).toEqual({ exact: '0.6%', p99: '2^-1', max: '2^-1' }); // relative binades -4 and -2: rank 987 of 996 is in -2
    expect(tensorHistogramCells(ts[1])).toEqual({ exact: '0%', p99: 'Inf/NaN', max: 'Inf/NaN' });
    expect(tensorHistogramCells(tensor('c', { firstBinade: -8, counts: [99], exact: 1, infinite: 0, nan: 0, rmsBinade: null }))).toEqual({ exact: '1.0%', p99: '-', max: '-' }); // no RMS
  });

  it('the sparkline: a column a binade, heights on a log scale, empty binades blank, the lowest folded beyond its width', () => {
    expect(sparkline(-3, [1, 0, 10, 100])).toBe('2^-3 ▁ ▅█ 2^1');
    expect(sparkline(5, [1])).toBe('2^5 █ 2^6');
    expect(sparkline(0, [])).toBe('');
    const wide = Array.from({ length: SPARKLINE_MAX_COLUMNS + 10 }, (_v, i) => (i < 11 ? 1 : 1000));
    // the 11 lowest binades fold into the first column (11 elements: 7 · ln 11 / ln 1000 = 2.4 → ▃), labelled by its upper edge
    expect(sparkline(-40, wide)).toBe(`…2^-29 ▃${'█'.repeat(SPARKLINE_MAX_COLUMNS - 1)} 2^${-40 + SPARKLINE_MAX_COLUMNS + 10}`);
  });

  it('a histogram\'s elements: exact, every binade\'s, ±Inf and NaN, each counted once', () => {
    expect(histogramElements({ exact: 3, counts: [5, 0, 7], infinite: 11, nan: 13 })).toBe(39);
    expect(histogramElements({ exact: 0, counts: [], infinite: 0, nan: 0 })).toBe(0);
    expect(histogramElements({ exact: 0, counts: [], infinite: 0, nan: 2 })).toBe(2);
    expect(histogramElements({ exact: 1, counts: [], infinite: 0, nan: 0 })).toBe(1);
    expect(histogramElements({ exact: 0, counts: [2 ** 52, 2 ** 52 - 1], infinite: 0, nan: 0 })).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('the RMS binade is exact at powers of two and their square roots', () => {
    expect(rmsBinade(4, 1)).toBe(1); // RMS 2
    expect(rmsBinade(1, 1)).toBe(0);
    expect(rmsBinade(2 ** -298, 1)).toBe(-149); // the smallest subnormal's square
    expect(rmsBinade(2, 1)).toBe(1); // RMS √2 = 2^0.5: rounds up
    expect(rmsBinade(2 - 2 ** -52, 1)).toBe(0); // just below: down
    expect(rmsBinade(8, 2)).toBe(1);
    expect([rmsBinade(0, 5), rmsBinade(NaN, 5), rmsBinade(Infinity, 5), rmsBinade(1, 0)]).toEqual([null, null, null, null]);
  });
});
