// Tanh (tf.tanh; GELU's tanh form in every transformer MLP) of float32 tensors on the wasm base,
// natively: the base's loop calls musl's tanhf per element (~15–20 ns each here); the addon runs
// the same tanhf (native/tanh.h, ported operation for operation; lib/tfjs/tanh.ts is the
// reference) over the addon's threads — the base's bits, faster. Without the addon, or for a small
// tensor, other dtypes and the cpu base (whose Tanh is Math.tanh: other bits), the base's kernel.

import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs';
import { getKernels } from '../../kernels/registry.js';
import { aroundBaseKernel } from '../kernel-context.js';
import { floatValues, storageOf } from '../storage.js';

/** Below this many elements the addon's call costs more than it saves. */
const NATIVE_MIN_ELEMENTS = 1024;

export function tanhKernel(backendName: string, base: KernelConfig | undefined): KernelConfig {
  return aroundBaseKernel('Tanh', backendName, base, (args, baseKernel) => {
    const x = args.inputs.x as TensorInfo;
    const native = getKernels().tanhFloat32;
    const n = tf.util.sizeFromShape(x.shape);
    if (x.dtype !== 'float32' || native === undefined || n < NATIVE_MIN_ELEMENTS) return baseKernel(args);
    const storage = storageOf(args.backend as tf.KernelBackend);
    storage.ensure(x);
    return storage.outputFilled([...x.shape], (out) => native(floatValues(storage, x), n, out));
  });
}
