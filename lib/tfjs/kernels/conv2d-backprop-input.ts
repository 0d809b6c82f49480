// Conv2DBackpropInput — a convolution's input gradient dX = col2im(dY · Fᵀ), and tf.conv2dTranspose
// — on fp4kit's matmul, with the filter as the weight operand (conv-product.ts): in a quantizing
// mode the same quantized filter the forward used, like a Dense layer's dX = dY · Q(W)ᵀ.

import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import { conv2dBackpropInputValues } from '../conv-product.js';
import { fp4kitKernel } from '../kernel-context.js';
import { convInfo } from './conv2d.js';

export function conv2dBackpropInputKernel(backendName: string, base: KernelConfig | undefined): KernelConfig {
  return fp4kitKernel('Conv2DBackpropInput', backendName, base, (ctx, inputs, attrs) => {
    const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
    if (dy.dtype !== 'float32' || filter.dtype !== 'float32') return undefined;
    const info = convInfo(attrs.inputShape as number[], filter.shape, attrs, 1);
    return ctx.storage.output(info.inShape, 'float32', conv2dBackpropInputValues(ctx, dy, filter, info));
  });
}
