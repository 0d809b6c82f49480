// What a fused kernel (_FusedMatMul, FusedConv2D) does after its product: add the bias and apply
// the activation. A bias with one value per output column goes into fp4kit's product itself
// (f32(acc + bias), the same single addition tfjs's Add makes); any other bias shape and every
// activation run on the base backend's own kernels, as tfjs-backend-cpu's _FusedMatMul does.

import type { KernelBackend, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs';
import { DEFAULT_LEAKYRELU_ALPHA } from './leakyrelu-alpha.js';
import { isTrailingBroadcast, preluValues } from './prelu.js';
import type { TensorStorage } from './storage.js';

export type Activation = 'linear' | 'relu' | 'relu6' | 'elu' | 'prelu' | 'leakyrelu' | 'sigmoid';

const ACTIVATION_KERNELS: Record<Exclude<Activation, 'linear'>, string> = {
  relu: 'Relu', relu6: 'Relu6', elu: 'Elu', prelu: 'Prelu', leakyrelu: 'LeakyRelu', sigmoid: 'Sigmoid',
};

/** Runs a kernel registered for `backendName` (the base's kernels were copied under that name). */
export function runKernel(backendName: string, backend: KernelBackend, kernelName: string, inputs: NamedTensorInfoMap, attrs: NamedAttrMap = {}): TensorInfo {
  const kernel = tf.getKernel(kernelName, backendName);
  if (kernel === undefined) throw new Error(`fp4kit tfjs backend: kernel '${kernelName}' is not registered for backend '${backendName}'`);
  return kernel.kernelFunc({ inputs, attrs, backend }) as TensorInfo;
}

/** The bias's values when it is one value per output column (shape [N], [1, N], …), else undefined.
 *  `outRank`: a bias of higher rank is not one (tfjs cpu's FusedConv2D broadcasts the output to the
 *  bias's rank, in the epilogue's Add; its _FusedMatMul keeps the product's rank: no limit there). */
export function columnBias(storage: TensorStorage, bias: TensorInfo | undefined, n: number, outRank = Infinity): Float32Array | undefined {
  if (bias === undefined || bias.dtype !== 'float32') return undefined;
  const shape = bias.shape;
  const perColumn = shape.length > 0 && shape.length <= outRank && shape[shape.length - 1] === n && shape.slice(0, -1).every((d) => d === 1);
  // A copy of N values: the kernel reads it after the heap may have moved.
  return perColumn ? (storage.values(bias) as Float32Array).slice() : undefined;
}

export interface EpilogueArgs {
  backendName: string;
  backend: KernelBackend;
  storage: TensorStorage;
  /** The product, owned by the kernel (disposed here when replaced). */
  product: TensorInfo;
  /** A bias that was not fused into the product. */
  bias?: TensorInfo;
  activation?: Activation;
  preluActivationWeights?: TensorInfo;
  leakyreluAlpha?: number;
  /** NCHW convolution output: a 1-D bias or PReLU weight of length ≠ 1 runs along the channel
   *  axis (reshaped to [C, 1, 1]), as tfjs-backend-cpu's FusedConv2D does. */
  channelsFirst?: boolean;
}

/** product (+ bias) → activation, disposing each intermediate (and, when a step throws, the
 *  product or what replaced it: the kernel's caller never sees it). */
export function epilogue(e: EpilogueArgs): TensorInfo {
  let current = e.product;
  try {
    return steps();
  } catch (err) {
    e.storage.dispose(current);
    throw err;
  }
  function steps(): TensorInfo {
    const replace = (next: TensorInfo) => {
      e.storage.dispose(current);
      current = next;
    };
    // The operand as the kernel sees it, and a reshaped copy to dispose afterwards, if any.
    const alongChannels = (t: TensorInfo): { operand: TensorInfo; reshaped?: TensorInfo } => {
      if (!e.channelsFirst || t.shape.length !== 1 || t.shape[0] === 1) return { operand: t };
      const reshaped = runKernel(e.backendName, e.backend, 'Reshape', { x: t }, { shape: [t.shape[0], 1, 1] });
      return { operand: reshaped, reshaped };
    };
    const withOperand = (t: TensorInfo, run: (operand: TensorInfo) => TensorInfo) => {
      const { operand, reshaped } = alongChannels(t);
      try {
        replace(run(operand));
      } finally {
        if (reshaped) e.storage.dispose(reshaped);
      }
    };
    if (e.bias !== undefined) withOperand(e.bias, (b) => runKernel(e.backendName, e.backend, 'Add', { a: current, b }));
    const activation = e.activation ?? 'linear';
    if (activation === 'linear') return current;
    const kernelName = Object.hasOwn(ACTIVATION_KERNELS, activation) ? ACTIVATION_KERNELS[activation as Exclude<Activation, 'linear'>] : undefined;
    if (kernelName === undefined) throw new Error(`fp4kit tfjs backend: activation '${activation}' is not implemented`);
    if (activation === 'prelu') withOperand(e.preluActivationWeights!, (alpha) => prelu(e, current, alpha));
    else if (activation === 'leakyrelu') replace(runKernel(e.backendName, e.backend, kernelName, { x: current }, { alpha: e.leakyreluAlpha ?? DEFAULT_LEAKYRELU_ALPHA }));
    else replace(runKernel(e.backendName, e.backend, kernelName, { x: current }));
    return current;
  }
}

/** The base's Prelu where it broadcasts right, else preluValues. */
function prelu(e: EpilogueArgs, x: TensorInfo, alpha: TensorInfo): TensorInfo {
  if (isTrailingBroadcast(alpha.shape, x.shape) || x.dtype !== 'float32' || alpha.dtype !== 'float32') {
    return runKernel(e.backendName, e.backend, 'Prelu', { x, alpha });
  }
  const values = preluValues(e.storage.values(x) as Float32Array, x.shape, (e.storage.values(alpha) as Float32Array).slice(), alpha.shape);
  return e.storage.output(x.shape, 'float32', values);
}
