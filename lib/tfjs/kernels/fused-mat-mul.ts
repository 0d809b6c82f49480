// _FusedMatMul (tf.fused.matMul: what every tfjs-layers Dense layer calls in inference) on
// fp4kit's matmul, with the bias inside the product and the activation after it (epilogue.ts).

import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import { columnBias, epilogue, type Activation } from '../epilogue.js';
import { fp4kitKernel } from '../kernel-context.js';
import { matMulValues, planMatMul } from '../product.js';

export function fusedMatMulKernel(backendName: string, base: KernelConfig | undefined): KernelConfig {
  return fp4kitKernel('_FusedMatMul', backendName, base, ({ backend, storage, cache }, inputs, attrs) => {
    const { a, b, bias, preluActivationWeights } = inputs as Record<string, TensorInfo | undefined>;
    if (a!.dtype !== 'float32' || b!.dtype !== 'float32') return undefined;
    const transposeA = Boolean(attrs.transposeA);
    const transposeB = Boolean(attrs.transposeB);
    const plan = planMatMul(a!.shape, b!.shape, transposeA, transposeB);
    const fusedBias = columnBias(storage, bias, plan.n);
    const values = matMulValues(storage, cache, { a: a!, b: b!, transposeA, transposeB, bias: fusedBias });
    return epilogue({
      backendName, backend, storage,
      product: storage.output(plan.outShape, 'float32', values),
      bias: fusedBias === undefined ? bias : undefined,
      activation: attrs.activation as Activation | undefined,
      preluActivationWeights,
      leakyreluAlpha: attrs.leakyreluAlpha as number | undefined,
    });
  });
}
