// ComplexAbs (tf.abs of a complex64 tensor) on the wasm base, which has no complex kernels: the
// tensor's interleaved (real, imag) pairs in the heap (cpu-fallback.ts), |z| = Math.hypot(re, im)
// as tfjs's cpu kernel computes it. Its own kernel rather than the cpu fallback: the cpu one
// registers its output with tfjs's engine, which a borrowed cpu backend must not do.

import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import { fp4kitKernel } from '../kernel-context.js';

export function complexAbsKernel(backendName: string, base: KernelConfig | undefined): KernelConfig {
  return fp4kitKernel('ComplexAbs', backendName, base, ({ backend, storage }, inputs) => {
    const { x } = inputs as { x: TensorInfo };
    if (x.dtype !== 'complex64') throw new TypeError(`fp4kit tfjs backend: ComplexAbs takes a complex64 tensor, got ${x.dtype}`);
    const pairs = backend.readSync(x.dataId) as Float32Array;
    const out = new Float32Array(pairs.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = Math.hypot(pairs[2 * i], pairs[2 * i + 1]);
    return storage.output(x.shape, 'float32', out);
  });
}
