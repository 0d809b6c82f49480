// A harness fix for this experiment, not part of fp4kit: tfjs-backend-wasm 4.22 multiplies a
// transposed operand (every backward product: dX = dY·Wᵀ, dW = Xᵀ·dY) on a slow path (~1–3
// GFLOP/s here against ~30 for the untransposed XNNPACK one). This re-registers the wasm
// backend's BatchMatMul to transpose such an operand first (one Transpose kernel) and then run the
// untransposed product. Same values up to float32 summation order.

import * as tf from '@tensorflow/tfjs';

let installed = false;

export function installFastTransposedMatMul(): void {
  if (installed) return;
  const original = tf.getKernel('BatchMatMul', 'wasm');
  const transpose = tf.getKernel('Transpose', 'wasm');
  if (!original || !transpose) throw new Error('tfjs wasm kernels BatchMatMul / Transpose not registered (import @tensorflow/tfjs-backend-wasm first)');
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({
    kernelName: 'BatchMatMul',
    setupFunc: original.setupFunc,
    backendName: 'wasm',
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args;
      const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
      if (!transposeA && !transposeB) return original.kernelFunc(args);
      const made: tf.TensorInfo[] = [];
      const flip = (t: tf.TensorInfo): tf.TensorInfo => {
        const perm = t.shape.map((_, i) => i);
        [perm[perm.length - 2], perm[perm.length - 1]] = [perm[perm.length - 1], perm[perm.length - 2]];
        const out = transpose.kernelFunc({ inputs: { x: t }, backend, attrs: { perm } }) as tf.TensorInfo;
        made.push(out);
        return out;
      };
      const a = transposeA ? flip(inputs.a as tf.TensorInfo) : inputs.a;
      const b = transposeB ? flip(inputs.b as tf.TensorInfo) : inputs.b;
      const result = original.kernelFunc({ inputs: { a, b }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } });
      for (const t of made) (backend as tf.KernelBackend).disposeData(t.dataId); // a kernel's backend is typed {}
      return result;
    },
  });
  installed = true;
}
