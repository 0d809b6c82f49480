// 2-D convolutions as products on fp4kit's matmul (im2col.ts), NHWC or NCHW:
//   forward        out[pixels, N]  = patches[pixels, K] · F[K, N]     F = the filter, the weight
//   input gradient dPatches[pixels, K] = dY[pixels, N] · F[K, N]ᵀ, then col2im onto dX
//   filter gradient dF[K, N] = patches[pixels, K]ᵀ · dY[pixels, N]   (float32: a gradient product)
// The filter is the weight operand (weights.ts) of the first two: its memory [K, N] is a Dense
// kernel's layout for the forward and fp4kit's [N, K] layout, untransposed, for the input
// gradient (so dX = dY · Q(F)ᵀ with the same quantized filter, like a Dense layer's dX).
// Output pixels go through in chunks (~16 MB of patches, a chunk may end inside an image) so the
// patch matrices stay small; the filter gradient's reduction spans every pixel of the batch (one
// float32 product: its order of accumulation is the product's), so its chunks carry their sums.

import type { backend_util, TensorInfo } from '@tensorflow/tfjs';
import { counters } from './counters.js';
import { continuedProduct, FLOAT_BLOCK, floatStride } from './float-product.js';
import { weightMode, type WeightMode } from './flags.js';
import { col2im, hasNonFinite, im2col, imageStrides } from './im2col.js';
import { scratch } from '../core/scratch.js';
import type { KernelContext } from './kernel-context.js';
import { transposeInto } from '../core/transpose.js';
import { rowMajor } from './layout.js';
import { multiplyRows } from './product.js';
import { floatValues } from './storage.js';
import { isWeightData, weightOperand } from './weights.js';

/** Patch values per chunk (4 M floats = 16 MB). */
const CHUNK_VALUES = 1 << 22;

const channelsLast = (info: backend_util.Conv2DInfo) => info.dataFormat === 'channelsLast';

/** Patches (output pixels) per chunk: a chunk may end inside an image, so one large image with a
 *  large filter (a 1024² image and a 64 × 64 filter: 16 GiB of patches) never comes whole. */
function patchesPerChunk(stride: number): number {
  return Math.max(1, Math.floor(CHUNK_VALUES / Math.max(1, stride)));
}

/**
 * Rows [pixel, channel] of output pixels [p0, p1) of the batch of an output-shaped tensor (dY),
 * each padded to `stride`: a view for NHWC without padding, else a copy (NCHW's [channel, pixel]
 * transposed).
 */
function pixelRows(values: Float32Array, info: backend_util.Conv2DInfo, p0: number, p1: number, stride: number): Float32Array {
  const n = info.outChannels;
  if (channelsLast(info)) return rowMajor(values, p0 * n, 1, p1 - p0, n, false, stride, 'conv2d.dy-rows');
  const pixels = info.outHeight * info.outWidth;
  const rows = scratch('conv2d.dy-rows', Float32Array, (p1 - p0) * stride);
  if (stride !== n) rows.fill(0);
  for (let p = p0; p < p1; p++) {
    const image = Math.floor(p / pixels);
    const pixel = p - image * pixels;
    for (let c = 0; c < n; c++) rows[(p - p0) * stride + c] = values[(image * n + c) * pixels + pixel];
  }
  return rows;
}

/** Writes product rows [pixel, channel] of output pixels [p0, p1) of the batch into the output. */
function storePixelRows(rows: Float32Array, info: backend_util.Conv2DInfo, p0: number, p1: number, out: Float32Array): void {
  const n = info.outChannels;
  if (channelsLast(info)) {
    out.set(rows.subarray(0, (p1 - p0) * n), p0 * n);
    return;
  }
  const pixels = info.outHeight * info.outWidth;
  for (let p = p0; p < p1; p++) {
    const image = Math.floor(p / pixels);
    const pixel = p - image * pixels;
    for (let c = 0; c < n; c++) out[(image * n + c) * pixels + pixel] = rows[(p - p0) * n + c];
  }
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
    storePixelRows(rows, info, 0, info.batchSize * pixels, out);
    return out;
  }
  const isWeight = isWeightData(filter.dataId);
  const mode: WeightMode = isWeight ? weightMode() : 'none';
  const xValues = floatValues(ctx.storage, x);
  const xStrides = imageStrides(info.inHeight, info.inWidth, info.inChannels, channelsLast(info));
  const w = weightOperand(ctx.cache, filter.dataId, 0, { values: floatValues(ctx.storage, filter), offset: 0, n, k, kMajor: true }, mode, isWeight);
  const stride = mode === 'none' ? floatStride(k) : k;
  // Each output row depends on its own patch only (activations are quantized per row), so the
  // chunking does not change a bit.
  const chunk = patchesPerChunk(stride);
  const total = info.batchSize * pixels;
  for (let p0 = 0; p0 < total; p0 += chunk) {
    const p1 = Math.min(total, p0 + chunk);
    // Reused scratch (core/scratch.ts), zeroed: im2col leaves the padding's taps and columns k…stride.
    const rows = scratch('conv2d.patches', Float32Array, (p1 - p0) * stride).fill(0);
    im2col(xValues, xStrides, info, p0, p1, rows, stride, 1);
    if (channelsLast(info)) multiplyRows(rows, p1 - p0, k, w, bias, out.subarray(p0 * n, p1 * n)); // [pixel, channel] already
    else storePixelRows(multiplyRows(rows, p1 - p0, k, w, bias), info, p0, p1, out);
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
  // Chunks in patch order: col2im adds them onto dX in the same order as one whole pass would.
  const chunk = patchesPerChunk(Math.max(stride, k));
  const total = info.batchSize * pixels;
  for (let p0 = 0; p0 < total; p0 += chunk) {
    const p1 = Math.min(total, p0 + chunk);
    const dPatches = multiplyRows(pixelRows(dyValues, info, p0, p1, stride), p1 - p0, n, w, undefined);
    col2im(dPatches, k, info, xStrides, p0, p1, dx);
  }
  return dx;
}

/** Batch pixels per chunk of the filter gradient: ~16 MB of patches, whole units of the product
 *  (FLOAT_BLOCK pixels), and at least 8× the carried columns so carrying costs ≤ 1/8 more. */
function filterGradientChunk(k: number, carried: number): number {
  const units = Math.max(1, Math.floor(CHUNK_VALUES / Math.max(1, k) / FLOAT_BLOCK));
  return Math.max(units * FLOAT_BLOCK, 8 * carried);
}

/**
 * dF [K, N] (the filter's shape) from x and dY: one float32 product over every pixel of the batch
 * (its order of accumulation is the product's), computed in chunks of pixels with the same bits.
 * The product sums units of FLOAT_BLOCK pixels in order into one float32 per output (float-
 * product.ts), so a chunk that starts on a unit boundary continues the sums exactly if its first
 * units hand it the sums so far: patchesᵀ gets the running dF [K, N] as N leading columns and dYᵀ
 * an identity there (each such unit's float64 sum is one running value times 1, the rest ±0). A
 * non-finite running value would meet the identity's zeros (Inf·0 = NaN), so then the product is
 * taken whole, as it always was before (a diverged run: memory as large as the patches).
 */
export function conv2dBackpropFilterValues(ctx: KernelContext, x: TensorInfo, dy: TensorInfo, info: backend_util.Conv2DInfo): Float32Array {
  const pixels = info.outHeight * info.outWidth;
  const total = info.batchSize * pixels;
  const k = info.filterHeight * info.filterWidth * info.inChannels;
  const n = info.outChannels;
  const out = new Float32Array(k * n);
  if (total === 0 || out.length === 0) return out;
  const xValues = floatValues(ctx.storage, x);
  const dyValues = croppedOutput(floatValues(ctx.storage, dy), dy.shape, info);
  const carried = floatStride(n);
  const chunk = filterGradientChunk(k, carried);
  for (let p0 = 0; p0 < total; p0 += chunk) {
    const p1 = Math.min(total, p0 + chunk);
    const carry = p0 > 0;
    if (carry && hasNonFinite(out)) return filterGradientProduct(xValues, dyValues, info, 0, total, undefined);
    out.set(filterGradientProduct(xValues, dyValues, info, p0, p1, carry ? out : undefined));
  }
  return out;
}

/** patchesᵀ · dY over batch pixels [p0, p1) (p0 on a unit boundary) as one product [K, N],
 *  continuing the sums `carried` (dF so far, all finite) when given. */
function filterGradientProduct(xValues: Float32Array, dyValues: Float32Array, info: backend_util.Conv2DInfo, p0: number, p1: number,
  carried: Float32Array | undefined): Float32Array {
  const pixels = info.outHeight * info.outWidth;
  const k = info.filterHeight * info.filterWidth * info.inChannels;
  const n = info.outChannels;
  counters.floatProducts++;
  // Both operands with the pixels as the reduction axis: patchesᵀ [K, cols], dYᵀ [N, cols] (im2col
  // leaves the padding's taps zero, and the units' tails stay 0).
  return continuedProduct(['conv2d.patches', 'conv2d.dy-transposed'], k, n, p1 - p0, carried, (patchesT, dyT, lead, stride) => {
    im2col(xValues, imageStrides(info.inHeight, info.inWidth, info.inChannels, channelsLast(info)), info, p0, p1, patchesT.subarray(lead), 1, stride);
    if (channelsLast(info)) {
      transposeInto(dyValues, p0 * n, p1 - p0, n, dyT, lead, stride);
      return;
    }
    // NCHW: each image's channel planes, the part of them inside [p0, p1).
    for (let b = Math.floor(p0 / pixels); b * pixels < p1; b++) {
      const from = Math.max(p0, b * pixels), to = Math.min(p1, (b + 1) * pixels);
      for (let c = 0; c < n; c++) {
        dyT.set(dyValues.subarray((b * n + c) * pixels + from - b * pixels, (b * n + c) * pixels + to - b * pixels), c * stride + lead + from - p0);
      }
    }
  });
}
