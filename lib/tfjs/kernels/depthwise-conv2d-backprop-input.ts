// DepthwiseConv2dNativeBackpropInput — a depthwise convolution's input gradient
// (depthwise-gradients.ts), which the wasm base lacks.

import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import { depthwiseInfo, depthwiseInputGradient } from '../depthwise-gradients.js';
import { fp4kitKernel } from '../kernel-context.js';
import { floatValues } from '../storage.js';

export function depthwiseConv2dBackpropInputKernel(backendName: string, base: KernelConfig | undefined): KernelConfig {
  return fp4kitKernel('DepthwiseConv2dNativeBackpropInput', backendName, base, ({ storage }, inputs, attrs) => {
    const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
    if (dy.dtype !== 'float32' || filter.dtype !== 'float32') return undefined;
    const inputShape = attrs.inputShape as number[];
    const info = depthwiseInfo(inputShape, filter.shape, attrs);
    return storage.output(inputShape, 'float32', depthwiseInputGradient(floatValues(storage, dy), floatValues(storage, filter), info));
  });
}
