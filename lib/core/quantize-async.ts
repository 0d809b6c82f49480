// quantizeAsync: quantize() without blocking the event loop, cancellable with an AbortSignal.
//
// What the caller may do meanwhile: anything. The call takes what it needs before it returns its
// Promise: with the native addon one job over the whole tensor starts at once and owns a snapshot
// of the input (native/job_buffers.h); on the other backends the input is copied at the call (into
// reused memory: takeSnapshot) and the rows are cut into chunks, with a turn of the event loop
// (nextTurn: setImmediate, or a MessageChannel message in browsers) before the first chunk and
// between chunks. The turn before the first chunk makes even a one-chunk tensor finish after the
// call has returned, as a native job does: an abort or a detached `out` right after the call is
// seen on every backend.
// Either way, writing to, transferring, detaching or shrinking `x` after the call changes nothing.
// The codes go to arrays of the call's own and into `options.out` when the job ends, checked then:
// an `out` detached or resized meanwhile is a TypeError and nothing is written.
// A SharedArrayBuffer-backed `x` is read in place instead (no copy; it cannot be detached or
// shrunk): writes to it by other threads during the call give unspecified codes, never a crash.
// Every chunk passes `firstIndex`, so stochastic rounding draws the same random bits as one
// synchronous call and the result is bit-identical to quantize().
// quantizeAsyncInSteps (the checkpoint tool's) cuts the rows into steps with a progress report
// between them: a native job per step, reading an input its caller keeps unchanged meanwhile.

import { getKernels } from '../kernels/registry.js';
import { DtypeId } from './formats.js';
import { QUANTIZE_OPTION_KEYS, planQuantize, refuseBlockOptions, planTensorScale, type QuantizeOptions, type QuantizedTensor } from './quantize.js';
import { FGMP_OPTION_KEYS, quantizeFgmpAsync, type FgmpOptions, type FgmpTensor } from '../fgmp/quantize.js';
import { checkOptions, checkSignal, readFields } from './validate.js';
import type { Kernels, Source } from '../kernels/contract.js';
import { abortable, afterStep, nextTurn, rowsPerStep, takeSnapshot, throwIfAborted, type StepProgress } from './async-jobs.js';

export interface AsyncOptions {
  signal?: AbortSignal;
}

/** Elements per synchronous chunk (≈ a few ms on the slowest backend). */
const SYNC_CHUNK_ELEMENTS = 1 << 16;

const turn = nextTurn;

export function quantizeAsync(x: Float32Array | Uint16Array, options: FgmpOptions & { format: 'fgmp' } & AsyncOptions): Promise<FgmpTensor>;
export function quantizeAsync(x: Float32Array | Uint16Array, options: QuantizeOptions & AsyncOptions): Promise<QuantizedTensor>;
export function quantizeAsync(
  x: Float32Array | Uint16Array,
  options: (QuantizeOptions | (FgmpOptions & { format: 'fgmp' })) & AsyncOptions,
): Promise<QuantizedTensor | FgmpTensor> {
  return quantizeInSteps(x, options, undefined);
}

/**
 * quantizeAsync with progress inside the tensor (the checkpoint tool's, for tensors of gigabytes):
 * the rows in steps, `progress.between` awaited after each step but the last. The caller keeps `x`
 * unchanged until the Promise settles (see StepProgress); the result is quantizeAsync's, bit for bit.
 */
export function quantizeAsyncInSteps(
  x: Float32Array | Uint16Array,
  options: (QuantizeOptions | (FgmpOptions & { format: 'fgmp' })) & AsyncOptions,
  progress: StepProgress,
): Promise<QuantizedTensor | FgmpTensor> {
  return quantizeInSteps(x, options, progress);
}

async function quantizeInSteps(
  x: Float32Array | Uint16Array,
  options: (QuantizeOptions | (FgmpOptions & { format: 'fgmp' })) & AsyncOptions,
  progress: StepProgress | undefined,
): Promise<QuantizedTensor | FgmpTensor> {
  // No await before the work has taken its snapshot: the caller runs on as soon as we return.
  const fn = 'quantizeAsync';
  const opts = readFields(checkOptions<object>(fn, options, '{ format, shape?, signal? }', false, QUANTIZE_OPTION_KEYS), QUANTIZE_OPTION_KEYS) as QuantizeOptions & AsyncOptions;
  const signal = checkSignal(fn, opts.signal);
  // Bad arguments are refused before an aborted signal is looked at (as fetch() does).
  if ((opts.format as string) === 'fgmp') {
    // FGMP picks blocks over the whole tensor at once. The per-block work (both encodings, the
    // clipping search, the impacts) runs on the addon's threads or in chunks; the linear-time
    // selection and the assembly stay on this thread.
    refuseBlockOptions(fn, opts);
    return abortable(quantizeFgmpAsync(x, readFields(opts, FGMP_OPTION_KEYS) as FgmpOptions, signal, progress), signal);
  }
  const p = planQuantize(fn, x, opts, true); // `out` is written when the job ends
  throwIfAborted(signal);
  const kernels = getKernels();
  const dtype = DtypeId[p.dtype];
  const { rows, cols } = p;
  // Rows per progress step (all of them without progress): each step is one native job, or the
  // chunks below; a row's blocks depend on that row alone (and the tensor scale, computed first).
  const stepRows = rowsPerStep(progress, rows, cols);
  if (kernels.quantizeBlocksAsync && rows > 0) {
    // One job per step (without progress: one over the whole tensor, started now; it snapshots x).
    // The tensor-amax pass is a memory-speed read on the addon's threads, done here first.
    const tensorScale = p.format.hasTensorScale ? planTensorScale(fn, p, kernels.absMax(p.src, dtype)) : 0;
    for (let s0 = 0; s0 < rows; s0 += stepRows) {
      const s1 = Math.min(rows, s0 + stepRows);
      const src = s0 === 0 && s1 === rows ? p.src : p.src.subarray(s0 * cols, s1 * cols) as Source;
      await abortable(kernels.quantizeBlocksAsync(p.call(tensorScale, src, s0, s1)), signal);
      await afterStep(progress, s1, rows, cols, signal);
    }
    return p.result(tensorScale);
  }
  // Chunks on this thread, over a copy taken now, each after a turn of the event loop.
  const snapshot = takeSnapshot(p.src);
  try {
    const src = snapshot.array;
    const rowsPerChunk = Math.max(1, Math.floor(SYNC_CHUNK_ELEMENTS / Math.max(1, cols)));
    const tensorScale = p.format.hasTensorScale ? planTensorScale(fn, p, await chunkedAbsMax(kernels, src, dtype, rows, cols, rowsPerChunk, signal)) : 0;
    for (let s0 = 0; s0 < rows; s0 += stepRows) {
      const s1 = Math.min(rows, s0 + stepRows);
      for (let r0 = s0; r0 < s1; r0 += rowsPerChunk) {
        await turn();
        throwIfAborted(signal);
        const r1 = Math.min(s1, r0 + rowsPerChunk);
        kernels.quantizeBlocks(p.call(tensorScale, src.subarray(r0 * cols, r1 * cols) as Source, r0, r1));
      }
      await afterStep(progress, s1, rows, cols, signal);
    }
    if (rows === 0) await turn(); // no chunk: still settles after the call has returned
    throwIfAborted(signal);
    return p.result(tensorScale);
  } finally {
    snapshot.release();
  }
}

/** max |x| chunk by chunk (max is order-free, NaN anywhere gives NaN). */
async function chunkedAbsMax(
  kernels: Kernels, x: Source, dtype: (typeof DtypeId)[keyof typeof DtypeId], rows: number, cols: number,
  rowsPerChunk: number, signal: AbortSignal | undefined,
): Promise<number> {
  let amax = 0;
  for (let r0 = 0; r0 < rows; r0 += rowsPerChunk) {
    await turn();
    throwIfAborted(signal);
    const r1 = Math.min(rows, r0 + rowsPerChunk);
    const m = kernels.absMax(x.subarray(r0 * cols, r1 * cols) as Source, dtype);
    if (Number.isNaN(m)) return NaN;
    if (m > amax) amax = m;
  }
  return amax;
}
