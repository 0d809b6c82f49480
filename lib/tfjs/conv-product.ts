// 2-D convolutions as products on fp4kit's matmul (im2col.ts), NHWC or NCHW:
//   forward        out[pixels, N]  = patches[pixels, K] · F[K, N]     F = the filter, the weight
//   input gradient dPatches[pixels, K] = dY[pixels, N] · F[K, N]ᵀ, then col2im onto dX
//   filter gradient dF[K, N] = patches[pixels, K]ᵀ · dY[pixels, N]   (float32: a gradient product)
// The filter is the weight operand (weights.ts) of the first two: its memory [K, N] is a Dense
// kernel's layout for the forward and fp4kit's [N, K] layout, untransposed, for the input
// gradient (so dX = dY · Q(F)ᵀ with the same quantized filter, like a Dense layer's dX).
// Images go through in chunks so the patch matrices stay small.

import type { backend_util, TensorInfo } from '@tensorflow/tfjs';
import { counters } from './counters.js';
import { floatOperand, floatStride } from './float-product.js';
import { weightMode, type WeightMode } from './flags.js';
import { col2im, im2col, imageStrides } from './im2col.js';
import { scratch } from '../core/scratch.js';
import type { KernelContext } from './kernel-context.js';
import { decodedProduct } from '../core/matmul.js';
import { transposeInto } from '../core/transpose.js';
import { rowMajor } from './layout.js';
import { multiplyRows } from './product.js';
import { floatValues } from './storage.js';
import { isWeightData, weightOperand } from './weights.js';

/** Patch values per chunk (4 M floats = 16 MB). */
const CHUNK_VALUES = 1 << 22;

const channelsLast = (info: backend_util.Conv2DInfo) => info.dataFormat === 'channelsLast';

function imagesPerChunk(rowsPerImage: number, stride: number): number {
  return Math.max(1, Math.floor(CHUNK_VALUES / Math.max(1, rowsPerImage * stride)));
}

/**
 * Rows [pixel, channel] of `count` images of an output-shaped tensor (dY): a view for NHWC, a
 * per-image transpose of NCHW's [channel, pixel], each row padded to `stride`.
 */
function pixelRows(values: Float32Array, info: backend_util.Conv2DInfo, first: number, count: number, stride: number): Float32Array {
  const pixels = info.outHeight * info.outWidth;
  const n = info.outChannels;
  return rowMajor(values, first * pixels * n, count, pixels, n, !channelsLast(info), stride, 'conv2d.dy-rows');
}

/** Writes product rows [pixel, channel] of `count` images into the output at image `first`. */
function storePixelRows(rows: Float32Array, info: backend_util.Conv2DInfo, first: number, count: number, out: Float32Array): void {
  const pixels = info.outHeight * info.outWidth;
  const n = info.outChannels;
  if (channelsLast(info)) {
    out.set(rows, first * pixels * n);
    return;
  }
  for (let i = 0; i < count; i++) transposeInto(rows, i * pixels * n, pixels, n, out, (first + i) * pixels * n, pixels);
}

/** The convolution's output values (info.outShape, in the data format's layout). */
export function conv2dValues(ctx: KernelContext, x: TensorInfo, filter: TensorInfo, info: backend_util.Conv2DInfo, bias: Float32Array | undefined,
  into?: Float32Array): Float32Array {
  const pixels = info.outHeight * info.outWidth;
  const k = info.filterHeight * info.filterWidth * info.inChannels;
  const n = info.outChannels;
  // `into`: the output tensor's memory (storage.outputFilled), every element written below.
  const out = into ?? new Float32Array(info.batchSize * pixels * n);
  if (out.length !== info.batchSize * pixels * n) throw new RangeError(`conv2dValues: out holds ${out.length} values, ${info.batchSize * pixels * n} needed`);
  if (out.length === 0) return out;
  if (k === 0) {
    // Empty sums: +0, or f32(+0 + bias) per channel.
    const rows = new Float32Array(info.batchSize * pixels * n);
    if (bias) for (let i = 0; i < rows.length; i++) rows[i] = Math.fround(0 + bias[i % n]);
    storePixelRows(rows, info, 0, info.batchSize, out);
    return out;
  }
  const isWeight = isWeightData(filter.dataId);
  const mode: WeightMode = isWeight ? weightMode() : 'none';
  const xValues = floatValues(ctx.storage, x);
  const xStrides = imageStrides(info.inHeight, info.inWidth, info.inChannels, channelsLast(info));
  const w = weightOperand(ctx.cache, filter.dataId, 0, { values: floatValues(ctx.storage, filter), offset: 0, n, k, kMajor: true }, mode, isWeight);
  const stride = mode === 'none' ? floatStride(k) : k;
  const chunk = imagesPerChunk(pixels, stride);
  for (let first = 0; first < info.batchSize; first += chunk) {
    const count = Math.min(chunk, info.batchSize - first);
    // Reused scratch (core/scratch.ts), zeroed: im2col leaves the padding's taps and columns k…stride.
    const rows = scratch('conv2d.patches', Float32Array, count * pixels * stride).fill(0);
    im2col(xValues, xStrides, info, first, count, rows, stride, 1);
    if (channelsLast(info)) multiplyRows(rows, count * pixels, k, w, bias, out.subarray(first * pixels * n, (first + count) * pixels * n)); // [pixel, channel] already
    else storePixelRows(multiplyRows(rows, count * pixels, k, w, bias), info, first, count, out);
  }
  return out;
}

/**
 * dY as the convolution's (or pooling's) output shape. tf.conv2dTranspose lets dY be larger than
 * the output the convolution info implies, and so do conv2d's and maxPool's gradients with
 * dimRoundingMode (tfjs-core drops the mode when it computes the gradient's info); tfjs-backend-cpu
 * then reads only dY's top-left outHeight × outWidth pixels (indexing dY with its own strides), and
 * so does every fp4kit gradient kernel, through this.
 */
export function croppedOutput(values: Float32Array, shape: number[], info: backend_util.Conv2DInfo): Float32Array {
  const last = channelsLast(info);
  const [height, width] = last ? [shape[1], shape[2]] : [shape[2], shape[3]];
  if (height === info.outHeight && width === info.outWidth) return values;
  const from = imageStrides(height, width, info.outChannels, last);
  const to = imageStrides(info.outHeight, info.outWidth, info.outChannels, last);
  const out = new Float32Array(info.batchSize * to.image);
  for (let b = 0; b < info.batchSize; b++) {
    for (let y = 0; y < Math.min(height, info.outHeight); y++) {
      for (let x = 0; x < Math.min(width, info.outWidth); x++) {
        for (let c = 0; c < info.outChannels; c++) {
          out[b * to.image + y * to.row + x * to.col + c * to.channel] = values[b * from.image + y * from.row + x * from.col + c * from.channel];
        }
      }
    }
  }
  return out;
}

/** dX (info.inShape, in the data format's layout) from dY and the filter. */
export function conv2dBackpropInputValues(ctx: KernelContext, dy: TensorInfo, filter: TensorInfo, info: backend_util.Conv2DInfo): Float32Array {
  const pixels = info.outHeight * info.outWidth;
  const k = info.filterHeight * info.filterWidth * info.inChannels;
  const n = info.outChannels;
  const dx = new Float32Array(info.batchSize * info.inHeight * info.inWidth * info.inChannels);
  if (dx.length === 0 || pixels === 0 || k === 0 || n === 0) return dx;
  const isWeight = isWeightData(filter.dataId);
  const mode: WeightMode = isWeight ? weightMode() : 'none';
  const dyValues = croppedOutput(floatValues(ctx.storage, dy), dy.shape, info);
  const xStrides = imageStrides(info.inHeight, info.inWidth, info.inChannels, channelsLast(info));
  // The filter's memory [K, N] is [rows of the result, reduction]: fp4kit's weight layout as is.
  const w = weightOperand(ctx.cache, filter.dataId, 0, { values: floatValues(ctx.storage, filter), offset: 0, n: k, k: n, kMajor: false }, mode, isWeight);
  const stride = mode === 'none' ? floatStride(n) : n;
  const chunk = imagesPerChunk(pixels, Math.max(stride, k));
  for (let first = 0; first < info.batchSize; first += chunk) {
    const count = Math.min(chunk, info.batchSize - first);
    const dPatches = multiplyRows(pixelRows(dyValues, info, first, count, stride), count * pixels, n, w, undefined);
    col2im(dPatches, k, info, xStrides, first, count, dx);
  }
  return dx;
}

/** dF [K, N] (the filter's shape) from x and dY, as one float32 product over every pixel. */
export function conv2dBackpropFilterValues(ctx: KernelContext, x: TensorInfo, dy: TensorInfo, info: backend_util.Conv2DInfo): Float32Array {
  const pixels = info.outHeight * info.outWidth;
  const total = info.batchSize * pixels;
  const k = info.filterHeight * info.filterWidth * info.inChannels;
  const n = info.outChannels;
  const out = new Float32Array(k * n);
  if (total === 0 || out.length === 0) return out;
  const stride = floatStride(total);
  // Both operands with the pixels as the reduction axis: patchesᵀ [K, pixels], dYᵀ [N, pixels].
  const patchesT = scratch('conv2d.patches', Float32Array, k * stride).fill(0);
  im2col(floatValues(ctx.storage, x), imageStrides(info.inHeight, info.inWidth, info.inChannels, channelsLast(info)), info, 0, info.batchSize, patchesT, 1, stride);
  const dyValues = croppedOutput(floatValues(ctx.storage, dy), dy.shape, info);
  let dyT: Float32Array;
  if (channelsLast(info)) {
    dyT = rowMajor(dyValues, 0, 1, n, total, true, stride, 'conv2d.dy-transposed');
  } else {
    dyT = new Float32Array(n * stride);
    for (let b = 0; b < info.batchSize; b++) {
      for (let c = 0; c < n; c++) dyT.set(dyValues.subarray((b * n + c) * pixels, (b * n + c + 1) * pixels), c * stride + b * pixels);
    }
  }
  counters.floatProducts++;
  out.set(decodedProduct(floatOperand(patchesT, k, total), floatOperand(dyT, n, total), undefined));
  return out;
}
