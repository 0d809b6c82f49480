// DepthwiseConv2dNativeBackpropFilter — a depthwise convolution's weight gradient (depthwise-gradients.ts):
// the wasm base has none, the cpu base's reads every element through TensorBuffer.get.

import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import { depthwiseFilterGradient, depthwiseInfo } from '../depthwise-gradients.js';
import { fp4kitKernel } from '../kernel-context.js';
import { floatValues } from '../storage.js';

export function depthwiseConv2dBackpropFilterKernel(backendName: string, base: KernelConfig | undefined): KernelConfig {
  return fp4kitKernel('DepthwiseConv2dNativeBackpropFilter', backendName, base, ({ storage }, inputs, attrs) => {
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
    if (x.dtype !== 'float32' || dy.dtype !== 'float32') return undefined;
    const filterShape = attrs.filterShape as number[];
    const info = depthwiseInfo(x.shape, filterShape, attrs);
    return storage.output(filterShape, 'float32', depthwiseFilterGradient(floatValues(storage, x), floatValues(storage, dy), info));
  });
}
