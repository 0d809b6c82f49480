// quantizeAsync: quantize() without blocking the event loop, cancellable with an AbortSignal.
//
// What the caller may do meanwhile: anything. The call takes what it needs before it returns its
// Promise: with the native addon one job over the whole tensor starts at once and owns a snapshot
// of the input (native/job_buffers.h); on the other backends the input is copied at the call and
// the rows are cut into chunks, with a turn of the event loop (setImmediate) between chunks.
// Either way, writing to, transferring, detaching or shrinking `x` after the call changes nothing.
// A SharedArrayBuffer-backed `x` is read in place instead (no copy; it cannot be detached or
// shrunk): writes to it by other threads during the call give unspecified codes, never a crash.
// Every chunk passes `firstIndex`, so stochastic rounding draws the same random bits as one
// synchronous call and the result is bit-identical to quantize().

import { getKernels } from './backend.js';
import { nvfp4TensorScale } from './block-scale.js';
import { BLOCK_FORMATS, DtypeId, RoundingId, ScaleRuleId, packedRowBytes } from './formats.js';
import { checkQuantizeOut, type QuantizeOptions, type QuantizedTensor } from './quantize.js';
import { quantizeFgmpAsync, type FgmpOptions, type FgmpTensor } from './fgmp/quantize.js';
import { checkBlockFormat, checkOptions, checkRounding, checkScaleRule, checkShape, checkSignal, checkSource, checkTensorScale, readShape } from './validate.js';
import type { Kernels, Source } from './backends/kernels.js';
import { abortable, snapshotArray } from './async-jobs.js';

export interface AsyncOptions {
  signal?: AbortSignal;
}

/** Elements per synchronous chunk (≈ a few ms on the slowest backend). */
const SYNC_CHUNK_ELEMENTS = 1 << 16;

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

export function quantizeAsync(x: Float32Array | Uint16Array, options: FgmpOptions & { format: 'fgmp' } & AsyncOptions): Promise<FgmpTensor>;
export function quantizeAsync(x: Float32Array | Uint16Array, options: QuantizeOptions & AsyncOptions): Promise<QuantizedTensor>;
export async function quantizeAsync(
  x: Float32Array | Uint16Array,
  options: (QuantizeOptions | (FgmpOptions & { format: 'fgmp' })) & AsyncOptions,
): Promise<QuantizedTensor | FgmpTensor> {
  // No await before the work has taken its snapshot: the caller runs on as soon as we return.
  const fn = 'quantizeAsync';
  const opts = checkOptions<QuantizeOptions & AsyncOptions>(fn, options, '{ format, shape?, signal? }', false);
  const signal = checkSignal(fn, opts.signal);
  signal?.throwIfAborted();
  if (options.format === 'fgmp') {
    // FGMP picks blocks over the whole tensor at once. The per-block work (both encodings, the
    // clipping search, the impacts) runs on the addon's threads or in chunks; the linear-time
    // selection and the assembly stay on this thread.
    if ((opts as { out?: unknown }).out !== undefined) throw new TypeError(`${fn}: options.out is not available for fgmp (its data size depends on the data)`);
    return abortable(quantizeFgmpAsync(x, options as FgmpOptions, signal), signal);
  }
  // Each option is read once, before the input is looked at (a getter cannot change it later).
  const { format: formatOption, shape: shapeOption, dtype: dtypeOption, rounding: roundingOption, seed: seedOption, scaleRule: scaleRuleOption, tensorScale: tensorScaleOption, out: outOption } = opts;
  const formatName = checkBlockFormat(fn, formatOption);
  const format = BLOCK_FORMATS[formatName];
  const dims = readShape(fn, shapeOption);
  const { rounding, seed } = checkRounding(fn, roundingOption, seedOption);
  const givenScale = formatName === 'nvfp4' && tensorScaleOption !== undefined ? checkTensorScale(fn, tensorScaleOption) : undefined;
  const { dtype, x: input } = checkSource(fn, x, dtypeOption);
  x = input;
  const { rows, cols, shape } = checkShape(fn, dims, x.length);
  const rowBytes = packedRowBytes(format, cols);
  const blocksPerRow = Math.ceil(cols / format.blockSize);
  // out: the caller's arrays, written when the job ends (native) or slice by slice (wasm, js);
  // they must not be used until the Promise settles.
  const out = checkQuantizeOut(fn, outOption, rows * rowBytes, rows * blocksPerRow);
  const data = out?.data ?? new Uint8Array(rows * rowBytes);
  const scales = out?.scales ?? new Uint8Array(rows * blocksPerRow);
  const kernels = getKernels();
  const isNvfp4 = formatName === 'nvfp4';
  const asyncKernel = isNvfp4 ? kernels.quantizeNvfp4Async : kernels.quantizeMxAsync;

  let scaleRule: 'floor' | 'ceil' | undefined;
  if (isNvfp4) {
    if (scaleRuleOption !== undefined) throw new RangeError(`${fn}: scaleRule applies to MX formats, not nvfp4`);
  } else {
    if (tensorScaleOption !== undefined) throw new RangeError(`${fn}: tensorScale applies to nvfp4 only`);
    scaleRule = checkScaleRule(fn, scaleRuleOption);
  }
  const result = (tensorScale: number): QuantizedTensor => isNvfp4
    ? { format: formatName, shape, data, scales, tensorScale, blockSize: format.blockSize }
    : { format: formatName, shape, data, scales, blockSize: format.blockSize, scaleRule };

  if (asyncKernel) {
    // One job over the whole tensor, started now (it snapshots x). The tensor-amax pass is a
    // memory-speed read on the addon's threads, done here before the job starts.
    let tensorScale = 0;
    if (isNvfp4) {
      const amax = kernels.absMax(x as Source, DtypeId[dtype]);
      if (!Number.isFinite(amax)) throw new RangeError(`${fn}: nvfp4 input holds NaN or Inf, which E2M1 cannot represent`);
      tensorScale = givenScale ?? nvfp4TensorScale(amax);
      await abortable(kernels.quantizeNvfp4Async!(x as Source, DtypeId[dtype], rows, cols, tensorScale, RoundingId[rounding], seed, data, scales, 0), signal);
    } else {
      await abortable(kernels.quantizeMxAsync!(x as Source, DtypeId[dtype], rows, cols, format.element.id, ScaleRuleId[scaleRule!], RoundingId[rounding], seed, data, scales, 0), signal);
    }
    return result(tensorScale);
  }

  // Chunks on this thread, over a copy taken now.
  const src = snapshotArray(x);
  const rowsPerChunk = Math.max(1, Math.floor(SYNC_CHUNK_ELEMENTS / Math.max(1, cols)));
  let tensorScale = 0;
  if (isNvfp4) {
    const amax = await chunkedAbsMax(kernels, src, DtypeId[dtype], rows, cols, rowsPerChunk, signal);
    if (!Number.isFinite(amax)) throw new RangeError(`${fn}: nvfp4 input holds NaN or Inf, which E2M1 cannot represent`);
    tensorScale = givenScale ?? nvfp4TensorScale(amax);
  }
  for (let r0 = 0; r0 < rows; r0 += rowsPerChunk) {
    signal?.throwIfAborted();
    const r1 = Math.min(rows, r0 + rowsPerChunk);
    const chunk = src.subarray(r0 * cols, r1 * cols) as Source;
    const d = data.subarray(r0 * rowBytes, r1 * rowBytes);
    const s = scales.subarray(r0 * blocksPerRow, r1 * blocksPerRow);
    const first = r0 * cols;
    if (isNvfp4) kernels.quantizeNvfp4(chunk, DtypeId[dtype], r1 - r0, cols, tensorScale, RoundingId[rounding], seed, d, s, first);
    else kernels.quantizeMx(chunk, DtypeId[dtype], r1 - r0, cols, format.element.id, ScaleRuleId[scaleRule!], RoundingId[rounding], seed, d, s, first);
    if (r1 < rows) await turn();
  }
  signal?.throwIfAborted();
  return result(tensorScale);
}

/** max |x| chunk by chunk (max is order-free, NaN anywhere gives NaN). */
async function chunkedAbsMax(
  kernels: Kernels, x: Source, dtype: (typeof DtypeId)[keyof typeof DtypeId], rows: number, cols: number,
  rowsPerChunk: number, signal: AbortSignal | undefined,
): Promise<number> {
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
