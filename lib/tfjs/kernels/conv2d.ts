// Conv2D (NHWC or NCHW) through im2col onto fp4kit's matmul (conv-product.ts).

import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs';
import { conv2dValues } from '../conv-product.js';
import { runOnCpu } from '../cpu-fallback.js';
import { paddingMeetsNonFinite } from '../im2col.js';
import { fp4kitKernel } from '../kernel-context.js';

type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;

/** tfjs's Conv2DInfo for a kernel's attributes (computeConv2DInfo checks them as tfjs does). */
export function convInfo(inShape: number[], filterShape: number[], attrs: Record<string, unknown>, dilations: unknown): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    inShape as [number, number, number, number], filterShape as [number, number, number, number],
    attrs.strides as number | [number, number], dilations as number | [number, number], attrs.pad as Pad,
    attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined, false,
    tf.backend_util.convertConv2DDataFormat((attrs.dataFormat as 'NHWC' | 'NCHW' | undefined) ?? 'NHWC'));
}

/**
 * A window larger than the padded image: tfjs 4.22 takes such a call (a 'valid' 4 × 4 filter on a
 * 2 × 2 image) and gives it an output shape with negative sizes (size [1, -1, -1, 1], one value),
 * which tfjs cpu fills with zeros; im2col would read taps at negative output positions. Such a call
 * runs on the cpu backend, as its output is cpu's definition.
 */
export function negativeOutput(info: tf.backend_util.Conv2DInfo): boolean {
  return info.outHeight < 0 || info.outWidth < 0;
}

export function conv2dKernel(backendName: string, base: KernelConfig | undefined): KernelConfig {
  return fp4kitKernel('Conv2D', backendName, base, (ctx, inputs, attrs) => {
    const { x, filter } = inputs as { x: TensorInfo; filter: TensorInfo };
    if (x.dtype !== 'float32' || filter.dtype !== 'float32') return undefined;
    const info = convInfo(x.shape, filter.shape, attrs, attrs.dilations ?? 1);
    if (negativeOutput(info) || paddingMeetsNonFinite(info, ctx.storage.values(filter) as Float32Array)) return runOnCpu('Conv2D', { inputs, attrs, backend: ctx.backend }) as TensorInfo;
    return ctx.storage.outputFilled(info.outShape, (out) => conv2dValues(ctx, x, filter, info, undefined, out));
  });
}
