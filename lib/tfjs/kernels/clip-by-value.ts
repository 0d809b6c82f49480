// ClipByValue (tf.clipByValue) of float32 tensors on the wasm base: the stock wasm kernel turns a
// NaN into the lower bound; tfjs's cpu backend (and TensorFlow) pass NaN through. Same comparisons
// as the cpu kernel, so the same bits; other dtypes stay with the base.

import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import { fp4kitKernel } from '../kernel-context.js';

export function clipByValueKernel(backendName: string, base: KernelConfig | undefined): KernelConfig {
  return fp4kitKernel('ClipByValue', backendName, base, ({ storage }, inputs, attrs) => {
    const { x } = inputs as { x: TensorInfo };
    if (x.dtype !== 'float32') return undefined;
    const { clipValueMin: lo, clipValueMax: hi } = attrs as { clipValueMin: number; clipValueMax: number };
    return storage.outputFilled(x.shape, (out) => {
      const v = storage.values(x) as Float32Array;
      for (let i = 0; i < v.length; i++) {
        const xi = v[i];
        out[i] = xi > hi ? hi : xi < lo ? lo : xi; // NaN fails both tests and stays NaN
      }
    });
  });
}
