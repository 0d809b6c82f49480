// FusedConv2D (tf.fused.conv2d: tfjs-layers conv2d in inference) through im2col onto fp4kit's
// matmul, with a per-channel bias inside the product and the activation after it (epilogue.ts).

import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import { conv2dValues } from '../conv-product.js';
import { columnBias, epilogue, type Activation } from '../epilogue.js';
import { runOnCpu } from '../cpu-fallback.js';
import { paddingMeetsNonFinite } from '../im2col.js';
import { fp4kitKernel } from '../kernel-context.js';
import { convInfo, negativeOutput } from './conv2d.js';

export function fusedConv2dKernel(backendName: string, base: KernelConfig | undefined): KernelConfig {
  return fp4kitKernel('FusedConv2D', backendName, base, (ctx, inputs, attrs) => {
    const { x, filter, bias, preluActivationWeights } = inputs as Record<string, TensorInfo | undefined>;
    if (x!.dtype !== 'float32' || filter!.dtype !== 'float32') return undefined;
    const info = convInfo(x!.shape, filter!.shape, attrs, attrs.dilations ?? 1);
    if (negativeOutput(info) || paddingMeetsNonFinite(info, ctx.storage.values(filter!) as Float32Array)) return runOnCpu('FusedConv2D', { inputs, attrs, backend: ctx.backend }) as TensorInfo;
    const channelsFirst = info.dataFormat === 'channelsFirst';
    // The product's rows are [pixel, channel] in both layouts; NCHW channels take only a 1-D bias
    // (any other shape broadcasts against the NCHW output in the epilogue, as tfjs does).
    const fusedBias = channelsFirst && bias?.shape.length !== 1 ? undefined : columnBias(ctx.storage, bias, info.outChannels, info.outShape.length);
    return epilogue({
      backendName, backend: ctx.backend, storage: ctx.storage,
      product: ctx.storage.outputFilled(info.outShape, (out) => conv2dValues(ctx, x!, filter!, info, fusedBias, out)),
      bias: fusedBias === undefined ? bias : undefined,
      activation: attrs.activation as Activation | undefined,
      preluActivationWeights,
      leakyreluAlpha: attrs.leakyreluAlpha as number | undefined,
      channelsFirst,
    });
  });
}
