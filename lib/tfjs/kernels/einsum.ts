// Einsum, which the wasm base lacks: tfjs-backend-cpu's algorithm (transpose and reshape each
// operand to the equation's full rank, multiply, and sum out each contracted axis as soon as no
// later operand has it) run on the base backend's own Transpose, Reshape, Multiply and Sum kernels.

import type { KernelBackend, KernelConfig, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs';
import { fp4kitKernel } from '../kernel-context.js';

export function einsumKernel(backendName: string, base: KernelConfig | undefined): KernelConfig {
  return fp4kitKernel('Einsum', backendName, base, ({ backend, storage }, inputs, attrs) => {
    const run = (kernelName: string, kernelInputs: NamedTensorInfoMap, kernelAttrs: NamedAttrMap = {}): TensorInfo => {
      const kernel = tf.getKernel(kernelName, backendName);
      if (kernel === undefined) throw new Error(`fp4kit tfjs backend: Einsum needs ${kernelName}, which ${backendName} lacks`);
      return kernel.kernelFunc({ inputs: kernelInputs, backend: backend as KernelBackend, attrs: kernelAttrs }) as TensorInfo;
    };
    const tensors = inputs as unknown as TensorInfo[];
    const equation = attrs.equation as string;
    const { allDims, summedDims, idDims } = tf.backend_util.decodeEinsumEquation(equation, tensors.length);
    tf.backend_util.checkEinsumDimSizes(allDims.length, idDims, tensors as tf.Tensor[]);
    const { path, steps } = tf.backend_util.getEinsumComputePath(summedDims, idDims);
    const intermediates: TensorInfo[] = [];
    let out: TensorInfo | null = null;
    let dimsRemaining = allDims.length;
    for (let i = 0; i < steps.length; i++) {
      for (const term of steps[i]) {
        const { permutationIndices: perm, expandDims } = tf.backend_util.getEinsumPermutation(dimsRemaining, idDims[term]);
        let x = tensors[term];
        if (!tf.backend_util.isIdentityPermutation(perm)) intermediates.push((x = run('Transpose', { x }, { perm })));
        const shape = x.shape.slice();
        for (const axis of expandDims) shape.splice(axis, 0, 1);
        if (!tf.util.arraysEqual(x.shape, shape)) intermediates.push((x = run('Reshape', { x }, { shape })));
        if (out === null) out = x;
        else intermediates.push((out = run('Multiply', { a: x, b: out })));
      }
      if (i < steps.length - 1) {
        if (path[i] >= 0) intermediates.push((out = run('Sum', { x: out! }, { axis: path[i] - (allDims.length - dimsRemaining), keepDims: false })));
        dimsRemaining--;
      }
    }
    for (const t of intermediates) if (t !== out) storage.dispose(t);
    // A lone operand with nothing to do comes back as the input itself: the result must be a tensor of its own.
    if (tensors.includes(out!)) return run('Identity', { x: out! });
    return out!;
  });
}
