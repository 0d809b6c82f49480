// Pow by a scalar exponent of 2 or 3 on the wasm base: x² and x³ (GELU's tanh form cubes its input,
// and Pow's gradient squares it). The base runs its generic broadcasting loop with powf per
// element (~10 ns each; a quarter of a char-GPT training step). Here: f32(x·x), the correctly
// rounded square (x·x is exact in float64), and f32(x·x·x) with x·x·x in float64 (one rounding to
// 53 bits, then one to 24: the correctly rounded cube but for rare ties of the second rounding,
// never more than one ulp away). powf need not be correctly rounded either, so the two may differ
// in the last bit; any other exponent, shape or dtype goes to the base's kernel. With the addon
// loaded the loop runs there (native/pow.h), with the same bits.

import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs';
import { getKernels } from '../../kernels/registry.js';
import { aroundBaseKernel } from '../kernel-context.js';
import { floatValues, storageOf } from '../storage.js';

/** Below this many elements the addon's call costs more than it saves. */
const NATIVE_MIN_ELEMENTS = 4096;

export function squareOrCube(x: Float32Array, exponent: 2 | 3, out: Float32Array): void {
  // The addon's loop (native/pow.h: the same float64 products, over its threads).
  const native = getKernels().powerFloat32;
  if (native !== undefined && x.length >= NATIVE_MIN_ELEMENTS) {
    native(x, exponent, x.length, out);
    return;
  }
  if (exponent === 2) for (let i = 0; i < x.length; i++) out[i] = x[i] * x[i];
  else for (let i = 0; i < x.length; i++) out[i] = x[i] * x[i] * x[i];
}

export function powKernel(backendName: string, base: KernelConfig | undefined): KernelConfig {
  return aroundBaseKernel('Pow', backendName, base, (args, baseKernel) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    if (a.dtype !== 'float32' || b.shape.length !== 0 || (b.dtype !== 'float32' && b.dtype !== 'int32')) return baseKernel(args);
    const storage = storageOf(args.backend as tf.KernelBackend);
    storage.ensure(a);
    storage.ensure(b);
    const exponent = storage.values(b)[0];
    if (exponent !== 2 && exponent !== 3) return baseKernel(args);
    return storage.outputFilled([...a.shape], (out) => squareOrCube(floatValues(storage, a), exponent, out));
  });
}
