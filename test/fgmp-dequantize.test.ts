// FGMP dequantization (lib/kernels/ref/fgmp-dequantize.ts defines it): every backend gives the
// values the format defines — computed here block by block from the public element decode, not
// from the kernels — for whole tensors and for any range of rows; the facade's dequantize and the
// checkpoint tool's error statistics use it; bad arguments are refused on every backend (the
// addon checks them in C++), and a stream too short for the rows asked for is never read past.
import { describe, expect, it } from 'vitest';
import { decode, dequantize, quantize, withBackend, type BackendName } from '../lib/index.js';
import type { FgmpTensor } from '../lib/fgmp/quantize.js';
import type { FgmpDequantizeArgs } from '../lib/kernels/contract.js';
import { getKernels } from '../lib/kernels/registry.js';
import { measureError } from '../lib/checkpoint/error-stats.js';
import { testedBackends } from './helpers/backends.js';
import { gaussian, rng } from './helpers/data.js';

const backends = testedBackends();

function fgmpOf(rows: number, cols: number, seed: number, fp4Fraction: number): FgmpTensor {
  const x = gaussian(rows * cols, seed, 2);
  // A few large values so that FP8 blocks are chosen where they matter.
  const r = rng(seed);
  for (let i = 0; i < x.length; i += 1 + Math.floor(r() * 50)) x[i] *= 20;
  return quantize(x, { format: 'fgmp', shape: [rows, cols], fp4Fraction }) as FgmpTensor;
}

/** The values the format defines, block by block from the stream, with decode() for the codes:
 *  FP8 f32(E4M3 · fp8Scale), FP4 f32(E2M1 · f32(tensorScale · E4M3 scale)). */
function expected(q: FgmpTensor): Float32Array {
  const cols = q.shape[q.shape.length - 1];
  const rows = q.shape.slice(0, -1).reduce((a, b) => a * b, 1);
  const e4m3 = decode(Uint8Array.from({ length: 256 }, (_, i) => i), 'e4m3');
  const e2m1 = decode(Uint8Array.from({ length: 16 }, (_, i) => i), 'e2m1');
  const out = new Float32Array(rows * cols);
  const blocksPerRow = Math.ceil(cols / 16);
  let d = 0, s = 0;
  for (let b = 0; b < rows * blocksPerRow; b++) {
    const row = Math.floor(b / blocksPerRow), col0 = (b % blocksPerRow) * 16;
    const fp8 = ((q.mask[b >> 3] >> (b & 7)) & 1) === 1;
    const total = fp8 ? 0 : Math.fround(q.tensorScale * e4m3[q.scales[s++]]);
    for (let e = 0; e < 16; e++) {
      const col = col0 + e;
      const v = fp8 ? Math.fround(e4m3[q.data[d + e]] * q.fp8Scale) : Math.fround(e2m1[e % 2 === 0 ? q.data[d + (e >> 1)] & 15 : q.data[d + (e >> 1)] >> 4] * total);
      if (col < cols) out[row * cols + col] = v;
    }
    d += fp8 ? 16 : 8;
  }
  return out;
}

function rowsOn(backend: BackendName, q: FgmpTensor, rowBegin: number, rowEnd: number): Float32Array {
  const cols = q.shape[q.shape.length - 1];
  const out = new Float32Array((rowEnd - rowBegin) * cols).fill(12345); // every value must be written
  withBackend(backend, () => getKernels().dequantizeFgmp({
    mask: q.mask, data: q.data, scales: q.scales, cols, rowBegin, rowEnd, tensorScale: q.tensorScale, fp8Scale: q.fp8Scale, out,
  }));
  return out;
}

/** Same float32 bits, NaN for NaN (NaN payloads are unspecified). */
function expectSameValues(got: Float32Array, want: Float32Array, what: string): void {
  expect(got.length, what).toBe(want.length);
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length), w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < got.length; i++) {
    if (g[i] !== w[i] && !(Number.isNaN(got[i]) && Number.isNaN(want[i]))) {
      throw new Error(`${what}: element ${i} is ${got[i]} (0x${g[i].toString(16)}), expected ${want[i]} (0x${w[i].toString(16)})`);
    }
  }
}

describe.each(backends)('dequantizeFgmp on %s', (backend) => {
  it('gives the values the format defines for every column count around the block, FP4 share 0–100 %', () => {
    for (const cols of [1, 7, 15, 16, 17, 31, 33, 100, 257]) {
      for (const fp4Fraction of [0, 0.3, 0.7, 1]) {
        const rows = Math.max(2, Math.floor(2000 / cols));
        const q = fgmpOf(rows, cols, cols * 31 + fp4Fraction * 10, fp4Fraction);
        expectSameValues(rowsOn(backend, q, 0, rows), expected(q), `cols ${cols}, fp4Fraction ${fp4Fraction}`);
      }
    }
  });

  it('decodes any range of rows as the whole tensor does (ranges starting mid mask byte)', () => {
    const rows = 37, cols = 40; // 3 blocks a row: rows start at every bit of a mask byte
    const q = fgmpOf(rows, cols, 5, 0.6);
    const whole = expected(q);
    const r = rng(9);
    const ranges = [[0, 0], [0, 1], [1, 2], [3, 11], [36, 37], [37, 37], [5, 37]];
    for (let i = 0; i < 20; i++) {
      const a = Math.floor(r() * (rows + 1)), b = Math.floor(r() * (rows + 1));
      ranges.push([Math.min(a, b), Math.max(a, b)]);
    }
    for (const [b, e] of ranges) expectSameValues(rowsOn(backend, q, b, e), whole.subarray(b * cols, e * cols), `rows [${b}, ${e})`);
  });

  it('decodes a larger tensor over the addon\'s threads and the module\'s chunks', () => {
    const q = fgmpOf(600, 1000, 77, 0.7);
    expectSameValues(rowsOn(backend, q, 0, 600), expected(q), '600 × 1000');
    expectSameValues(rowsOn(backend, q, 123, 599), expected(q).subarray(123 * 1000, 599 * 1000), 'rows [123, 599)');
  });

  it('decodes NaN codes (which quantization never writes) to NaN and both zeros with their sign', () => {
    const q = fgmpOf(2, 32, 3, 0.5);
    const data = q.data.slice();
    // The first block: put NaN, −0 and +0 codes in whichever encoding it has.
    const fp8 = (q.mask[0] & 1) === 1;
    if (fp8) data.set([0x7f, 0xff, 0x80, 0x00], 0);
    else data.set([0x08, 0x80], 0); // E2M1 −0 then +0; +0 then −0
    const t = { ...q, data };
    const got = rowsOn(backend, t, 0, 2);
    expectSameValues(got, expected(t), 'specials');
    if (fp8) expect([Number.isNaN(got[0]), Number.isNaN(got[1]), Object.is(got[2], -0), Object.is(got[3], 0)]).toEqual([true, true, true, true]);
    else expect([Object.is(got[0], 0), Object.is(got[1], -0), Object.is(got[2], -0), Object.is(got[3], 0)]).toEqual([true, true, true, true]);
  });

  it('costs nothing for rows of nothing, however many', () => {
    const args: FgmpDequantizeArgs = {
      mask: new Uint8Array(0), data: new Uint8Array(0), scales: new Uint8Array(0), cols: 0,
      rowBegin: 0, rowEnd: 2 ** 40, tensorScale: 1, fp8Scale: 1, out: new Float32Array(0),
    };
    withBackend(backend, () => getKernels().dequantizeFgmp(args));
  });

  it('refuses bad arguments and streams too short for the rows asked for, and never writes past out', () => {
    const q = fgmpOf(8, 48, 11, 0.5);
    const good = (): FgmpDequantizeArgs => ({
      mask: q.mask, data: q.data, scales: q.scales, cols: 48, rowBegin: 0, rowEnd: 8, tensorScale: q.tensorScale, fp8Scale: q.fp8Scale, out: new Float32Array(8 * 48),
    });
    const call = (change: Partial<Record<keyof FgmpDequantizeArgs, unknown>>) =>
      withBackend(backend, () => getKernels().dequantizeFgmp({ ...good(), ...change } as FgmpDequantizeArgs));
    call({});
    expect(() => call({ data: q.data.subarray(0, q.data.length - 1) })).toThrow(RangeError);
    expect(() => call({ scales: q.scales.subarray(0, q.scales.length - 1) })).toThrow(RangeError);
    expect(() => call({ mask: q.mask.subarray(0, q.mask.length - 1) })).toThrow(RangeError);
    expect(() => call({ out: new Float32Array(8 * 48 - 1) })).toThrow(RangeError);
    expect(() => call({ rowBegin: 5, rowEnd: 4 })).toThrow(RangeError);
    expect(() => call({ rowEnd: 9 })).toThrow(RangeError);
    expect(() => call({ rowEnd: 2.5 })).toThrow(RangeError);
    expect(() => call({ cols: -1 })).toThrow(RangeError);
    expect(() => call({ data: new Float32Array(q.data.length) })).toThrow(TypeError);
    expect(() => call({ out: new Float64Array(8 * 48) })).toThrow(TypeError);
    expect(() => call({ tensorScale: '1' })).toThrow(TypeError);
    expect(() => withBackend(backend, () => getKernels().dequantizeFgmp(null as never))).toThrow(TypeError);
    // Fewer rows need less stream: the first 4 rows decode from a stream cut after them.
    const firstRows = rowsOn(backend, q, 0, 4);
    const blocks = 4 * 3;
    let fp8 = 0;
    for (let b = 0; b < blocks; b++) fp8 += (q.mask[b >> 3] >> (b & 7)) & 1;
    const out = new Float32Array(4 * 48 + 8).fill(7);
    withBackend(backend, () => getKernels().dequantizeFgmp({
      mask: q.mask.slice(0, Math.ceil(blocks / 8)), data: q.data.slice(0, fp8 * 16 + (blocks - fp8) * 8), scales: q.scales.slice(0, blocks - fp8),
      cols: 48, rowBegin: 0, rowEnd: 4, tensorScale: q.tensorScale, fp8Scale: q.fp8Scale, out,
    }));
    expectSameValues(out.subarray(0, 4 * 48), firstRows, 'cut stream');
    expect(Array.from(out.subarray(4 * 48))).toEqual(new Array(8).fill(7));
  });

  it('is what dequantize() gives for an fgmp tensor, with and without out', () => {
    const q = fgmpOf(30, 70, 21, 0.7);
    const want = expected(q);
    withBackend(backend, () => {
      expectSameValues(dequantize(q), want, 'dequantize');
      const out = new Float32Array(30 * 70);
      expect(dequantize(q, { out })).toBe(out);
      expectSameValues(out, want, 'dequantize into out');
      expect(() => dequantize(q, { out: new Float32Array(30 * 70 - 1) })).toThrow(RangeError);
    });
  });

  it('gives the checkpoint tool\'s error statistics the sums of the whole dequantized tensor', async () => {
    const rows = 3000, cols = 700; // more than one chunk of measureError's rows
    const x = gaussian(rows * cols, 4, 1);
    const q = quantize(x, { format: 'fgmp', shape: [rows, cols], fp4Fraction: 0.7 }) as FgmpTensor;
    const y = expected(q);
    let num = 0, den = 0, max = 0;
    for (let i = 0; i < x.length; i++) {
      const d = x[i] - y[i];
      num += d * d;
      den += x[i] * x[i];
      max = Math.max(max, Math.abs(d));
    }
    const got = await withBackend(backend, () => measureError(x, 'f32', q));
    expect(got.maxAbsError).toBe(max);
    expect(got.relRmse).toBeCloseTo(Math.sqrt(num / den), 12);
  });
});
