// Transpose by the identity permutation shares the input's data (with a reference count, as
// Identity does) instead of copying it. tfjs-layers' dot() passes a Dense kernel as
// reshape(transpose(kernel, [0, 1])) when the input has rank ≥ 3; a copy would carry a new dataId,
// so the product would no longer see a tf.Variable's data there and the weight would run in
// float32 (FP4KIT_WEIGHT_TENSORS 'variables'), or be quantized again at every call ('all').
// A float32 permutation that swaps two adjacent groups of axes — reduced to [a, b, c, d] →
// [a, c, b, d] (lib/core/transpose.ts collapsePermutation): attention's [batch, time, heads,
// width] ↔ [batch, heads, time, width], batched matrix transposes — moves its elements with
// swapMiddleAxesInto (natively with the addon: the bits, moved, are the base's). Every other
// permutation goes to the base's own kernel.

import type { KernelBackend, KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs';
import { collapsePermutation, swapMiddleAxesInto } from '../../core/transpose.js';
import { getKernels } from '../../kernels/registry.js';
import { aroundBaseKernel } from '../kernel-context.js';
import { floatValues, storageOf } from '../storage.js';

/** Below this many elements the base's kernel is as fast. */
const OWN_MIN_ELEMENTS = 4096;

/** [a, b, c, d] with the permutation [a, c, b, d] (as collapsePermutation reduces it), or undefined. */
function asSwapOfMiddleAxes(shape: readonly number[], perm: readonly number[]): [number, number, number, number] | undefined {
  const c = collapsePermutation(shape, perm);
  const key = c.perm.join(',');
  if (key === '1,0') return [1, c.shape[0], c.shape[1], 1];
  if (key === '0,2,1') return [c.shape[0], c.shape[1], c.shape[2], 1];
  if (key === '1,0,2') return [1, c.shape[0], c.shape[1], c.shape[2]];
  if (key === '0,2,1,3') return [c.shape[0], c.shape[1], c.shape[2], c.shape[3]];
  return undefined;
}

export function transposeKernel(backendName: string, base: KernelConfig | undefined): KernelConfig {
  return aroundBaseKernel('Transpose', backendName, base, (args, baseKernel) => {
    const x = args.inputs.x as TensorInfo;
    const perm = args.attrs?.perm as number[] | undefined;
    if (perm === undefined || perm.length !== x.shape.length || x.dtype === 'string' || x.dtype === 'complex64') return baseKernel(args);
    if (perm.every((axis, i) => axis === i)) {
      (args.backend as KernelBackend).incRef(x.dataId);
      return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
    }
    // With the addon: its block moves beat the base's loop; without, the base's kernel is as fast as a loop here.
    if (x.dtype !== 'float32' || getKernels().swapMiddleAxes === undefined || tf.util.sizeFromShape(x.shape) < OWN_MIN_ELEMENTS) return baseKernel(args);
    const dims = asSwapOfMiddleAxes(x.shape, perm);
    if (dims === undefined) return baseKernel(args);
    const storage = storageOf(args.backend as tf.KernelBackend);
    storage.ensure(x);
    return storage.outputFilled(perm.map((axis) => x.shape[axis]), (out) => swapMiddleAxesInto(floatValues(storage, x), dims, out));
  });
}
