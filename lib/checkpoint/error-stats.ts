// The error of each quantized tensor against its source (relative RMSE, max |error|), measured in
// chunks off the critical path while the next tensor is read and quantized.
import type { DtypeName } from '../core/formats.js';
import { dequantize, type QuantizedTensor } from '../core/quantize.js';
import type { FgmpTensor } from '../fgmp/quantize.js';
import { f16BitsToF32Bits } from '../kernels/ref/dtype.js';
import { elementCount } from './source-view.js';

const turn = () => new Promise<void>((r) => setImmediate(r));

/** Rows of a block-format tensor as a tensor of their own (rows are independent). */
function rowSlice(q: QuantizedTensor, r0: number, r1: number): QuantizedTensor {
  const cols = q.shape[q.shape.length - 1];
  const rows = q.data.length === 0 ? 0 : elementCount(q.shape) / cols;
  const rowBytes = q.data.length / rows;
  const rowScales = q.scales.length / rows;
  return { ...q, shape: [r1 - r0, cols], data: q.data.subarray(r0 * rowBytes, r1 * rowBytes), scales: q.scales.subarray(r0 * rowScales, r1 * rowScales) };
}

/** float32 value of every 16-bit pattern (bf16 or f16): one table load per element is faster
 *  than widening through a scratch buffer, and makes f16 as cheap as bf16. */
const widenTables = new Map<DtypeName, Float32Array>();
function widenTable(dtype: 'bf16' | 'f16'): Float32Array {
  let t = widenTables.get(dtype);
  if (!t) {
    t = new Float32Array(65536);
    const bits = new Uint32Array(t.buffer);
    for (let h = 0; h < 65536; h++) bits[h] = dtype === 'bf16' ? h << 16 : f16BitsToF32Bits(h);
    widenTables.set(dtype, t);
  }
  return t;
}

interface ErrorSums { num: number; den: number; maxAbs: number }

/** Adds the squared error, squared source and max |error| of source `a` against dequantized `y`. */
function accumulate(a: Float32Array, y: Float32Array, e: ErrorSums): void {
  let { num, den, maxAbs } = e;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - y[i];
    num += d * d;
    den += a[i] * a[i];
    const ad = Math.abs(d);
    if (ad > maxAbs) maxAbs = ad;
  }
  e.num = num; e.den = den; e.maxAbs = maxAbs;
}

/**
 * Relative RMSE ‖x − y‖ / ‖x‖ and max |x − y| between a source tensor and its dequantized copy,
 * dequantizing a few rows at a time into a small scratch buffer (memory stays O(chunk), and the
 * event loop gets a turn between chunks). FGMP's variable-size blocks are dequantized whole.
 */
export async function measureError(
  x: Float32Array | Uint16Array, dtype: DtypeName, q: QuantizedTensor | FgmpTensor, signal?: AbortSignal,
): Promise<{ relRmse: number; maxAbsError: number }> {
  const cols = q.shape[q.shape.length - 1];
  const rows = x.length / cols;
  const CHUNK = Math.max(cols, Math.floor((1 << 20) / cols) * cols);
  const rowsPerChunk = CHUNK / cols;
  const whole = q.format === 'fgmp' ? dequantize(q) : null;
  const scratch = whole ? null : new Float32Array(CHUNK);
  const table = dtype === 'f32' ? null : widenTable(dtype);
  const widened = table ? new Float32Array(CHUNK) : null; // a 16-bit chunk as float32
  const e: ErrorSums = { num: 0, den: 0, maxAbs: 0 };
  for (let r0 = 0; r0 < rows; r0 += rowsPerChunk) {
    const r1 = Math.min(rows, r0 + rowsPerChunk);
    const start = r0 * cols;
    const n = (r1 - r0) * cols;
    const y = whole ? whole.subarray(start, start + n) : dequantize(rowSlice(q as QuantizedTensor, r0, r1), { out: scratch!.subarray(0, n) });
    let a: Float32Array;
    if (table) {
      a = widened!.subarray(0, n);
      for (let i = 0; i < n; i++) a[i] = table[x[start + i]];
    } else {
      a = (x as Float32Array).subarray(start, start + n);
    }
    accumulate(a, y, e);
    if (r1 < rows) {
      await turn(); // keep the event loop responsive on huge tensors
      signal?.throwIfAborted();
    }
  }
  const { num, den, maxAbs } = e;
  return { relRmse: den === 0 ? (num === 0 ? 0 : Infinity) : Math.sqrt(num / den), maxAbsError: maxAbs };
}
