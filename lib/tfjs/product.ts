// One tfjs matrix product — a[..., M, K] · b[..., K, N] with optional transposes and broadcast
// batch dimensions, as tfjs's BatchMatMul defines it — computed on fp4kit's matmul:
//   out[M, N] = A[M, K] · W[N, K]ᵀ (+ bias per column)
// with W the weight operand (weights.ts) and A the activations, quantized on the fly to MXINT8
// by fp4kit's matmul when W is quantized, or a float operand on the float32 path.
//
// Layouts: fp4kit wants A row-major [M, K] and W [N, K]. A plain `a` already is [M, K] (used in
// place, no copy); transposeA's [K, M] is transposed once per call (layout.ts). `b` with
// transposeB is [N, K] already; a plain `b` ([K, N], a Dense kernel) is transposed when its weight
// operand is made, which for a weight happens once (cached).
//
// Batches broadcast as numpy's matmul: the batch dims of a and b broadcast to the output's, and
// output matrix i uses a's matrix aMatrix[i] and b's bMatrix[i]. (tfjs's own BatchMatMul takes
// i % batchA and i % batchB over max(batchA, batchB) matrices, which is the same whenever one side
// has one matrix or both have the same batch dims, and wrong — a tensor with too few values —
// when both broadcast, e.g. [2,1,M,K] × [1,3,K,N].) When b has a single matrix (every Dense layer,
// any rank of a) all of a's matrices go through one product of batch·M rows.

import type { TensorInfo } from '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs';
import { decodedProduct, decodedProducts, matmul } from '../core/matmul.js';
import { counters } from './counters.js';
import { floatOperand, floatStride } from './float-product.js';
import { weightMode, type WeightMode } from './flags.js';
import { rowMajor } from './layout.js';
import { floatValues, type TensorStorage } from './storage.js';
import type { WeightCache, WeightOperand } from './weight-cache.js';
import { isWeightData, weightOperand } from './weights.js';

export interface MatMulPlan {
  outShape: number[];
  /** Matrices in b (1: one weight for every matrix of a). */
  batchB: number;
  /** Output matrices: the size of the broadcast batch dims. */
  batch: number;
  /** For each output matrix, the index of the matrix of a and of b it multiplies. */
  aMatrix: Int32Array;
  bMatrix: Int32Array;
  m: number;
  k: number;
  n: number;
}

/** For each index of the batch dims `outer`, the index in `dims` (aligned right) they broadcast from. */
function broadcastSource(dims: number[], outer: number[]): Int32Array {
  const count = tf.util.sizeFromShape(outer);
  const source = new Int32Array(count);
  const offset = outer.length - dims.length;
  for (let i = 0; i < count; i++) {
    let rest = i;
    let index = 0;
    let stride = 1;
    for (let d = outer.length - 1; d >= offset; d--) {
      const coordinate = rest % outer[d];
      rest = Math.floor(rest / outer[d]);
      const size = dims[d - offset];
      if (size !== 1) index += coordinate * stride;
      stride *= size;
    }
    source[i] = index;
  }
  return source;
}

/** Shapes of a product, with tfjs's checks and error messages (tfjs-backend-cpu BatchMatMul). */
export function planMatMul(aShape: number[], bShape: number[], transposeA: boolean, transposeB: boolean): MatMulPlan {
  const aRank = aShape.length;
  const bRank = bShape.length;
  const innerA = transposeA ? aShape[aRank - 2] : aShape[aRank - 1];
  const innerB = transposeB ? bShape[bRank - 1] : bShape[bRank - 2];
  const m = transposeA ? aShape[aRank - 1] : aShape[aRank - 2];
  const n = transposeB ? bShape[bRank - 2] : bShape[bRank - 1];
  const batchB = tf.util.sizeFromShape(bShape.slice(0, -2));
  const outerDims = tf.broadcast_util.assertAndGetBroadcastShape(aShape.slice(0, -2), bShape.slice(0, -2));
  tf.util.assert(innerA === innerB, () => `Error in matMul: inner shapes (${innerA}) and (${innerB}) of Tensors with shapes ${aShape} and ${bShape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`);
  return {
    outShape: [...outerDims, m, n], batchB, batch: tf.util.sizeFromShape(outerDims),
    aMatrix: broadcastSource(aShape.slice(0, -2), outerDims), bMatrix: broadcastSource(bShape.slice(0, -2), outerDims), m, k: innerA, n,
  };
}

export interface MatMulArgs {
  a: TensorInfo;
  b: TensorInfo;
  transposeA: boolean;
  transposeB: boolean;
  /** Added to every row (length N), inside the product. */
  bias?: Float32Array;
}

/**
 * The product's values, [batch, M, N] row-major, written into `out` (every element) when given:
 * the output tensor's own memory, so the values are not copied there afterwards. On the wasm base
 * that is a view into the heap: the caller allocates the output before this call, which allocates
 * nothing there.
 */
export function matMulValues(storage: TensorStorage, cache: WeightCache, args: MatMulArgs, out?: Float32Array): Float32Array {
  const p = planMatMul(args.a.shape, args.b.shape, args.transposeA, args.transposeB);
  const { batch, batchB, aMatrix, bMatrix, m, k, n } = p;
  if (out === undefined) out = new Float32Array(batch * m * n);
  else if (out.length !== batch * m * n) throw new RangeError(`matMulValues: out holds ${out.length} values, ${batch * m * n} needed`);
  if (out.length === 0) return out;
  if (k === 0) {
    // An empty sum is +0 (and f32(+0 + bias) with a bias), as fp4kit's matmul defines it.
    if (args.bias) for (let i = 0; i < out.length; i++) out[i] = Math.fround(0 + args.bias[i % n]);
    else out.fill(0);
    return out;
  }
  const isWeight = isWeightData(args.b.dataId);
  // Only weights are quantized; every other product runs in float32.
  const mode: WeightMode = isWeight ? weightMode() : 'none';
  const aValues = floatValues(storage, args.a);
  const bValues = floatValues(storage, args.b);
  const stride = mode === 'none' ? floatStride(k) : k;
  const weightFor = (j: number): WeightOperand =>
    weightOperand(cache, args.b.dataId, j, { values: bValues, offset: j * k * n, n, k, kMajor: !args.transposeB }, mode, isWeight);
  const whole = out;
  const multiply = (rows: Float32Array, count: number, w: WeightOperand, first: number) =>
    multiplyRows(rows, count, k, w, args.bias, whole.subarray(first * n, (first + count) * n));
  // A's laid-out copy is used by this call only: reused scratch.
  // One matrix in b: the output's matrices are a's, in order.
  if (batchB === 1) return multiply(rowMajor(aValues, 0, batch, m, k, args.transposeA, stride, 'tfjs.a-rows'), batch * m, weightFor(0), 0);
  if (!isWeight) {
    // Many matrices in b that are no weight (attention's per-head products): both sides laid out
    // once and every pair in one kernel call (core/matmul.ts decodedProducts: the same bits as a
    // call per pair, without a call's overhead per 64 × 64 matrix, and spread over the threads).
    const batchA = tf.util.sizeFromShape(args.a.shape.slice(0, -2));
    const aRows = rowMajor(aValues, 0, batchA, m, k, args.transposeA, stride, 'tfjs.a-rows');
    const bRows = rowMajor(bValues, 0, batchB, n, k, !args.transposeB, stride, 'tfjs.b-rows');
    counters.floatProducts += batch;
    return decodedProducts(floatOperand(aRows, batchA * m, k), m, floatOperand(bRows, batchB * n, k), n, aMatrix, bMatrix, args.bias, out);
  }
  let aRows: Float32Array | undefined;
  let laidOut = -1;
  for (let i = 0; i < batch; i++) {
    // A matrix of a used by consecutive outputs (one matrix in a, say) is laid out once.
    if (aMatrix[i] !== laidOut) aRows = rowMajor(aValues, (laidOut = aMatrix[i]) * m * k, 1, m, k, args.transposeA, stride, 'tfjs.a-rows');
    multiply(aRows!, m, weightFor(bMatrix[i]), i * m);
  }
  return out;
}

/**
 * rows[count, K] (row stride K for a quantized weight, floatStride(K) for a float one) times the
 * weight operand [N, K]ᵀ, + bias: Float32Array [count, N] (`into` when given).
 */
export function multiplyRows(rows: Float32Array, count: number, k: number, w: WeightOperand, bias: Float32Array | undefined, into?: Float32Array): Float32Array {
  if (w.kind === 'float') {
    counters.floatProducts++;
    return decodedProduct(floatOperand(rows, count, k), w.operand, bias, into);
  }
  counters.quantizedProducts++;
  const out = matmul(rows, w.weights, { shape: [count, k], bias, out: into });
  if (w.nanColumns !== undefined) {
    const n = out.length / count;
    for (let r = 0; r < count; r++) for (const c of w.nanColumns) out[r * n + c] = NaN;
  }
  return out;
}
