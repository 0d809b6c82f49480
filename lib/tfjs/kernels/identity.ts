// Identity (tf.clone, and the copies tfjs keeps of a custom gradient's saved tensors) on the wasm
// base: the result shares the input's data, with a reference count, as tfjs's cpu backend and the
// wasm backend's own Reshape do. tfjs never writes into a tensor's data, so sharing is safe; the
// stock wasm Identity copies the data instead, which costs a copy per saved tensor and makes
// tfjs's leak check (IS_TEST) report every saved tensor as leaked.

import type { KernelBackend, KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import { fp4kitKernel } from '../kernel-context.js';

export function identityKernel(backendName: string, base: KernelConfig | undefined): KernelConfig {
  return fp4kitKernel('Identity', backendName, base, ({ backend }, inputs) => {
    const { x } = inputs as { x: TensorInfo };
    // Strings and complex numbers keep the base's own handling.
    if (x.dtype === 'string' || x.dtype === 'complex64') return undefined;
    (backend as KernelBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  });
}
