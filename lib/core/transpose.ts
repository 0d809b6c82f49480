// Swapping the last two axes of a tensor, one matrix at a time. Layouts whose loaders block a
// tensor along an axis that is not its last one (gpt-oss experts are stored [E, in, out] but
// blocked along `in`) quantize the transposed tensor, and read-back transposes the decoded values
// back. Exact: elements are moved, never converted.

type Elements = Uint16Array | Uint32Array | Float32Array;

const TILE = 64; // a 64×64 tile of 4-byte elements is 16 KiB: both sides stay in L1

/** Transpose matrix m ([rows, cols], row-major) of `src` into matrix m ([cols, rows]) of `dst`. */
function transposeMatrix(src: Elements, dst: Elements, m: number, rows: number, cols: number): void {
  const base = m * rows * cols;
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(rows, r0 + TILE);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(cols, c0 + TILE);
      for (let r = r0; r < r1; r++) {
        const from = base + r * cols;
        for (let c = c0; c < c1; c++) dst[base + c * rows + r] = src[from + c];
      }
    }
  }
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
  for (let m = 0; m < count; m++) transposeMatrix(x, out, m, rows, cols);
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
    transposeMatrix(scratch, data.subarray(at, at + rows * cols), 0, rows, cols);
    if (m + 1 < count) {
      await new Promise<void>((r) => setImmediate(r));
      signal?.throwIfAborted();
    }
  }
}
