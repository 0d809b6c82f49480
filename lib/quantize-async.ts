// quantizeAsync: quantize() without blocking the event loop, cancellable with an AbortSignal.
// With the native addon's async kernels the work runs on its threads; otherwise the rows are cut
// into chunks and the event loop gets a turn (setImmediate) between chunks. Every chunk passes
// `firstIndex`, so stochastic rounding draws the same random bits as one synchronous call and the
// result is bit-identical to quantize().

import { getKernels } from './backend.js';
import { nvfp4TensorScale } from './block-scale.js';
import { BLOCK_FORMATS, DtypeId, RoundingId, ScaleRuleId, packedRowBytes } from './formats.js';
import { quantize, type QuantizeOptions, type QuantizedTensor } from './quantize.js';
import { quantizeFgmpAsync, type FgmpOptions, type FgmpTensor } from './fgmp/quantize.js';
import { checkBlockFormat, checkRounding, checkScaleRule, checkShape, checkSource, checkTensorScale } from './validate.js';
import type { Kernels, Source } from './backends/kernels.js';

export interface AsyncOptions {
  signal?: AbortSignal;
}

/** Elements per synchronous chunk (≈ a few ms on the slowest backend) and per off-thread call. */
const SYNC_CHUNK_ELEMENTS = 1 << 16;
const ASYNC_CHUNK_ELEMENTS = 1 << 24;

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

export function quantizeAsync(x: Float32Array | Uint16Array, options: FgmpOptions & { format: 'fgmp' } & AsyncOptions): Promise<FgmpTensor>;
export function quantizeAsync(x: Float32Array | Uint16Array, options: QuantizeOptions & AsyncOptions): Promise<QuantizedTensor>;
export async function quantizeAsync(
  x: Float32Array | Uint16Array,
  options: (QuantizeOptions | (FgmpOptions & { format: 'fgmp' })) & AsyncOptions,
): Promise<QuantizedTensor | FgmpTensor> {
  const fn = 'quantizeAsync';
  if (options === null || typeof options !== 'object') throw new TypeError(`${fn}: options { format, shape } are required`);
  const { signal } = options;
  signal?.throwIfAborted();
  if (options.format === 'fgmp') {
    // FGMP picks blocks over the whole tensor at once. The per-block work (both encodings, the
    // clipping search, the impacts) runs on the addon's threads; the linear-time selection and
    // the assembly stay on this thread. Without the addon it is one synchronous step after a turn.
    await turn();
    signal?.throwIfAborted();
    const q = await quantizeFgmpAsync(x, options as FgmpOptions);
    signal?.throwIfAborted();
    return q;
  }
  const formatName = checkBlockFormat(fn, options.format);
  const format = BLOCK_FORMATS[formatName];
  const dtype = checkSource(fn, x, options.dtype);
  const { rows, cols, shape } = checkShape(fn, options.shape, x.length);
  const { rounding, seed } = checkRounding(fn, options.rounding, options.seed);
  const rowBytes = packedRowBytes(format, cols);
  const blocksPerRow = Math.ceil(cols / format.blockSize);
  const data = new Uint8Array(rows * rowBytes);
  const scales = new Uint8Array(rows * blocksPerRow);
  const kernels = getKernels();
  const isNvfp4 = formatName === 'nvfp4';
  const asyncKernel = isNvfp4 ? kernels.quantizeNvfp4Async : kernels.quantizeMxAsync;
  const chunkElements = asyncKernel ? ASYNC_CHUNK_ELEMENTS : SYNC_CHUNK_ELEMENTS;
  const rowsPerChunk = Math.max(1, Math.floor(chunkElements / Math.max(1, cols)));

  let tensorScale = 0;
  let scaleRule: 'floor' | 'ceil' | undefined;
  if (isNvfp4) {
    if (options.scaleRule !== undefined) throw new RangeError(`${fn}: scaleRule applies to MX formats, not nvfp4`);
    const amax = await chunkedAbsMax(kernels, x, DtypeId[dtype], rows, cols, rowsPerChunk, signal, asyncKernel !== undefined);
    if (!Number.isFinite(amax)) throw new RangeError(`${fn}: nvfp4 input holds NaN or Inf, which E2M1 cannot represent`);
    tensorScale = options.tensorScale !== undefined ? checkTensorScale(fn, options.tensorScale) : nvfp4TensorScale(amax);
  } else {
    if (options.tensorScale !== undefined) throw new RangeError(`${fn}: tensorScale applies to nvfp4 only`);
    scaleRule = checkScaleRule(fn, options.scaleRule);
  }

  for (let r0 = 0; r0 < rows; r0 += rowsPerChunk) {
    signal?.throwIfAborted();
    const r1 = Math.min(rows, r0 + rowsPerChunk);
    const src = x.subarray(r0 * cols, r1 * cols) as Source;
    const d = data.subarray(r0 * rowBytes, r1 * rowBytes);
    const s = scales.subarray(r0 * blocksPerRow, r1 * blocksPerRow);
    const n = r1 - r0;
    const first = r0 * cols;
    if (isNvfp4) {
      const args = [src, DtypeId[dtype], n, cols, tensorScale, RoundingId[rounding], seed, d, s, first] as const;
      if (asyncKernel) await kernels.quantizeNvfp4Async!(...args);
      else {
        kernels.quantizeNvfp4(...args);
        if (r1 < rows) await turn();
      }
    } else {
      const args = [src, DtypeId[dtype], n, cols, format.element.id, ScaleRuleId[scaleRule!], RoundingId[rounding], seed, d, s, first] as const;
      if (asyncKernel) await kernels.quantizeMxAsync!(...args);
      else {
        kernels.quantizeMx(...args);
        if (r1 < rows) await turn();
      }
    }
  }
  signal?.throwIfAborted();
  return isNvfp4
    ? { format: formatName, shape, data, scales, tensorScale, blockSize: format.blockSize }
    : { format: formatName, shape, data, scales, blockSize: format.blockSize, scaleRule };
}

/** max |x| chunk by chunk (max is order-free, NaN anywhere gives NaN). */
async function chunkedAbsMax(
  kernels: Kernels, x: Source, dtype: (typeof DtypeId)[keyof typeof DtypeId], rows: number, cols: number,
  rowsPerChunk: number, signal: AbortSignal | undefined, offThread: boolean,
): Promise<number> {
  // The native absMax is a memory-speed pass: one call. The others are chunked.
  if (offThread) return kernels.absMax(x, dtype);
  let amax = 0;
  for (let r0 = 0; r0 < rows; r0 += rowsPerChunk) {
    signal?.throwIfAborted();
    const r1 = Math.min(rows, r0 + rowsPerChunk);
    const m = kernels.absMax(x.subarray(r0 * cols, r1 * cols) as Source, dtype);
    if (Number.isNaN(m)) return NaN;
    if (m > amax) amax = m;
    if (r1 < rows) await turn();
  }
  return amax;
}
