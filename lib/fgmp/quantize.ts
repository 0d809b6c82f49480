// FGMP (Hooper et al., 2025): every block of 16 along the last axis is FP4 (NVFP4) or FP8 (E4M3
// under a per-tensor scale), chosen by the Fisher-weighted impact of dropping it to FP4:
//   impact(b) = Σ_{i∈b} F_i · (Q_fp4(x_i) − Q_fp8(x_i))²
// The lowest-impact blocks become FP4 until the target fraction is met (lib/fgmp/select.ts).
//
// Layout of an FGMP tensor (rows × cols, blocks of 16 along cols, the last block zero-padded):
// - mask: one bit per block, row-major, bit b in byte b>>3 at position b&7; 1 = FP8;
// - data: the blocks in row-major order, each 8 bytes (FP4, two E2M1 codes per byte, element 2i
//   in the low nibble) or 16 bytes (FP8, one E4M3 code per byte);
// - scales: one E4M3 scale byte per FP4 block, in block order (FP8 blocks have none);
// - tensorScale: float32 decode scale of the FP4 blocks (NVFP4's); fp8Scale: float32 decode
//   scale of the FP8 blocks.

import { getKernels } from '../kernels/registry.js';
import { nvfp4TensorScale } from '../kernels/ref/block-scale.js';
import { widenedRange } from '../kernels/ref/dtype.js';
import type { Source } from '../kernels/contract.js';
import { DtypeId, type DtypeIdValue, type DtypeName } from '../core/formats.js';
import { checkFraction, checkOptions, checkShape, checkSource, checkTensorScale, describe, inputArray, isObjectArgument, readShape } from '../core/validate.js';
import { afterStep, nextTurn, rowsPerStep, takeSnapshot, throwIfAborted, type StepProgress } from '../core/async-jobs.js';
import {
  FGMP_BLOCK, blockAbsMax, clippedFp4ScaleCode, fp4ScaleCode, fp8TensorScale,
  quantizeFp4Block, quantizeFp8Block,
} from './blocks.js';
import { scratch } from '../core/scratch.js';
import { packFgmpStream } from './stream.js';
import { assignPrecision, checkSelectionValues, countFp8Blocks, countFp8BlocksBetween, selectThreshold, type Selection } from './select.js';

export interface FgmpOptions {
  shape?: number[];
  dtype?: DtypeName;
  /** Diagonal Fisher information (mean squared gradient): one per element, or one per input
   *  channel (length = last dimension, broadcast over rows). Default: all ones (plain error). */
  fisher?: Float32Array;
  /** Target fraction of FP4 blocks (default 0.7). Ignored when `selection` or `mask` is given. */
  fp4Fraction?: number;
  /** A model-wide threshold: `forTensor(selectThreshold(allImpacts, p), i)` for tensor i (its own
   *  share of the ties); applies it instead of a per-tensor target. */
  selection?: Pick<Selection, 'threshold' | 'tiesTaken'>;
  /** An explicit precision mask (bit set = FP8), e.g. for baselines. */
  mask?: Uint8Array;
  /** Sensitivity-weighted clipping of FP4 block scales (default true: meant for weights). */
  clipping?: boolean;
  /** Calibrated float32 decode scales; default from the tensor's absolute maximum. */
  tensorScale?: number;
  fp8Scale?: number;
}

export interface FgmpTensor {
  format: 'fgmp';
  shape: number[];
  data: Uint8Array;
  scales: Uint8Array;
  mask: Uint8Array;
  tensorScale: number;
  fp8Scale: number;
  blockSize: 16;
  /** The impact threshold that split the blocks, and how many ties at it went to FP4. */
  threshold: number;
  tiesTaken: number;
  /** Fraction of blocks stored as FP4. */
  fp4Fraction: number;
}

interface Prepared {
  rows: number;
  cols: number;
  shape: number[];
  blocksPerRow: number;
  /** The input as given: float32, or bf16/f16 bits (the kernels widen it; the reference reads float32). */
  x: Source;
  dtype: DtypeIdValue;
  fisher: Float32Array | null;
  fisherPerElement: boolean;
  tensorScale: number;
  fp8Scale: number;
  clipping: boolean;
  /** How the blocks are split: an explicit mask, a model-wide selection, or a target fraction. */
  mask: Uint8Array | undefined;
  selection: Pick<Selection, 'threshold' | 'tiesTaken'> | undefined;
  fp4Fraction: number;
}

const FGMP_OPTIONS = '{ shape?, dtype?, fisher?, fp4Fraction?, selection?, mask?, clipping?, tensorScale?, fp8Scale? }';
/** FGMP's option names ('format' too: quantize()'s options object may be passed as it is). */
export const FGMP_OPTION_KEYS = ['format', 'shape', 'dtype', 'fisher', 'fp4Fraction', 'selection', 'mask', 'clipping', 'tensorScale', 'fp8Scale'] as const;

/** Every option read once and checked, then the input (so no option getter can change it afterwards). */
function prepare(fn: string, x: Float32Array | Uint16Array, options: FgmpOptions): Prepared {
  const opts = checkOptions<FgmpOptions>(fn, options, FGMP_OPTIONS, false, FGMP_OPTION_KEYS);
  const {
    shape: shapeOption, dtype: dtypeOption, fisher: fisherOption, fp4Fraction: fractionOption, selection: selectionOption,
    mask: maskOption, clipping: clippingOption, tensorScale: tensorScaleOption, fp8Scale: fp8ScaleOption,
  } = opts;
  const dims = readShape(fn, shapeOption);
  if (clippingOption !== undefined && typeof clippingOption !== 'boolean') throw new TypeError(`${fn}: clipping must be a boolean, got ${describe(clippingOption)}`);
  const fp4Fraction = fractionOption === undefined ? 0.7 : checkFraction(fn, 'fp4Fraction', fractionOption);
  const selection = selectionOption === undefined ? undefined : checkSelection(fn, selectionOption);
  const givenTensorScale = tensorScaleOption === undefined ? undefined : checkTensorScale(fn, tensorScaleOption);
  const givenFp8Scale = fp8ScaleOption === undefined ? undefined : checkTensorScale(fn, fp8ScaleOption, 'fp8Scale');
  const { dtype, x: src } = checkSource(fn, x, dtypeOption);
  const { rows, cols, shape } = checkShape(fn, dims, src.length);
  const blocksPerRow = Math.ceil(cols / FGMP_BLOCK);
  const blocks = rows * blocksPerRow;
  const mask = maskOption === undefined ? undefined : inputArray(fn, 'mask', maskOption, 'Uint8Array', Math.ceil(blocks / 8), 'bytes (one bit per block)');
  // max |x| on the backend's kernel; only when it is not finite, a scan for the element to name.
  const amax = getKernels().absMax(src, DtypeId[dtype]);
  if (!Number.isFinite(amax)) {
    const xf = widenedRange(src, DtypeId[dtype], 0, src.length);
    for (let i = 0; i < xf.length; i++) {
      if (!Number.isFinite(xf[i])) throw new RangeError(`${fn}: input[${i}] is ${xf[i]}; FGMP blocks cannot hold NaN or Inf`);
    }
  }
  const fisher = fisherOption == null ? null : inputArray(fn, 'fisher', fisherOption, 'Float32Array');
  let fisherPerElement = false;
  if (fisher !== null) {
    if (fisher.length === src.length) fisherPerElement = true;
    else if (fisher.length !== cols) {
      throw new RangeError(`${fn}: fisher must have one value per element (${src.length}) or per input channel (${cols}), got ${fisher.length}`);
    }
    for (let i = 0; i < fisher.length; i++) {
      if (!(fisher[i] >= 0 && fisher[i] < Infinity)) throw new RangeError(`${fn}: fisher[${i}] is ${fisher[i]}; Fisher values must be finite and ≥ 0`);
    }
  }
  const tensorScale = givenTensorScale ?? nvfp4TensorScale(amax);
  const fp8Scale = givenFp8Scale ?? fp8TensorScale(amax);
  return {
    rows, cols, shape, blocksPerRow, x: src, dtype: DtypeId[dtype], fisher, fisherPerElement, tensorScale, fp8Scale,
    clipping: clippingOption ?? true, mask, selection, fp4Fraction,
  };
}

/**
 * The reference loop's input as float32: the source itself, or a bf16/f16 source widened into
 * reused scratch (a fresh float32 copy of a 4096² weight is ~0.2 s of first-touch page faults
 * here). Safe because the reference reads it before anything else can run: the synchronous loop
 * throughout, and the sliced loop over a copy of its own (candidatesAsync).
 */
function floats(p: Prepared): Prepared {
  return p.dtype === DtypeId.f32 ? p : { ...p, x: widenedRange(p.x, p.dtype, 0, p.x.length, scratch('fgmp.widened', Float32Array, p.x.length)), dtype: DtypeId.f32 };
}

function checkSelection(fn: string, selection: unknown): Pick<Selection, 'threshold' | 'tiesTaken'> {
  const expected = 'must be { threshold: number, tiesTaken: integer ≥ 0 } from selectThreshold()';
  if (!isObjectArgument(selection)) throw new TypeError(`${fn}: selection ${expected}, got ${describe(selection)}`);
  const { threshold, tiesTaken } = selection as Record<string, unknown>;
  return checkSelectionValues(fn, threshold, tiesTaken, expected);
}

interface Candidates {
  impacts: Float64Array;
  fp4Codes: Uint8Array; // 16 per block
  fp4Scales: Uint8Array; // 1 per block
  fp8Codes: Uint8Array; // 16 per block
}

/** Arrays for every block's candidates: fresh, or — for a caller done with them before it returns
 *  (quantizeFgmp) — reused scratch (lib/core/scratch.ts: 34 bytes per block, the page faults of
 *  which cost more than the native kernel itself on a fresh 4096² weight). Every entry is written. */
function emptyCandidates(p: Prepared, reuse = false): Candidates {
  const blocks = p.rows * p.blocksPerRow;
  if (reuse) {
    return {
      impacts: scratch('fgmp.impacts', Float64Array, blocks),
      fp4Codes: scratch('fgmp.fp4-codes', Uint8Array, blocks * FGMP_BLOCK),
      fp4Scales: scratch('fgmp.fp4-scales', Uint8Array, blocks),
      fp8Codes: scratch('fgmp.fp8-codes', Uint8Array, blocks * FGMP_BLOCK),
    };
  }
  return {
    impacts: new Float64Array(blocks),
    fp4Codes: new Uint8Array(blocks * FGMP_BLOCK),
    fp4Scales: new Uint8Array(blocks),
    fp8Codes: new Uint8Array(blocks * FGMP_BLOCK),
  };
}

/** Rows per chunk of the reference loop when it runs in slices (quantizeAsync): a few ms each. */
const SYNC_CHUNK_ELEMENTS = 1 << 14;
const turn = nextTurn;

/** candidates() without blocking the event loop: on the addon's threads (a job that snapshots
 *  its inputs now), or in row slices over copies taken now (reused memory: takeSnapshot); same
 *  bits either way. With `progress`, in steps of rows with a report between them (a native job
 *  per step, each reading the input when it starts: see StepProgress). */
async function candidatesAsync(p: Prepared, clipping: boolean, signal: AbortSignal | undefined, progress: StepProgress | undefined): Promise<Candidates> {
  if (p.rows === 0) return emptyCandidates(p); // no blocks: nothing sized by cols
  const { rows, cols } = p;
  const stepRows = rowsPerStep(progress, rows, cols);
  const run = getKernels().fgmpCandidatesAsync;
  if (run) {
    const c = emptyCandidates(p);
    // The job takes the source as it is (bf16 read in place when shared, else copied at its size).
    for (let s0 = 0; s0 < rows; s0 += stepRows) {
      const s1 = Math.min(rows, s0 + stepRows);
      throwIfAborted(signal);
      const part = rowSlice(p, c, p.x, p.fisher, s0, s1);
      await run(part.x, p.dtype, s1 - s0, cols, part.fisher, p.fisherPerElement, p.tensorScale, p.fp8Scale, clipping, part.c.impacts, part.c.fp4Codes, part.c.fp4Scales, part.c.fp8Codes);
      await afterStep(progress, s1, rows, cols, signal);
    }
    return c;
  }
  // Copies of our own taken now, into reused memory (a fresh copy, as slice() made, first-touched
  // its pages on this thread on every call: 0.1–0.5 s per 256 MiB here); the wasm kernel reads any
  // dtype, the reference loop float32 (a bf16/f16 slice widened into `widened`, reused).
  const kernel = getKernels().fgmpCandidates;
  const x = takeSnapshot(p.x);
  const fisher = p.fisher && takeSnapshot(p.fisher);
  try {
    // The wasm kernel is several times the reference loop: it takes bigger slices.
    const rowsPerChunk = Math.max(1, Math.floor((kernel ? 4 : 1) * SYNC_CHUNK_ELEMENTS / Math.max(1, cols)));
    const widened = !kernel && p.dtype !== DtypeId.f32 ? new Float32Array(Math.min(rows, rowsPerChunk) * cols) : undefined;
    // Taken after the call has returned (34 bytes a block, which the allocator may zero at once:
    // fresh pages faulted in on this thread), so the call itself copies the input and no more.
    let c: Candidates | undefined;
    for (let s0 = 0; s0 < rows; s0 += stepRows) {
      const s1 = Math.min(rows, s0 + stepRows);
      for (let r0 = s0; r0 < s1; r0 += rowsPerChunk) {
        await turn();
        throwIfAborted(signal);
        c ??= emptyCandidates(p);
        const r1 = Math.min(s1, r0 + rowsPerChunk);
        const part = rowSlice(p, c, x.array, fisher ? fisher.array : null, r0, r1);
        if (kernel) {
          kernel(part.x, p.dtype, r1 - r0, cols, part.fisher, p.fisherPerElement, p.tensorScale, p.fp8Scale, clipping,
            part.c.impacts, part.c.fp4Codes, part.c.fp4Scales, part.c.fp8Codes);
        } else {
          const floats = widened ? widenedRange(part.x, p.dtype, 0, part.x.length, widened) : part.x;
          candidateRows({ ...p, rows: r1 - r0, x: floats, dtype: DtypeId.f32, fisher: part.fisher }, clipping, part.c, 0, r1 - r0);
        }
      }
      await afterStep(progress, s1, rows, cols, signal);
    }
    return c!; // rows > 0: the loop ran
  } finally {
    x.release();
    fisher?.release();
  }
}

/** Rows [r0, r1) of a source, its Fisher values (a per-channel vector whole) and the candidates. */
function rowSlice(p: Prepared, c: Candidates, x: Source, fisher: Float32Array | null, r0: number, r1: number): { x: Source; fisher: Float32Array | null; c: Candidates } {
  const { cols, blocksPerRow: bpr } = p;
  const whole = r0 === 0 && r1 === p.rows;
  return {
    x: (whole ? x : x.subarray(r0 * cols, r1 * cols)) as Source,
    fisher: fisher && p.fisherPerElement && !whole ? fisher.subarray(r0 * cols, r1 * cols) : fisher,
    c: {
      impacts: c.impacts.subarray(r0 * bpr, r1 * bpr),
      fp4Codes: c.fp4Codes.subarray(r0 * bpr * FGMP_BLOCK, r1 * bpr * FGMP_BLOCK),
      fp4Scales: c.fp4Scales.subarray(r0 * bpr, r1 * bpr),
      fp8Codes: c.fp8Codes.subarray(r0 * bpr * FGMP_BLOCK, r1 * bpr * FGMP_BLOCK),
    },
  };
}

/** Both encodings of every block and the impact of choosing FP4 over FP8. */
function candidates(p: Prepared, clipping: boolean, reuse = false): Candidates {
  const c = emptyCandidates(p, reuse);
  if (p.rows === 0) return c; // no blocks: nothing sized by cols
  const native = getKernels().fgmpCandidates;
  if (native) {
    // The same steps in C++ on the addon's threads (native/fgmp.cc) or in wasm (assembly/fgmp.ts), bit for bit.
    native(p.x, p.dtype, p.rows, p.cols, p.fisher, p.fisherPerElement, p.tensorScale, p.fp8Scale, clipping, c.impacts, c.fp4Codes, c.fp4Scales, c.fp8Codes);
    return c;
  }
  candidateRows(floats(p), clipping, c, 0, p.rows);
  return c;
}

/** The reference steps for the blocks of rows [r0, r1). */
function candidateRows(p: Prepared, clipping: boolean, c: Candidates, r0: number, r1: number): void {
  const { impacts, fp4Codes, fp4Scales, fp8Codes } = c;
  const block = new Float32Array(FGMP_BLOCK);
  const q4 = new Float32Array(FGMP_BLOCK);
  const q8 = new Float32Array(FGMP_BLOCK);
  const scratchCodes = new Uint8Array(FGMP_BLOCK);
  const scratchValues = new Float32Array(FGMP_BLOCK);
  for (let r = r0; r < r1; r++) {
    for (let j = 0; j < p.blocksPerRow; j++) {
      const b = r * p.blocksPerRow + j;
      const col0 = j * FGMP_BLOCK;
      const count = Math.min(FGMP_BLOCK, p.cols - col0);
      block.fill(0);
      block.set(p.x.subarray(r * p.cols + col0, r * p.cols + col0 + count));
      const wOffset = (p.fisherPerElement ? r * p.cols : 0) + col0;
      let code = fp4ScaleCode(blockAbsMax(block, count), p.tensorScale);
      if (clipping) code = clippedFp4ScaleCode(block, count, p.tensorScale, code, p.fisher, wOffset, 1, scratchCodes, scratchValues);
      fp4Scales[b] = code;
      const c4 = fp4Codes.subarray(b * FGMP_BLOCK, (b + 1) * FGMP_BLOCK);
      const c8 = fp8Codes.subarray(b * FGMP_BLOCK, (b + 1) * FGMP_BLOCK);
      quantizeFp4Block(block, count, p.tensorScale, code, c4, q4);
      quantizeFp8Block(block, count, p.fp8Scale, c8, q8);
      let impact = 0;
      for (let i = 0; i < count; i++) {
        const d = q4[i] - q8[i];
        impact += (p.fisher ? p.fisher[wOffset + i] : 1) * d * d;
      }
      impacts[b] = impact;
    }
  }
}

/** Impact scores of every block (row-major), for a model-wide selectThreshold(). */
export function fgmpImpacts(x: Float32Array | Uint16Array, options: FgmpOptions, fn = 'fgmpImpacts'): Float64Array {
  const p = prepare(fn, x, options);
  return candidates(p, p.clipping).impacts;
}

/** The tensor for a mask, its stream (`data`, `scales`) sized for it and not yet written. */
function emptyTensor(p: Prepared, mask: Uint8Array, threshold: number, tiesTaken: number): FgmpTensor {
  const blocks = p.rows * p.blocksPerRow;
  const fp8Blocks = countFp8Blocks(mask, blocks);
  const fp4Blocks = blocks - fp8Blocks;
  return {
    format: 'fgmp', shape: p.shape, data: new Uint8Array(fp4Blocks * 8 + fp8Blocks * 16), scales: new Uint8Array(fp4Blocks), mask,
    tensorScale: p.tensorScale, fp8Scale: p.fp8Scale, blockSize: 16, threshold, tiesTaken, fp4Fraction: blocks === 0 ? 1 : fp4Blocks / blocks,
  };
}

function assemble(p: Prepared, c: Candidates, mask: Uint8Array, threshold: number, tiesTaken: number): FgmpTensor {
  const t = emptyTensor(p, mask, threshold, tiesTaken);
  packFgmpStream(mask, p.rows * p.blocksPerRow, c.fp4Codes, c.fp4Scales, c.fp8Codes, t.data, t.scales);
  return t;
}

export function quantizeFgmp(x: Float32Array | Uint16Array, options: FgmpOptions, fn = 'quantize(fgmp)'): FgmpTensor {
  const p = prepare(fn, x, options);
  // The candidates are read into the tensor before this returns: scratch.
  return choosePrecision(p, candidates(p, p.clipping, true));
}

/**
 * quantizeFgmpAsync's progress: StepProgress for the per-block work (`between` after every step of
 * rows but the last), and, with `assembly`, for what follows it too: the threshold and the mask in
 * one synchronous call (selectThreshold's passes use scratch memory, which only a synchronous span
 * may hold), then the block stream written in the same steps of rows, `assembly(rowsDone)` awaited
 * once the mask is set (0) and after every step of the stream but the last. For 16M blocks (a
 * 512 MiB bf16 weight, 2 vCPUs, 2026-12-07) the threshold and mask took ~0.3 s (~0.9 s the first
 * time: fresh scratch pages), 0.5–2.3 s when the machine was busy; the stream 1.2–2.5 s then. The
 * tensor is the same bits either way.
 */
export interface FgmpStepProgress extends StepProgress {
  assembly?(rowsDone: number): Promise<void>;
}

/** quantizeFgmp with the per-block work (both encodings, clipping, impacts) off the JS thread.
 *  Bad arguments throw at once (before the Promise exists), so they come before an abort. */
export function quantizeFgmpAsync(x: Float32Array | Uint16Array, options: FgmpOptions, signal?: AbortSignal, progress?: FgmpStepProgress): Promise<FgmpTensor> {
  const p = prepare('quantizeAsync(fgmp)', x, options);
  throwIfAborted(signal); // after the argument checks, before any work starts
  // What is read after the first await is copied now (see lib/core/quantize-async.ts); prepare() has
  // already read every option, and copied the selection.
  const own: Prepared = p.mask ? { ...p, mask: p.mask.slice() } : p;
  const assembly = progress?.assembly;
  return candidatesAsync(own, own.clipping, signal, progress).then((c) => {
    throwIfAborted(signal);
    if (assembly === undefined || own.rows === 0) return choosePrecision(own, c);
    return assembleInSteps(own, c, rowsPerStep(progress, own.rows, own.cols), signal, (rowsDone) => assembly.call(progress, rowsDone));
  });
}

/** The mask (given, from a model-wide selection, or for the target fraction), its threshold and ties. */
function precisionMask(p: Prepared, c: Candidates): { mask: Uint8Array; threshold: number; tiesTaken: number } {
  if (p.mask !== undefined) return { mask: p.mask, threshold: NaN, tiesTaken: 0 };
  const selection = p.selection ?? selectThreshold([c.impacts], p.fp4Fraction);
  const [mask] = assignPrecision([c.impacts], selection);
  return { mask, threshold: selection.threshold, tiesTaken: selection.tiesTaken };
}

/** The mask and the tensor. */
function choosePrecision(p: Prepared, c: Candidates): FgmpTensor {
  const { mask, threshold, tiesTaken } = precisionMask(p, c);
  return assemble(p, c, mask, threshold, tiesTaken);
}

/** choosePrecision with the stream written in steps of `stepRows` rows (FgmpStepProgress.assembly):
 *  each step's blocks where the blocks before them end, so the same bytes as one pass. The
 *  candidates, mask and stream are this call's own arrays: nothing else writes them meanwhile. */
async function assembleInSteps(p: Prepared, c: Candidates, stepRows: number, signal: AbortSignal | undefined, assembly: (rowsDone: number) => Promise<void>): Promise<FgmpTensor> {
  const { mask, threshold, tiesTaken } = precisionMask(p, c);
  const t = emptyTensor(p, mask, threshold, tiesTaken);
  await assembly(0);
  throwIfAborted(signal);
  const { rows, blocksPerRow: bpr } = p;
  let fp8Before = 0; // FP8 blocks in the rows written so far
  for (let s0 = 0; s0 < rows; s0 += stepRows) {
    const s1 = Math.min(rows, s0 + stepRows);
    packFgmpStream(mask, s1 * bpr, c.fp4Codes, c.fp4Scales, c.fp8Codes, t.data, t.scales, s0 * bpr, fp8Before);
    fp8Before += countFp8BlocksBetween(mask, s0 * bpr, s1 * bpr);
    if (s1 < rows) {
      await assembly(s1);
      throwIfAborted(signal);
    }
  }
  return t;
}

/** An FGMP tensor with every field read once and checked (sizes derived from its mask). */
export interface CheckedFgmpTensor {
  shape: number[];
  rows: number;
  cols: number;
  blocksPerRow: number;
  data: Uint8Array;
  scales: Uint8Array;
  mask: Uint8Array;
  tensorScale: number;
  fp8Scale: number;
}

/** Check the internal consistency of an FGMP tensor (sizes derived from its mask). */
export function checkFgmpTensor(fn: string, q: FgmpTensor, argument = ''): CheckedFgmpTensor {
  const { shape: shapeField, data: dataField, scales: scalesField, mask: maskField, tensorScale: t, fp8Scale: f8 } = q;
  if (shapeField === undefined) throw new TypeError(`${fn}: ${argument}shape is missing (an fgmp tensor has one)`);
  const dims = readShape(fn, shapeField, `${argument}shape`)!;
  const { rows, cols, shape } = checkShape(fn, dims, dims.reduce((a, b) => a * b, 1), `${argument}shape`);
  const blocksPerRow = Math.ceil(cols / FGMP_BLOCK);
  const blocks = rows * blocksPerRow;
  const mask = inputArray(fn, `${argument}mask`, maskField, 'Uint8Array', Math.ceil(blocks / 8), `bytes for ${blocks} blocks`);
  const fp8 = countFp8Blocks(mask, blocks);
  const fp4 = blocks - fp8;
  const data = inputArray(fn, `${argument}data`, dataField, 'Uint8Array', fp4 * 8 + fp8 * 16, `bytes for ${fp4} FP4 and ${fp8} FP8 blocks`);
  const scales = inputArray(fn, `${argument}scales`, scalesField, 'Uint8Array', fp4, 'bytes (one per FP4 block)');
  const tensorScale = checkTensorScale(fn, t, `${argument}tensorScale`);
  const fp8Scale = checkTensorScale(fn, f8, `${argument}fp8Scale`);
  return { shape, rows, cols, blocksPerRow, data, scales, mask, tensorScale, fp8Scale };
}

/** Every value of an FGMP tensor as float32 (a new array). */
export function dequantizeFgmp(tensor: FgmpTensor): Float32Array {
  const q = checkFgmpTensor('dequantize(fgmp)', tensor);
  return decodeFgmpRows(q, new Float32Array(q.rows * q.cols), 0, q.rows);
}

/** Rows [rowBegin, rowEnd) of a checked FGMP tensor into `out` (row rowBegin at out[0]) on the
 *  backend's dequantizeFgmp kernel; the caller checked the tensor once and sized `out` from it. */
export function decodeFgmpRows(q: CheckedFgmpTensor, out: Float32Array, rowBegin: number, rowEnd: number): Float32Array {
  const { mask, data, scales, cols, tensorScale, fp8Scale } = q;
  if (rowEnd <= rowBegin) return out; // no rows: nothing sized by cols
  getKernels().dequantizeFgmp({ mask, data, scales, cols, rowBegin, rowEnd, tensorScale, fp8Scale, out });
  return out;
}

/** Storage cost of an FGMP tensor in bits per element: elements, FP4 block scales and the mask. */
export function fgmpBitsPerElement(fp4Fraction: number): number {
  checkFraction('fgmpBitsPerElement', 'fp4Fraction', fp4Fraction);
  return fp4Fraction * (4 + 8 / FGMP_BLOCK) + (1 - fp4Fraction) * 8 + 1 / FGMP_BLOCK;
}
