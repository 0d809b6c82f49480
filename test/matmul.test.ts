// Block matmul: the documented accumulation order, accuracy against float64, bias, errors.
import { describe, expect, it } from 'vitest';
import { dequantize, matmul, matmulAsync, quantize, type BlockFormatName, type FgmpTensor } from '../lib/index.js';
import { testedBackends, useBackend } from './helpers/backends.js';
import { gaussian } from './helpers/data.js';

const WEIGHT_FORMATS: BlockFormatName[] = ['mxfp4', 'nvfp4', 'mxfp6_e2m3', 'mxfp6_e3m2', 'mxfp8_e4m3', 'mxfp8_e5m2', 'mxint8'];

/** float64 product of the dequantized operands: what the block matmul approximates. */
function reference(a: Float32Array, b: Float32Array, M: number, N: number, K: number): Float64Array {
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += a[m * K + k] * b[n * K + k];
    out[m * N + n] = s;
  }
  return out;
}

describe.each(testedBackends())('matmul on %s', (backend) => {
  useBackend(backend);
  const M = 7, N = 9, K = 200; // K not a multiple of any block

  it.each(WEIGHT_FORMATS)('%s weights: equals the product of dequantized operands up to float32 accumulation', (format) => {
    const a = gaussian(M * K, 1);
    const w = gaussian(N * K, 2, 0.05);
    const qb = quantize(w, { format, shape: [N, K] });
    const qa = quantize(a, { format: 'mxint8', shape: [M, K] });
    const got = matmul(a, qb);
    const want = reference(dequantize(qa), dequantize(qb), M, N, K);
    let scale = 0;
    for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += Math.abs(dequantize(qa)[m * K + k] * dequantize(qb)[n * K + k]);
      scale = Math.max(scale, s);
    }
    for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(scale * 2 ** -20);
  });

  it('follows the documented order exactly on a hand-checked case', () => {
    // One row, K = 64, mxfp8 activations × mxfp4 weights: two units of 32.
    const K2 = 64;
    const a = Float32Array.from({ length: K2 }, (_, k) => (k < 32 ? 1 : 3));
    const w = Float32Array.from({ length: K2 }, (_, k) => (k < 32 ? 0.5 : 1e-3));
    const qa = quantize(a, { format: 'mxfp8_e4m3', shape: [1, K2] });
    const qb = quantize(w, { format: 'mxfp4', shape: [1, K2] });
    const da = dequantize(qa), db = dequantize(qb);
    let acc = 0;
    for (let j = 0; j < 2; j++) {
      let d = 0;
      for (let i = 0; i < 32; i++) d += da[j * 32 + i] * db[j * 32 + i]; // scales are powers of two here
      acc = Math.fround(acc + Math.fround(d));
    }
    expect(matmul(qa, qb)[0]).toBe(acc);
  });

  it('adds the bias after accumulation and accepts bf16 activations', () => {
    const a = gaussian(M * K, 3);
    const w = gaussian(N * K, 4);
    const qb = quantize(w, { format: 'nvfp4', shape: [N, K] });
    const bias = Float32Array.from({ length: N }, (_, n) => n - 4);
    const plain = matmul(a, qb);
    const biased = matmul(a, qb, { bias });
    for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) expect(biased[m * N + n]).toBe(Math.fround(plain[m * N + n] + bias[n]));
    const bf16 = Uint16Array.from(new Uint32Array(a.buffer), (b) => b >>> 16);
    const fromBf16 = matmul(bf16, qb, { dtype: 'bf16' });
    const truncated = new Float32Array(new Uint32Array(Array.from(bf16, (h) => h << 16)).buffer);
    expect(Buffer.compare(Buffer.from(fromBf16.buffer), Buffer.from(matmul(truncated, qb).buffer))).toBe(0);
  });

  it('multiplies FGMP weights by FGMP activations', () => {
    const a = gaussian(M * K, 5);
    const w = gaussian(N * K, 6);
    const qb = quantize(w, { format: 'fgmp', shape: [N, K], fp4Fraction: 0.7 }) as FgmpTensor;
    const qa = quantize(a, { format: 'fgmp', shape: [M, K], fp4Fraction: 0.5, clipping: false }) as FgmpTensor;
    const got = matmul(qa, qb);
    const want = reference(dequantize(qa), dequantize(qb), M, N, K);
    for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThan(1e-3 * (1 + Math.abs(want[i])));
  });

  it('rejects mismatched K, wrong bias and non-quantized weights', () => {
    const qb = quantize(gaussian(N * K, 7), { format: 'mxfp4', shape: [N, K] });
    expect(() => matmul(new Float32Array(M * (K + 1)), qb, { shape: [M, K + 1] })).toThrow(/K = 201 but b has K = 200/);
    expect(() => matmul(new Float32Array(M * K), qb, { bias: new Float32Array(3) })).toThrow(/bias/);
    expect(() => matmul(new Float32Array(M * K), new Float32Array(4) as never)).toThrow(TypeError);
  });

  it.each(['mxfp4', 'mxfp8_e4m3', 'mxfp8_e5m2', 'fgmp'] as const)('options.out (%s): the same bits written into the caller\'s array, which is returned', async (format) => {
    const w = gaussian(N * K, 8);
    const b = format === 'fgmp' ? quantize(w, { format, shape: [N, K], fp4Fraction: 0.6 }) : quantize(w, { format, shape: [N, K] });
    const bias = gaussian(N, 2);
    const out = new Float32Array(M * N).fill(123);
    for (const seed of [1, 2, 3]) {
      // Consecutive calls: activations are quantized into reused scratch memory, so a second call
      // must not see the first one's codes (different inputs, different results).
      const a = gaussian(M * K, seed);
      const want = matmul(a, b, { bias });
      expect(matmul(a, b, { bias, out })).toBe(out);
      expect(Buffer.compare(Buffer.from(out.buffer), Buffer.from(want.buffer))).toBe(0);
      const outAsync = new Float32Array(M * N);
      expect(await matmulAsync(a, b, { bias, out: outAsync })).toBe(outAsync);
      expect(Buffer.compare(Buffer.from(outAsync.buffer), Buffer.from(want.buffer))).toBe(0);
    }
    expect(() => matmul(gaussian(M * K, 1), b, { out: new Float32Array(M * N - 1) })).toThrow(/out must hold 63 elements/);
    expect(() => matmul(gaussian(M * K, 1), b, { out: new Float64Array(M * N) as never })).toThrow(TypeError);
  });

  it('matmulAsync with an options.out detached while the product runs rejects and writes nothing', async () => {
    const [m, n, k] = [256, 512, 512]; // above matmulAsync's inline size
    const b = quantize(gaussian(n * k, 9), { format: 'mxfp4', shape: [n, k] });
    const out = new Float32Array(m * n);
    const pending = matmulAsync(gaussian(m * k, 10), b, { out });
    structuredClone(out.buffer, { transfer: [out.buffer] });
    await expect(pending).rejects.toThrow(/out was detached or resized while the product ran/);
  });
});
