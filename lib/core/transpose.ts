// Transposes: one matrix at a time into a strided destination (transposeInto: the tfjs backend's
// operand layouts, [K, N] → [N, K]), and swapping the last two axes of a tensor (layouts whose
// loaders block a tensor along an axis that is not its last one — gpt-oss experts are stored
// [E, in, out] but blocked along `in` — quantize the transposed tensor, and read-back transposes the
// decoded values back). Exact: elements are moved, never converted. The loops here are the
// reference; 4-byte elements run on the native addon's transposeMatrices where it is loaded
// (native/transpose.h: the same loop in C++ on the addon's threads, ~4× faster on one).

import { getKernels } from '../kernels/registry.js';
import { nextTurn } from './async-jobs.js';

type Elements = Uint16Array | Uint32Array | Float32Array | Int32Array;
type Elements32 = Uint32Array | Float32Array | Int32Array;

const TILE = 64; // a 64×64 tile of 4-byte elements is 16 KiB: both sides stay in L1
/** Below this many elements the addon's call costs more than the loop saves. */
const NATIVE_MIN_ELEMENTS = 4096;

/**
 * dst[dstOffset + i·cols·dstStride + c·dstStride + r] = src[srcOffset + i·rows·cols + r·cols + c] for
 * the `count` matrices i: each row-major [rows, cols] matrix transposed into [cols, dstStride] (the
 * columns from `rows` to dstStride − 1 left as they are). src and dst must not overlap.
 */
export function transposeInto(src: Elements32, srcOffset: number, rows: number, cols: number, dst: Elements32, dstOffset: number, dstStride: number, count = 1): void {
  const fn = 'transposeInto';
  for (const [name, v] of [['srcOffset', srcOffset], ['rows', rows], ['cols', cols], ['dstOffset', dstOffset], ['dstStride', dstStride], ['count', count]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${fn}: ${name} must be an integer ≥ 0, got ${String(v)}`);
  }
  if (dstStride < rows) throw new RangeError(`${fn}: dstStride (${dstStride}) must be at least rows (${rows})`);
  const size = rows * cols;
  if (size === 0 || count === 0) return;
  if (srcOffset + count * size > src.length) throw new RangeError(`${fn}: src holds ${src.length} elements, ${srcOffset + count * size} needed`);
  const dstEnd = dstOffset + (count * cols - 1) * dstStride + rows;
  if (dstEnd > dst.length) throw new RangeError(`${fn}: dst holds ${dst.length} elements, ${dstEnd} needed`);
  if (overlap(src, srcOffset, count * size, dst, dstOffset, dstEnd - dstOffset)) throw new RangeError(`${fn}: src and dst overlap`);
  const kernel = getKernels().transposeMatrices;
  if (kernel !== undefined && count * size >= NATIVE_MIN_ELEMENTS) {
    kernel(src, srcOffset, rows, cols, count, dst, dstOffset, dstStride);
    return;
  }
  const from = bitsOf(src), to = bitsOf(dst);
  for (let i = 0; i < count; i++) transposeTiles(from, srcOffset + i * size, rows, cols, to, dstOffset + i * cols * dstStride, dstStride);
}

/** Whether elements [srcOffset, srcOffset + srcCount) of src and [dstOffset, dstOffset + dstCount) of
 *  dst share a byte (4-byte elements). */
function overlap(src: Elements32, srcOffset: number, srcCount: number, dst: Elements32, dstOffset: number, dstCount: number): boolean {
  if (src.buffer !== dst.buffer) return false;
  const s0 = src.byteOffset + 4 * srcOffset, d0 = dst.byteOffset + 4 * dstOffset;
  return s0 < d0 + 4 * dstCount && d0 < s0 + 4 * srcCount;
}

/** The elements' bits: a float NaN read into a JavaScript number and written back may come out as
 *  another NaN (V8 quiets a signalling one), so elements are moved as integers. */
function bitsOf(a: Elements): Uint32Array | Uint16Array {
  return a instanceof Uint16Array || a instanceof Uint32Array ? a : new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/** One matrix of transposeInto: tiles of 64 × 64, each written row by row (sequential writes,
 *  strided reads: 3× faster here than the other loop order for a 4096² matrix). */
function transposeTiles(src: Elements, srcOffset: number, rows: number, cols: number, dst: Elements, dstOffset: number, dstStride: number): void {
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(rows, r0 + TILE);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(cols, c0 + TILE);
      for (let c = c0; c < c1; c++) {
        const to = dstOffset + c * dstStride;
        for (let r = r0; r < r1; r++) dst[to + r] = src[srcOffset + r * cols + c];
      }
    }
  }
}

/** Matrices [first, first + count) ([rows, cols], row-major) of `src` into the same matrices
 *  ([cols, rows]) of `dst`: 4-byte elements in one transposeInto call, 2-byte ones by the loop. */
function transposeMatrices(src: Elements, dst: Elements, first: number, count: number, rows: number, cols: number): void {
  const size = rows * cols;
  if (!(src instanceof Uint16Array) && !(dst instanceof Uint16Array)) {
    transposeInto(src, first * size, rows, cols, dst, first * size, rows, count);
    return;
  }
  const from = bitsOf(src), to = bitsOf(dst);
  for (let m = first; m < first + count; m++) transposeTiles(from, m * size, rows, cols, to, m * size, rows);
}

/** [..., a, b] → [..., b, a]. */
export function swapLastTwo(shape: readonly number[]): number[] {
  if (shape.length < 2) throw new RangeError(`swapLastTwo: shape [${shape.join(', ')}] has fewer than 2 dimensions`);
  return [...shape.slice(0, -2), shape[shape.length - 1], shape[shape.length - 2]];
}

function matrices(shape: readonly number[]): { count: number; rows: number; cols: number } {
  const rows = shape[shape.length - 2];
  const cols = shape[shape.length - 1];
  return { count: rows * cols === 0 ? 0 : shape.reduce((a, b) => a * b, 1) / (rows * cols), rows, cols };
}

/** A new array holding `x` (shape [..., rows, cols]) with its last two axes swapped. */
export function transposeLastTwo<T extends Elements>(x: T, shape: readonly number[]): T {
  swapLastTwo(shape); // refuses fewer than 2 dimensions
  if (x.length !== shape.reduce((a, b) => a * b, 1)) throw new RangeError(`transposeLastTwo: ${x.length} elements do not fill shape [${shape.join(', ')}]`);
  const { count, rows, cols } = matrices(shape);
  const out = new (x.constructor as new (n: number) => T)(x.length);
  transposeMatrices(x, out, 0, count, rows, cols);
  return out;
}

/**
 * Swap the last two axes of the tensor held in `bytes` (shape [..., rows, cols], elements of
 * `elementBytes` bytes) in place, through a scratch buffer of one matrix, yielding to the event
 * loop between matrices so a multi-gigabyte expert tensor neither doubles memory nor blocks
 * progress reports and Ctrl-C.
 */
export async function transposeLastTwoInPlace(bytes: Uint8Array, shape: readonly number[], elementBytes: 2 | 4, signal?: AbortSignal): Promise<void> {
  swapLastTwo(shape); // refuses fewer than 2 dimensions
  const n = bytes.length / elementBytes;
  if (bytes.byteOffset % elementBytes !== 0 || !Number.isInteger(n) || n !== shape.reduce((a, b) => a * b, 1)) {
    throw new RangeError(`transposeLastTwoInPlace: ${bytes.length} bytes at offset ${bytes.byteOffset} do not hold shape [${shape.join(', ')}] of ${elementBytes}-byte elements`);
  }
  const { count, rows, cols } = matrices(shape);
  const data: Elements = elementBytes === 2 ? new Uint16Array(bytes.buffer, bytes.byteOffset, n) : new Uint32Array(bytes.buffer, bytes.byteOffset, n);
  const scratch: Elements = elementBytes === 2 ? new Uint16Array(rows * cols) : new Uint32Array(rows * cols);
  for (let m = 0; m < count; m++) {
    const at = m * rows * cols;
    (scratch as Uint16Array).set(data.subarray(at, at + rows * cols) as Uint16Array); // same element type at run time
    transposeMatrices(scratch, data.subarray(at, at + rows * cols), 0, 1, rows, cols);
    if (m + 1 < count) {
      await nextTurn();
      signal?.throwIfAborted();
    }
  }
}

/**
 * dst [a, c, b, d] = src [a, b, c, d] (the middle two axes swapped; blocks of d elements moved
 * whole, as bits): d = 1 is a batch of a [b, c] transposes (transposeInto), d > 1 moves blocks —
 * natively where the addon is loaded (swapMiddleAxes), else this loop. src and dst must not overlap.
 */
export function swapMiddleAxesInto(src: Elements32, dims: readonly [number, number, number, number], dst: Elements32): void {
  const fn = 'swapMiddleAxesInto';
  for (const [i, v] of dims.entries()) if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${fn}: dims[${i}] must be an integer ≥ 0, got ${String(v)}`);
  const [a, b, c, d] = dims;
  const n = a * b * c * d;
  if (src.length < n || dst.length < n) throw new RangeError(`${fn}: src holds ${src.length} and dst ${dst.length} elements, ${n} needed`);
  if (n === 0) return;
  if (d === 1) return transposeInto(src, 0, b, c, dst, 0, b, a);
  if (overlap(src, 0, n, dst, 0, n)) throw new RangeError(`${fn}: src and dst overlap`);
  const kernel = getKernels().swapMiddleAxes;
  if (kernel !== undefined && n >= NATIVE_MIN_ELEMENTS) return kernel(src, a, b, c, d, dst);
  const from = bitsOf(src) as Uint32Array, to = bitsOf(dst) as Uint32Array;
  for (let ai = 0; ai < a; ai++) {
    for (let bi = 0; bi < b; bi++) {
      for (let ci = 0; ci < c; ci++) {
        const s = ((ai * b + bi) * c + ci) * d, t = ((ai * c + ci) * b + bi) * d;
        to.set(from.subarray(s, s + d), t);
      }
    }
  }
}

/**
 * A permutation of `shape` reduced to its fewest axes: size-1 axes dropped, and input axes that
 * stay next to each other in the output merged. transpose(x, perm) moves the same elements as
 * transpose(x reshaped to `shape`, `perm`) of the result.
 */
export function collapsePermutation(shape: readonly number[], perm: readonly number[]): { shape: number[]; perm: number[] } {
  const kept = perm.filter((axis) => shape[axis] !== 1);
  // Output-order runs of consecutive input axes.
  const runs: number[][] = [];
  for (const axis of kept) {
    const last = runs[runs.length - 1];
    if (last !== undefined && axis === last[last.length - 1] + 1) last.push(axis);
    else runs.push([axis]);
  }
  const byInput = runs.map((run, i) => ({ first: run[0], size: run.reduce((p, axis) => p * shape[axis], 1), out: i })).sort((x, y) => x.first - y.first);
  const position = new Array<number>(runs.length);
  byInput.forEach((r, i) => (position[r.out] = i));
  return { shape: byInput.map((r) => r.size), perm: position };
}
