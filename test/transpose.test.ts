// lib/core/transpose.ts against an explicit index loop, across tile edges (64) and for both element
// sizes; the in-place version through its one-matrix scratch buffer; transposeInto (the tfjs
// layouts) on every backend — natively the addon's kernel (native/transpose.h, each SIMD level in
// CI's reruns) — against the same loop, with offsets, strides, several matrices and the argument
// checks in TypeScript and in C++.
import { describe, expect, it } from 'vitest';
import { swapLastTwo, transposeInto, transposeLastTwo, transposeLastTwoInPlace } from '../lib/core/transpose.js';
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
