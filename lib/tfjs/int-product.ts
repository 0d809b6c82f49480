// int32 products (tf.matMul of int32 tensors, or int32 × bool after tfjs's upcast): exact
// integer arithmetic as tfjs-backend-cpu does it — each dot product summed in float64 (exact below
// 2^53) and stored into an Int32Array (wrapping beyond int32) — in a plain loop; the wasm base has
// no int32 matmul at all. fp4kit's kernels are float-only, and integer products are rare.

import type { MatMulPlan } from './product.js';

export function intMatMulValues(a: Int32Array, b: Int32Array, plan: MatMulPlan, transposeA: boolean, transposeB: boolean): Int32Array {
  const { batch, aMatrix, bMatrix, m, k, n } = plan;
  const out = new Int32Array(batch * m * n);
  // Element (row, col) of the i-th matrix of a and b, whatever their layout.
  const aAt = transposeA ? (base: number, row: number, col: number) => a[base + col * m + row] : (base: number, row: number, col: number) => a[base + row * k + col];
  const bAt = transposeB ? (base: number, row: number, col: number) => b[base + col * k + row] : (base: number, row: number, col: number) => b[base + row * n + col];
  for (let i = 0; i < batch; i++) {
    const aBase = aMatrix[i] * m * k;
    const bBase = bMatrix[i] * k * n;
    for (let r = 0; r < m; r++) {
      for (let c = 0; c < n; c++) {
        let sum = 0;
        for (let j = 0; j < k; j++) sum += aAt(aBase, r, j) * bAt(bBase, j, c);
        out[(i * m + r) * n + c] = sum;
      }
    }
  }
  return out;
}
