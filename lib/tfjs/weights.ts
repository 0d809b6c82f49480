// Which operand is the weight, and how it is made ready for a product.
//
// The weight is always the B operand of a product (tfjs's `b` of matMul, the filter of conv2d):
// tfjs-layers computes x · kernel, and the backward product dX = dY · Wᵀ has the weight as B too
// (with transposeB). B counts as a weight when FP4KIT_WEIGHT_TENSORS is 'all', or (default
// 'variables') when its data is a tf.Variable's. A weight is quantized to FP4KIT_WEIGHTS's format
// (or, for 'none', laid out as a float operand) once per layout and cached; every other B operand
// — an activation, a gradient dY in dW = Xᵀ · dY, attention keys — takes the float32 path.

import * as tf from '@tensorflow/tfjs';
import { prepareWeights } from '../core/matmul.js';
import { quantize } from '../core/quantize.js';
import { floatOperand, floatStride } from './float-product.js';
import { weightTensors, type WeightMode } from './flags.js';
import { rowMajor } from './layout.js';
import type { WeightCache, WeightOperand } from './weight-cache.js';
import { sliceOrigin } from './weight-slices.js';

/** Whether the data behind this dataId is a weight (see the header), or a piece cut from one
 *  (weight-slices.ts: a GRU's split recurrent kernel). */
export function isWeightData(dataId: object): boolean {
  if (weightTensors() === 'all') return true;
  if (isVariableData(dataId)) return true;
  const source = sliceOrigin(dataId)?.source;
  return source !== undefined && isVariableData(source);
}

/** Whether this data is a tf.Variable's own. */
function isVariableData(dataId: object): boolean {
  const variables = tf.engine().registeredVariables;
  for (const name in variables) if (variables[name].dataId === dataId) return true;
  return false;
}

/** Where a weight's operands are cached: under its own data, or — for a piece cut afresh from a
 *  weight at every call — under the weight's data, as that piece. A variable made from a piece
 *  (tf.variable(tf.slice(W, …))) is a weight of its own. */
function cacheOwner(dataId: object): { owner: object; piece: string } {
  const origin = isVariableData(dataId) ? undefined : sliceOrigin(dataId);
  return origin ? { owner: origin.source, piece: `${origin.piece}:` } : { owner: dataId, piece: '' };
}

/** Whether a cache key (weightOperand's) is a piece's: a piece's starts with its cut, `[…]`, and a
 *  weight's own with its mode. Pieces are capped per weight (MAX_CACHED_PIECES). */
const isPieceKey = (key: string) => key.startsWith('[');

/** Where one weight matrix is in a tensor's values and how it is stored. */
export interface WeightSource {
  values: Float32Array;
  /** Index of the matrix's first value. */
  offset: number;
  n: number;
  k: number;
  /** The memory holds [K, N] (a Dense kernel, a conv filter) rather than fp4kit's [N, K]. */
  kMajor: boolean;
}

/** The operand [N, K] for a product in `mode`, made now (a view where possible; not cached). */
export function makeWeightOperand(src: WeightSource, mode: WeightMode, owned: boolean): WeightOperand {
  const { values, offset, n, k, kMajor } = src;
  if (mode === 'none') {
    let rows = rowMajor(values, offset, 1, n, k, kMajor, floatStride(k));
    // A cached operand must own its memory: the wasm heap under a view moves when it grows.
    if (owned && rows.buffer === values.buffer) rows = rows.slice();
    return { kind: 'float', mode, operand: floatOperand(rows, n, k) };
  }
  let rows = rowMajor(values, offset, 1, n, k, kMajor, k);
  // No format here represents NaN or ±Inf (NVFP4 and FGMP refuse them, MX turns a whole block
  // into NaN): such a row is quantized as zeros and its output column set to NaN — one rule for
  // every mode, the column an MX block's NaN scale would give.
  const nonFinite = nonFiniteRows(rows, n, k);
  if (nonFinite !== undefined) {
    if (rows.buffer === values.buffer) rows = rows.slice(); // a view of the tensor: never written
    for (const r of nonFinite) rows.fill(0, r * k, (r + 1) * k);
  }
  const q = mode === 'fgmp' ? quantize(rows, { format: 'fgmp', shape: [n, k] }) : quantize(rows, { format: mode, shape: [n, k] });
  // prepareWeights snapshots the tensor and keeps the kernel's repacked copy for later products.
  return { kind: 'quantized', mode, weights: owned ? prepareWeights(q) : q, nanColumns: nonFinite };
}

/** The rows of rows[n, k] holding a NaN or ±Inf, or undefined when every value is finite. */
function nonFiniteRows(rows: Float32Array, n: number, k: number): Int32Array | undefined {
  let found: number[] | undefined;
  for (let r = 0; r < n; r++) {
    // x − x is NaN exactly for NaN and ±Inf; one sum per row keeps the finite case to one pass.
    let probe = 0;
    for (let i = r * k; i < (r + 1) * k; i++) probe += rows[i] - rows[i];
    if (probe !== 0) (found ??= []).push(r);
  }
  return found && Int32Array.from(found);
}

/**
 * The weight operand for B: from the cache when B is a weight seen before in this mode and layout,
 * else made now (and cached when B is a weight).
 */
export function weightOperand(cache: WeightCache, dataId: object, batchIndex: number, src: WeightSource, mode: WeightMode, isWeight: boolean): WeightOperand {
  if (!isWeight) return makeWeightOperand(src, mode, false);
  const { owner, piece } = cacheOwner(dataId);
  const key = `${piece}${mode}/${src.kMajor ? 'kn' : 'nk'}/${batchIndex}/${src.n}x${src.k}`;
  let w = cache.get(owner, key);
  if (w === undefined) cache.set(owner, key, (w = makeWeightOperand(src, mode, true)), isPieceKey);
  return w;
}
