// Gradient quantizers of 1-bit FQT (Gao et al., arXiv 2408.14267): a b-bit affine quantizer with
// stochastic rounding per tensor, per sample (row) or per channel (column), with Activation
// Gradient Pruning ('agp', unbiased) or the released code's top-k pruning ('topk', biased).
// The arithmetic, its float order and the random streams: lib/kernels/ref/gradient-quant.ts.

import type { GradientBuffers } from '../kernels/contract.js';
import { getKernels } from '../kernels/registry.js';
import { GradientGroupsId, GradientPruneId, gradientGroupCount } from '../kernels/ref/gradient-quant.js';
import { checkDisjoint, checkName, checkOptions, checkSeed, checkShape, copyShape, describe, inputArray, isObjectArgument, newArray, readFields, readShape } from './validate.js';

export type GradientGroups = 'sample' | 'channel' | 'tensor';
export type GradientPrune = 'agp' | 'topk' | 'none';

export interface QuantizeGradientOptions {
  /** [rows, cols]: rows are samples, columns channels. */
  shape: [number, number] | number[];
  /** Bits per kept element, 1 … 8 (B = 2^bits − 1 steps per group). */
  bits: number;
  /** One scale and zero point per row ('sample', default), per column ('channel') or one ('tensor'). */
  groups?: GradientGroups;
  /** 'none' (default), 'agp' (keep group i with probability p_i ∝ its range, rescale by 1/p_i), 'topk'. */
  prune?: GradientPrune;
  /** Seed of the rounding noise and the keep decisions, an integer in [0, 2^32) (default 0). */
  seed?: number;
  /** Buffers to write into instead of new ones (a training loop reuses them): codes (rows × cols
   *  bytes), scales, zeros, keepProbability (G float32) and mask (G bytes), each exactly that long. */
  out?: GradientBuffers;
}

export type { GradientBuffers };

/**
 * A quantized gradient. G groups: rows ('sample'), cols ('channel') or 1 ('tensor').
 * - `codes`: rows × cols bytes, row-major, each in 0 … 2^bits − 1 (0 in a pruned group);
 * - `scales`, `zeros`: G float32 — element (r, c) of group g decodes to zeros[g] + codes[r·cols + c]·scales[g];
 *   for a kept AGP group both already include the 1/p_g rescale (they are the scale and zero
 *   point of the quantized g/p_g); a pruned group has scale 0 and zero 0;
 * - `mask`: G bytes, 1 = kept, 0 = pruned (its codes, scale and zero are all 0);
 * - `keepProbability`: G float32, p_g ('none': 1; 'agp': the Bernoulli probability; 'topk': 1 or 0).
 * So a product with a sample-quantized Ĝ factors as diag(scales)·(Q·W) + zeros·(1ᵀW) over the
 * kept rows, and with a channel-quantized Ĝ as (Xᵀ·Q)·diag(scales) + (Xᵀ1)·zerosᵀ over the kept columns.
 */
export interface QuantizedGradient extends GradientBuffers {
  shape: [number, number];
  bits: number;
  groups: GradientGroups;
  prune: GradientPrune;
  seed: number;
}

const GROUPS: readonly GradientGroups[] = ['sample', 'channel', 'tensor'];
const PRUNES: readonly GradientPrune[] = ['none', 'agp', 'topk'];

function checkShape2(fn: string, shape: unknown, length: number): [number, number] {
  const dims = readShape(fn, shape, 'options.shape');
  if (dims === undefined) throw new TypeError(`${fn}: options.shape must be [rows, cols], got undefined`);
  if (dims.length !== 2) throw new RangeError(`${fn}: options.shape must be [rows, cols], got [${dims.join(', ')}]`);
  checkShape(fn, dims, length, 'options.shape');
  return [dims[0], dims[1]];
}

/** Bits per kept gradient element: an integer in [1, 8] (a Number). Also packGradient's and the
 *  binary layers' check. */
export function checkGradientBits(fn: string, argument: string, bits: unknown): number {
  if (typeof bits !== 'number') throw new TypeError(`${fn}: ${argument} must be an integer in [1, 8] (a Number), got ${describe(bits)}`);
  if (!Number.isInteger(bits) || bits < 1 || bits > 8) throw new RangeError(`${fn}: ${argument} must be an integer in [1, 8], got ${describe(bits)}`);
  return bits;
}

/** options.out's fields, each read once, before any array is looked at (readFields). */
function readBuffers(fn: string, out: unknown): GradientBuffers {
  if (!isObjectArgument(out)) {
    throw new TypeError(`${fn}: options.out must be an object { codes, scales, zeros, mask, keepProbability }, got ${describe(out)}`);
  }
  return readFields(out, ['codes', 'scales', 'zeros', 'mask', 'keepProbability']) as unknown as GradientBuffers;
}

/** options.out (read by readBuffers): each buffer of its kind and exact length (the caller's
 *  objects are returned in q; the kernels write through plain views of their memory). */
function checkBuffers(fn: string, out: GradientBuffers, n: number, count: number): GradientBuffers & { views: GradientBuffers } {
  const { codes, scales, zeros, mask, keepProbability } = out;
  const views: GradientBuffers = {
    codes: inputArray(fn, 'options.out.codes', codes, 'Uint8Array', n),
    scales: inputArray(fn, 'options.out.scales', scales, 'Float32Array', count),
    zeros: inputArray(fn, 'options.out.zeros', zeros, 'Float32Array', count),
    mask: inputArray(fn, 'options.out.mask', mask, 'Uint8Array', count),
    keepProbability: inputArray(fn, 'options.out.keepProbability', keepProbability, 'Float32Array', count),
  };
  return { codes, scales, zeros, mask, keepProbability, views };
}

/** A finite gradient whose group scale or zero point overflows float32 (its range over the code
 *  steps, divided by the keep probability): a RangeError of its own, so that a caller (a binary
 *  layer's backward) can tell it from a bad argument. */
export class GradientScaleOverflowError extends RangeError {
  override name = 'RangeError';
}

/**
 * Quantize a float32 gradient [rows, cols] to b-bit codes with stochastic rounding, one scale and
 * zero point per group, optionally pruned. Every element must be finite (a RangeError names the
 * first NaN or ±Inf). With prune 'none' or 'agp', dequantizeGradient(q) is an unbiased estimate of g.
 */
export function quantizeGradient(g: Float32Array, options: QuantizeGradientOptions): QuantizedGradient {
  const fn = 'quantizeGradient';
  const o = checkOptions<QuantizeGradientOptions>(fn, options, '{ shape, bits, groups?, prune?, seed?, out? }', false, ['shape', 'bits', 'groups', 'prune', 'seed', 'out']);
  const { shape: shapeOption, bits: bitsOption, groups: groupsOption, prune: pruneOption, seed: seedOption, out: outOption } = o;
  const bits = checkGradientBits(fn, 'options.bits', bitsOption);
  const groups = checkName(fn, 'options.groups', groupsOption === undefined ? 'sample' : groupsOption, GROUPS);
  const prune = checkName(fn, 'options.prune', pruneOption === undefined ? 'none' : pruneOption, PRUNES);
  const seed = checkSeed(fn, 'options.seed', seedOption === undefined ? 0 : seedOption);
  // Caller objects are read before any array is looked at (readFields).
  const shapeCopy = copyShape(shapeOption);
  const outFields = outOption === undefined ? undefined : readBuffers(fn, outOption);
  const src = inputArray(fn, 'g', g, 'Float32Array');
  const shape = checkShape2(fn, shapeCopy, src.length);
  const [rows, cols] = shape;
  const count = gradientGroupCount(rows, cols, GradientGroupsId[groups]);
  const buffers = outFields === undefined ? undefined : checkBuffers(fn, outFields, rows * cols, count);
  const q: QuantizedGradient = {
    shape, bits, groups, prune, seed,
    codes: buffers?.codes ?? new Uint8Array(rows * cols),
    scales: buffers?.scales ?? newArray(fn, Float32Array, count, `scales of the '${groups}' groups`),
    zeros: buffers?.zeros ?? newArray(fn, Float32Array, count, `zero points of the '${groups}' groups`),
    mask: buffers?.mask ?? newArray(fn, Uint8Array, count, `mask of the '${groups}' groups`),
    keepProbability: buffers?.keepProbability ?? newArray(fn, Float32Array, count, `keep probabilities of the '${groups}' groups`),
  };
  const views = buffers?.views ?? q;
  if (buffers) {
    checkDisjoint(fn, [['options.out.codes', views.codes], ['options.out.scales', views.scales], ['options.out.zeros', views.zeros],
      ['options.out.mask', views.mask], ['options.out.keepProbability', views.keepProbability]], [['g', src]]);
  }
  if (rows * cols === 0) {
    // No elements: every group is empty — range [0, 0], kept (AGP prunes a zero range: probability 0).
    // Written here, not by a kernel, whose working arrays (~3× the outputs) a shape such as
    // [2^29, 0] would ask for with no data behind it.
    const kept = prune === 'agp' ? 0 : 1;
    if (buffers) {
      views.scales.fill(0);
      views.zeros.fill(0);
    }
    if (buffers || kept !== 0) {
      views.mask.fill(kept);
      views.keepProbability.fill(kept);
    }
    return q;
  }
  const bad = getKernels().quantizeGradient({
    src, rows, cols, bits, groups: GradientGroupsId[groups], prune: GradientPruneId[prune], seed,
    codes: views.codes, scales: views.scales, zeros: views.zeros, mask: views.mask, keepProbability: views.keepProbability,
  });
  if (bad >= 0) {
    const r = Math.floor(bad / cols);
    throw new RangeError(`${fn}: g[${bad}] (row ${r}, column ${bad - r * cols}) is ${String(src[bad])}; gradients must be finite`);
  }
  for (let i = 0; i < count; i++) {
    if (!Number.isFinite(q.scales[i]) || !Number.isFinite(q.zeros[i])) {
      throw new GradientScaleOverflowError(
        `${fn}: group ${i}'s ${Number.isFinite(q.scales[i]) ? 'zero point' : 'scale'} overflows float32 ` +
          `(its range over ${2 ** bits - 1} steps, divided by keep probability ${q.keepProbability[i]}); scale the gradient down`,
      );
    }
  }
  return q;
}

export interface DequantizeGradientOptions {
  /** Write the estimate here (rows × cols float32) instead of a new array. */
  out?: Float32Array;
}

/** The estimate ĝ: zeros[g] + code·scales[g] per element (float32), 0 in pruned groups. */
export function dequantizeGradient(q: QuantizedGradient, options?: DequantizeGradientOptions): Float32Array {
  const fn = 'dequantizeGradient';
  if (!isObjectArgument(q)) {
    throw new TypeError(`${fn}: q must be a quantized gradient from quantizeGradient, got ${describe(q)}`);
  }
  const { shape: shapeOption, groups: groupsOption, codes, scales, zeros, mask } = q;
  const { out: outOption } = checkOptions<DequantizeGradientOptions>(fn, options, '{ out? }', true, ['out']);
  const dims = readShape(fn, shapeOption, 'q.shape');
  if (dims === undefined || dims.length !== 2) throw new TypeError(`${fn}: q.shape must be [rows, cols], got ${describe(shapeOption)}`);
  const [rows, cols] = dims;
  const groups = checkName(fn, 'q.groups', groupsOption, GROUPS);
  const count = gradientGroupCount(rows, cols, GradientGroupsId[groups]);
  const a = {
    codes: inputArray(fn, 'q.codes', codes, 'Uint8Array', rows * cols),
    scales: inputArray(fn, 'q.scales', scales, 'Float32Array', count),
    zeros: inputArray(fn, 'q.zeros', zeros, 'Float32Array', count),
    mask: inputArray(fn, 'q.mask', mask, 'Uint8Array', count),
  };
  const out = outOption === undefined ? new Float32Array(rows * cols) : inputArray(fn, 'options.out', outOption, 'Float32Array', rows * cols);
  if (outOption !== undefined) checkDisjoint(fn, [['options.out', out]], [['q.codes', a.codes], ['q.scales', a.scales], ['q.zeros', a.zeros], ['q.mask', a.mask]]);
  getKernels().dequantizeGradient({ ...a, rows, cols, groups: GradientGroupsId[groups], out });
  return outOption === undefined ? out : outOption;
}
