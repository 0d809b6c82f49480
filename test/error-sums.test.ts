// The error sums behind the checkpoint tool's per-tensor errors (lib/kernels/ref/error-sums.ts
// defines their order): every backend gives the reference's bits, for any split of the rows over
// calls; the sums agree with a plain float64 computation; NaN and the incoming sums behave as
// documented; bad arguments are refused on every backend (the addon checks them in C++).
import { describe, expect, it } from 'vitest';
import { withBackend, type BackendName } from '../lib/index.js';
import { DtypeId, type DtypeName } from '../lib/core/formats.js';
import { getKernels } from '../lib/kernels/registry.js';
import { testedBackends } from './helpers/backends.js';
import { adversarial, gaussian, rng, toBf16, toF16 } from './helpers/data.js';

const backends = testedBackends();
const COLS = [1, 7, 8, 9, 15, 16, 17, 33, 100, 1000];

/** The source as the given dtype, and its float32 values. */
function source(x: Float32Array, dtype: DtypeName): { src: Float32Array | Uint16Array; values: Float32Array } {
  if (dtype === 'f32') return { src: x, values: x };
  const src = dtype === 'bf16' ? toBf16(x) : toF16(x);
  const values = new Float32Array(src.length);
  const bits = new Uint32Array(values.buffer);
  for (let i = 0; i < src.length; i++) bits[i] = dtype === 'bf16' ? (src[i] << 16) >>> 0 : f16Bits(src[i]);
  return { src, values };
}

/** binary16 → float32 bits, written out here (not the kernels' own widening). */
function f16Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const e = (h >> 10) & 31, m = h & 0x3ff;
  if (e === 31) return (sign | 0x7f800000 | (m << 13)) >>> 0;
  if (e === 0) {
    const v = new Float32Array([m * 2 ** -24 * (sign ? -1 : 1)]);
    return new Uint32Array(v.buffer)[0];
  }
  return (sign | ((e + 112) << 23) | (m << 13)) >>> 0;
}

/** A decoded copy near x: x rounded to a coarse grid, some elements off by more. */
function nearCopy(x: Float32Array, seed: number): Float32Array {
  const r = rng(seed);
  return x.map((v) => (r() < 0.05 ? v * 0.5 : Math.round(v * 8) / 8));
}

function sumsOn(backend: BackendName, src: Float32Array | Uint16Array, dtype: DtypeName, y: Float32Array, rows: number, cols: number, start = [0, 0, 0]): Float64Array {
  const sums = new Float64Array(start);
  withBackend(backend, () => getKernels().errorSums(src, DtypeId[dtype], y, rows, cols, sums));
  return sums;
}

/** Same float64 bits, or both NaN (a NaN sum's payload is unspecified). */
function sameSums(a: Float64Array, b: Float64Array): boolean {
  for (let i = 0; i < 3; i++) if (!Object.is(a[i], b[i]) && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return false;
  return true;
}

describe.each(backends.filter((b) => b !== 'js'))('errorSums on %s gives the bits of js', (backend) => {
  it.each(['f32', 'bf16', 'f16'] as const)('%s sources, every column count around the lanes, NaN and Inf included', (dtype) => {
    for (const cols of COLS) {
      for (const seed of [1, 2]) {
        const rows = Math.max(1, Math.floor(3000 / cols));
        const x = seed === 1 ? gaussian(rows * cols, cols, 3) : adversarial(rows * cols, cols + 11, true);
        const { src, values } = source(x, dtype);
        const y = nearCopy(values, seed + cols);
        const want = sumsOn('js', src, dtype, y, rows, cols, [0.5, 2, 0]);
        const got = sumsOn(backend, src, dtype, y, rows, cols, [0.5, 2, 0]);
        expect(sameSums(got, want), `${dtype} cols ${cols} seed ${seed}: ${Array.from(got)} vs ${Array.from(want)}`).toBe(true);
        // Row by row from zero: each row's own sums (a last-bit difference in one row's lanes is
        // mostly lost once it is added to the running total).
        for (let r = 0; r < Math.min(rows, 40); r++) {
          const at = (a: Float32Array | Uint16Array) => a.subarray(r * cols, (r + 1) * cols);
          const rowWant = sumsOn('js', at(src), dtype, at(y) as Float32Array, 1, cols);
          const rowGot = sumsOn(backend, at(src), dtype, at(y) as Float32Array, 1, cols);
          expect(sameSums(rowGot, rowWant), `${dtype} cols ${cols} seed ${seed} row ${r}`).toBe(true);
        }
      }
    }
  });

  it('a large tensor (rows over the addon threads) and rows split over calls', () => {
    const rows = 513, cols = 1031;
    const x = gaussian(rows * cols, 5, 2);
    const y = nearCopy(x, 6);
    const want = sumsOn('js', x, 'f32', y, rows, cols);
    expect(sameSums(sumsOn(backend, x, 'f32', y, rows, cols), want)).toBe(true);
    // Two calls carrying the sums: the same bits as one.
    const first = sumsOn(backend, x.subarray(0, 100 * cols), 'f32', y.subarray(0, 100 * cols), 100, cols);
    const both = sumsOn(backend, x.subarray(100 * cols), 'f32', y.subarray(100 * cols), rows - 100, cols, Array.from(first));
    expect(sameSums(both, want)).toBe(true);
  });
});

describe.each(backends)('errorSums on %s', (backend) => {
  it('keeps the defined order: lanes by column mod 8, ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))', () => {
    // Σx² of one row of 16: lane 0 holds 1, lanes 2 and 3 each 2^-54 + 2^-54 = 2^-53. The defined
    // tree adds 2^-53 + 2^-53 first (1 + 2^-52); sequentially each 2^-53 would round away.
    const x = new Float32Array(16);
    x[0] = 1;
    x[2] = x[10] = x[3] = x[11] = 2 ** -27;
    expect(sumsOn(backend, x, 'f32', new Float32Array(16), 1, 16)[1]).toBe(1 + 2 ** -52);
    // Lane c mod 8: the same values in columns 2 and 4 (lanes 2 and 4, in different halves of the
    // tree) give 1 for the same reason the other way round.
    const z = new Float32Array(16);
    z[0] = 1;
    z[2] = z[10] = z[4] = z[12] = 2 ** -27;
    expect(sumsOn(backend, z, 'f32', new Float32Array(16), 1, 16)[1]).toBe(1);
  });

  it('agrees with a plain float64 sum (another order: within rounding), max exactly', () => {
    const rows = 37, cols = 203;
    const x = gaussian(rows * cols, 9, 1.5);
    const y = nearCopy(x, 10);
    let num = 0, den = 0, max = 0;
    for (let i = 0; i < x.length; i++) {
      num += (x[i] - y[i]) ** 2;
      den += x[i] ** 2;
      max = Math.max(max, Math.abs(x[i] - y[i]));
    }
    const s = sumsOn(backend, x, 'f32', y, rows, cols);
    expect(Math.abs(s[0] - num) / num).toBeLessThan(1e-12);
    expect(Math.abs(s[1] - den) / den).toBeLessThan(1e-12);
    expect(s[2]).toBe(max);
  });

  it('a NaN element makes Σd² NaN and counts for nothing in the max; Inf gives Inf; the incoming max stays when larger', () => {
    const x = new Float32Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const y = x.map((v) => v - 0.25);
    y[4] = NaN;
    const s = sumsOn(backend, x, 'f32', y, 2, 5);
    expect(s[0]).toBeNaN();
    expect(s[1]).toBe(385);
    expect(s[2]).toBe(0.25);
    expect(sumsOn(backend, x, 'f32', y, 2, 5, [0, 0, 7])[2]).toBe(7);
    const inf = x.slice();
    inf[9] = Infinity;
    const t = sumsOn(backend, inf, 'f32', x.map((v) => v - 0.5), 2, 5);
    expect(t[0]).toBe(Infinity);
    expect(t[2]).toBe(Infinity);
    // Nothing to add: the sums come back as they went in (−0 too), however many empty rows.
    expect(Array.from(sumsOn(backend, new Float32Array(0), 'f32', new Float32Array(0), 0, 9, [1, 2, -3]))).toEqual([1, 2, -3]);
    expect(Object.is(sumsOn(backend, new Float32Array(0), 'f32', new Float32Array(0), 2 ** 40, 0, [-0, 2, -3])[0], -0)).toBe(true);
  });

  it('refuses bad arguments before touching memory', () => {
    const k = () => withBackend(backend, () => getKernels());
    const x = new Float32Array(12), y = new Float32Array(12), sums = new Float64Array(3);
    expect(() => k().errorSums(x, DtypeId.bf16, y, 3, 4, sums)).toThrow(TypeError); // a bf16 source must be a Uint16Array
    expect(() => k().errorSums(x, DtypeId.f32, y, 4, 4, sums)).toThrow(RangeError); // 16 elements needed, 12 given
    expect(() => k().errorSums(x, DtypeId.f32, new Float32Array(11), 3, 4, sums)).toThrow(RangeError);
    expect(() => k().errorSums(x, DtypeId.f32, y, 3, 4, new Float64Array(2))).toThrow(RangeError);
    expect(() => k().errorSums(x, DtypeId.f32, y, 3, 4, new Float32Array(3) as never)).toThrow(TypeError);
    expect(() => k().errorSums(x, DtypeId.f32, y, 1.5, 4, sums)).toThrow(RangeError);
    expect(() => k().errorSums(x, 7 as never, y, 3, 4, sums)).toThrow(RangeError);
    expect(Array.from(sums)).toEqual([0, 0, 0]);
  });
});
