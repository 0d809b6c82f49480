// lib/core/transpose.ts against an explicit index loop, across tile edges (64) and for both element
// sizes; the in-place version through its one-matrix scratch buffer.
import { describe, expect, it } from 'vitest';
import { swapLastTwo, transposeLastTwo, transposeLastTwoInPlace } from '../lib/core/transpose.js';

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
