// Bit-plane products (1-bit FQT): the integer product equals a plain integer GEMM of codes and
// signs on random and adversarial shapes; the float form equals scales·I + zeros·T in float32;
// a packed gradient's product matches dequantize-then-multiply; pruned groups cost nothing and
// give 0; numpy's vectors (scripts/bitplane-gemm-vectors.py); the same bytes on every backend;
// argument errors at the facade and at each backend's kernel boundary — on every backend that loads.

import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import {
  bitplaneMatmul, bitplaneMatmulInt, dequantizeGradient, packBitPlanes, packGradient, packSigns, quantizeGradient, withBackend,
  type BackendName,
} from '../lib/index.js';
import { kernelsFor } from '../lib/kernels/registry.js';
import { testedBackends, useBackend } from './helpers/backends.js';
import { expectClean, runInChild } from './helpers/child-process.js';
import { gaussian, rng } from './helpers/data.js';

const backends = testedBackends();

/** ±1 of x (x ≥ 0 → +1, NaN → −1), or −1/0/+1 when ternary: the plain definition. */
function signOf(v: number, ternary: boolean): number {
  if (ternary) return v > 0 ? 1 : v === 0 ? 0 : -1;
  return v >= 0 ? 1 : -1;
}

/** I[i][j] = Σ_k codes[i][k]·sign(x[j][k]) with plain loops (x [n, k] row-major). */
function integerGemm(codes: Uint8Array, m: number, x: Float32Array, n: number, k: number, ternary: boolean): Int32Array {
  const out = new Int32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += codes[i * k + t] * signOf(x[j * k + t], ternary);
      out[i * n + j] = s;
    }
  }
  return out;
}

function transposed<T extends Float32Array | Uint8Array>(a: T, rows: number, cols: number): T {
  const out = new (a.constructor as new (n: number) => T)(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

function randomCodes(next: () => number, count: number, bits: number): Uint8Array {
  const codes = new Uint8Array(count);
  for (let i = 0; i < count; i++) codes[i] = Math.floor(next() * 2 ** bits);
  return codes;
}

/** A seed for the data helpers, drawn from a test's generator. */
function seedOf(next: () => number): number {
  return Math.floor(next() * 2 ** 31);
}

/** x with zeros, −0 and NaN sprinkled in (every sign rule meets them). */
function randomSigns(next: () => number, count: number): Float32Array {
  const x = gaussian(count, seedOf(next));
  for (let i = 0; i < count; i++) {
    const u = next();
    if (u < 0.1) x[i] = 0;
    else if (u < 0.12) x[i] = -0;
    else if (u < 0.13) x[i] = NaN;
  }
  return x;
}

const SHAPES: Array<[number, number, number]> = [
  [1, 1, 1], [1, 1, 63], [2, 3, 64], [3, 5, 65], [1, 8, 127], [5, 9, 128], [4, 7, 129], [3, 17, 1000], [9, 33, 200], [2, 1, 4097],
];

describe.each(backends)('bit-plane product on %s', (backend) => {
  useBackend(backend);

  it('the integer product equals a plain integer GEMM (random and adversarial shapes, bits 1–8, ±1 and ternary, both packings)', () => {
    const next = rng(11);
    for (const [m, n, k] of SHAPES) {
      for (const bits of [1, 2, 3, 4, 5, 8]) {
        for (const ternary of [false, true]) {
          const codes = randomCodes(next, m * k, bits);
          const x = randomSigns(next, n * k);
          const expected = integerGemm(codes, m, x, n, k, ternary);
          const direct = bitplaneMatmulInt(packBitPlanes(codes, { shape: [m, k], bits }), packSigns(x, { shape: [n, k], ternary }));
          expect(direct).toEqual(expected);
          // The same product from the transposed layouts ([k, m] codes, [k, n] x packed by column).
          const viaTranspose = bitplaneMatmulInt(
            packBitPlanes(transposed(codes, m, k), { shape: [k, m], bits, transpose: true }),
            packSigns(transposed(x, n, k), { shape: [k, n], transpose: true, ternary }),
          );
          expect(viaTranspose).toEqual(expected);
        }
      }
    }
  });

  it('empty operands (no rows, no columns, or an empty reduction) give an empty product or zeros, integer and float forms', () => {
    for (const [m, n, k] of [[3, 0, 18], [0, 3, 18], [3, 2, 0], [0, 0, 0], [70, 0, 300]] as const) {
      const planes = packBitPlanes(new Uint8Array(m * k).fill(1), { shape: [m, k], bits: 2 });
      const signs = packSigns(new Float32Array(n * k).fill(1), { shape: [n, k] });
      expect(bitplaneMatmulInt(planes, signs)).toEqual(new Int32Array(m * n));
      if (k === 0) continue; // a packed gradient needs a reduction length (packGradient refuses 0)
      const g = packGradient(quantizeGradient(new Float32Array(m * k).fill(0.5), { shape: [m, k], bits: 2 }), { reduce: 'columns' });
      expect(bitplaneMatmul(g, signs)).toEqual(new Float32Array(m * n));
    }
  });

  it('an empty reduction with many columns: the kernel\'s bits for every column, no working memory sized by the columns', () => {
    // A hand-built gradient (packGradient never makes length 0): groups of 2 rows, odd scales, one pruned group.
    const bitsOf = (f: Float32Array) => Array.from(new Uint32Array(f.buffer, f.byteOffset, f.length));
    const scales = Float32Array.from([2, -3, 1e-30, 3e38]);
    const a = { rows: 7, length: 0, bits: 2, data: new Uint8Array(0), rowsPerGroup: 2, scales, zeros: Float32Array.from([-1, -0, 4, -0.5]), mask: Uint8Array.from([1, 1, 0, 1]) };
    const n = 9;
    const b = { rows: n, length: 0, ternary: false, data: new Uint8Array(0) };
    const want = new Float32Array(7 * n);
    kernelsFor(backend as BackendName).bitplaneMatmul({
      planes: a.data, m: 7, bits: 2, signs: b.data, n, length: 0, ternary: false, rowsPerGroup: 2, mask: a.mask, scales, zeros: a.zeros, outInt: null, outFloat: want,
    });
    expect(bitsOf(bitplaneMatmul(a as never, b as never))).toEqual(bitsOf(want));
    expect(bitsOf(bitplaneMatmul(a as never, b as never, { out: new Float32Array(7 * n).fill(5) }))).toEqual(bitsOf(want));
    expect(bitplaneMatmulInt(a as never, b as never, { out: new Int32Array(7 * n).fill(5) })).toEqual(new Int32Array(7 * n));
    // A NaN or ±Inf range (never from quantizeGradient) made NaNs whose bits differed between backends: refused, here and in C++.
    for (const bad of [NaN, Infinity, -Infinity]) {
      expect(() => bitplaneMatmul({ ...a, scales: Float32Array.from([2, bad, 1, 1]) } as never, b as never)).toThrow(new RangeError(`bitplaneMatmul: a.scales[1] and a.zeros[1] must be finite, got ${bad} and 0`));
      expect(() => bitplaneMatmul({ ...a, zeros: Float32Array.from([2, 1, 1, bad]) } as never, b as never)).toThrow(/a\.scales\[3\] and a\.zeros\[3\] must be finite/);
    }
    // 2^31 columns of an empty reduction: the 8 GiB output is the caller's request, its working memory is not.
    const wide = { rows: 2 ** 31, length: 0, ternary: false, data: new Uint8Array(0) };
    const one = { ...a, rows: 1, rowsPerGroup: 1, scales: Float32Array.from([2]), zeros: Float32Array.from([3]), mask: Uint8Array.from([1]) };
    expect(() => bitplaneMatmul(one as never, wide as never, { out: new Float32Array(1) })).toThrow(/options\.out must hold 2147483648 elements/);
  });

  // In a child process: the native kernel used to size its scratch by the column count and abort
  // (std::bad_alloc) on 2^31 columns, or take seconds on 2^26, and the others walked every empty row,
  // for an output of no words at all.
  it('an empty reduction packs at once, however many rows or columns (2^31), plain and transposed', () => {
    expectClean(runInChild(backend, `
      const big = 2 ** 31;
      const started = Date.now();
      for (const transpose of [false, true]) {
        const shape = transpose ? [0, big] : [big, 0];
        for (const ternary of [false, true]) {
          const s = fp4.packSigns(new Float32Array(0), { shape, transpose, ternary });
          check(s.rows === big && s.length === 0 && s.data.length === 0, 'packSigns ' + transpose + ' ' + ternary + ': ' + s.rows + ' ' + s.length + ' ' + s.data.length);
        }
        const p = fp4.packBitPlanes(new Uint8Array(0), { shape, bits: 8, transpose });
        check(p.rows === big && p.length === 0 && p.data.length === 0, 'packBitPlanes ' + transpose);
      }
      console.log('took', Date.now() - started, 'ms');
    `, { timeoutMs: 10_000 })); // walking the rows took 20 s (js), 5 s (wasm): a hang detector, 20× headroom
  });

  it('all-maximal codes against all −1 and all +1 (the extreme sums)', () => {
    for (const bits of [1, 4, 8]) {
      const k = 1000;
      const codes = new Uint8Array(2 * k).fill(2 ** bits - 1);
      const x = new Float32Array(2 * k);
      x.fill(-1, 0, k);
      x.fill(1, k);
      const out = bitplaneMatmulInt(packBitPlanes(codes, { shape: [2, k], bits }), packSigns(x, { shape: [2, k] }));
      const top = (2 ** bits - 1) * k;
      expect(Array.from(out)).toEqual([-top, top, -top, top]);
    }
  });

  it('pruned groups are skipped and give 0; kept rows are unchanged', () => {
    const next = rng(5);
    const [m, n, k, bits] = [12, 10, 150, 4];
    const codes = randomCodes(next, m * k, bits);
    const x = randomSigns(next, n * k);
    const full = integerGemm(codes, m, x, n, k, false);
    const mask = Uint8Array.from([1, 0, 1, 0]); // groups of 3 rows
    const out = bitplaneMatmulInt(packBitPlanes(codes, { shape: [m, k], bits }), packSigns(x, { shape: [n, k] }), { mask, rowsPerGroup: 3 });
    for (let i = 0; i < m; i++) {
      const kept = mask[Math.floor(i / 3)] === 1;
      expect(Array.from(out.subarray(i * n, (i + 1) * n))).toEqual(kept ? Array.from(full.subarray(i * n, (i + 1) * n)) : new Array(n).fill(0));
    }
  });

  it('the float form is f32(f32(scale·I) + f32(zero·T)) per group', () => {
    const next = rng(9);
    const [m, n, k, bits] = [6, 13, 300, 3];
    const codes = randomCodes(next, m * k, bits);
    const x = randomSigns(next, n * k);
    const I = integerGemm(codes, m, x, n, k, false);
    const T = Array.from({ length: n }, (_, j) => { let s = 0; for (let t = 0; t < k; t++) s += signOf(x[j * k + t], false); return s; });
    const scales = Float32Array.from([0.013, 0.5, -0.07]);
    const zeros = Float32Array.from([-0.25, 1e-3, 3.5]);
    const mask = Uint8Array.from([1, 1, 1]);
    const a = { ...packBitPlanes(codes, { shape: [m, k], bits }), rowsPerGroup: 2, scales, zeros, mask };
    const out = bitplaneMatmul(a, packSigns(x, { shape: [n, k] }));
    for (let i = 0; i < m; i++) {
      const g = Math.floor(i / 2);
      for (let j = 0; j < n; j++) {
        const want = Math.fround(Math.fround(scales[g] * Math.fround(I[i * n + j])) + Math.fround(zeros[g] * Math.fround(T[j])));
        expect(Object.is(out[i * n + j], want)).toBe(true);
      }
    }
  });

  it("a packed gradient's products equal dequantize-then-multiply (SCQ: per sample for ∇X, per channel for ∇W; PTQ; AGP)", () => {
    const next = rng(21);
    const [t, nOut, kIn] = [24, 40, 70]; // ∇Y [t, nOut], W [kIn, nOut], X [t, kIn]
    const g = gaussian(t * nOut, seedOf(next));
    const w = gaussian(kIn * nOut, seedOf(next));
    const xIn = gaussian(t * kIn, seedOf(next));
    const wSigns = packSigns(w, { shape: [kIn, nOut] }); // rows k, reduction over nOut
    const xSigns = packSigns(xIn, { shape: [t, kIn], transpose: true }); // rows k, reduction over t
    for (const prune of ['none', 'agp'] as const) {
      for (const bits of [1, 4, 8]) {
        // ∇X = Ĝ·Wᵀ with Ĝ per sample (or per tensor).
        for (const groups of ['sample', 'tensor'] as const) {
          const q = quantizeGradient(g, { shape: [t, nOut], bits, groups, prune, seed: 3 });
          const gh = dequantizeGradient(q);
          const dx = bitplaneMatmul(packGradient(q, { reduce: 'columns' }), wSigns);
          for (let i = 0; i < t; i++) {
            for (let k = 0; k < kIn; k++) {
              let s = 0;
              let mag = 0;
              for (let c = 0; c < nOut; c++) { s += gh[i * nOut + c] * signOf(w[k * nOut + c], false); mag += Math.abs(gh[i * nOut + c]); }
              expect(Math.abs(dx[i * kIn + k] - s)).toBeLessThanOrEqual(1e-5 * mag + 1e-30);
            }
          }
        }
        // ∇W = Xᵀ·Ĝ with Ĝ per channel (or per tensor): the product is [nOut, kIn] = (∇W)ᵀ.
        for (const groups of ['channel', 'tensor'] as const) {
          const q = quantizeGradient(g, { shape: [t, nOut], bits, groups, prune, seed: 4 });
          const gh = dequantizeGradient(q);
          const dwT = bitplaneMatmul(packGradient(q, { reduce: 'rows' }), xSigns);
          for (let c = 0; c < nOut; c++) {
            for (let k = 0; k < kIn; k++) {
              let s = 0;
              let mag = 0;
              for (let i = 0; i < t; i++) { s += signOf(xIn[i * kIn + k], false) * gh[i * nOut + c]; mag += Math.abs(gh[i * nOut + c]); }
              expect(Math.abs(dwT[c * kIn + k] - s)).toBeLessThanOrEqual(1e-5 * mag + 1e-30);
            }
          }
        }
      }
    }
  });

  it('a conv gradient [samples, positions·channels] packs with length = channels, one group per sample', () => {
    const next = rng(8);
    const [samples, positions, channels, kk] = [4, 6, 5, 9];
    const g = gaussian(samples * positions * channels, seedOf(next));
    const w = gaussian(kk * channels, seedOf(next));
    const q = quantizeGradient(g, { shape: [samples, positions * channels], bits: 4, groups: 'sample', prune: 'agp', seed: 1 });
    const gh = dequantizeGradient(q);
    const packed = packGradient(q, { reduce: 'columns', length: channels });
    expect(packed.rows).toBe(samples * positions);
    expect(packed.rowsPerGroup).toBe(positions);
    const out = bitplaneMatmul(packed, packSigns(w, { shape: [kk, channels] }));
    for (let r = 0; r < samples * positions; r++) {
      for (let j = 0; j < kk; j++) {
        let s = 0;
        for (let c = 0; c < channels; c++) s += gh[r * channels + c] * signOf(w[j * channels + c], false);
        expect(Math.abs(out[r * kk + j] - s)).toBeLessThanOrEqual(1e-5 * 64);
      }
    }
  });

  it("numpy's vectors (scripts/bitplane-gemm-vectors.py): integer and float products, bit for bit", () => {
    const { cases } = JSON.parse(readFileSync(new URL('./fixtures/bitplane-gemm-vectors.json', import.meta.url), 'utf8')) as {
      cases: Array<{ m: number; n: number; k: number; bits: number; ternary: boolean; rowsPerGroup: number; codes: number[]; xBits: number[];
        mask: number[]; scales: number[]; zeros: number[]; int: number[]; floatBits: number[] }>;
    };
    expect(cases.length).toBeGreaterThan(5);
    for (const c of cases) {
      const codes = Uint8Array.from(c.codes);
      const x = new Float32Array(Uint32Array.from(c.xBits).buffer);
      const a = packBitPlanes(codes, { shape: [c.m, c.k], bits: c.bits });
      const b = packSigns(x, { shape: [c.n, c.k], ternary: c.ternary });
      const mask = Uint8Array.from(c.mask);
      expect(Array.from(bitplaneMatmulInt(a, b, { mask, rowsPerGroup: c.rowsPerGroup }))).toEqual(c.int);
      const scales = new Float32Array(Uint32Array.from(c.scales).buffer);
      const zeros = new Float32Array(Uint32Array.from(c.zeros).buffer);
      const out = bitplaneMatmul({ ...a, rowsPerGroup: c.rowsPerGroup, scales, zeros, mask }, b);
      expect(Array.from(new Uint32Array(out.buffer))).toEqual(c.floatBits);
    }
  });

  it('refuses bad arguments with the facade\'s errors', () => {
    const codes = Uint8Array.from([0, 1, 2, 3]);
    expect(() => packBitPlanes(codes, { shape: [2, 2], bits: 1 })).toThrow(new RangeError('packBitPlanes: codes[2] is 2, not below 2^1'));
    expect(() => packBitPlanes(codes, { shape: [2, 3], bits: 2 })).toThrow(RangeError);
    expect(() => packBitPlanes(codes, { shape: [2, 2], bits: 9 })).toThrow(/options.bits must be an integer in \[1, 8\]/);
    expect(() => packSigns(new Float32Array(4), { shape: [2, 2], ternary: 1 as unknown as boolean })).toThrow(TypeError);
    expect(() => packSigns(new Float64Array(4) as unknown as Float32Array, { shape: [2, 2] })).toThrow(TypeError);
    const a = packBitPlanes(codes, { shape: [2, 2], bits: 2 });
    const b3 = packSigns(new Float32Array(6), { shape: [2, 3] });
    expect(() => bitplaneMatmulInt(a, b3)).toThrow(/reduction lengths must agree/);
    const shifted = { ...a, data: new Uint8Array(a.data.length + 4).subarray(4) };
    expect(() => bitplaneMatmulInt(shifted, packSigns(new Float32Array(4), { shape: [2, 2] }))).toThrow(/multiple of 8 bytes/);
    const q = quantizeGradient(new Float32Array([1, 2, 3, 4]), { shape: [2, 2], bits: 2, groups: 'sample' });
    expect(() => packGradient(q, { reduce: 'rows' })).toThrow(/per-sample scales do not factor out/);
    const qc = quantizeGradient(new Float32Array([1, 2, 3, 4]), { shape: [2, 2], bits: 2, groups: 'channel' });
    expect(() => packGradient(qc, { reduce: 'columns' })).toThrow(/per-channel scales do not factor out/);
    expect(() => packGradient(q, { reduce: 'columns', length: 3 })).toThrow(/divides q's 2 columns/);
    // packGradient's refusals name packGradient and q's fields, not the packBitPlanes it uses.
    expect(() => packGradient({ ...q, codes: new Int8Array(4) as never }, { reduce: 'columns' })).toThrow(new TypeError('packGradient: q.codes must be a Uint8Array, got Int8Array'));
    expect(() => packGradient({ ...q, codes: new Uint8Array(3) }, { reduce: 'columns' })).toThrow(new RangeError('packGradient: q.codes must hold 4 elements, got 3'));
    expect(() => packGradient({ ...qc, codes: new Uint8Array(4).fill(7) }, { reduce: 'rows' })).toThrow(new RangeError('packGradient: q.codes[0] is 7, not below 2^2'));
    // A value of the wrong type is a TypeError; a number out of range a RangeError.
    expect(() => bitplaneMatmulInt({ ...a, rows: -1 }, packSigns(new Float32Array(4), { shape: [2, 2] }))).toThrow(new RangeError('bitplaneMatmulInt: a.rows must be a non-negative integer, got -1'));
    expect(() => bitplaneMatmulInt({ ...a, rows: '2' as never }, packSigns(new Float32Array(4), { shape: [2, 2] }))).toThrow(new TypeError('bitplaneMatmulInt: a.rows must be a non-negative integer (a Number), got "2"'));
    expect(() => bitplaneMatmulInt(a, packSigns(new Float32Array(4), { shape: [2, 2] }), { mask: new Uint8Array(2), rowsPerGroup: 'x' as never }))
      .toThrow(new TypeError('bitplaneMatmulInt: rowsPerGroup must be a positive integer (a Number), got "x"'));
    expect(() => bitplaneMatmulInt(a, packSigns(new Float32Array(4), { shape: [2, 2] }), { mask: new Uint8Array(2), rowsPerGroup: 0 }))
      .toThrow(new RangeError('bitplaneMatmulInt: rowsPerGroup must be a positive integer, got 0'));
  });

  it('its kernels check their arguments at the boundary (a caller that skips the facade gets an error, not a crash)', () => {
    const k = kernelsFor(backend as BackendName);
    const planes = new Uint8Array(8);
    const signs = new Uint8Array(64);
    const good = { planes, m: 1, bits: 1, signs, n: 1, length: 10, ternary: false, rowsPerGroup: 1, mask: null, scales: null, zeros: null, outInt: new Int32Array(1), outFloat: null };
    expect(() => k.bitplaneMatmul(good)).not.toThrow();
    expect(() => k.bitplaneMatmul({ ...good, m: 2 })).toThrow(RangeError);
    expect(() => k.bitplaneMatmul({ ...good, length: 65 })).toThrow(RangeError);
    expect(() => k.bitplaneMatmul({ ...good, signs: new Uint8Array(8) })).toThrow(RangeError);
    expect(() => k.bitplaneMatmul({ ...good, outInt: new Int32Array(0) })).toThrow(RangeError);
    expect(() => k.bitplaneMatmul({ ...good, outInt: new Float32Array(1) as unknown as Int32Array })).toThrow(TypeError);
    expect(() => k.bitplaneMatmul({ ...good, bits: 0 })).toThrow(RangeError);
    expect(() => k.bitplaneMatmul({ ...good, length: 2 ** 22 + 1 })).toThrow(RangeError);
    expect(() => k.bitplaneMatmul({ ...good, scales: new Float32Array(1) })).toThrow(TypeError);
    expect(() => k.bitplaneMatmul({ ...good, planes: new Uint8Array(16).subarray(4, 12) })).toThrow(/multiple of 8 bytes/);
    expect(() => k.bitplaneMatmul(null as never)).toThrow(TypeError);
    expect(() => k.packSigns({ src: new Float32Array(3), rows: 2, cols: 2, transpose: false, ternary: false, out: new Uint8Array(64) })).toThrow(RangeError);
    expect(() => k.packSigns({ src: new Float32Array(4), rows: 2, cols: 2, transpose: false, ternary: true, out: new Uint8Array(64) })).toThrow(RangeError);
    expect(() => k.packBitPlanes({ codes: new Uint8Array(4), rows: 2, cols: 2, bits: 3, transpose: false, out: new Uint8Array(40) })).toThrow(RangeError);
    // An output over an input, and a non-finite range (found by an audit, twenty-fifth session: the
    // addon refused them, the js and wasm kernels did not).
    const words = new Float32Array(32);
    expect(() => k.packSigns({ src: words.subarray(0, 4), rows: 2, cols: 2, transpose: false, ternary: false, out: new Uint8Array(words.buffer, 0, 64) })).toThrow(RangeError);
    const bytes = new Uint8Array(128);
    expect(() => k.packBitPlanes({ codes: bytes.subarray(0, 4), rows: 2, cols: 2, bits: 1, transpose: false, out: bytes.subarray(0, 16) })).toThrow(RangeError);
    const floatForm = { ...good, scales: Float32Array.of(2), zeros: Float32Array.of(0), outInt: null, outFloat: new Float32Array(1) };
    expect(() => k.bitplaneMatmul(floatForm)).not.toThrow();
    for (const bad of [NaN, Infinity]) {
      expect(() => k.bitplaneMatmul({ ...floatForm, scales: Float32Array.of(bad) })).toThrow(new RangeError("bitplaneMatmul: group 0's scale or zero point is not finite"));
      expect(() => k.bitplaneMatmul({ ...floatForm, zeros: Float32Array.of(-bad) })).toThrow(new RangeError("bitplaneMatmul: group 0's scale or zero point is not finite"));
    }
    expect(() => k.bitplaneMatmul({ ...good, outInt: new Int32Array(planes.buffer, 0, 1) })).toThrow(RangeError);
  });
});

describe('bit-plane products: the same bytes on every backend', () => {
  it('packs and products agree byte for byte', () => {
    const next = rng(77);
    const [m, n, k, bits] = [37, 29, 333, 4];
    const codes = randomCodes(next, m * k, bits);
    const x = randomSigns(next, n * k);
    const g = gaussian(m * k, seedOf(next));
    // Wide transposed packs: a thread's columns go in blocks of 1024 (native), ragged at both ends.
    const [kw, nw] = [150, 2 * 1024 + 700];
    const wideX = randomSigns(next, kw * nw);
    const wideCodes = randomCodes(next, kw * nw, 5);
    const results = backends.map((b) => withBackend(b, () => {
      const wide = [
        packSigns(wideX, { shape: [kw, nw], transpose: true }).data,
        packSigns(wideX, { shape: [kw, nw], transpose: true, ternary: true }).data,
        packBitPlanes(wideCodes, { shape: [kw, nw], bits: 5, transpose: true }).data,
      ];
      const a = packBitPlanes(codes, { shape: [m, k], bits });
      const aT = packBitPlanes(codes, { shape: [m, k], bits, transpose: true });
      const s = packSigns(x, { shape: [n, k], ternary: true });
      const sT = packSigns(x, { shape: [n, k], transpose: true });
      const q = quantizeGradient(g, { shape: [m, k], bits: 3, groups: 'sample', prune: 'agp', seed: 12 });
      const f = bitplaneMatmul(packGradient(q, { reduce: 'columns' }), packSigns(x, { shape: [n, k] }));
      return [a.data, aT.data, s.data, sT.data, new Uint8Array(bitplaneMatmulInt(a, s).buffer), new Uint8Array(f.buffer), ...wide];
    }));
    for (let i = 1; i < results.length; i++) {
      for (let j = 0; j < results[0].length; j++) expect(Buffer.compare(Buffer.from(results[i][j]), Buffer.from(results[0][j]))).toBe(0);
    }
  });
});
