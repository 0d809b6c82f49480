// Writing one output shard: each tensor of the input shard copied through or quantized and
// encoded in plan order, the next tensor read ahead while the current one is quantized, and each
// quantized tensor's error measured while the next one is worked on (at most one check in flight).
import { basename, join } from 'node:path';
import type { FgmpTensor } from '../fgmp/quantize.js';
import { BLOCK_FORMATS } from '../core/formats.js';
import { transposeLastTwoInPlace } from '../core/transpose.js';
import type { Layout } from './layouts/index.js';
import type { TensorInfo } from './safetensors/header.js';
import type { SafetensorsFile } from './safetensors/read.js';
import { SafetensorsWriter, specByteLength, type TensorSpec } from './safetensors/write.js';
import { COPY_CHUNK, type PlannedTensor } from './plan.js';
import { BufferPool, ReadAhead } from './read-ahead.js';
import { QUANTIZE_STEP_BYTES, quantizeTensor, type RunQuantizer } from './quantize-tensor.js';
import { ERROR_CHECK_SHARE, measureError } from './error-stats.js';
import { sourceView } from './source-view.js';
import type { TensorSummary } from './summary.js';

/** Copy a tensor's bytes through unchanged, a chunk at a time; `copied` hears of each chunk but
 *  the last (an embedding can be gigabytes: progress moves inside it). */
async function copyTensor(shard: SafetensorsFile, info: TensorInfo, writer: SafetensorsWriter, signal: AbortSignal | undefined, copied: (bytes: number) => Promise<void>): Promise<void> {
  const total = info.end - info.begin;
  const chunk = new Uint8Array(Math.min(COPY_CHUNK, total));
  for (let off = 0; off < total; off += chunk.length) {
    const piece = chunk.subarray(0, Math.min(chunk.length, total - off));
    await shard.readInto(info, piece, off);
    await writer.write(info.name, piece);
    signal?.throwIfAborted();
    if (off + piece.length < total) await copied(off + piece.length);
  }
}

/** Write a quantized tensor's output tensors (the layout's encode, in plan order); returns the bytes written. */
async function writeTensors(writer: SafetensorsWriter, specs: TensorSpec[], parts: Uint8Array[]): Promise<number> {
  let written = 0;
  for (let k = 0; k < specs.length; k++) {
    const want = specByteLength(specs[k]);
    if (parts[k].length !== want) throw new Error(`internal: ${specs[k].name} has ${parts[k].length} bytes, planned ${want}`);
    await writer.write(specs[k].name, parts[k]);
    written += want;
  }
  return written;
}

/** What the shards of one run share: how to quantize, where to write, what to report. */
export interface ShardRun {
  quantizer: RunQuantizer;
  layout: Layout;
  stagingDir: string;
  measure: boolean;
  /** Input buffers, recycled across tensors and shards. */
  pool: BufferPool;
  /** `before` each tensor; `within` a copied or quantized one, with its input bytes copied or
   *  quantized so far (after every chunk or step but the last); `done` after each, with its input
   *  bytes done and its output bytes. With error checks a quantized tensor's input bytes count
   *  ERROR_CHECK_SHARE for its check: `within` and `done` count the rest, `checked` adds the
   *  check's as it goes (it runs while the next tensor is worked on), and reports only when
   *  `report` (the shard waits for that check: nothing else reports meanwhile). */
  progress: {
    before(name: string): Promise<void>;
    within(name: string, bytes: number): Promise<void>;
    done(inputBytes: number, outputBytes: number): void;
    checked(name: string, bytes: number, report: boolean): Promise<void>;
  };
}

/** Writes the output shard of `shard` (its tensors in `plan` order) into the staging folder; returns
 *  its writer (finished, not yet published) and the tensors' summaries. */
export async function writeShard(run: ShardRun, shard: SafetensorsFile, plan: PlannedTensor[]): Promise<{ writer: SafetensorsWriter; summaries: TensorSummary[] }> {
  const { quantizer, layout, pool } = run;
  const { options, signal } = quantizer;
  const fileName = basename(shard.path);
  // The MX scale rule goes with each tensor (NVFP4's and FGMP's E4M3 block scales have none).
  const scaleRule = options.format !== 'fgmp' && !BLOCK_FORMATS[options.format].hasTensorScale ? options.scaleRule : undefined;
  const quantEntries = plan.filter((p) => p.quantize).map((p) => ({ name: p.info.name, shape: p.info.shape, format: options.format, scaleRule }));
  const metadata = { ...shard.metadata, ...(layout.metadata && quantEntries.length > 0 ? layout.metadata(quantEntries) : {}) };
  const writer = await SafetensorsWriter.create(join(run.stagingDir, fileName), plan.flatMap((p) => p.specs), metadata);
  const summaries: TensorSummary[] = [];
  let pendingCheck: Promise<void> | null = null;
  // Stops a check in flight when the shard fails: nothing of a failed shard runs on after it.
  const stopCheck = new AbortController();
  const checkSignal = signal ? AbortSignal.any([signal, stopCheck.signal]) : stopCheck.signal;
  let waitingOnCheck = false; // the loop awaits the check: its progress is reported by the check
  const awaitCheck = async () => {
    const p = pendingCheck;
    pendingCheck = null;
    if (!p) return;
    waitingOnCheck = true;
    try {
      await p;
    } finally {
      waitingOnCheck = false;
    }
  };
  try {
    const reads = new ReadAhead(shard, plan, pool);
    for (let i = 0; i < plan.length; i++) {
      signal?.throwIfAborted();
      const p = plan[i];
      const { info } = p;
      const inputBytes = info.end - info.begin;
      await run.progress.before(info.name);
      if (!p.quantize) {
        await copyTensor(shard, info, writer, signal, (bytes) => run.progress.within(info.name, bytes));
        summaries.push({ name: info.name, dtype: info.dtype, shape: info.shape, action: 'copied', reason: p.reason, file: fileName, outputs: [info.name], inputBytes, outputBytes: inputBytes });
        run.progress.done(inputBytes, inputBytes);
        continue;
      }
      const bytes = await reads.take(i);
      if (p.transpose) await transposeLastTwoInPlace(bytes, info.shape, info.dtype === 'F32' ? 4 : 2, signal);
      const { x, dtype } = sourceView(bytes, info.dtype);
      const shape = p.blockedShape!;
      // The progress's bytes of this tensor: its quantization's, then its error check's.
      const checkBytes = run.measure ? Math.round(inputBytes * ERROR_CHECK_SHARE) : 0;
      const quantizeBytes = inputBytes - checkBytes;
      const q = await quantizeTensor(quantizer, shard.path, info.name, x, dtype, shape,
        (done) => run.progress.within(info.name, checkBytes === 0 ? done : Math.floor((done * quantizeBytes) / inputBytes)));
      const bytesOut = await writeTensors(writer, p.specs, layout.encode(info.name, q));
      const s: TensorSummary = {
        name: info.name, dtype: info.dtype, shape: info.shape, action: 'quantized', format: options.format, file: fileName,
        outputs: p.specs.map((sp) => sp.name), inputBytes, outputBytes: bytesOut, bitsPerElement: (bytesOut * 8) / x.length,
      };
      if (q.format === 'fgmp') s.fp4Fraction = (q as FgmpTensor).fp4Fraction;
      if (q.format === 'fgmp' && quantizer.fisher) s.fisherWeighted = quantizer.fisher.tensor(info.name) !== undefined;
      if (p.transpose) s.blockedShape = shape;
      summaries.push(s);
      run.progress.done(quantizeBytes, bytesOut);
      if (run.measure) {
        // The error check runs in event-loop turns while the next tensor is read, quantized
        // (off-thread) and written; at most one check is in flight. Its progress comes every
        // QUANTIZE_STEP_BYTES of input, the rest of its share when it ends.
        await awaitCheck();
        let counted = 0;
        const count = async (elementsDone: number) => {
          const now = elementsDone >= x.length ? checkBytes : Math.floor((elementsDone * checkBytes) / x.length);
          const add = now - counted;
          counted = now;
          await run.progress.checked(info.name, add, waitingOnCheck);
        };
        pendingCheck = measureError(x, dtype, q, checkSignal, { elements: QUANTIZE_STEP_BYTES / x.BYTES_PER_ELEMENT, between: count }).then(async (r) => {
          Object.assign(s, r);
          pool.give(bytes);
          await count(x.length);
        });
        pendingCheck.catch(() => {}); // reported when awaited
      } else {
        pool.give(bytes);
      }
    }
    await awaitCheck();
    await writer.finish();
  } catch (err) {
    stopCheck.abort();
    await pendingCheck?.catch(() => {});
    await writer.abort();
    throw err;
  }
  return { writer, summaries };
}
