// _FusedMatMul (tf.fused.matMul: what every tfjs-layers Dense layer calls in inference) on
// fp4kit's matmul, with the bias inside the product and the activation after it (epilogue.ts).

import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import { columnBias, epilogue, type Activation } from '../epilogue.js';
import { fp4kitKernel } from '../kernel-context.js';
import { intMatMulValues } from '../int-product.js';
import { matMulValues, planMatMul } from '../product.js';

const INT32_ACTIVATIONS = new Set<Activation>(['linear', 'relu', 'relu6']);

export function fusedMatMulKernel(backendName: string, base: KernelConfig | undefined): KernelConfig {
  return fp4kitKernel('_FusedMatMul', backendName, base, ({ backend, storage, cache }, inputs, attrs) => {
    const { a, b, bias, preluActivationWeights } = inputs as Record<string, TensorInfo | undefined>;
    const transposeA = Boolean(attrs.transposeA);
    const transposeB = Boolean(attrs.transposeB);
    const epilogueOf = (product: TensorInfo, unfusedBias: TensorInfo | undefined) => epilogue({
      backendName, backend, storage, product,
      bias: unfusedBias,
      activation: attrs.activation as Activation | undefined,
      preluActivationWeights,
      leakyreluAlpha: attrs.leakyreluAlpha as number | undefined,
    });
    const activation = (attrs.activation as Activation | undefined) ?? 'linear';
    if (a!.dtype === 'int32' && b!.dtype === 'int32' && INT32_ACTIVATIONS.has(activation)) {
      // As tfjs cpu: the exact int32 product, then the bias and activation on int32 tensors. The
      // wasm base has no int32 _FusedMatMul; its Add, Relu and Relu6 take int32 (its Elu and
      // Sigmoid read int32 data as float32: those stay with the base, which refuses them).
      const plan = planMatMul(a!.shape, b!.shape, transposeA, transposeB);
      const values = intMatMulValues(storage.values(a!) as Int32Array, storage.values(b!) as Int32Array, plan, transposeA, transposeB);
      return epilogueOf(storage.output(plan.outShape, 'int32', values), bias);
    }
    if (a!.dtype !== 'float32' || b!.dtype !== 'float32') return undefined;
    const plan = planMatMul(a!.shape, b!.shape, transposeA, transposeB);
    const fusedBias = columnBias(storage, bias, plan.n);
    const product = storage.outputFilled(plan.outShape, (out) => matMulValues(storage, cache, { a: a!, b: b!, transposeA, transposeB, bias: fusedBias }, out));
    return epilogueOf(product, fusedBias === undefined ? bias : undefined);
  });
}
