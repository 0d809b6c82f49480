// The error of each quantized tensor against its source (relative RMSE, max |error|, and every
// element's error counted by binade), measured in chunks off the critical path while the next
// tensor is read and quantized. The sums and counts come from the backend's errorSums kernel
// (lib/kernels/ref/error-sums.ts defines them: the same bits and counts on every backend and for
// any chunking), which reads 16-bit sources as they are.
import type { StepProgress } from '../core/async-jobs.js';
import { DtypeId, type DtypeName } from '../core/formats.js';
import { dequantize, type QuantizedTensor } from '../core/quantize.js';
import { checkFgmpTensor, decodeFgmpRows, type FgmpTensor } from '../fgmp/quantize.js';
import { getKernels } from '../kernels/registry.js';
import { ERROR_BINS } from '../kernels/ref/error-sums.js';
import { tensorErrorHistogram } from './error-histogram.js';
import { elementCount } from './source-view.js';
import type { TensorErrorHistogram } from './summary.js';

const turn = () => new Promise<void>((r) => setImmediate(r));

/**
 * The share of a quantized tensor's input bytes that a checkpoint run's progress counts for its
 * error check (the rest for its quantization), so that the bar does not stand at the end of a
 * tensor, or of the run, while the check is still reading it. The check's share of a tensor's time,
 * check / (quantization + check), measured 2026-12-07 on 2 shared vCPUs (quantizeTensor then
 * measureError on a 16384² bf16 tensor, 512 MiB, two runs each; native unless said): NVFP4 25 %
 * (1.30–1.39 s then 0.41–0.52 s), MXFP4 43 % (1.45 then 1.08 s), NVFP4 on wasm 36–44 %, NVFP4 on js
 * (4096×16384) 25–28 %, FGMP 5–11 % (7.8–15.6 s then 0.66–0.98 s). One share for all: the ETA is
 * an estimate, and a bar that moves during the check matters more than its exact pace.
 */
export const ERROR_CHECK_SHARE = 0.25;

/** Rows of a block-format tensor as a tensor of their own (rows are independent). */
function rowSlice(q: QuantizedTensor, r0: number, r1: number): QuantizedTensor {
  const cols = q.shape[q.shape.length - 1];
  const rows = q.data.length === 0 ? 0 : elementCount(q.shape) / cols;
  const rowBytes = q.data.length / rows;
  const rowScales = q.scales.length / rows;
  return { ...q, shape: [r1 - r0, cols], data: q.data.subarray(r0 * rowBytes, r1 * rowBytes), scales: q.scales.subarray(r0 * rowScales, r1 * rowScales) };
}

/**
 * Relative RMSE ‖x − y‖ / ‖x‖, max |x − y| and the per-element error histogram (binades of
 * |x − y|, with the tensor's RMS binade: lib/checkpoint/error-histogram.ts) between a source tensor
 * and its dequantized copy, dequantizing a few rows at a time into a small scratch buffer (memory
 * stays O(chunk), and the event loop gets a turn between chunks); FGMP's rows come from its
 * dequantizeFgmp kernel, which finds a row range's place in the variable-size block stream from
 * the mask. With `progress`, `progress.between(elementsDone)` is awaited each time about
 * `progress.elements` more elements have been measured (at a chunk's end, never after the last).
 */
export async function measureError(
  x: Float32Array | Uint16Array, dtype: DtypeName, q: QuantizedTensor | FgmpTensor, signal?: AbortSignal, progress?: StepProgress,
): Promise<{ relRmse: number; maxAbsError: number; errorHistogram: TensorErrorHistogram }> {
  const cols = q.shape[q.shape.length - 1];
  const rows = cols === 0 ? 0 : x.length / cols;
  const rowsPerChunk = Math.max(1, Math.floor((1 << 20) / Math.max(1, cols)));
  const fgmp = q.format === 'fgmp' ? checkFgmpTensor('measureError', q) : null;
  const scratch = new Float32Array(Math.min(rows, rowsPerChunk) * cols);
  const sums = new Float64Array(3); // Σ(x − y)², Σx², max |x − y|, carried from chunk to chunk
  const bins = new Float64Array(ERROR_BINS); // the elements' counts by bin of x − y, likewise
  let reported = 0; // elements measured at the last progress report
  for (let r0 = 0; r0 < rows; r0 += rowsPerChunk) {
    const r1 = Math.min(rows, r0 + rowsPerChunk);
    const start = r0 * cols;
    const n = (r1 - r0) * cols;
    const y = scratch.subarray(0, n);
    if (fgmp) decodeFgmpRows(fgmp, y, r0, r1);
    else dequantize(rowSlice(q as QuantizedTensor, r0, r1), { out: y });
    getKernels().errorSums(x.subarray(start, start + n), DtypeId[dtype], y, r1 - r0, cols, sums, bins);
    if (r1 < rows) {
      if (progress && r1 * cols - reported >= progress.elements) {
        reported = r1 * cols;
        await progress.between(reported);
      }
      await turn(); // keep the event loop responsive on huge tensors
      signal?.throwIfAborted();
    }
  }
  const [num, den, maxAbs] = sums;
  // The sums' max skips NaN differences; a tensor with any (a NaN or Inf weight: MX gives its
  // block the NaN scale) has no max error to report, as it has no RMSE.
  return {
    relRmse: den === 0 ? (num === 0 ? 0 : Infinity) : Math.sqrt(num / den),
    maxAbsError: Number.isNaN(num) ? NaN : maxAbs,
    errorHistogram: tensorErrorHistogram(bins, den, rows * cols),
  };
}
