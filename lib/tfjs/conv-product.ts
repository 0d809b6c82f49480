// A forward NHWC convolution as products on fp4kit's matmul: im2col patches [pixels, K] times the
// filter as the weight operand ([K, N] in memory, like a Dense kernel: quantized once and cached
// when it is a weight, weights.ts). Images go through in chunks so the patch matrix stays small.

import type { backend_util, TensorInfo } from '@tensorflow/tfjs';
import { floatStride } from './float-product.js';
import { weightMode, type WeightMode } from './flags.js';
import { im2col } from './im2col.js';
import type { KernelContext } from './kernel-context.js';
import { multiplyRows } from './product.js';
import { floatValues } from './storage.js';
import { isWeightData, weightOperand } from './weights.js';

/** Patch values per chunk (4 M floats = 16 MB). */
const CHUNK_VALUES = 1 << 22;

/** The convolution's output values, [batch, outHeight, outWidth, outChannels]. */
export function conv2dValues(ctx: KernelContext, x: TensorInfo, filter: TensorInfo, info: backend_util.Conv2DInfo, bias: Float32Array | undefined): Float32Array {
  const pixels = info.outHeight * info.outWidth;
  const k = info.filterHeight * info.filterWidth * info.inChannels;
  const n = info.outChannels;
  const out = new Float32Array(info.batchSize * pixels * n);
  if (out.length === 0) return out;
  if (k === 0) {
    if (bias) for (let i = 0; i < out.length; i++) out[i] = Math.fround(0 + bias[i % n]);
    return out;
  }
  const isWeight = isWeightData(filter.dataId);
  const mode: WeightMode = isWeight ? weightMode() : 'none';
  const xValues = floatValues(ctx.storage, x);
  const w = weightOperand(ctx.cache, filter.dataId, 0, { values: floatValues(ctx.storage, filter), offset: 0, n, k, kMajor: true }, mode, isWeight);
  const stride = mode === 'none' ? floatStride(k) : k;
  const imagesPerChunk = Math.max(1, Math.floor(CHUNK_VALUES / (pixels * stride)));
  for (let first = 0; first < info.batchSize; first += imagesPerChunk) {
    const count = Math.min(imagesPerChunk, info.batchSize - first);
    const rows = new Float32Array(count * pixels * stride);
    im2col(xValues, info, first, count, rows, stride, 1);
    out.set(multiplyRows(rows, count * pixels, k, w, bias), first * pixels * n);
  }
  return out;
}
