// Stochastic rounding: unbiased, reproducible for a seed, different across seeds.
import { beforeAll, describe, expect, it } from 'vitest';
import { decode, dequantize, encode, quantize, setBackend, type BlockFormatName, type ElementFormatName } from '../lib/index.js';
import { randomBits } from '../lib/kernels/ref/stochastic.js';
import { testedBackends, useBackend } from './helpers/backends.js';
import { gaussian, rng } from './helpers/data.js';

describe.each(testedBackends())('stochastic rounding on %s', (backend) => {
  useBackend(backend);

  it('is unbiased for element casts: the mean of many draws converges on x', () => {
    // x sits between two e2m1 neighbours (2 and 3); nearest always gives 2, stochastic must average x.
    for (const x of [2.2, 2.75, 0.3, 5.1, -1.3]) {
      const n = 200000;
      const v = new Float32Array(n).fill(x);
      const got = decode(encode(v, 'e2m1', { rounding: 'stochastic', seed: 42 }), 'e2m1');
      let sum = 0;
      for (const g of got) sum += g;
      const mean = sum / n;
      // Per-draw variance ≤ (gap/2)^2; 6 standard errors of the mean.
      const gap = Math.abs(x) >= 4 ? 2 : Math.abs(x) >= 2 ? 1 : 0.5;
      expect(Math.abs(mean - x)).toBeLessThan((6 * gap) / 2 / Math.sqrt(n));
    }
  });

  it.each(['mxfp4', 'nvfp4', 'mxfp8_e4m3', 'mxint8'] as BlockFormatName[])('is unbiased through %s block quantization', (format) => {
    const x = gaussian(64 * 256, 9);
    const draws = 64;
    const sum = new Float64Array(x.length);
    for (let s = 0; s < draws; s++) {
      const back = dequantize(quantize(x, { format, shape: [64, 256], rounding: 'stochastic', seed: s }));
      for (let i = 0; i < x.length; i++) sum[i] += back[i];
    }
    const nearest = dequantize(quantize(x, { format, shape: [64, 256] }));
    let biasSR = 0, errNearest = 0, errMean = 0;
    for (let i = 0; i < x.length; i++) {
      biasSR += sum[i] / draws - x[i];
      errMean += (sum[i] / draws - x[i]) ** 2;
      errNearest += (nearest[i] - x[i]) ** 2;
    }
    // The averaged stochastic result is closer to x than a single nearest rounding, and the
    // overall signed bias is near zero.
    expect(errMean).toBeLessThan(errNearest);
    expect(Math.abs(biasSR / x.length)).toBeLessThan(2e-3);
  });

  it('gives the same bits for the same seed and different bits for another seed', () => {
    const x = gaussian(4096, 3);
    const a = quantize(x, { format: 'mxfp4', shape: [16, 256], rounding: 'stochastic', seed: 7 });
    const b = quantize(x, { format: 'mxfp4', shape: [16, 256], rounding: 'stochastic', seed: 7 });
    const c = quantize(x, { format: 'mxfp4', shape: [16, 256], rounding: 'stochastic', seed: 8 });
    expect(Buffer.compare(a.data, b.data)).toBe(0);
    expect(Buffer.compare(a.data, c.data)).not.toBe(0);
  });

  it('past the largest finite value gives that value or what nearest gives, never a NaN nearest would not (E8M0 too)', () => {
    const largest: Array<[ElementFormatName, number, number]> = [['e2m1', 6, 0x7], ['e2m3', 7.5, 0x1f], ['e3m2', 28, 0x1f], ['e4m3', 448, 0x7e], ['e5m2', 57344, 0x7b], ['e8m0', 2 ** 127, 0xfe]];
    for (const [format, max, maxCode] of largest) {
      // 2^127·(1 + j/4096): in (max, 2·max), and ±Inf-free in float32 for E8M0's 2^127.
      const x = Float32Array.from({ length: 4095 }, (_, j) => max * (1 + (j + 1) / 4096));
      const nearest = encode(x, format);
      for (const seed of [1, 2, 3]) {
        const sr = encode(x, format, { rounding: 'stochastic', seed });
        for (let i = 0; i < x.length; i++) {
          if (sr[i] !== maxCode && sr[i] !== nearest[i]) throw new Error(`${format} ${x[i]} seed ${seed}: ${sr[i]}, nearest ${nearest[i]}`);
        }
        if (format === 'e8m0') expect(sr.subarray(0, 2047).every((c) => c === 0xfe)).toBe(true); // below 1.5·2^127 nearest is 2^127
      }
    }
  });

  it('never leaves the two neighbours of x', () => {
    const r = rng(5);
    const x = Float32Array.from({ length: 50000 }, () => (r() - 0.5) * 12);
    const sr = decode(encode(x, 'e2m1', { rounding: 'stochastic', seed: 1 }), 'e2m1');
    const grid = [0, 0.5, 1, 1.5, 2, 3, 4, 6];
    for (let i = 0; i < x.length; i++) {
      const a = Math.abs(x[i]);
      const lo = grid.filter((g) => g <= a).pop()!;
      const hi = grid.find((g) => g >= a) ?? 6;
      expect([lo, hi]).toContain(Math.abs(sr[i]));
    }
  });
});

it('the random stream is keyed by (seed, index), not by position in a chunk', () => {
  expect(randomBits(1, 5)).toBe(randomBits(1, 5));
  expect(randomBits(1, 5)).not.toBe(randomBits(2, 5));
  expect(randomBits(1, 2 ** 32 + 5)).not.toBe(randomBits(1, 5));
  // Uniformity: the top bit is set about half the time.
  let ones = 0;
  for (let i = 0; i < 100000; i++) ones += randomBits(99, i) >>> 31;
  expect(Math.abs(ones - 50000)).toBeLessThan(1000);
});
