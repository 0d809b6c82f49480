// Block matmul on every backend gives the bits of the pure-TypeScript reference: E2M1 weights
// (mxfp4, nvfp4, fgmp) through the integer SIMD kernels, E4M3/FP6/INT8 weights through the
// byte-plane kernel (native AVX-512, wasm), every other pairing through the decoded path, over ragged shapes (K not a multiple of a block, N not a multiple of a tile), bias,
// bf16 activations, NaN blocks, and the async variant.
import { beforeEach, describe, expect, it } from 'vitest';
import { matmul, matmulAsync, quantize, withBackend, type BlockFormatName } from '../lib/index.js';
import { decodedProducts, decodeOperand, matmulDecoded } from '../lib/core/matmul.js';
import { getKernels } from '../lib/kernels/registry.js';
import { fp4KernelInputs, matmulFast } from '../lib/kernels/matmul-glue.js';
import type { DecodedOperand, MatmulKernels } from '../lib/kernels/contract.js';
import { castFp8Rows, fp8Product, transposePerTensor } from '../lib/training/fp8-product.js';
import { testedBackends, useBackend } from './helpers/backends.js';
import { firstBitDifference } from './helpers/fixtures.js';
import { gaussian, toBf16 } from './helpers/data.js';

const SHAPES: Array<[number, number, number]> = [
  [1, 17, 200],
  [5, 40, 1000],
  [33, 16, 64],
  [2, 3, 16],
];

function weights(format: BlockFormatName | 'fgmp', n: number, k: number, seed: number) {
  const w = gaussian(n * k, seed, 0.05);
  for (let i = 0; i < w.length; i += 37) w[i] *= 30; // outliers, so blocks differ in scale
  if (format === 'fgmp') return quantize(w, { format: 'fgmp', shape: [n, k], fp4Fraction: 0.6 });
  return quantize(w, { format, shape: [n, k] });
}

const others = testedBackends().filter((b) => b !== 'js');
// Every unwrapped call (the "want" side) runs on the pure-TS reference; without this it ran on
// the default backend — the best one loaded, native — and compared native with itself.
useBackend('js');

describe.each(others)('matmul on %s equals the js reference bit for bit', (backend) => {
  it.each(['mxfp4', 'nvfp4', 'fgmp'] as const)('%s weights (integer SIMD kernel), float32 and bf16 activations, bias', (format) => {
    for (const [m, n, k] of SHAPES) {
      const b = weights(format, n, k, m + n + k);
      const a = gaussian(m * k, 7 * k + m);
      const bias = gaussian(n, 3);
      const want = matmul(a, b, { bias });
      const got = withBackend(backend, () => matmul(a, b, { bias }));
      expect(firstBitDifference(got, want), `${format} ${m}×${n}×${k}`).toBe(-1);
      const a16 = toBf16(a);
      const want16 = matmul(a16, b, { dtype: 'bf16', shape: [m, k] });
      const got16 = withBackend(backend, () => matmul(a16, b, { dtype: 'bf16', shape: [m, k] }));
      expect(firstBitDifference(got16, want16), `${format} bf16 ${m}×${n}×${k}`).toBe(-1);
    }
  });

  // E4M3, E3M2, E2M3 and INT8 weights run on the byte-plane kernel (native/matmul_planes.h) where the
  // backend has one, else the decoded path; E5M2 always decoded. Shapes at and past the kernels'
  // 4-row and 1-, 2- and 4-tile steps, K off the 32 grid.
  it.each(['mxfp6_e2m3', 'mxfp6_e3m2', 'mxfp8_e4m3', 'mxfp8_e5m2', 'mxint8'] as const)('%s weights: row and column tails, bias', (format) => {
    for (const [m, n, k] of [[3, 11, 100], [4, 16, 32], [9, 33, 70], [1, 17, 33], [6, 48, 130], [2, 64, 96], [1, 80, 64], [13, 70, 300]] as const) {
      const b = weights(format, n, k, 5 + n);
      const a = gaussian(m * k, 8 + k);
      const bias = gaussian(n, 9);
      expect(firstBitDifference(withBackend(backend, () => matmul(a, b, { bias })), matmul(a, b, { bias })), `${format} ${m}×${n}×${k}`).toBe(-1);
    }
  });

  it.each(['mxfp8_e4m3', 'mxfp6_e3m2', 'mxint8'] as const)('%s: saturated blocks against ±127 activation codes (dot sums at the int32 edge)', (format) => {
    // Every weight of a block at the format's largest magnitude (E4M3 ±448: 229376 in units of
    // 2^-9) times activation codes of ±127 over 32 elements: |Σ| near 2^30, the planes' partial
    // sums wrap past int32 and must come back exact.
    const [m, n, k] = [5, 19, 96];
    const w = gaussian(n * k, 3, 0.05);
    for (let r = 0; r < n; r++) for (let i = 0; i < 32; i++) w[r * k + 32 + i] = r % 3 === 0 ? -1000 : 1000;
    const b = quantize(w, { format, shape: [n, k] });
    const a = new Float32Array(m * k);
    for (let i = 0; i < a.length; i++) a[i] = (i % 5 === 0 ? -1 : 1) * (i % k >= 32 && i % k < 64 ? 127 : 0.5);
    const want = matmul(a, b);
    expect(firstBitDifference(withBackend(backend, () => matmul(a, b)), want)).toBe(-1);
    expect(want.some((v) => Math.abs(v) > 1e6)).toBe(true);
  });

  it('an E4M3 NaN code in a weight block makes exactly its output column NaN, as in the reference', () => {
    const [m, n, k] = [6, 21, 64];
    const b = weights('mxfp8_e4m3', n, k, 11);
    b.data[7 * 64 + 40] = 0x7f; // row 7, element 40 (second block)
    const a = gaussian(m * k, 12);
    const want = matmul(a, b);
    const got = withBackend(backend, () => matmul(a, b));
    expect(firstBitDifference(got, want)).toBe(-1);
    for (let r = 0; r < m; r++) {
      expect(Number.isNaN(got[r * n + 7])).toBe(true);
      expect(Number.isNaN(got[r * n + 6])).toBe(false);
    }
  });

  it('E4M3 weights with low bits in a few groups of 4 k only (the split planes skip the rest), few and many rows: identical bits', () => {
    // Every weight ±(1…7)·2^-6 → E4M3 elements 64…448, multiples of 2^-6: no low bits (v = h·8).
    // A few planted 0.0703125·2^-6 → element 0.0703125 = 36·2^-9: low bits 4.
    const [n, k] = [50, 256];
    const w = Float32Array.from({ length: n * k }, (_, i) => (i % 3 === 0 ? -1 : 1) * (1 + (i % 7)) * 2 ** -6);
    for (const [r, i] of [[3, 10], [20, 200], [49, 255], [33, 64]]) w[r * k + i] = 0.0703125 * 2 ** -6;
    const b = quantize(w, { format: 'mxfp8_e4m3', shape: [n, k] });
    for (const m of [1, 5, 40]) {
      const a = gaussian(m * k, 70 + m);
      const want = matmul(a, b);
      expect(firstBitDifference(withBackend(backend, () => matmul(a, b)), want), `m=${m}`).toBe(-1);
      // and the planted values count: without them the product differs
      const clean = quantize(Float32Array.from(w, (v) => (v === 0.0703125 * 2 ** -6 ? 0 : v)), { format: 'mxfp8_e4m3', shape: [n, k] });
      expect(firstBitDifference(matmul(a, clean), want)).not.toBe(-1);
    }
  });

  it('MXINT8 activations holding −128 (which no negation can fold a weight sign into) against E4M3 weights, 1–13 rows: identical bits', () => {
    const [n, k] = [70, 200];
    const b = quantize(gaussian(n * k, 90, 0.05), { format: 'mxfp8_e4m3', shape: [n, k] });
    for (const m of [1, 2, 3, 13]) {
      const q = quantize(gaussian(m * k, 91 + m), { format: 'mxint8', shape: [m, k] });
      const data = Uint8Array.from(q.data);
      for (let i = m - 1; i < data.length; i += 37) data[i] = 0x80;
      data[data.length - 1 - (m % 5)] = 0x7f;
      const a = { ...q, data };
      const want = matmul(a, b);
      expect(firstBitDifference(withBackend(backend, () => matmul(a, b)), want), `m=${m}`).toBe(-1);
      // and the −128 codes count
      expect(firstBitDifference(matmul({ ...q, data: Uint8Array.from(data, (c) => (c === 0x80 ? 0x81 : c)) }, b), want)).not.toBe(-1);
    }
  });

  it('random shapes, E4M3/FP6/INT8 weights, scales in and out of the fast-scales epilogue: identical bits', () => {
    let state = 0x1234567;
    const next = (n: number) => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return (state >>> 8) % n;
    };
    const formats = ['mxfp8_e4m3', 'mxfp6_e3m2', 'mxfp6_e2m3', 'mxint8'] as const;
    for (let trial = 0; trial < 24; trial++) {
      const [m, n, k] = [1 + next(40), 1 + next(90), 1 + next(400)];
      const format = formats[trial % 4];
      const w = gaussian(n * k, 500 + trial, 0.05);
      for (let i = 0; i < w.length; i += 23 + trial) w[i] *= 50;
      // Tiny and huge weight rows: lane scales near the float range's ends.
      if (trial % 3 === 1) for (let i = 0; i < Math.min(k, w.length); i++) w[i] *= 2 ** -100;
      if (trial % 3 === 2) for (let i = 0; i < Math.min(k, w.length); i++) w[i] *= 2 ** 100;
      const b = quantize(w, { format, shape: [n, k] });
      const a = gaussian(m * k, 600 + trial);
      if (trial % 4 === 3) for (let i = 0; i < Math.min(k, a.length); i++) a[i] *= 2 ** 90;
      const bias = trial % 2 ? gaussian(n, trial) : undefined;
      const want = matmul(a, b, { bias });
      expect(firstBitDifference(withBackend(backend, () => matmul(a, b, { bias })), want), `${format} ${m}×${n}×${k}`).toBe(-1);
    }
  });

  it('quantized activations of other formats (nvfp4 × mxfp4) take the decoded path', () => {
    const a = quantize(gaussian(4 * 96, 1), { format: 'nvfp4', shape: [4, 96] });
    const b = weights('mxfp4', 6, 96, 2);
    expect(firstBitDifference(withBackend(backend, () => matmul(a, b)), matmul(a, b))).toBe(-1);
  });

  it('a NaN activation block poisons exactly its output row, as in the reference', () => {
    const [m, n, k] = [3, 20, 64];
    const a = gaussian(m * k, 4);
    a[k + 5] = NaN;
    const b = weights('mxfp4', n, k, 6);
    const want = matmul(a, b);
    const got = withBackend(backend, () => matmul(a, b));
    expect(firstBitDifference(got, want)).toBe(-1);
    expect(Number.isNaN(got[n])).toBe(true);
    expect(Number.isNaN(got[0])).toBe(false);
  });

  it('random shapes (M 1..70, N 1..100, K 1..600), every E2M1 format, extreme blocks: identical bits', () => {
    let state = 0x2545f491;
    const next = (n: number) => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return (state >>> 8) % n;
    };
    const formats = ['fgmp', 'nvfp4', 'mxfp4'] as const;
    for (let trial = 0; trial < 40; trial++) {
      const m = 1 + next(70);
      const n = 1 + next(100);
      const k = 1 + next(600);
      const format = formats[trial % 3];
      const w = gaussian(n * k, 1000 + trial, 0.05);
      // Outliers and whole saturated blocks: E4M3 ±448 in FP8 blocks, int8 codes at ±127 in a.
      for (let i = 0; i < w.length; i += 29 + trial) w[i] *= 40;
      if (n * k > 64) for (let i = 0; i < 16; i++) w[(trial * 17) % (n * k - 16) + i] = trial % 2 ? -9 : 9;
      const fp4Fraction = [0, 0.3, 0.7, 1][trial % 4];
      const b = format === 'fgmp' ? quantize(w, { format: 'fgmp', shape: [n, k], fp4Fraction }) : quantize(w, { format, shape: [n, k] });
      const a = gaussian(m * k, 2000 + trial);
      if (m * k > 64) for (let i = 0; i < 32; i++) a[(trial * 31) % (m * k - 32) + i] = trial % 2 ? 3 : -3;
      const bias = trial % 2 ? gaussian(n, trial) : undefined;
      const want = matmul(a, b, { bias });
      const got = withBackend(backend, () => matmul(a, b, { bias }));
      expect(firstBitDifference(got, want), `${format} ${m}×${n}×${k} fp4Fraction ${fp4Fraction}`).toBe(-1);
    }
  });

  it('scales at the ends of the float range (rows in and out of the fast-scales epilogue): identical bits', () => {
    // The AVX-512 kernel rescales by an exponent add only when every scale product stays a normal
    // float (native/matmul.h); rows of tiny, huge, zero and subnormal activations against tiny and
    // huge weights sit on both sides of that test, and the products reach Inf and subnormals.
    const [n, k] = [40, 96];
    const rowScales = [1, 2 ** -100, 2 ** -125, 2 ** 100, 2 ** 126, 0, 2 ** -140, 1, 2 ** 60, 2 ** -60];
    const m = rowScales.length;
    const a = gaussian(m * k, 91);
    for (let r = 0; r < m; r++) for (let i = 0; i < k; i++) a[r * k + i] *= rowScales[r];
    for (let i = 0; i < 32; i++) a[7 * k + i] *= 2 ** -120; // row 7: one tiny block among normal ones
    let sawInf = false;
    let sawSubnormal = false;
    // Weight scales swept one exponent at a time near both limits of the test.
    const weightExponents = [-110, -60, 60, 110];
    for (let j = -10; j <= 10; j++) weightExponents.push(j);
    for (const weightScale of weightExponents.map((j) => 2 ** j)) {
      for (const format of ['mxfp4', 'nvfp4', 'fgmp'] as const) {
        const w = gaussian(n * k, 92, 0.05);
        for (let i = 0; i < w.length; i++) w[i] *= weightScale * (i % 7 === 0 ? 30 : 1);
        const b = format === 'fgmp' ? quantize(w, { format, shape: [n, k], fp4Fraction: 0.5 }) : quantize(w, { format, shape: [n, k] });
        const want = matmul(a, b);
        const got = withBackend(backend, () => matmul(a, b));
        expect(firstBitDifference(got, want), `${format} weights × 2^${Math.log2(weightScale)}`).toBe(-1);
        for (const v of want) {
          if (!Number.isFinite(v) && !Number.isNaN(v)) sawInf = true;
          if (v !== 0 && Math.abs(v) < 2 ** -126) sawSubnormal = true;
        }
      }
    }
    expect(sawInf, 'some products overflow to ±Inf').toBe(true);
    expect(sawSubnormal, 'some products are subnormal').toBe(true);
  });

  it('the fast-scales limits, one exponent either side of each: identical bits', () => {
    // One activation block 2^X·[1, 2^-6, 0…] (scale 2^X, codes 64 and 1) against MXFP4 weights
    // [0, 6·2^w, 0…] (scale 2^w, code 6): D = 12/128 and S = 2^(X+w). S overflows at X + w = 128;
    // 2^(X+w−7) is subnormal at X + w = −120. The kernel must fall back exactly there.
    const k = 32;
    const n = 16;
    for (const [x, sums] of [[127, [125, 126, 127, 128, 129]], [-100, [-122, -121, -120, -119, -118]]] as const) {
      for (const sum of sums) {
        const wExp = sum - x;
        const a = new Float32Array(k);
        a[0] = 2 ** x;
        a[1] = 2 ** (x - 6);
        const w = new Float32Array(n * k);
        for (let c = 0; c < n; c++) w[c * k + 1] = 6 * 2 ** wExp * (c % 2 ? -1 : 1);
        const b = quantize(w, { format: 'mxfp4', shape: [n, k] });
        const want = matmul(a, b);
        expect(want[0]).toBe(sum >= 128 ? Infinity : Math.fround((12 / 128) * 2 ** sum));
        expect(firstBitDifference(withBackend(backend, () => matmul(a, b)), want), `X + w = ${sum}`).toBe(-1);
      }
    }
  });

  it('weights whose scale codes the compact storage cannot or must not take: identical bits', () => {
    // Native kernels keep NVFP4 scales as binary16 E4M3 values × tensor scale and MXFP4 scales as
    // E8M0 codes (native/matmul.h); zero, subnormal and NaN codes, a tensor scale that is not a
    // float32 and E8M0 codes 0 and 255 must give the reference's bits, compact or not.
    const [m, n, k] = [5, 40, 96];
    const a = gaussian(m * k, 51);
    const base = gaussian(n * k, 52, 0.05);
    const nv = quantize(base, { format: 'nvfp4', shape: [n, k] });
    const nvScales = Uint8Array.from(nv.scales);
    [0x00, 0x01, 0x07, 0x80, 0x81, 0x7f, 0x7e, 0xfe].forEach((code, i) => (nvScales[7 * i + 3] = code));
    for (const tensorScale of [nv.tensorScale!, 0.1, Math.fround(0.1), 3e-41]) {
      const b = { ...nv, scales: nvScales, tensorScale };
      const want = matmul(a, b);
      expect(firstBitDifference(withBackend(backend, () => matmul(a, b)), want), `nvfp4 tensorScale ${tensorScale}`).toBe(-1);
      const plain = { ...nv, tensorScale };
      expect(firstBitDifference(withBackend(backend, () => matmul(a, plain)), matmul(a, plain)), `plain nvfp4 tensorScale ${tensorScale}`).toBe(-1);
    }
    const mx = quantize(base, { format: 'mxfp4', shape: [n, k] });
    for (const code of [0, 1, 254, 255]) {
      const scales = Uint8Array.from(mx.scales);
      scales[9] = code;
      const b = { ...mx, scales };
      expect(firstBitDifference(withBackend(backend, () => matmul(a, b)), matmul(a, b)), `mxfp4 scale code ${code}`).toBe(-1);
    }
  });

  it('byte-plane weights whose block multipliers the addon keeps as bytes, and ones it cannot: identical bits at 1, 3 and 20 rows', () => {
    // The addon's codes form (AVX-512 VBMI) keeps E8M0 multipliers as their codes and FGMP's as
    // E4M3 codes times tensorScale or its FP8 multiplier (native/matmul_planes.h), checked against
    // the floats at repack: E8M0 codes 0 (a subnormal multiplier) and 255 (NaN), FGMP scale codes
    // 0, 1, 0x7e and NaN, the smallest normal tensorScale, one whose 2^8 multiple overflows, and an FP8
    // multiplier equal to an FP4 block's must all give the reference's bits, bytes or not.
    const [n, k] = [40, 160];
    const base = gaussian(n * k, 61, 0.05);
    for (let i = 0; i < base.length; i += 29) base[i] *= 40;
    const products = (what: string, b: Parameters<typeof matmul>[1]) => {
      for (const m of [1, 3, 20]) {
        const a = gaussian(m * k, 62 + m);
        expect(firstBitDifference(withBackend(backend, () => matmul(a, b)), matmul(a, b)), `${what} m=${m}`).toBe(-1);
      }
    };
    for (const format of ['mxfp8_e4m3', 'mxint8'] as const) {
      const q = quantize(base, { format, shape: [n, k] });
      products(`${format} as quantized`, q);
      for (const code of [0, 1, 254, 255]) {
        const scales = Uint8Array.from(q.scales);
        scales[7] = code;
        products(`${format} scale code ${code}`, { ...q, scales });
      }
    }
    const fg = quantize(base, { format: 'fgmp', shape: [n, k], fp4Fraction: 0.7 });
    products('fgmp as quantized', fg);
    const edgeScales = Uint8Array.from(fg.scales);
    [0x00, 0x01, 0x7e, 0x7f].forEach((code, i) => (edgeScales[5 * i + 2] = code));
    products('fgmp edge scale codes', { ...fg, scales: edgeScales });
    for (const tensorScale of [2 ** -126, 2e36, Math.fround(0.37)]) products(`fgmp tensorScale ${tensorScale}`, { ...fg, tensorScale });
    // The FP8 multiplier equal to the multiplier of an FP4 block with scale code 0x38 (1.0).
    const ones = Uint8Array.from(fg.scales).fill(0x38);
    products('fgmp fp8Scale = an FP4 multiplier', { ...fg, scales: ones, fp8Scale: fg.tensorScale });
  });

  it('fgmp large enough to split across threads (ranges starting at odd tiles), sync and async: identical bits', async () => {
    // 61 tiles of 16 columns and ≥ 2M multiply-adds per tile: two threads split them 31 + 30.
    const [m, n, k] = [64, 976, 2048];
    const w = gaussian(n * k, 77, 0.03);
    for (let i = 0; i < w.length; i += 41) w[i] *= 25;
    const b = quantize(w, { format: 'fgmp', shape: [n, k], fp4Fraction: 0.7 });
    const a = gaussian(m * k, 78);
    const want = matmul(a, b);
    expect(firstBitDifference(withBackend(backend, () => matmul(a, b)), want)).toBe(-1);
    expect(firstBitDifference(await withBackend(backend, () => matmulAsync(a, b)), want)).toBe(-1);
  });

  it('matmulAsync gives the same bits and reuses the repacked weights', async () => {
    const [m, n, k] = [9, 48, 512];
    const b = weights('nvfp4', n, k, 11);
    const a = gaussian(m * k, 12);
    const want = matmul(a, b);
    const first = await withBackend(backend, () => matmulAsync(a, b));
    const second = await withBackend(backend, () => matmulAsync(a, b));
    expect(firstBitDifference(first, want)).toBe(-1);
    expect(firstBitDifference(second, want)).toBe(-1);
  });
});

describe('matmulAsync argument checks', () => {
  it('rejects mismatched K before any work', async () => {
    const b = weights('mxfp4', 4, 64, 1);
    await expect(matmulAsync(new Float32Array(2 * 32), b, { shape: [2, 32] })).rejects.toThrow(/K = 32 but b has K = 64/);
  });
});

/** A decoded operand (rows × cols values in whole blocks, one multiplier per block). */
function decodedOperand(values: Float32Array, blockScales: Float32Array, rows: number, cols: number, blockSize: number): DecodedOperand {
  const blocksPerRow = Math.ceil(cols / blockSize);
  return { rows, cols, blockSize, values, paddedCols: blocksPerRow * blockSize, blockScales, blocksPerRow };
}

/** The backend's decoded product into `out`; returns the path it reports. */
function decodedProduct(kernels: MatmulKernels, a: DecodedOperand, b: DecodedOperand, bias: Float32Array | null, out: Float32Array) {
  return kernels.matmulDecoded!(a.values, a.blockScales, a.rows, a.blockSize, b.values, b.blockScales, b.rows, b.blockSize, a.cols, bias, out);
}

/** Every NaN as one NaN (the facade writes them as 0x7fc00000; the kernels need not). */
const canonicalNaNs = (x: Float32Array) => Float32Array.from(x, (v) => (Number.isNaN(v) ? NaN : v));

// Decoded products of short-float operands (FP8 × FP8: fp4Dense's backward products) run on int16
// integers aligned per unit (native/matmul_aligned.h, assembly/matmul-aligned.ts) where that is
// exact, and on the float64 loop lane by lane where it is not. Either way the bits are the
// reference's; these operands are chosen so that the aligned path runs (the kernels' return value
// says so), with planted row-units that must fall back.
describe.each(others.filter((b) => withBackend(b, () => getKernels().matmul?.matmulDecoded) !== undefined))('the decoded product (aligned natively) on %s', (backend) => {
  /** Values ±(4..7)·2^e with e in a narrow band per row (E5M2-like), so most row-units align. */
  function narrow(rows: number, cols: number, seed: number, band: number): Float32Array {
    const g = gaussian(rows * cols, seed);
    return Float32Array.from(g, (v, i) => Math.sign(v || 1) * (4 + (Math.floor(Math.abs(v) * 1000) % 4)) * 2 ** ((Math.floor(Math.abs(v) * 7919) % band) - Math.floor(i / cols) % 5));
  }

  it('FP8 × FP8 operands (E5M2 × E4M3, E4M3 × E4M3, E5M2 × E5M2, E3M2 × E4M3): the reference bits, ragged shapes, bias', () => {
    const pairs = [['mxfp8_e5m2', 'mxfp8_e4m3'], ['mxfp8_e4m3', 'mxfp8_e4m3'], ['mxfp8_e5m2', 'mxfp8_e5m2'], ['mxfp6_e3m2', 'mxfp8_e4m3']] as const;
    for (const [fa, fb] of pairs) {
      for (const [m, n, k] of [[8, 17, 64], [13, 40, 100], [33, 70, 300], [9, 1, 32]] as const) {
        const a = quantize(narrow(m, k, m + k, 6), { format: fa, shape: [m, k] });
        const b = quantize(narrow(n, k, n + 2 * k, 5), { format: fb, shape: [n, k] });
        const bias = gaussian(n, 5);
        const want = matmul(a, b, { bias });
        expect(firstBitDifference(withBackend(backend, () => matmul(a, b, { bias })), want), `${fa} × ${fb} ${m}×${n}×${k}`).toBe(-1);
      }
    }
  });

  /** MX FP8 operand [rows, k] straight from codes: per unit of 32, one or two neighbouring exponent
   *  fields with ±0 among them (the integer path), all ±0, or — the units `planted` picks — any
   *  code at all (NaN, ±Inf, subnormals, spans past 15); padding codes +0; E8M0 scales around 1. */
  function codesOperand(format: 'mxfp8_e4m3' | 'mxfp8_e5m2', rows: number, k: number, seed: number, planted: (row: number, unit: number) => boolean) {
    const mantissaBits = format === 'mxfp8_e4m3' ? 3 : 2;
    const blocks = Math.ceil(k / 32);
    const data = new Uint8Array(rows * blocks * 32);
    const random = gaussian(rows * blocks * 34, seed).map((v) => Math.floor(Math.abs(v) * 1e6));
    let at = 0;
    const next = () => random[at++ % random.length];
    for (let row = 0; row < rows; row++) {
      for (let j = 0; j < blocks; j++) {
        const kind = planted(row, j) ? 0 : next() % 16 === 0 ? 1 : 2;
        const field = 1 + (next() % ((1 << (7 - mantissaBits)) - 2));
        for (let i = 0; i < 32 && j * 32 + i < k; i++) {
          const x = next();
          let c = kind === 0 ? x & 0xff : kind === 1 ? (x % 2) << 7 : (Math.max(0, field - (x % 2)) << mantissaBits) | ((x >> 3) & ((1 << mantissaBits) - 1)) | (((x >> 7) & 1) << 7);
          if (kind === 2 && x % 9 === 0) c = 0;
          data[row * blocks * 32 + j * 32 + i] = c;
        }
      }
    }
    const scales = Uint8Array.from({ length: rows * blocks }, (_, i) => 124 + (i % 7));
    return { format, blockSize: 32, shape: [rows, k] as [number, number], data, scales };
  }

  it('every E4M3 and INT8 code as a weight (±0, subnormals, low bits, 448, NaN in two rows), 1–4 and 9 rows, 20 units: identical bits', () => {
    // The AVX2 kernel rebuilds E4M3's h from one byte per weight (odd factor × power of two) and
    // keeps INT8 as int16 planes; every code must give its value in either form.
    const [n, k] = [40, 640];
    for (const format of ['mxfp8_e4m3', 'mxint8'] as const) {
      const nan = (c: number) => format === 'mxfp8_e4m3' && (c & 0x7f) === 0x7f;
      const data = Uint8Array.from({ length: n * k }, (_, i) => {
        const row = Math.floor(i / k), c = (row * 7 + Math.floor((i % k) / 32) * 13 + (i % k) * 29) % 256;
        return nan(c) && row !== 0 && row !== 21 ? 0x7e : c;
      });
      const scales = Uint8Array.from({ length: n * (k / 32) }, (_, i) => 125 + (i % 5));
      const b = { format, blockSize: 32, shape: [n, k] as [number, number], data, scales };
      for (const m of [1, 2, 3, 4, 9]) {
        const a = gaussian(m * k, 300 + m);
        const want = matmul(a, b);
        expect(firstBitDifference(withBackend(backend, () => matmul(a, b)), want), `${format} m=${m}`).toBe(-1);
        expect(want.filter(Number.isNaN).length, 'the NaN rows give NaN columns').toBe(format === 'mxfp8_e4m3' ? 2 * m : 0);
      }
    }
  });

  it('FP8 operands as codes (the addon reads its integer forms from the codes where the CPU has VBMI): NaN/Inf and any-code units, padding — the reference bits on the aligned path', () => {
    const kernels = withBackend(backend, () => getKernels().matmul!);
    let planted = 0;
    for (const [fa, fb] of [['mxfp8_e5m2', 'mxfp8_e4m3'], ['mxfp8_e4m3', 'mxfp8_e5m2'], ['mxfp8_e4m3', 'mxfp8_e4m3']] as const) {
      for (const [m, n, k] of [[40, 45, 608], [9, 33, 320], [12, 70, 600], [64, 96, 1024]] as const) {
        // a: one unit of any codes in every fifth row; b: one in its row 1 from 40 rows on (few enough
        // for the planner to take the aligned path: a 16-column step with one such lane falls back).
        const a = codesOperand(fa, m, k, m + k, (r, j) => r % 5 === 2 && j === (r * 7) % Math.ceil(k / 32));
        const b = codesOperand(fb, n, k, n + 3 * k, (r, j) => n >= 40 && r === 1 && j === 0);
        const bias = gaussian(n, 7);
        const want = canonicalNaNs(matmul(a, b, { bias }));
        expect(firstBitDifference(canonicalNaNs(withBackend(backend, () => matmul(a, b, { bias }))), want), `${fa} × ${fb} ${m}×${n}×${k}`).toBe(-1);
        // The kernel itself, given the codes: the aligned path, the same bits.
        const ad = decodeOperand('test', a), bd = decodeOperand('test', b);
        expect(ad.codes !== undefined && bd.codes !== undefined).toBe(true);
        const got = new Float32Array(m * n);
        const ran = kernels.matmulDecoded!(ad.values, ad.blockScales, m, 32, bd.values, bd.blockScales, n, 32, k, bias, got, ad.codes, ad.codeElement, bd.codes, bd.codeElement);
        expect(ran, `${fa} × ${fb} ${m}×${n}×${k}`).toBe('aligned');
        expect(firstBitDifference(canonicalNaNs(got), want)).toBe(-1);
        planted += want.filter((v) => Number.isNaN(v)).length > 0 ? 1 : 0;
      }
    }
    expect(planted, 'products with NaN rows or columns from the planted units').toBeGreaterThan(3);
  });

  if (backend === 'native') {
    it('the codes arguments are checked in C++: length, kind and element', () => {
      const kernels = withBackend(backend, () => getKernels().matmul!);
      const [m, n, k] = [2, 3, 64];
      const a = decodedOperand(new Float32Array(m * k), new Float32Array(m * 2).fill(1), m, k, 32);
      const b = decodedOperand(new Float32Array(n * k), new Float32Array(n * 2).fill(1), n, k, 32);
      const call = (aCodes: unknown, aElement: unknown, bCodes: unknown = null, bElement: unknown = -1) =>
        (kernels.matmulDecoded as (...args: unknown[]) => string)(a.values, a.blockScales, m, 32, b.values, b.blockScales, n, 32, k, null, new Float32Array(m * n), aCodes, aElement, bCodes, bElement);
      expect(call(new Uint8Array(m * k), 3, new Uint8Array(n * k), 4)).toMatch(/aligned|float64/);
      expect(() => call(new Uint8Array(m * k - 1), 3)).toThrow(/aCodes holds 127 bytes, 128 needed/);
      expect(() => call(new Int8Array(m * k), 3)).toThrow(/aCodes must be a Uint8Array/);
      expect(() => call(new Uint8Array(m * k), 5)).toThrow(/aCodes element must be an integer in \[3, 4\]/);
      expect(() => call(new Uint8Array(m * k), undefined)).toThrow(/aCodes element must be a number/);
      expect(() => call(null, -1, new Uint8Array(n * k - 1), 4)).toThrow(/bCodes holds 191 bytes, 192 needed/);
      // Longer arrays are accepted, as on every backend's kernel boundary: the first n·k codes are read.
      expect(call(null, -1, new Uint8Array(n * k + 32), 4)).toMatch(/aligned|float64/);
    });
  }

  // The addon and the wasm module take their aligned paths for these operands; only the addon swaps
  // the operands when b holds the wide row-units and a has few rows (the wasm module has no splits).
  const path = 'aligned';
  const swappedPath = backend === 'native' ? 'aligned' : 'float64';

  it('the aligned path runs for such operands, and planted row-units fall back with the same bits', () => {
    const [m, n, k] = [24, 50, 256];
    const kernels = withBackend(backend, () => getKernels().matmul!);
    const av = narrow(m, k, 1, 6);
    const bv = narrow(n, k, 2, 4);
    // Planted: a unit with a span over 15 (a tiny element beside large ones), Inf and NaN, float
    // subnormals, products whose power of two leaves the normal range (2^±70 against 2^±70), a
    // span sum one past the int32 limit with every product at its largest, and all-zero units.
    av[3 * k + 40] = 2 ** -30;
    av[5 * k + 70] = Infinity;
    bv[7 * k + 100] = NaN;
    for (let i = 0; i < 32; i++) {
      av[9 * k + 128 + i] = 2 ** -140 * (1 + (i % 3));
      av[11 * k + 32 + i] = 2 ** -70 * (i % 2 ? 5 : -7);
      bv[13 * k + 32 + i] = 2 ** -70 * 3;
      av[15 * k + 192 + i] = 2 ** 13 - 1; // span 13
      bv[17 * k + 192 + i] = 2 ** 14 - 1; // span 14: 13 + 14 + 5 = 32 > 31
      bv[19 * k + 192 + i] = 2 ** 13 - 1; // span 13: 13 + 13 + 5 = 31, exact in int32
      av[20 * k + 224 + i] = 0;
      av[21 * k + i] = 2 ** 70;
      bv[21 * k + i] = 2 ** 60;
    }
    const aScales = Float32Array.from({ length: m * (k / 32) }, (_, i) => (i % 5 === 0 ? 0.3 : 2 ** ((i % 9) - 4)));
    const bScales = Float32Array.from({ length: n * (k / 32) }, (_, i) => (i % 7 === 0 ? 1.7 : 2 ** ((i % 5) - 2)));
    const a = decodedOperand(av, aScales, m, k, 32);
    const b = decodedOperand(bv, bScales, n, k, 32);
    const bias = gaussian(n, 3);
    const got = new Float32Array(m * n);
    expect(decodedProduct(kernels, a, b, bias, got)).toBe(path);
    const want = matmulDecoded(a, b, bias);
    expect(firstBitDifference(canonicalNaNs(got), canonicalNaNs(want))).toBe(-1);
    expect(!Number.isFinite(want[5 * n]) && Number.isNaN(want[7])).toBe(true);
    // A float32 operand does not align: the float64 loop runs it, same bits as the reference.
    const f = gaussian(m * k, 9);
    const out = new Float32Array(m * n);
    expect(decodedProduct(kernels, { ...a, values: f }, b, null, out)).toBe('float64');
    expect(firstBitDifference(canonicalNaNs(out), canonicalNaNs(matmulDecoded({ ...a, values: f }, b)))).toBe(-1);
  });

  it('few rows of a against many of b: the addon runs b · aᵀ and transposes it (bias added after), the reference bits', () => {
    // 5 rows in a's place are too few to align b's columns for; b's 70 rows are not, so only the
    // swapped product can take the aligned path — its 'aligned' shows that it did.
    const [m, n, k] = [5, 70, 160];
    const kernels = withBackend(backend, () => getKernels().matmul!);
    const av = narrow(m, k, 31, 6), bv = narrow(n, k, 32, 5);
    bv[9 * k + 20] = 2 ** -40; // a wide row-unit in b: split in a's place
    const aScales = Float32Array.from({ length: m * (k / 32) }, (_, i) => 2 ** ((i % 7) - 3));
    const bScales = Float32Array.from({ length: n * (k / 16) }, (_, i) => (i % 11 === 0 ? 0.7 : 2 ** ((i % 5) - 2)));
    const a = decodedOperand(av, aScales, m, k, 32);
    const b = decodedOperand(bv, bScales, n, k, 16);
    const bias = gaussian(n, 33);
    const got = new Float32Array(m * n);
    expect(decodedProduct(kernels, a, b, bias, got)).toBe(swappedPath);
    expect(firstBitDifference(got, matmulDecoded(a, b, bias))).toBe(-1);
  });

  it("fp4Dense's backward products (E5M2 per-tensor gradient × FP4-simulated E4M3), large enough for the thread pool: the reference bits", () => {
    // 256 × 128 × 512 splits its columns over the pool's threads (a first version read the A
    // operand's aligned form from a thread_local on the pool thread: half the columns came out 0).
    const [t, o, i] = [256, 512, 128];
    const g = gaussian(t * o, 21);
    for (let r = 0; r < t; r++) for (let c = 0; c < o; c++) g[r * o + c] *= Math.exp((r % 7) - 3) * 1e-3;
    const w = Float32Array.from(gaussian(i * o, 22), (v, j) => Math.sign(v) * [0.5, 1, 1.5, 2, 3, 4, 6][Math.floor(Math.abs(v) * 100) % 7] * (1 + (j % o) / o));
    const ga = castFp8Rows(g, t, o, 'e5m2', 'per-tensor')!;
    const wb = castFp8Rows(w, i, o, 'e4m3', 'per-tensor')!;
    expect(firstBitDifference(withBackend(backend, () => fp8Product(ga, wb)), fp8Product(ga, wb)), '∇x').toBe(-1);
    // ∇W's shape: the transposed activations against the transposed gradient (K = tokens).
    const x = Float32Array.from(gaussian(t * i, 23), (v, j) => Math.sign(v) * [0, 0.5, 1, 1.5, 2, 3, 4, 6][Math.floor(Math.abs(v) * 100) % 8] * (1 + (j % 9)));
    const at = castFp8Rows(x, i, t, 'e4m3', 'per-row', true)!;
    const gt = transposePerTensor(castFp8Rows(g, t, o, 'e5m2', 'per-tensor')!);
    expect(firstBitDifference(withBackend(backend, () => fp8Product(at, gt)), fp8Product(at, gt)), '∇W').toBe(-1);
  });
});

// Random decoded operands built to sit near the aligned path's rules (short-float row-units of random
// spread, planted wide, split-able, zero, subnormal, huge and non-finite units, power-of-two and other
// multipliers), shapes that split across the thread pool: every backend gives the reference's bits.
describe.each(others.filter((b) => withBackend(b, () => getKernels().matmul?.matmulDecoded) !== undefined))('decoded products, random structure, on %s', (backend) => {
  let state = 0x9e3779b9;  // reset at the start of each test
  const next = (n: number) => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state >>> 8) % n;
  };
  const operand = (rows: number, k: number, block: number, kinds: number) => {
    const blocks = Math.ceil(k / block), padded = blocks * block;
    const values = new Float32Array(rows * padded);
    for (let r = 0; r < rows; r++) {
      for (let u = 0; u * 16 < k; u++) {
        const kind = next(kinds); // 0–5 are the planted kinds: rare when kinds is large
        const base = next(30) - 15;
        for (let i = u * 16; i < Math.min(k, (u + 1) * 16); i++) {
          const sign = next(2) ? -1 : 1;
          let v: number;
          if (kind === 0) v = 0;
          else if (kind === 1) v = i % 16 === 3 ? 2 ** (base - 20 - next(10)) : (4 + next(4)) * 2 ** base; // wide: splits or falls back
          else if (kind === 2) v = (1 + next(7)) * 2 ** (-135 - next(10)); // float subnormals
          else if (kind === 3) v = (1 + next(7)) * 2 ** (60 + next(8)); // huge products
          else if (kind === 4 && i % 16 === 7) v = [Infinity, NaN][next(2)];
          else if (kind === 5) v = (2 ** (12 + next(4)) - 1) * 2 ** base; // spans near the int32 limit
          else v = (4 + next(4)) * 2 ** (base - next(4)); // short spread
          values[r * padded + i] = sign * v;
        }
      }
    }
    const scales = Float32Array.from({ length: rows * blocks }, () => (next(4) ? 2 ** (next(16) - 8) : (1 + next(1000)) / 317));
    return decodedOperand(values, scales, rows, k, block);
  };
  beforeEach(() => {
    state = 0x9e3779b9;
  });

  it('40 random products, on both paths: the reference bits', () => {
    const kernels = withBackend(backend, () => getKernels().matmul!);
    const paths: string[] = [];
    for (let trial = 0; trial < 40; trial++) {
      const [m, n, k] = [8 + next(60), 1 + next(150), 16 + next(400)];
      const [aBlock, bBlock] = [[16, 32][next(2)], [16, 32][next(2)]];
      // Odd trials: planted units everywhere (the addon's float64 loop); even: rare (its aligned path).
      const kinds = trial % 2 ? 20 : 4000;
      const a = operand(m, k, aBlock, kinds), b = operand(n, k, bBlock, kinds);
      const bias = next(2) ? gaussian(n, trial) : null;
      const got = new Float32Array(m * n);
      paths.push(decodedProduct(kernels, a, b, bias, got));
      const want = matmulDecoded(a, b, bias ?? undefined);
      expect(firstBitDifference(canonicalNaNs(got), canonicalNaNs(want)), `trial ${trial}: ${m}×${n}×${k}, blocks ${aBlock}/${bBlock}`).toBe(-1);
    }
    expect(paths.filter((p) => p === 'aligned').length, 'products on the aligned path').toBeGreaterThanOrEqual(10);
  });

  // The SIMD float64 loops take K in panels of 2048 (native/matmul_decoded_panel.h), each output's
  // accumulator carried between them; a panel of the whole K once took 8.5 s and 805 MB for a
  // 1 × 1 product at K = 2^22 (a weight gradient over a large batch).
  it('K across several panels (2 · 2048 + 80), column ranges of 1 to 21 and rows past a step, units of 16 and 32: the reference bits', () => {
    const kernels = withBackend(backend, () => getKernels().matmul!);
    for (const [m, n, aBlock, bBlock] of [[9, 21, 32, 32], [1, 1, 16, 32], [3, 2, 16, 16], [10, 5, 32, 16]]) {
      const k = 2 * 2048 + 80;
      const a = operand(m, k, aBlock, 20), b = operand(n, k, bBlock, 20);
      const bias = gaussian(n, m);
      const got = new Float32Array(m * n);
      expect(decodedProduct(kernels, a, b, bias, got)).toBe('float64'); // planted units: not the aligned path
      expect(firstBitDifference(canonicalNaNs(got), canonicalNaNs(matmulDecoded(a, b, bias))), `${m}×${n}×${k}, blocks ${aBlock}/${bBlock}`).toBe(-1);
    }
  });

  it('decodedProducts: a batch of pairs (repeated and broadcast matrices, planted units, bias) in one call equals the reference pair by pair', () => {
    for (let trial = 0; trial < 12; trial++) {
      const [m, n, k] = [1 + next(40), 1 + next(70), 1 + next(200)];
      const [aMatrices, bMatrices, batch] = [1 + next(5), 1 + next(5), next(3) === 0 ? 0 : 1 + next(20)];
      const [aBlock, bBlock] = [[16, 32][next(2)], [16, 32][next(2)]];
      const a = operand(aMatrices * m, k, aBlock, trial % 2 ? 20 : 4000), b = operand(bMatrices * n, k, bBlock, trial % 2 ? 20 : 4000);
      const aIndex = Int32Array.from({ length: batch }, () => next(aMatrices)), bIndex = Int32Array.from({ length: batch }, () => next(bMatrices));
      const bias = next(2) ? gaussian(n, trial) : undefined;
      const got = withBackend(backend, () => decodedProducts(a, m, b, n, aIndex, bIndex, bias));
      const want = new Float32Array(batch * m * n);
      for (let i = 0; i < batch; i++) {
        const rows = (d: DecodedOperand, r0: number, count: number): DecodedOperand => ({
          ...d, rows: count, values: d.values.subarray(r0 * d.paddedCols, (r0 + count) * d.paddedCols), blockScales: d.blockScales.subarray(r0 * d.blocksPerRow, (r0 + count) * d.blocksPerRow),
        });
        want.set(matmulDecoded(rows(a, aIndex[i] * m, m), rows(b, bIndex[i] * n, n), bias), i * m * n);
      }
      expect(firstBitDifference(canonicalNaNs(got), canonicalNaNs(want)), `trial ${trial}: ${batch} pairs of ${m}×${n}×${k}`).toBe(-1);
    }
  });

  it('decodedProducts refuses pairs outside the operands and partial matrices, in TypeScript and in the kernel', () => {
    const a = operand(6, 40, 32, 4000), b = operand(4, 40, 16, 4000);
    const run = (aIndex: number[], bIndex: number[], m = 3, n = 2) =>
      withBackend(backend, () => decodedProducts(a, m, b, n, Int32Array.from(aIndex), Int32Array.from(bIndex), undefined));
    expect(() => run([0, 2], [0, 1])).toThrow(/not among the 2 and 2 matrices/);
    expect(() => run([0, -1], [0, 1])).toThrow(RangeError);
    expect(() => run([0], [0, 1])).toThrow(/1 a indices, 2 b indices/);
    expect(() => run([0], [0], 4)).toThrow(/not whole matrices/);
    expect(run([1, 0, 1], [1, 1, 0]).length).toBe(3 * 3 * 2);
    const kernel = withBackend(backend, () => getKernels().matmul!.matmulDecodedBatch);
    if (kernel === undefined) return;  // the wasm module runs decodedProduct per pair
    const call = (aIndex: unknown, bIndex: unknown, out = new Float32Array(12)) =>
      kernel(a.values, a.blockScales, 3, 32, 2, b.values, b.blockScales, 2, 16, 2, 40, null, out, aIndex as Int32Array, bIndex as Int32Array);
    expect(call(Int32Array.of(0, 1), Int32Array.of(1, 0))).toBe('float64');
    expect(() => call(Int32Array.of(0, 2), Int32Array.of(1, 0))).toThrow(/aIndex\[1\] is not a matrix of a/);
    expect(() => call(Int32Array.of(0, 1), Int32Array.of(-1, 0))).toThrow(/bIndex\[0\] is not a matrix of b/);
    expect(() => call(Float32Array.of(0, 1), Int32Array.of(1, 0))).toThrow(/Int32Array/);
    expect(() => call(Int32Array.of(0, 1), Int32Array.of(1))).toThrow(RangeError);
    expect(() => call(Int32Array.of(0, 1), Int32Array.of(1, 0), new Float32Array(11))).toThrow(RangeError);
    // Sizes whose products overflow 64 bits: a clear error before any memory is touched.
    expect(() => kernel(a.values, a.blockScales, 2 ** 31, 32, 2 ** 31, b.values, b.blockScales, 2, 16, 2, 2 ** 31, null, new Float32Array(1), Int32Array.of(0), Int32Array.of(0)))
      .toThrow(/too large/);
  });
});

// The native tile kernels' FP8-slot path for FGMP, driven directly (wasm runs FGMP on its planes).
if (others.includes('native')) {
  describe('FGMP on the native FP4 tiles', () => {
    it('FGMP weights as FP4 tiles alone (the tile kernels\' FP8 slots, which matmul passes over where the planes take every row count, as on AVX2): the reference bits, −128 activation codes, 1–130 rows', () => {
      const addon = withBackend('native', () => getKernels().matmul!);
      for (const [n, k] of [[17, 100], [40, 288], [33, 1000]] as const) {
        const w = gaussian(n * k, n + k, 0.05);
        for (let i = 0; i < w.length; i += 5) w[i] *= 60; // outliers: FP8 blocks
        const b = quantize(w, { format: 'fgmp', shape: [n, k], fp4Fraction: 0.3 });
        const x = fp4KernelInputs(b, false);
        expect(x.fp8Blocks, 'FP8 blocks present').toBeTruthy();
        const tilesOnly = addon.repackFp4Weights(x.nibbles, x.blockScales, x.fp8Blocks, x.fp8Codes, x.n, x.k, x.blockSize, x.scaleCodes, x.scaleCoding, x.tensorScale);
        try {
          for (const m of [1, 2, 3, 5, 9, 33, 130]) {
            const q = quantize(gaussian(m * k, 7 * m + k), { format: 'mxint8', shape: [m, k] });
            const a = { ...q, data: Uint8Array.from(q.data, (c, i) => (i % 7 === 0 ? 0x80 : i % 11 === 0 ? 0x7f : i % 13 === 0 ? 0x81 : c)) };
            expect(firstBitDifference(matmulFast(addon, a, tilesOnly, n, undefined), matmul(a, b)), `n=${n} k=${k} m=${m}`).toBe(-1);
          }
        } finally {
          addon.releaseFp4Weights?.(tilesOnly);
        }
      }
    });
  });
}
