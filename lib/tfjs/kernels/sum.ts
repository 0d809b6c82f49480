// Sum over leading axes (axis [0 … j−1] of a rank-r tensor, j < r) without a transpose, on the
// wasm base: every bias and LayerNorm gradient of a sequence model is Σ over batch and time of
// dY [B, T, N], and the base first transposes the reduced axes to the end (a full copy of dY at
// several ns per element: ~15% of a char-GPT training step), then sums each output's run. Here
// out[n] = Σ_r x[r, n], summed in float32 in increasing r from +0 — the order of the base's own
// loop over its transposed copy, so the bits are the base's. Other reductions and dtypes go to
// the base's kernel. (tfjs cpu sums in float64: the cpu base keeps its own kernel.) With the
// native addon loaded the loop runs there (native/sum.h), with the same bits.

import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs';
import { getKernels } from '../../kernels/registry.js';
import { aroundBaseKernel } from '../kernel-context.js';
import { floatValues, storageOf } from '../storage.js';

/** Below this many elements the addon's call costs more than the loop saves. */
const NATIVE_MIN_ELEMENTS = 4096;

/**
 * How many leading axes `axes` reduces when it is exactly [0, 1, … j−1] with 0 < j < rank, else 0.
 * In that order only: the base transposes the reduced axes to the end in the order given, and a
 * permuted order would sum the same values in another order.
 */
function leadingAxes(axes: number[], rank: number): number {
  if (axes.length === 0 || axes.length >= rank) return 0;
  return axes.every((axis, i) => axis === i) ? axes.length : 0;
}

/** Column sums of x [rows, n] (row-major) into out [n], float32, rows in increasing order. */
export function sumLeadingRows(x: Float32Array, rows: number, n: number, out: Float32Array): void {
  // The addon's loop (native/sum.h: the same adds in the same order, vectorised across columns).
  const kernel = getKernels().sumLeadingRows;
  if (kernel !== undefined && rows * n >= NATIVE_MIN_ELEMENTS) {
    kernel(x, rows, n, out);
    return;
  }
  out.fill(0);
  for (let r = 0; r < rows; r++) {
    const row = r * n;
    for (let i = 0; i < n; i++) out[i] += x[row + i]; // a float32 store after each add: f32 addition
  }
}

export function sumKernel(backendName: string, base: KernelConfig | undefined): KernelConfig {
  return aroundBaseKernel('Sum', backendName, base, (args, baseKernel) => {
    const x = args.inputs.x as TensorInfo;
    if (x.dtype !== 'float32') return baseKernel(args);
    const axes = tf.util.parseAxisParam(args.attrs?.axis as number | number[], x.shape);
    const j = leadingAxes(axes, x.shape.length);
    if (j === 0) return baseKernel(args);
    const rows = tf.util.sizeFromShape(x.shape.slice(0, j));
    const inner = x.shape.slice(j);
    const outShape = args.attrs?.keepDims ? [...new Array<number>(j).fill(1), ...inner] : inner;
    const storage = storageOf(args.backend as tf.KernelBackend);
    storage.ensure(x);
    return storage.outputFilled(outShape, (out) => sumLeadingRows(floatValues(storage, x), rows, out.length, out));
  });
}
