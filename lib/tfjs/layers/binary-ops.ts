// The products of binary layers as TensorFlow.js ops with their own gradients (tf.customGrad):
// forward sign(x) ⊛ sign(w) scaled per output channel by α; backward with the output gradient
// quantized for each product as lib/training/binary-backward.ts says (SCQ, PSQ, PTQ or float32),
// and a straight-through estimator for both signs that zeroes the gradient where |v| ≥ 1 — for
// the weights too, as the paper's released code does (1-bit-FQT bnn/ops.py: its weight binarizer
// without α is SignActivation, whose backward masks |w| ≥ 1).
//
// sign(v) is +1 for v ≥ 0 (−0 included) and −1 below, so every product of signs is an exact
// integer in float32 (|sum| < 2^24).
//
// With quantized gradients both backward products run on bit planes (lib/core/bitplane-gemm.ts):
// the binary operand packed one bit per element, the gradient's codes as planes, each group's
// scale and zero point applied outside the reduction. The one exception is PSQ's ∇W, whose
// per-sample scales sit inside the reduction over samples: it is dequantized and multiplied in
// float32, as the paper's baseline does.

import * as tf from '@tensorflow/tfjs';
import { packSigns } from '../../core/bitplane-gemm.js';
import { dequantizeGradient } from '../../core/quantize-gradient.js';
import {
  inputGradientProduct, tryQuantizedPaths, weightGradientProduct, type BinaryGradientOptions, type GradientShape,
} from '../../training/binary-backward.js';
import { imageStrides } from '../im2col.js';
import { transposeLastTwo } from '../../core/transpose.js';
import { floatTimesTransposed } from '../float-product.js';
import { binaryDenseForward } from '../../training/binary-forward.js';
import {
  binaryConvForward, binaryConvInputGradientFloat, binaryConvInputGradientQuantized, binaryConvWeightGradientFloat, binaryConvWeightGradientQuantized, type SignPatches,
} from './binary-conv-products.js';

/** setWeights of a binary layer: `weights` as given, or — when they are the base layer's own
 *  ([kernel] or [kernel, bias]: one fewer than the layer's `expected`) — with α appended at its
 *  initial ones (`channels` of them). */
export function setWeightsWithAlpha(weights: tf.Tensor[], expected: number, channels: number, set: (all: tf.Tensor[]) => void): void {
  if (weights.length !== expected - 1) return set(weights);
  const ones = tf.ones([channels]);
  try {
    set([...weights, ones]);
  } finally {
    ones.dispose();
  }
}

/** ±1 of each element: +1 where v ≥ 0, −1 elsewhere (NaN included). */
export function binarize(v: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.sub(tf.mul(tf.cast(tf.greaterEqual(v, 0), 'float32'), 2), 1));
}

function floats(t: tf.Tensor): Float32Array {
  const v = t.dataSync();
  return v instanceof Float32Array ? v : Float32Array.from(v as ArrayLike<number>);
}

/** xᵀ [k, t] · g [t, n] → [k, n] on fp4kit's float32 kernel (the float products of these layers
 *  are fp4kit's, not tf ops: see floatTimesTransposed). */
function signsTransposedTimes(x: Float32Array, t: number, k: number, g: Float32Array, n: number): Float32Array {
  return floatTimesTransposed(transposeLastTwo(x, [t, k]), k, transposeLastTwo(g, [t, n]), n, t);
}

/** Where the sign's STE passes the gradient: |v| < 1 (activations and weights alike). */
function steMask(x: tf.Tensor): tf.Tensor {
  return tf.cast(tf.less(tf.abs(x), 1), 'float32');
}

/** A source of per-step seeds: each backward pass of a layer draws fresh rounding noise. */
export class StepSeeds {
  constructor(private readonly seed: number, private steps = 0) {}
  /** Seeds drawn so far. */
  get step(): number {
    return this.steps;
  }
  next(): number {
    // splitmix-style mix of (seed, step): distinct, well-spread seeds per step
    let h = (this.seed ^ Math.imul(++this.steps, 0x9e3779b9)) >>> 0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
    return (h ^ (h >>> 16)) >>> 0;
  }
}

/** y[T, N] = α ⊙ (sign(x[T, K]) · sign(w[K, N])). */
export function binaryMatMul(x: tf.Tensor2D, w: tf.Tensor2D, alpha: tf.Tensor1D, options: BinaryGradientOptions, seeds: StepSeeds): tf.Tensor2D {
  const op = tf.customGrad(((xs: tf.Tensor2D, ws: tf.Tensor2D, as: tf.Tensor1D, save: tf.GradSaveFunc) => {
    const xb = binarize(xs) as tf.Tensor2D;
    const wb = binarize(ws) as tf.Tensor2D;
    const [t, k] = xs.shape;
    const n = ws.shape[1];
    const product = tf.tensor2d(binaryDenseForward(floats(xs), t, k, floats(ws), n), [t, n]);
    save([xs, xb, wb, product, ws]);
    return {
      value: tf.mul(product, as),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [x0, xb0, wb0, p0, w0] = saved;
        const [t, n] = dy.shape as [number, number];
        const k = x0.shape[1] as number;
        const dAlpha = tf.sum(tf.mul(dy, p0), 0);
        const g = floats(tf.mul(dy, as));
        const shape: GradientShape = { samples: t, positions: 1, channels: n };
        const paths = options.mode === 'fp32' ? null : tryQuantizedPaths(g, shape, options, seeds.next());
        if (paths === null) {
          const dx = tf.mul(tf.tensor2d(floatTimesTransposed(g, t, floats(wb0), k, n), [t, k]), steMask(x0));
          return [dx, tf.mul(tf.tensor2d(signsTransposedTimes(floats(xb0), t, k, g, n), [k, n]), steMask(w0)), dAlpha];
        }
        const dxv = inputGradientProduct(paths.input, shape, packSigns(floats(wb0), { shape: [k, n] }));
        const dx = tf.mul(tf.tensor2d(dxv, [t, k]), steMask(x0));
        const dwT = weightGradientProduct(paths.weight, shape, () => packSigns(floats(xb0), { shape: [t, k], transpose: true }));
        const dw = dwT
          ? tf.transpose(tf.tensor2d(dwT, [n, k]))
          : tf.tensor2d(signsTransposedTimes(floats(xb0), t, k, dequantizeGradient(paths.weight.q), n), [k, n]);
        return [dx, tf.mul(dw, steMask(w0)), dAlpha];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(x, w, alpha) as tf.Tensor2D;
}

export interface Conv2dGeometry {
  strides: [number, number];
  pad: 'valid' | 'same';
}

/** y = α ⊙ conv2d(sign(x), sign(w)) in NHWC, α per output channel. */
export function binaryConv2d(x: tf.Tensor4D, w: tf.Tensor4D, alpha: tf.Tensor1D, geometry: Conv2dGeometry, options: BinaryGradientOptions, seeds: StepSeeds): tf.Tensor4D {
  const { strides, pad } = geometry;
  const op = tf.customGrad(((xs: tf.Tensor4D, ws: tf.Tensor4D, as: tf.Tensor1D, save: tf.GradSaveFunc) => {
    const xb = binarize(xs) as tf.Tensor4D;
    const wb = binarize(ws) as tf.Tensor4D;
    // In im2col form: patches of sign(x) [n·h'·w', taps·inChannels] (0 in the zero padding), the
    // filter as [taps·inChannels, c].
    const [batch, inH, inW, inC] = xs.shape;
    const info = tf.backend_util.computeConv2DInfo(xs.shape, ws.shape as [number, number, number, number], strides, 1, pad);
    // A 'valid' kernel larger than the input gives ceil((in − k + 1) / stride) < 0 output rows or
    // columns once k ≥ in + 1 + stride: that reached a typed array as "Invalid typed array length:
    // -32" (tfjs's conv2d fails the same way). An output size of 0 is an empty output, as in tfjs.
    if (info.outHeight < 0 || info.outWidth < 0) {
      throw new RangeError(`binaryConv2d: a ${info.filterHeight} × ${info.filterWidth} kernel with padding '${pad}' does not fit a ${inH} × ${inW} input (output ${info.outHeight} × ${info.outWidth})`);
    }
    const taps = info.filterHeight * info.filterWidth * inC;
    const rows = batch * info.outHeight * info.outWidth;
    const padded = info.padInfo.top + info.padInfo.bottom + info.padInfo.left + info.padInfo.right > 0;
    // The patches (rows × taps) go through in chunks of ~16 MB, never whole (binary-conv-products.ts).
    const patches = (signs: Float32Array): SignPatches => ({ signs, strides: imageStrides(inH, inW, inC, true), info, rows, taps, padded });
    const product = tf.tensor4d(binaryConvForward(patches(floats(xb)), floats(ws), info.outChannels), [batch, info.outHeight, info.outWidth, info.outChannels]);
    save([xs, xb, wb, product, ws]);
    return {
      value: tf.mul(product, as),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [x0, xb0, wb0, p0, w0] = saved;
        const dAlpha = tf.sum(tf.mul(dy, p0), [0, 1, 2]);
        // ∇Y is already samples × positions × channels in NHWC.
        const [n, h, wd, c] = dy.shape as [number, number, number, number];
        const g = floats(tf.mul(dy, as));
        const shape: GradientShape = { samples: n, positions: h * wd, channels: c };
        // The forward's patches are made again from sign(x), chunk by chunk (not kept from the
        // forward: inference would pay for them, and hold them).
        const signPatches = patches(floats(xb0));
        const xShape = x0.shape as [number, number, number, number];
        const wShape = wb0.shape as [number, number, number, number];
        // The float32 products in im2col form on fp4kit's float32 kernel, as binaryDense's: the
        // same bits on every tfjs backend, and never taken for a weight by the fp4kit backend
        // (tf's Conv2DBackprop kernels would run on whichever backend is active; wasm has no
        // Conv2DBackpropFilter at all).
        const backpropFilter = (grad: Float32Array): tf.Tensor4D => tf.tensor4d(binaryConvWeightGradientFloat(signPatches, grad, c), wShape);
        // The quantized ∇Y's scales, zero points and AGP keep decisions are drawn here, once, over
        // the whole gradient (output-sized, not patch-sized); the chunks only read them.
        const paths = options.mode === 'fp32' ? null : tryQuantizedPaths(g, shape, options, seeds.next());
        if (paths === null) {
          const dx = tf.tensor4d(binaryConvInputGradientFloat(signPatches, g, c, floats(wb0)), xShape);
          return [tf.mul(dx, steMask(x0)), tf.mul(backpropFilter(g), steMask(w0)), dAlpha];
        }
        const dxb = tf.tensor4d(binaryConvInputGradientQuantized(signPatches, paths.input, shape, packSigns(floats(wb0), { shape: [taps, c] })), xShape);
        const dwT = binaryConvWeightGradientQuantized(signPatches, paths.weight, shape);
        const dw = dwT
          ? tf.reshape(tf.transpose(tf.tensor2d(dwT, [c, taps])), wb0.shape)
          : backpropFilter(dequantizeGradient(paths.weight.q));
        return [tf.mul(dxb, steMask(x0)), tf.mul(dw, steMask(w0)), dAlpha];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(x, w, alpha) as tf.Tensor4D;
}
