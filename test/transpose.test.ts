// lib/core/transpose.ts against an explicit index loop, across tile edges (64) and for both element
// sizes; the in-place version through its one-matrix scratch buffer; transposeInto (the tfjs
// layouts) on every backend — natively the addon's kernel (native/transpose.h, each SIMD level in
// CI's reruns) — against the same loop, with offsets, strides, several matrices and the argument
// checks in TypeScript and in C++.
import { describe, expect, it } from 'vitest';
import { collapsePermutation, swapLastTwo, swapMiddleAxesInto, transposeInto, transposeLastTwo, transposeLastTwoInPlace } from '../lib/core/transpose.js';
import { withBackend } from '../lib/index.js';
import { getKernels } from '../lib/kernels/registry.js';
import { testedBackends } from './helpers/backends.js';

function naive(x: Uint32Array, shape: number[]): Uint32Array {
  const rows = shape[shape.length - 2];
  const cols = shape[shape.length - 1];
  const out = new Uint32Array(x.length);
  for (let m = 0; m < x.length / (rows * cols); m++) {
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[m * rows * cols + c * rows + r] = x[m * rows * cols + r * cols + c];
  }
  return out;
}

const shapes = [[1, 1], [3, 5], [2, 70, 130], [3, 64, 64], [2, 2, 1, 129]];

describe('transpose of the last two axes', () => {
  it.each(shapes)('shape %j', (...shape: number[]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = Uint32Array.from({ length: n }, (_v, i) => (i * 2654435761) >>> 0);
    expect(Array.from(transposeLastTwo(x, shape))).toEqual(Array.from(naive(x, shape)));
    expect(swapLastTwo(shape)).toEqual([...shape.slice(0, -2), shape[shape.length - 1], shape[shape.length - 2]]);
  });

  it.each(shapes)('in place, 2- and 4-byte elements, shape %j', async (...shape: number[]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = Uint32Array.from({ length: n }, (_v, i) => (i * 40503 + 7) >>> 0);
    const bytes4 = new Uint8Array(x.slice().buffer);
    await transposeLastTwoInPlace(bytes4, shape, 4);
    expect(Array.from(new Uint32Array(bytes4.buffer))).toEqual(Array.from(naive(x, shape)));
    const h = Uint16Array.from(x, (v) => v & 0xffff);
    const bytes2 = new Uint8Array(h.slice().buffer);
    await transposeLastTwoInPlace(bytes2, shape, 2);
    expect(Array.from(new Uint16Array(bytes2.buffer))).toEqual(Array.from(naive(Uint32Array.from(h), shape)));
  });

  it('refuses a shape with fewer than 2 dimensions or bytes that do not fill it, naming the function', async () => {
    expect(() => swapLastTwo([4])).toThrow('swapLastTwo: shape [4] has fewer than 2 dimensions');
    expect(() => transposeLastTwo(new Uint32Array(5), [2, 3])).toThrow('transposeLastTwo: 5 elements do not fill shape [2, 3]');
    await expect(transposeLastTwoInPlace(new Uint8Array(10), [2, 3], 2)).rejects.toThrow('transposeLastTwoInPlace: 10 bytes at offset 0 do not hold shape [2, 3] of 2-byte elements');
    await expect(transposeLastTwoInPlace(new Uint8Array(new ArrayBuffer(14), 1, 12), [2, 3], 2)).rejects.toThrow(/at offset 1/);
  });
});

describe.each(testedBackends())('transposeInto on %s', (backend) => {
  /** dst as the index loop leaves it: matrix i of src [rows, cols] into [cols, stride] at i·cols·stride. */
  function expected(src: Uint32Array, srcOffset: number, rows: number, cols: number, dst: Uint32Array, dstOffset: number, stride: number, count: number) {
    const out = dst.slice();
    for (let i = 0; i < count; i++) {
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[dstOffset + i * cols * stride + c * stride + r] = src[srcOffset + i * rows * cols + r * cols + c];
    }
    return out;
  }

  it.each([[1, 1, 1], [3, 5, 2], [16, 16, 1], [17, 33, 3], [64, 64, 2], [65, 130, 1], [200, 70, 4], [1, 5000, 1], [4096, 3, 1], [128, 512, 2]])(
    '%i × %i, %i matrices, offsets and a padded stride: the index loop\'s bytes (NaN payloads kept)', (rows, cols, count) => {
      const srcOffset = 7, dstOffset = 3, stride = rows + (rows % 3);
      const src = Uint32Array.from({ length: srcOffset + count * rows * cols + 5 }, (_v, i) => (i * 2654435761) >>> 0);
      src[srcOffset] = 0x7fa00001;  // a signalling NaN's bits: moved, never converted
      const dst = Uint32Array.from({ length: dstOffset + count * cols * stride + 4 }, (_v, i) => 0xdead0000 + i);
      const want = expected(src, srcOffset, rows, cols, dst, dstOffset, stride, count);
      const f32 = (u: Uint32Array) => new Float32Array(u.buffer);
      withBackend(backend, () => transposeInto(f32(src), srcOffset, rows, cols, f32(dst), dstOffset, stride, count));
      expect(Buffer.from(dst.buffer).equals(Buffer.from(want.buffer))).toBe(true);
    });

  it('refuses overlapping or short arrays and strides below rows, in TypeScript and in the kernel', () => {
    const a = new Float32Array(100);
    const run = (f: () => void) => withBackend(backend, f);
    expect(() => run(() => transposeInto(a, 0, 5, 5, a.subarray(20), 0, 5))).toThrow(/overlap/);
    expect(() => run(() => transposeInto(a, 0, 5, 5, new Float32Array(24), 0, 5))).toThrow(/dst holds 24 elements, 25 needed/);
    expect(() => run(() => transposeInto(a, 80, 5, 5, new Float32Array(25), 0, 5))).toThrow(/src holds 100 elements, 105 needed/);
    expect(() => run(() => transposeInto(a, 0, 5, 5, new Float32Array(25), 0, 4))).toThrow(/at least rows/);
    expect(() => run(() => transposeInto(a, 0, 5, -1, new Float32Array(25), 0, 5))).toThrow(RangeError);
    const kernel = withBackend(backend, () => getKernels().transposeMatrices);
    if (kernel === undefined) return;  // the addon only
    const dst = new Float32Array(100);
    expect(() => kernel(a, 0, 10, 10, 1, a, 0, 10)).toThrow(/overlap/);
    expect(() => kernel(a, 1, 10, 10, 1, dst, 0, 10)).toThrow(/src holds 100 elements, 101 needed/);
    expect(() => kernel(a, 0, 10, 10, 1, dst, 1, 10)).toThrow(/dst holds 100 elements, 101 needed/);
    expect(() => kernel(a, 0, 10, 10, 1, dst, 0, 9)).toThrow(/at least rows/);
    expect(() => kernel(new Float64Array(100) as unknown as Float32Array, 0, 10, 10, 1, dst, 0, 10)).toThrow(/Float32Array, Int32Array or Uint32Array/);
    expect(() => kernel(a, 0, 2 ** 40, 2 ** 40, 1, dst, 0, 2 ** 40)).toThrow(/too large/);
    expect(() => kernel(a, 0.5, 10, 10, 1, dst, 0, 10)).toThrow(/integer/);
    kernel(a, 0, 10, 10, 1, dst, 0, 10);  // and a good call still runs
  });
});

/** The general transpose of a row-major tensor: out[i_perm] = x[i], index by index. */
function permuteNaive(x: Uint32Array, shape: readonly number[], perm: readonly number[]): Uint32Array {
  const outShape = perm.map((p) => shape[p]);
  const out = new Uint32Array(x.length);
  const strides = shape.map((_v, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));
  const index = new Array<number>(outShape.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    let from = 0;
    for (let d = 0; d < perm.length; d++) from += index[d] * strides[perm[d]];
    out[o] = x[from];
    for (let d = outShape.length - 1; d >= 0; d--) { if (++index[d] < outShape[d]) break; index[d] = 0; }
  }
  return out;
}

describe('collapsePermutation', () => {
  it.each([
    [[64, 64, 4, 32], [0, 2, 1, 3], [64, 64, 4, 32], [0, 2, 1, 3]],
    [[2, 3, 4, 5], [0, 1, 3, 2], [6, 4, 5], [0, 2, 1]],
    [[2, 3, 4, 5], [2, 3, 0, 1], [6, 20], [1, 0]],
    [[2, 1, 4, 1], [3, 2, 1, 0], [2, 4], [1, 0]],
    [[1, 7], [1, 0], [7], [0]],
    [[3, 4, 5], [0, 1, 2], [60], [0]],
    [[3, 4, 5, 6], [3, 1, 2, 0], [3, 20, 6], [2, 1, 0]],
  ])('%j by %j → %j by %j', (shape, perm, wantShape, wantPerm) => {
    expect(collapsePermutation(shape, perm)).toEqual({ shape: wantShape, perm: wantPerm });
  });

  it('moves the same elements as the permutation it came from (random shapes and permutations)', () => {
    let s = 99;
    const next = (n: number) => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s % n; };
    for (let t = 0; t < 200; t++) {
      const rank = 1 + next(5);
      const shape = Array.from({ length: rank }, () => 1 + next(4));
      const perm = Array.from({ length: rank }, (_v, i) => i);
      for (let i = rank - 1; i > 0; i--) { const j = next(i + 1); [perm[i], perm[j]] = [perm[j], perm[i]]; }
      const x = Uint32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_v, i) => i * 7 + 1);
      const c = collapsePermutation(shape, perm);
      expect(Array.from(permuteNaive(x, c.shape, c.perm)), JSON.stringify([shape, perm])).toEqual(Array.from(permuteNaive(x, shape, perm)));
    }
  });
});

describe.each(testedBackends())('swapMiddleAxesInto on %s', (backend) => {
  it.each([[1, 1, 1, 1], [2, 3, 4, 5], [64, 64, 4, 32], [3, 70, 2, 1], [1, 130, 65, 1], [5, 1, 9, 3], [2, 17, 33, 128], [0, 3, 4, 5]] as const)(
    '[%i, %i, %i, %i] → [a, c, b, d]: the index loop\'s bits (NaN payloads kept)', (a, b, c, d) => {
      const n = a * b * c * d;
      const src = Uint32Array.from({ length: n }, (_v, i) => (i * 2654435761) >>> 0);
      if (n > 0) src[0] = 0x7fa00001; // a signalling NaN's bits
      const want = permuteNaive(src, [a, b, c, d], [0, 2, 1, 3]);
      const dst = new Float32Array(n + 3).fill(-1);
      withBackend(backend, () => swapMiddleAxesInto(new Float32Array(src.buffer), [a, b, c, d], dst));
      expect(Buffer.from(dst.buffer, 0, 4 * n).equals(Buffer.from(want.buffer))).toBe(true);
      expect(Array.from(dst.subarray(n))).toEqual([-1, -1, -1]);
    });

  it('refuses bad dims, short or overlapping arrays, in TypeScript and in the kernel', () => {
    const x = new Float32Array(120);
    const run = (f: () => void) => withBackend(backend, f);
    expect(() => run(() => swapMiddleAxesInto(x, [2, 3, 4, 5], new Float32Array(119)))).toThrow(/120 needed/);
    expect(() => run(() => swapMiddleAxesInto(x, [2, 3, -4, 5], new Float32Array(120)))).toThrow(/dims\[2\] must be/);
    expect(() => run(() => swapMiddleAxesInto(x.subarray(0, 60), [1, 3, 4, 5], x.subarray(30, 90)))).toThrow(/overlap/);
    const kernel = withBackend(backend, () => getKernels().swapMiddleAxes);
    if (kernel === undefined) return; // the addon only
    const dst = new Float32Array(120);
    expect(() => (kernel as (...a: unknown[]) => void)(x, 2, 3, 4, 5)).toThrow(/expected 6 arguments/);
    expect(() => kernel(x, 2, 3, 4, 6, dst)).toThrow(/holds 120 elements, 144 needed/);
    expect(() => kernel(x, 2, 3, 4, 5, x)).toThrow(/overlap/);
    expect(() => kernel(new Float64Array(120) as unknown as Float32Array, 2, 3, 4, 5, dst)).toThrow(/Float32Array, Int32Array or Uint32Array/);
    expect(() => kernel(x, 2 ** 30, 2 ** 30, 1, 1, dst)).toThrow(/too large/);
    expect(() => kernel(x, 2, 3, 4.5, 5, dst)).toThrow(/integer/);
    kernel(x, 2, 3, 4, 5, dst); // a good call still runs
  });
});
