// MaxPoolGrad — max pooling's gradient (max-pool-gradient.ts): the wasm base's is wrong where a
// window's maximum is negative; the cpu base's is right but reads through TensorBuffer.get.

import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import { croppedOutput } from '../conv-product.js';
import { fp4kitKernel } from '../kernel-context.js';
import { maxPoolGradient, maxPoolInfo } from '../max-pool-gradient.js';
import { floatValues } from '../storage.js';

export function maxPoolGradKernel(backendName: string, base: KernelConfig | undefined): KernelConfig {
  return fp4kitKernel('MaxPoolGrad', backendName, base, ({ storage }, inputs, attrs) => {
    const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
    if (input.dtype !== 'float32' || dy.dtype !== 'float32') return undefined;
    const info = maxPoolInfo(input.shape, attrs);
    const dyValues = croppedOutput(floatValues(storage, dy), dy.shape, info);
    return storage.output(input.shape, 'float32', maxPoolGradient(floatValues(storage, input), dyValues, info));
  });
}
