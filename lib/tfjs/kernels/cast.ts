// Cast to the dtype a tensor already has (tf.cast, and tfjs's makeTypesMatch, which casts both
// operands of a product when one is int32) on the wasm base: the result shares the input's data,
// with a reference count, as tfjs's cpu backend does. The stock wasm Cast copies, so a Dense
// kernel multiplied by an int32 input arrived as a copy, no longer a tf.Variable's data, and ran
// in float32 on 'fp4kit' where 'fp4kit-cpu' quantized it. Casts that change the dtype are the base's.

import type { KernelBackend, KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import { aroundBaseKernel } from '../kernel-context.js';

export function castKernel(backendName: string, base: KernelConfig | undefined): KernelConfig {
  return aroundBaseKernel('Cast', backendName, base, (args, baseKernel) => {
    const x = args.inputs.x as TensorInfo;
    if (args.attrs?.dtype !== x.dtype || x.dtype === 'string' || x.dtype === 'complex64') return baseKernel(args);
    (args.backend as KernelBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  });
}
