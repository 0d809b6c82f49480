// quantizeCheckpoint: a safetensors checkpoint (one file, a folder, or shards with an index) in,
// a quantized checkpoint in one of the output layouts out. Streaming: tensors are read, quantized,
// checked and written one at a time (the next one is read while the current one is quantized),
// so peak memory is a few times the largest tensor, never the model. Everything is written into a
// staging folder beside the output and published as a whole by renaming the folder
// (lib/checkpoint/safetensors/output-folder.ts): a loader never sees a partial file or a mix of two runs, and
// an error or an abort removes the staging folder. The input is only ever opened for reading, and
// outputs that alias it, or shard names that collide with the files written beside them, are
// refused before anything is written.

import { readdir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
// Importing this module alone (without lib/index.ts) must not fall back to the slow reference.
import '../kernels/node-backends.js';
import { getBackend, getKernels } from '../kernels/registry.js';
import { DtypeId, QUANT_FORMAT_NAMES, type DtypeName, type RoundingName, type ScaleRuleName } from '../core/formats.js';
import { dequantize, type QuantizedTensor } from '../core/quantize.js';
import { quantizeAsync } from '../core/quantize-async.js';
import type { FgmpTensor } from '../fgmp/quantize.js';
import { f16BitsToF32Bits } from '../kernels/ref/dtype.js';
import { fmix32 } from '../kernels/ref/stochastic.js';
import { layoutByName, type Layout, type LayoutName, type QuantFormat } from './layouts/index.js';
import { moduleOf } from './layouts/types.js';
import { fusedGroupOf } from './layouts/fused-modules.js';
import { INDEX_NAME, closeCheckpoint, openCheckpoint, type CheckpointFiles } from './safetensors/checkpoint-files.js';
import { AtomicFile } from './safetensors/atomic-file.js';
import { OutputFolder, syncFolder } from './safetensors/output-folder.js';
import { checkNotAliasingInput } from './safetensors/output-aliasing.js';
import { copyRegularFile } from './safetensors/regular-file.js';
import { SafetensorsError, type TensorInfo } from './safetensors/header.js';
import { SafetensorsFile } from './safetensors/read.js';
import { SafetensorsWriter, specByteLength, type TensorSpec } from './safetensors/write.js';
import { copyReason, parseRegex } from './tensor-selection.js';
import { checkSignal } from '../core/validate.js';
import { readModelConfig, type ModelConfig } from './model-config.js';
import { swapLastTwo, transposeLastTwoInPlace } from '../core/transpose.js';

export const SUMMARY_NAME = 'fp4kit-summary.json';

export interface CheckpointOptions {
  format: QuantFormat;
  layout?: LayoutName;
  /** Quantize only tensors whose name matches (lifts the default name rules). */
  only?: RegExp | string;
  /** Never quantize tensors whose name matches. */
  skip?: RegExp | string;
  rounding?: RoundingName;
  seed?: number;
  scaleRule?: ScaleRuleName;
  /** fgmp: a safetensors file of diagonal Fisher values under the same tensor names. */
  fisher?: string;
  fp4Fraction?: number;
  /** modelopt: a calibrated activation decode scale stored as input_scale. */
  inputScale?: number;
  /** Measure relative RMSE and max error of every quantized tensor (default true). */
  measureError?: boolean;
  /** Replace an output folder that is not empty and holds no earlier fp4kit output (CLI --force). */
  overwrite?: boolean;
}

export interface TensorSummary {
  name: string;
  dtype: string;
  shape: number[];
  action: 'quantized' | 'copied';
  reason?: string;
  format?: QuantFormat;
  file: string;
  outputs: string[];
  inputBytes: number;
  outputBytes: number;
  bitsPerElement?: number;
  relRmse?: number;
  maxAbsError?: number;
  fp4Fraction?: number;
  /** The shape it was blocked in, when the layout swapped its last two axes first (gpt-oss experts). */
  blockedShape?: number[];
}

export interface CheckpointSummary {
  tool: 'fp4kit';
  version: 1;
  input: string;
  output: string;
  format: QuantFormat;
  layout: LayoutName;
  backend: string;
  inputBytes: number;
  outputBytes: number;
  seconds: number;
  quantized: number;
  copied: number;
  files: string[];
  tensors: TensorSummary[];
}

export interface CheckpointProgress {
  tensor: string;
  tensorsDone: number;
  tensorCount: number;
  bytesDone: number;
  bytesTotal: number;
  elapsedSeconds: number;
}

/** One part of a distributed run (lib/checkpoint/checkpoint-parts.ts): quantizeCheckpoint writes only these input
 *  shards' output shards, into the run's shared parts folder instead of a staging folder of its own, and
 *  leaves the index, config, side files, summary and the publishing of the output to the merge. */
export interface CheckpointPart {
  /** Indexes into the input's shard list (CheckpointFiles.shards). */
  shards: ReadonlySet<number>;
  /** The folder the parts of the run write into (each shard under a temporary name, renamed when complete). */
  dir: string;
  /** The input, already opened (and checked) by the caller, who closes it. */
  files?: CheckpointFiles;
  /** Awaited before each tensor (a test hook that makes jobs slow; see lib/checkpoint/checkpoint-parts.ts). */
  beforeTensor?: () => Promise<void>;
}

const COPY_CHUNK = 16 << 20;

function regex(flag: string, r: RegExp | string | undefined): RegExp | undefined {
  return r === undefined ? undefined : typeof r === 'string' ? parseRegex(flag, r) : r;
}

function elementCount(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The typed-array view quantize() takes for a tensor's bytes: bf16/f16 as Uint16Array, f32 as Float32Array. */
function sourceView(bytes: Uint8Array, dtype: string): { x: Float32Array | Uint16Array; dtype: DtypeName } {
  if (dtype === 'F32') return { x: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4), dtype: 'f32' };
  return { x: new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2), dtype: dtype === 'BF16' ? 'bf16' : 'f16' };
}

const turn = () => new Promise<void>((r) => setImmediate(r));

/** Stochastic rounding seed of one tensor: the run's seed mixed with the tensor name (FNV-1a),
 *  so tensors draw independent random streams yet every run with the same seed is identical. */
export function tensorSeed(seed: number, name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return fmix32((seed ^ h) >>> 0);
}

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

function accumulate16(x: Uint16Array, table: Float32Array, start: number, y: Float32Array, n: number, e: ErrorSums): void {
  let { num, den, maxAbs } = e;
  for (let i = 0; i < n; i++) {
    const a = table[x[start + i]];
    const d = a - y[i];
    num += d * d;
    den += a * a;
    const ad = Math.abs(d);
    if (ad > maxAbs) maxAbs = ad;
  }
  e.num = num; e.den = den; e.maxAbs = maxAbs;
}

function accumulate32(x: Float32Array, start: number, y: Float32Array, n: number, e: ErrorSums): void {
  let { num, den, maxAbs } = e;
  for (let i = 0; i < n; i++) {
    const a = x[start + i];
    const d = a - y[i];
    num += d * d;
    den += a * a;
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
async function measureError(
  x: Float32Array | Uint16Array, dtype: DtypeName, q: QuantizedTensor | FgmpTensor, signal?: AbortSignal,
): Promise<{ relRmse: number; maxAbsError: number }> {
  const cols = q.shape[q.shape.length - 1];
  const rows = x.length / cols;
  const CHUNK = Math.max(cols, Math.floor((1 << 20) / cols) * cols);
  const rowsPerChunk = CHUNK / cols;
  const whole = q.format === 'fgmp' ? dequantize(q) : null;
  const scratch = whole ? null : new Float32Array(CHUNK);
  const table = dtype === 'f32' ? null : widenTable(dtype);
  const e: ErrorSums = { num: 0, den: 0, maxAbs: 0 };
  for (let r0 = 0; r0 < rows; r0 += rowsPerChunk) {
    const r1 = Math.min(rows, r0 + rowsPerChunk);
    const start = r0 * cols;
    const n = (r1 - r0) * cols;
    const y = whole ? whole.subarray(start, start + n) : dequantize(rowSlice(q as QuantizedTensor, r0, r1), { out: scratch!.subarray(0, n) });
    if (table) accumulate16(x as Uint16Array, table, start, y, n, e);
    else accumulate32(x as Float32Array, start, y, n, e);
    if (r1 < rows) {
      await turn(); // keep the event loop responsive on huge tensors
      signal?.throwIfAborted();
    }
  }
  const { num, den, maxAbs } = e;
  return { relRmse: den === 0 ? (num === 0 ? 0 : Infinity) : Math.sqrt(num / den), maxAbsError: maxAbs };
}

async function readFisher(fisher: SafetensorsFile, name: string, count: number, cols: number): Promise<Float32Array | undefined> {
  const t = fisher.tensor(name);
  if (!t) return undefined;
  const n = elementCount(t.shape);
  if (n !== count && n !== cols) throw new SafetensorsError(fisher.path, `Fisher tensor ${name} has ${n} values; expected ${count} (per element) or ${cols} (per input channel)`);
  const bytes = await fisher.read(t);
  if (t.dtype === 'F32') return new Float32Array(bytes.buffer, bytes.byteOffset, n);
  if (t.dtype !== 'BF16' && t.dtype !== 'F16') throw new SafetensorsError(fisher.path, `Fisher tensor ${name} has dtype ${t.dtype}; expected F32, F16 or BF16`);
  const h = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
  const out = new Float32Array(n);
  const ob = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) ob[i] = t.dtype === 'BF16' ? h[i] << 16 : f16BitsToF32Bits(h[i]);
  return out;
}

/** Recycled 8-byte-aligned byte buffers, handed out as views of the requested length. They are
 *  SharedArrayBuffers so that quantizeAsync's native job reads them in place instead of taking a
 *  snapshot copy (lib/core/quantize-async.ts); nothing else touches a buffer while a job runs. */
class BufferPool {
  private free: SharedArrayBuffer[] = [];
  take(bytes: number): Uint8Array {
    const i = this.free.findIndex((b) => b.byteLength >= bytes);
    const buf = i >= 0 ? this.free.splice(i, 1)[0] : new SharedArrayBuffer(bytes);
    return new Uint8Array(buf, 0, bytes);
  }
  give(view: Uint8Array): void {
    this.free.push(view.buffer as SharedArrayBuffer);
    if (this.free.length > 3) this.free.sort((a, b) => b.byteLength - a.byteLength).pop(); // keep the three largest
  }
}

interface PlannedTensor {
  info: TensorInfo;
  quantize: boolean;
  reason?: string;
  specs: TensorSpec[];
  /** Swap the last two axes before quantizing (the layout's loader blocks along the second-to-last). */
  transpose?: boolean;
  /** The shape quantize() sees: info.shape, or its last two axes swapped. */
  blockedShape?: number[];
}

function planShard(shard: SafetensorsFile, layout: Layout, options: CheckpointOptions, config: ModelConfig, only?: RegExp, skip?: RegExp): PlannedTensor[] {
  return shard.tensors.map((info) => {
    let reason = copyReason(info.name, info.dtype, info.shape, { only, skip, defaults: layout.defaultSelection });
    if (reason === null && elementCount(info.shape) === 0) reason = 'empty tensor';
    try {
      if (reason === null) reason = layout.unsupported(info.name, info.shape, options.format, config);
    } catch (err) {
      if (err instanceof RangeError) throw new SafetensorsError(shard.path, err.message); // a tensor whose role is unknown: refused
      throw err;
    }
    if (reason !== null) return { info, quantize: false, reason, specs: [{ name: info.name, dtype: info.dtype, shape: info.shape }] };
    const transpose = layout.transposedForBlocking?.(info.name) ?? false;
    const blockedShape = transpose ? swapLastTwo(info.shape) : info.shape;
    const cols = blockedShape[blockedShape.length - 1];
    const blocks = (elementCount(blockedShape) / cols) * Math.ceil(cols / 16);
    const fp4Blocks = options.format === 'fgmp' ? Math.round((options.fp4Fraction ?? 0.7) * blocks) : 0;
    return { info, quantize: true, transpose, blockedShape, specs: layout.plan(info.name, blockedShape, options.format, fp4Blocks) };
  });
}

/**
 * The shared amax of every fused group (q/k/v, gate/up) among the tensors to quantize: a pre-pass
 * reading just those tensors in chunks (bounded memory), so each member gets the same tensor scale.
 */
async function fusedGroupAmax(ckpt: CheckpointFiles, plans: PlannedTensor[][], signal?: AbortSignal, wanted?: ReadonlySet<number>): Promise<Map<string, number>> {
  const amax = new Map<string, number>();
  const members = new Map<string, number>();
  const needed = new Set<string>(); // groups with a member in a shard this run writes (a part reads the others too)
  for (let si = 0; si < plans.length; si++) for (const p of plans[si]) {
    const g = p.quantize ? fusedGroupOf(p.info.name) : null;
    if (g !== null) members.set(g, (members.get(g) ?? 0) + 1);
    if (g !== null && (!wanted || wanted.has(si))) needed.add(g);
  }
  const chunk = new Uint8Array(new ArrayBuffer(COPY_CHUNK));
  const kernels = getKernels();
  for (let si = 0; si < plans.length; si++) {
    for (const p of plans[si]) {
      const g = p.quantize ? fusedGroupOf(p.info.name) : null;
      if (g === null || members.get(g)! < 2 || !needed.has(g)) continue;
      const { info } = p;
      const total = info.end - info.begin;
      let m = amax.get(g) ?? 0;
      for (let off = 0; off < total; off += chunk.length) {
        signal?.throwIfAborted();
        const piece = chunk.subarray(0, Math.min(chunk.length, total - off));
        await ckpt.shards[si].readInto(info, piece, off);
        const { x, dtype } = sourceView(piece, info.dtype);
        const a = kernels.absMax(x, DtypeId[dtype]);
        if (!Number.isFinite(a)) throw new SafetensorsError(ckpt.shards[si].path, `tensor ${info.name} holds NaN or Inf, which nvfp4 cannot represent`);
        if (a > m) m = a;
      }
      amax.set(g, m);
    }
  }
  return amax;
}

/** Files fp4kit writes beside the shards (the layout's config.json, modelopt's hf_quant_config.json). */
const SIDE_FILES = new Set([INDEX_NAME, SUMMARY_NAME, 'config.json', 'hf_quant_config.json']);

/**
 * Refuse a shard whose name is also a file written or copied beside the shards (one would clobber
 * the other), and, in a model folder, a shard not named *.safetensors: loaders choose their reader
 * by that suffix and take every other file for a side file (tokenizer.json, a config...).
 */
function checkShardNames(ckpt: CheckpointFiles, sideNames: Iterable<string>, inFolder: boolean): void {
  const side = new Set(sideNames);
  for (const s of ckpt.shards) {
    const name = basename(s.path);
    if (side.has(name)) throw new SafetensorsError(s.path, `a shard named ${name} would collide with the ${name} written beside the shards; rename the shard (and its index entries)`);
    if (inFolder && !name.endsWith('.safetensors')) {
      throw new SafetensorsError(s.path, `a shard named ${name} would be taken for a side file of the model folder (loaders read only *.safetensors files as weights); rename the shard (and its index entries) to end in .safetensors`);
    }
  }
}

export async function quantizeCheckpoint(
  input: string,
  outDir: string,
  options: CheckpointOptions,
  onProgress?: (p: CheckpointProgress) => void,
  signal?: AbortSignal,
  part?: CheckpointPart,
): Promise<CheckpointSummary> {
  const started = performance.now();
  const fn = 'quantizeCheckpoint';
  if (typeof input !== 'string' || input === '') throw new TypeError(`${fn}: input must be a path (a non-empty string), got ${typeof input}`);
  if (typeof outDir !== 'string' || outDir === '') throw new TypeError(`${fn}: outDir must be a path (a non-empty string), got ${typeof outDir}`);
  if (options === null || typeof options !== 'object') throw new TypeError(`${fn}: options must be an object { format, layout?, … }, got ${options === null ? 'null' : typeof options}`);
  if (typeof options.format !== 'string' || !(QUANT_FORMAT_NAMES as readonly string[]).includes(options.format)) {
    throw new RangeError(`${fn}: options.format must be one of ${QUANT_FORMAT_NAMES.join(', ')}, got ${JSON.stringify(options.format)}`);
  }
  if (onProgress !== undefined && typeof onProgress !== 'function') throw new TypeError(`${fn}: onProgress must be a function`);
  signal = checkSignal(fn, signal);
  const layoutName = options.layout ?? 'fp4kit';
  const layout = layoutByName(layoutName, { inputScale: options.inputScale });
  if (!layout.formats.includes(options.format)) {
    throw new RangeError(`the ${layoutName} layout holds ${layout.formats.join(', ')}; not ${options.format}`);
  }
  if (options.fisher !== undefined && options.format !== 'fgmp') throw new RangeError('--fisher applies to --format fgmp only');
  const only = regex('--only', options.only);
  const skip = regex('--skip', options.skip);
  const measure = options.measureError ?? true;
  signal?.throwIfAborted();

  const ckpt = part?.files ?? (await openCheckpoint(input));
  const fisher = options.fisher !== undefined ? await SafetensorsFile.open(options.fisher).catch(async (err: unknown) => {
    if (!part?.files) await closeCheckpoint(ckpt);
    throw err;
  }) : undefined;
  const writers: SafetensorsWriter[] = [];
  const sideFiles: AtomicFile[] = [];
  let out: OutputFolder | undefined;
  try {
    // Everything the run reads is known before anything is written: the files copied beside the
    // shards, config.json (read now, so a bad one fails before the work, not after it).
    const inputIsFolder = await isFolderInput(ckpt, input);
    const copiedFiles = await filesToCopy(ckpt, input);
    checkShardNames(ckpt, [...SIDE_FILES, ...copiedFiles], inputIsFolder);
    const config = await readModelConfig(ckpt.dir); // a FIFO or folder named config.json is refused, never waited on
    const inputFiles = filesRead(ckpt, config, copiedFiles, fisher?.path);
    checkNotAliasingInput(outDir, inputIsFolder ? ckpt.dir : null, inputFiles);
    if (!part) out = await OutputFolder.create(outDir, { overwrite: options.overwrite, inputs: inputIsFolder ? [ckpt.dir, ...inputFiles] : inputFiles });
    const stagingDir = part ? part.dir : out!.staging;
    const plans = ckpt.shards.map((s) => planShard(s, layout, options, config, only, skip));
    const groupAmax = options.format === 'nvfp4' && layout.sharedFusedScales ? await fusedGroupAmax(ckpt, plans, signal, part?.shards) : new Map<string, number>();
    const written = (si: number) => !part || part.shards.has(si);
    const bytesTotal = ckpt.shards.reduce((a, s, si) => a + (written(si) ? s.tensors.reduce((b, t) => b + (t.end - t.begin), 0) : 0), 0);
    const tensorCount = plans.reduce((a, p, si) => a + (written(si) ? p.length : 0), 0);
    const summaries: TensorSummary[] = [];
    let bytesDone = 0;
    let tensorsDone = 0;
    let outputBytes = 0;
    // Input buffers are reused (the tensor being checked, the current one, the one read ahead), so a long run makes no
    // tensor-sized garbage for the collector to catch up with.
    const pool = new BufferPool();
    let pendingCheck: Promise<void> | null = null;
    const awaitCheck = async () => {
      const p = pendingCheck;
      pendingCheck = null;
      if (p) await p;
    };
    const report = (tensor: string) =>
      onProgress?.({ tensor, tensorsDone, tensorCount, bytesDone, bytesTotal, elapsedSeconds: (performance.now() - started) / 1000 });

    for (let si = 0; si < ckpt.shards.length; si++) {
      if (!written(si)) continue;
      const shard = ckpt.shards[si];
      const plan = plans[si];
      const fileName = basename(shard.path);
      const specs = plan.flatMap((p) => p.specs);
      const quantEntries = plan.filter((p) => p.quantize).map((p) => ({ name: p.info.name, shape: p.info.shape, format: options.format }));
      const metadata = { ...shard.metadata, ...(layout.metadata && quantEntries.length > 0 ? layout.metadata(quantEntries) : {}) };
      const writer = await SafetensorsWriter.create(join(stagingDir, fileName), specs, metadata);
      writers.push(writer);
      // Read ahead: the next quantized tensor's bytes load while this one is quantized.
      const reads = new Map<number, Promise<Uint8Array>>();
      const readAhead = (i: number) => {
        for (let j = i; j < plan.length; j++) {
          if (plan[j].quantize) {
            if (!reads.has(j)) {
              const info = plan[j].info;
              const view = pool.take(info.end - info.begin);
              const pending = shard.readInto(info, view).then(() => view);
              pending.catch(() => {}); // a failure is reported when the tensor is awaited, not as an unhandled rejection
              reads.set(j, pending);
            }
            return;
          }
        }
      };
      for (let i = 0; i < plan.length; i++) {
        signal?.throwIfAborted();
        const p = plan[i];
        const { info } = p;
        const inputBytes = info.end - info.begin;
        report(info.name);
        await part?.beforeTensor?.();
        if (!p.quantize) {
          const chunk = new Uint8Array(Math.min(COPY_CHUNK, inputBytes));
          for (let off = 0; off < inputBytes; off += chunk.length) {
            const piece = chunk.subarray(0, Math.min(chunk.length, inputBytes - off));
            await shard.readInto(info, piece, off);
            await writer.write(info.name, piece);
            signal?.throwIfAborted();
          }
          outputBytes += inputBytes;
          summaries.push({ name: info.name, dtype: info.dtype, shape: info.shape, action: 'copied', reason: p.reason, file: fileName, outputs: [info.name], inputBytes, outputBytes: inputBytes });
        } else {
          readAhead(i);
          const bytes = await reads.get(i)!;
          reads.delete(i);
          readAhead(i + 1);
          if (p.transpose) await transposeLastTwoInPlace(bytes, info.shape, info.dtype === 'F32' ? 4 : 2, signal);
          const { x, dtype } = sourceView(bytes, info.dtype);
          const shape = p.blockedShape!;
          const cols = shape[shape.length - 1];
          let q: QuantizedTensor | FgmpTensor;
          if (options.format === 'fgmp') {
            const f = fisher ? await readFisher(fisher, info.name, x.length, cols) : undefined;
            q = await quantizeAsync(x, { format: 'fgmp', shape, dtype, fisher: f, fp4Fraction: options.fp4Fraction ?? 0.7, signal }).catch((err: unknown) => {
              if (err instanceof RangeError) throw new SafetensorsError(shard.path, `tensor ${info.name}: ${err.message}`);
              throw err;
            });
          } else {
            let tensorScale: number | undefined;
            if (options.format === 'nvfp4' && layout.tensorScale) {
              const group = fusedGroupOf(info.name);
              const amax = group !== null && groupAmax.has(group) ? groupAmax.get(group)! : getKernels().absMax(x, DtypeId[dtype]);
              if (!Number.isFinite(amax)) throw new SafetensorsError(shard.path, `tensor ${info.name} holds NaN or Inf, which nvfp4 cannot represent`);
              tensorScale = layout.tensorScale(amax);
            }
            q = await quantizeAsync(x, {
              format: options.format, shape, dtype, rounding: options.rounding, seed: tensorSeed(options.seed ?? 0, info.name),
              scaleRule: options.format === 'nvfp4' ? undefined : options.scaleRule, tensorScale, signal,
            }).catch((err: unknown) => {
              if (err instanceof RangeError) throw new SafetensorsError(shard.path, `tensor ${info.name}: ${err.message}`);
              throw err;
            });
          }
          const parts = layout.encode(info.name, q);
          let written = 0;
          for (let k = 0; k < p.specs.length; k++) {
            const want = specByteLength(p.specs[k]);
            if (parts[k].length !== want) throw new Error(`internal: ${p.specs[k].name} has ${parts[k].length} bytes, planned ${want}`);
            await writer.write(p.specs[k].name, parts[k]);
            written += want;
          }
          outputBytes += written;
          const s: TensorSummary = {
            name: info.name, dtype: info.dtype, shape: info.shape, action: 'quantized', format: options.format, file: fileName,
            outputs: p.specs.map((sp) => sp.name), inputBytes, outputBytes: written, bitsPerElement: (written * 8) / x.length,
          };
          if (q.format === 'fgmp') s.fp4Fraction = (q as FgmpTensor).fp4Fraction;
          if (p.transpose) s.blockedShape = shape;
          summaries.push(s);
          if (measure) {
            // The error check runs in event-loop turns while the next tensor is read, quantized
            // (off-thread) and written; at most one check is in flight.
            await awaitCheck();
            pendingCheck = measureError(x, dtype, q, signal).then((r) => {
              Object.assign(s, r);
              pool.give(bytes);
            });
            pendingCheck.catch(() => {}); // reported when awaited
          } else {
            pool.give(bytes);
          }
        }
        bytesDone += inputBytes;
        tensorsDone++;
      }
      await awaitCheck();
      await writer.finish();
    }
    report('');
    if (part) {
      // A part publishes its own output shards (in the parts folder) only; the merge writes the rest and publishes the output.
      for (const w of writers) await w.publish();
      await syncFolder(part.dir);
      return {
        tool: 'fp4kit', version: 1, input: resolve(input), output: resolve(outDir), format: options.format, layout: layoutName,
        backend: getBackend().name, inputBytes: bytesTotal, outputBytes, seconds: (performance.now() - started) / 1000,
        quantized: summaries.filter((t) => t.action === 'quantized').length, copied: summaries.filter((t) => t.action === 'copied').length,
        files: ckpt.shards.filter((_s, si) => written(si)).map((sh) => basename(sh.path)), tensors: summaries,
      };
    }

    const { outputs, summary, extras } = await checkpointSideFiles({
      ckpt, input, outDir, format: options.format, layoutName, layout, tensors: summaries, copied: copiedFiles, inFolder: inputIsFolder,
      backend: getBackend().name, seconds: (performance.now() - started) / 1000,
    });
    for (const [name, text] of outputs) {
      const f = await AtomicFile.create(join(stagingDir, name));
      sideFiles.push(f);
      await f.write(new TextEncoder().encode(text));
      await f.finish();
    }
    // Other files of a model folder (tokenizer, generation config...) are copied as they are.
    for (const name of extras) {
      signal?.throwIfAborted();
      await copyRegularFile(join(ckpt.dir, name), join(stagingDir, name));
    }
    signal?.throwIfAborted();
    // Everything is complete in the staging folder: put the files under their names there, then
    // publish the folder in one step (lib/checkpoint/safetensors/output-folder.ts).
    for (const w of writers) await w.publish();
    for (const f of sideFiles) await f.publish();
    await out!.publish();
    return summary;
  } catch (err) {
    await Promise.all([...writers.map((w) => w.abort()), ...sideFiles.map((f) => f.abort())]);
    await out?.abort();
    throw err;
  } finally {
    if (!part?.files) await closeCheckpoint(ckpt);
    await fisher?.close();
  }
}

export interface SideFilesInput {
  ckpt: CheckpointFiles;
  input: string;
  outDir: string;
  format: QuantFormat;
  layoutName: LayoutName;
  layout: Layout;
  /** Every tensor's summary, in input order (shard by shard). */
  tensors: TensorSummary[];
  /** The other files of the model folder the run copies (filesToCopy). */
  copied: string[];
  /** The input is a model folder (not one file): its shards must be named *.safetensors. */
  inFolder: boolean;
  backend: string;
  seconds: number;
}

/**
 * The files written beside the weight shards — config.json, the layout's extra files, the index
 * (sharded inputs) and the summary last — as [name, text] pairs, with the summary itself and the
 * files to copy beside them (`extras`: the copied files the run does not write itself). A pure
 * function of the tensor summaries, so a distributed merge (lib/checkpoint/checkpoint-parts.ts) writes the
 * same bytes as a single run. The summary lists every file of the output folder, the copied ones
 * too: a later run replaces the folder only if it holds nothing else (output-folder.ts).
 */
export async function checkpointSideFiles(a: SideFilesInput): Promise<{ outputs: Array<[string, string]>; summary: CheckpointSummary; extras: string[] }> {
  const { ckpt, layout, tensors } = a;
  const quantized = tensors.filter((t) => t.action === 'quantized');
  const unquantizedModules = tensors
    .filter((t) => t.action === 'copied' && t.shape.length === 2 && t.name.endsWith('.weight') && !/embed/i.test(t.name))
    .map((t) => moduleOf(t.name));
  // Tied embeddings have no lm_head tensor, but engines still build an lm_head module: list it
  // as unquantized, as llm-compressor's default ignore list does.
  if (!unquantizedModules.includes('lm_head') && !quantized.some((t) => t.name === 'lm_head.weight')) unquantizedModules.push('lm_head');
  const config = await readModelConfig(ckpt.dir); // never waits on a FIFO named config.json
  const files = layout.files({ format: a.format, quantized: quantized.map((t) => t.name), unquantizedModules, config });
  const outputs: Array<[string, string]> = [];
  if (files.config) outputs.push(['config.json', `${JSON.stringify(files.config, null, 2)}\n`]);
  for (const [name, text] of Object.entries(files.extra)) outputs.push([name, text]);
  const outputBytes = tensors.reduce((sum, t) => sum + t.outputBytes, 0);
  if (ckpt.indexed) {
    const weightMap: Record<string, string> = Object.create(null) as Record<string, string>; // names are data (__proto__ too)
    for (const t of tensors) for (const o of t.outputs) weightMap[o] = t.file;
    outputs.push([INDEX_NAME, `${JSON.stringify({ metadata: { ...ckpt.indexMetadata, total_size: outputBytes }, weight_map: weightMap }, null, 2)}\n`]);
  }
  const writtenNames = new Set([...outputs.map(([n]) => n), SUMMARY_NAME]);
  const extras = a.copied.filter((n) => !writtenNames.has(n));
  const summary: CheckpointSummary = {
    tool: 'fp4kit', version: 1, input: resolve(a.input), output: resolve(a.outDir), format: a.format, layout: a.layoutName,
    backend: a.backend, inputBytes: ckpt.shards.reduce((sum, s) => sum + s.tensors.reduce((b, t) => b + (t.end - t.begin), 0), 0),
    outputBytes, seconds: a.seconds, quantized: quantized.length, copied: tensors.length - quantized.length,
    files: [...ckpt.shards.map((s) => basename(s.path)), ...outputs.map(([n]) => n), SUMMARY_NAME, ...extras],
    tensors,
  };
  outputs.push([SUMMARY_NAME, `${JSON.stringify(summary, null, 2)}\n`]);
  checkShardNames(ckpt, outputs.map(([n]) => n), a.inFolder);
  return { outputs, summary, extras };
}

/** The input is a model folder (sharded with an index, or a folder of files), not one file. */
export async function isFolderInput(ckpt: CheckpointFiles, input: string): Promise<boolean> {
  return ckpt.indexed || (await stat(input)).isDirectory();
}

/** The other files of a model folder a run copies (none for a single-file input); a shard is
 *  never copied over itself. */
export async function filesToCopy(ckpt: CheckpointFiles, input: string): Promise<string[]> {
  if (!(await isFolderInput(ckpt, input))) return [];
  const shardNames = new Set(ckpt.shards.map((sh) => basename(sh.path)));
  return (await otherFiles(ckpt.dir)).filter((n) => !shardNames.has(n));
}

/** Every file a run reads: the shards, the index, config.json, the copied files, the Fisher file. */
export function filesRead(ckpt: CheckpointFiles, config: ModelConfig, copied: string[], fisher?: string): string[] {
  return [
    ...ckpt.shards.map((s) => s.path), ...(ckpt.indexed ? [join(ckpt.dir, INDEX_NAME)] : []), ...(config !== null ? [join(ckpt.dir, 'config.json')] : []),
    ...copied.map((n) => join(ckpt.dir, n)), ...(fisher !== undefined ? [fisher] : []),
  ];
}

/** The other regular files of a model folder (links followed, as in a Hugging Face cache
 *  snapshot); FIFOs, sockets, devices and folders are left alone, and so are the files fp4kit
 *  writes itself: an input's quantization descriptor (hf_quant_config.json, an earlier summary)
 *  never describes the output. */
async function otherFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    if (name.endsWith('.safetensors') || SIDE_FILES.has(name) || name.includes('.tmp-')) continue;
    const s = await stat(join(dir, name)).catch(() => null);
    if (s?.isFile()) names.push(name);
  }
  return names;
}

