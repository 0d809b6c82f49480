// FusedConv2D (tf.fused.conv2d: tfjs-layers conv2d in inference) through im2col onto fp4kit's
// matmul, with the bias inside the product and the activation after it (epilogue.ts).

import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import { conv2dValues } from '../conv-product.js';
import { columnBias, epilogue, type Activation } from '../epilogue.js';
import { fp4kitKernel } from '../kernel-context.js';
import { nhwcConvInfo } from './conv2d.js';

export function fusedConv2dKernel(backendName: string, base: KernelConfig | undefined): KernelConfig {
  return fp4kitKernel('FusedConv2D', backendName, base, (ctx, inputs, attrs) => {
    const { x, filter, bias, preluActivationWeights } = inputs as Record<string, TensorInfo | undefined>;
    if (x!.dtype !== 'float32' || filter!.dtype !== 'float32') return undefined;
    const info = nhwcConvInfo(x!, filter!.shape, attrs, attrs.dilations ?? 1);
    if (info === undefined) return undefined;
    const fusedBias = columnBias(ctx.storage, bias, info.outChannels);
    const values = conv2dValues(ctx, x!, filter!, info, fusedBias);
    return epilogue({
      backendName, backend: ctx.backend, storage: ctx.storage,
      product: ctx.storage.output(info.outShape, 'float32', values),
      bias: fusedBias === undefined ? bias : undefined,
      activation: attrs.activation as Activation | undefined,
      preluActivationWeights,
      leakyreluAlpha: attrs.leakyreluAlpha as number | undefined,
    });
  });
}
