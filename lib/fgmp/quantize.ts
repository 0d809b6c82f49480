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

import { getKernels } from '../backend.js';
import { nvfp4TensorScale } from '../block-scale.js';
import { widenToF32 } from '../dtype.js';
import { DtypeId, type DtypeName } from '../formats.js';
import { checkShape, checkSource, checkTensorScale } from '../validate.js';
import { snapshotArray } from '../async-jobs.js';
import {
  E2M1_VALUES, E4M3_VALUES, FGMP_BLOCK, blockAbsMax, clippedFp4ScaleCode, fp4ScaleCode, fp8TensorScale,
  quantizeFp4Block, quantizeFp8Block,
} from './blocks.js';
import { assignPrecision, countFp8Blocks, isFp8Block, selectThreshold, type Selection } from './select.js';

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
  x: Float32Array;
  fisher: Float32Array | null;
  fisherPerElement: boolean;
  tensorScale: number;
  fp8Scale: number;
}

function prepare(fn: string, x: Float32Array | Uint16Array, options: FgmpOptions): Prepared {
  if (options === null || typeof options !== 'object') throw new TypeError(`${fn}: options are required`);
  const dtype = checkSource(fn, x, options.dtype);
  const { rows, cols, shape } = checkShape(fn, options.shape, x.length);
  const xf = dtype === 'f32' ? (x as Float32Array) : widenToF32(x as Uint16Array, DtypeId[dtype]);
  let amax = 0;
  for (let i = 0; i < xf.length; i++) {
    const a = Math.abs(xf[i]);
    if (!(a <= 3.4028234663852886e38)) throw new RangeError(`${fn}: input[${i}] is ${xf[i]}; FGMP blocks cannot hold NaN or Inf`);
    if (a > amax) amax = a;
  }
  const fisher = options.fisher ?? null;
  let fisherPerElement = false;
  if (fisher !== null) {
    if (!(fisher instanceof Float32Array)) throw new TypeError(`${fn}: fisher must be a Float32Array`);
    if (fisher.length === xf.length) fisherPerElement = true;
    else if (fisher.length !== cols) {
      throw new RangeError(`${fn}: fisher must have one value per element (${xf.length}) or per input channel (${cols}), got ${fisher.length}`);
    }
    for (let i = 0; i < fisher.length; i++) {
      if (!(fisher[i] >= 0 && fisher[i] < Infinity)) throw new RangeError(`${fn}: fisher[${i}] is ${fisher[i]}; Fisher values must be finite and ≥ 0`);
    }
  }
  const tensorScale = options.tensorScale !== undefined ? checkTensorScale(fn, options.tensorScale) : nvfp4TensorScale(amax);
  const fp8Scale = options.fp8Scale !== undefined ? checkTensorScale(fn, options.fp8Scale) : fp8TensorScale(amax);
  return { rows, cols, shape, blocksPerRow: Math.ceil(cols / FGMP_BLOCK), x: xf, fisher, fisherPerElement, tensorScale, fp8Scale };
}

interface Candidates {
  impacts: Float64Array;
  fp4Codes: Uint8Array; // 16 per block
  fp4Scales: Uint8Array; // 1 per block
  fp8Codes: Uint8Array; // 16 per block
}

function emptyCandidates(p: Prepared): Candidates {
  const blocks = p.rows * p.blocksPerRow;
  return {
    impacts: new Float64Array(blocks),
    fp4Codes: new Uint8Array(blocks * FGMP_BLOCK),
    fp4Scales: new Uint8Array(blocks),
    fp8Codes: new Uint8Array(blocks * FGMP_BLOCK),
  };
}

/** Rows per chunk of the reference loop when it runs in slices (quantizeAsync): a few ms each. */
const SYNC_CHUNK_ELEMENTS = 1 << 14;
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** candidates() without blocking the event loop: on the addon's threads (a job that snapshots
 *  its inputs now), or in row slices over copies taken now; same bits either way. */
async function candidatesAsync(p: Prepared, clipping: boolean, signal: AbortSignal | undefined): Promise<Candidates> {
  const c = emptyCandidates(p);
  const run = getKernels().fgmpCandidatesAsync;
  if (run) {
    await run(p.x, p.rows, p.cols, p.fisher, p.fisherPerElement, p.tensorScale, p.fp8Scale, clipping, c.impacts, c.fp4Codes, c.fp4Scales, c.fp8Codes);
    return c;
  }
  const own: Prepared = { ...p, x: snapshotArray(p.x), fisher: p.fisher && snapshotArray(p.fisher) };
  // The wasm kernel is several times the reference loop: it takes bigger slices.
  const kernel = getKernels().fgmpCandidates;
  const rowsPerChunk = Math.max(1, Math.floor((kernel ? 4 : 1) * SYNC_CHUNK_ELEMENTS / Math.max(1, p.cols)));
  const bpr = p.blocksPerRow;
  for (let r0 = 0; r0 < p.rows; r0 += rowsPerChunk) {
    await turn();
    signal?.throwIfAborted();
    const r1 = Math.min(p.rows, r0 + rowsPerChunk);
    if (!kernel) {
      candidateRows(own, clipping, c, r0, r1);
      continue;
    }
    const fisher = own.fisher && own.fisherPerElement ? own.fisher.subarray(r0 * p.cols, r1 * p.cols) : own.fisher;
    kernel(own.x.subarray(r0 * p.cols, r1 * p.cols), r1 - r0, p.cols, fisher, own.fisherPerElement, p.tensorScale, p.fp8Scale, clipping,
      c.impacts.subarray(r0 * bpr, r1 * bpr), c.fp4Codes.subarray(r0 * bpr * FGMP_BLOCK, r1 * bpr * FGMP_BLOCK),
      c.fp4Scales.subarray(r0 * bpr, r1 * bpr), c.fp8Codes.subarray(r0 * bpr * FGMP_BLOCK, r1 * bpr * FGMP_BLOCK));
  }
  return c;
}

/** Both encodings of every block and the impact of choosing FP4 over FP8. */
function candidates(p: Prepared, clipping: boolean): Candidates {
  const c = emptyCandidates(p);
  const native = getKernels().fgmpCandidates;
  if (native) {
    // The same steps in C++ on the addon's threads (native/fgmp.cc) or in wasm (assembly/fgmp.ts), bit for bit.
    native(p.x, p.rows, p.cols, p.fisher, p.fisherPerElement, p.tensorScale, p.fp8Scale, clipping, c.impacts, c.fp4Codes, c.fp4Scales, c.fp8Codes);
    return c;
  }
  candidateRows(p, clipping, c, 0, p.rows);
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
export function fgmpImpacts(x: Float32Array | Uint16Array, options: FgmpOptions): Float64Array {
  const p = prepare('fgmpImpacts', x, options);
  return candidates(p, options.clipping ?? true).impacts;
}

function assemble(p: Prepared, c: Candidates, mask: Uint8Array, threshold: number, tiesTaken: number): FgmpTensor {
  const blocks = p.rows * p.blocksPerRow;
  let fp8Blocks = 0;
  for (let b = 0; b < blocks; b++) if (isFp8Block(mask, b)) fp8Blocks++;
  const fp4Blocks = blocks - fp8Blocks;
  const data = new Uint8Array(fp4Blocks * 8 + fp8Blocks * 16);
  const scales = new Uint8Array(fp4Blocks);
  let o = 0;
  let s = 0;
  for (let b = 0; b < blocks; b++) {
    if (isFp8Block(mask, b)) {
      data.set(c.fp8Codes.subarray(b * FGMP_BLOCK, (b + 1) * FGMP_BLOCK), o);
      o += 16;
    } else {
      for (let i = 0; i < FGMP_BLOCK; i += 2) data[o++] = c.fp4Codes[b * FGMP_BLOCK + i] | (c.fp4Codes[b * FGMP_BLOCK + i + 1] << 4);
      scales[s++] = c.fp4Scales[b];
    }
  }
  return {
    format: 'fgmp', shape: p.shape, data, scales, mask, tensorScale: p.tensorScale, fp8Scale: p.fp8Scale, blockSize: 16,
    threshold, tiesTaken, fp4Fraction: blocks === 0 ? 1 : fp4Blocks / blocks,
  };
}

export function quantizeFgmp(x: Float32Array | Uint16Array, options: FgmpOptions): FgmpTensor {
  const fn = 'quantize(fgmp)';
  const p = prepare(fn, x, options);
  return choosePrecision(fn, p, candidates(p, options.clipping ?? true), options);
}

/** quantizeFgmp with the per-block work (both encodings, clipping, impacts) off the JS thread. */
export async function quantizeFgmpAsync(x: Float32Array | Uint16Array, options: FgmpOptions, signal?: AbortSignal): Promise<FgmpTensor> {
  const fn = 'quantizeAsync(fgmp)';
  const p = prepare(fn, x, options);
  // What is read after the first await is copied now (see lib/quantize-async.ts).
  const later: FgmpOptions = {
    ...options,
    mask: options.mask instanceof Uint8Array ? options.mask.slice() : options.mask,
    selection: options.selection && typeof options.selection === 'object' ? { ...options.selection } : options.selection,
  };
  const c = await candidatesAsync(p, options.clipping ?? true, signal);
  signal?.throwIfAborted();
  return choosePrecision(fn, p, c, later);
}

/** The mask (given, from a model-wide selection, or for the target fraction) and the tensor. */
function choosePrecision(fn: string, p: Prepared, c: Candidates, options: FgmpOptions): FgmpTensor {
  const blocks = p.rows * p.blocksPerRow;
  if (options.mask !== undefined) {
    if (!(options.mask instanceof Uint8Array) || options.mask.length !== Math.ceil(blocks / 8)) {
      throw new RangeError(`${fn}: mask must be a Uint8Array of ${Math.ceil(blocks / 8)} bytes (one bit per block)`);
    }
    return assemble(p, c, options.mask, NaN, 0);
  }
  const selection = options.selection ?? selectThreshold([c.impacts], options.fp4Fraction ?? 0.7);
  if (typeof selection.threshold !== 'number' || !Number.isInteger(selection.tiesTaken) || selection.tiesTaken < 0) {
    throw new RangeError(`${fn}: selection must be { threshold: number, tiesTaken: integer ≥ 0 } from selectThreshold()`);
  }
  const [mask] = assignPrecision([c.impacts], selection);
  return assemble(p, c, mask, selection.threshold, selection.tiesTaken);
}

/** Check the internal consistency of an FGMP tensor (sizes derived from its mask). */
export function checkFgmpTensor(fn: string, q: FgmpTensor): { rows: number; cols: number; blocksPerRow: number } {
  if (!Array.isArray(q.shape)) throw new TypeError(`${fn}: fgmp tensor has no shape`);
  const count = q.shape.reduce((a, b) => a * b, 1);
  const { rows, cols } = checkShape(fn, q.shape, count);
  const blocksPerRow = Math.ceil(cols / FGMP_BLOCK);
  const blocks = rows * blocksPerRow;
  if (!(q.mask instanceof Uint8Array) || q.mask.length !== Math.ceil(blocks / 8)) {
    throw new RangeError(`${fn}: mask must hold ${Math.ceil(blocks / 8)} bytes for ${blocks} blocks`);
  }
  const fp8 = countFp8Blocks(q.mask, blocks);
  const fp4 = blocks - fp8;
  if (!(q.data instanceof Uint8Array) || q.data.length !== fp4 * 8 + fp8 * 16) {
    throw new RangeError(`${fn}: data must hold ${fp4 * 8 + fp8 * 16} bytes for ${fp4} FP4 and ${fp8} FP8 blocks`);
  }
  if (!(q.scales instanceof Uint8Array) || q.scales.length !== fp4) throw new RangeError(`${fn}: scales must hold ${fp4} bytes (one per FP4 block)`);
  checkTensorScale(fn, q.tensorScale);
  checkTensorScale(fn, q.fp8Scale);
  return { rows, cols, blocksPerRow };
}

export function dequantizeFgmp(q: FgmpTensor): Float32Array {
  const { rows, cols, blocksPerRow } = checkFgmpTensor('dequantize(fgmp)', q);
  const out = new Float32Array(rows * cols);
  let o = 0;
  let s = 0;
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < blocksPerRow; j++) {
      const b = r * blocksPerRow + j;
      const col0 = j * FGMP_BLOCK;
      const count = Math.min(FGMP_BLOCK, cols - col0);
      const base = r * cols + col0;
      if (isFp8Block(q.mask, b)) {
        for (let i = 0; i < count; i++) out[base + i] = Math.fround(E4M3_VALUES[q.data[o + i]] * q.fp8Scale);
        o += 16;
      } else {
        const total = Math.fround(q.tensorScale * E4M3_VALUES[q.scales[s++]]);
        for (let i = 0; i < count; i++) {
          const byte = q.data[o + (i >> 1)];
          out[base + i] = Math.fround(E2M1_VALUES[(i & 1) === 0 ? byte & 0xf : byte >> 4] * total);
        }
        o += 8;
      }
    }
  }
  return out;
}

/** Storage cost of an FGMP tensor in bits per element: elements, FP4 block scales and the mask. */
export function fgmpBitsPerElement(fp4Fraction: number): number {
  return fp4Fraction * (4 + 8 / FGMP_BLOCK) + (1 - fp4Fraction) * 8 + 1 / FGMP_BLOCK;
}
