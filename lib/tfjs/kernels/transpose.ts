// Transpose by the identity permutation shares the input's data (with a reference count, as
// Identity does) instead of copying it. tfjs-layers' dot() passes a Dense kernel as
// reshape(transpose(kernel, [0, 1])) when the input has rank ≥ 3; a copy would carry a new dataId,
// so the product would no longer see a tf.Variable's data there and the weight would run in
// float32 (FP4KIT_WEIGHT_TENSORS 'variables'), or be quantized again at every call ('all').
// Every other permutation goes to the base's own kernel.

import type { KernelBackend, KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import { aroundBaseKernel } from '../kernel-context.js';

export function transposeKernel(backendName: string, base: KernelConfig | undefined): KernelConfig {
  return aroundBaseKernel('Transpose', backendName, base, (args, baseKernel) => {
    const x = args.inputs.x as TensorInfo;
    const perm = args.attrs?.perm as number[] | undefined;
    const identity = perm !== undefined && perm.length === x.shape.length && perm.every((axis, i) => axis === i);
    if (!identity || x.dtype === 'string' || x.dtype === 'complex64') return baseKernel(args);
    (args.backend as KernelBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  });
}
