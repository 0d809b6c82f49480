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
import { aggregateErrorHistograms, elementErrorHistogramPlot, rmsBinade } from '../lib/checkpoint/error-histogram.js';
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
