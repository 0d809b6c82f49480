// BatchMatMul (tf.matMul, and both backward products of every matmul) on fp4kit's matmul.

import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import { fp4kitKernel } from '../kernel-context.js';
import { intMatMulValues } from '../int-product.js';
import { matMulValues, planMatMul } from '../product.js';

export function batchMatMulKernel(backendName: string, base: KernelConfig | undefined): KernelConfig {
  return fp4kitKernel('BatchMatMul', backendName, base, ({ storage, cache }, inputs, attrs) => {
    const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
    const transposeA = Boolean(attrs.transposeA);
    const transposeB = Boolean(attrs.transposeB);
    if (a.dtype === 'int32' && b.dtype === 'int32') {
      const plan = planMatMul(a.shape, b.shape, transposeA, transposeB);
      return storage.output(plan.outShape, 'int32', intMatMulValues(storage.values(a) as Int32Array, storage.values(b) as Int32Array, plan, transposeA, transposeB));
    }
    // Other dtypes (bool, complex) go to the base backend.
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return undefined;
    const plan = planMatMul(a.shape, b.shape, transposeA, transposeB);
    return storage.outputFilled(plan.outShape, (out) => matMulValues(storage, cache, { a, b, transposeA, transposeB }, out));
  });
}
