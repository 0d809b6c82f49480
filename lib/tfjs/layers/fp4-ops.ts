// The W4A4 product of fp4Dense as a TensorFlow.js op with its own gradient (tf.customGrad),
// following FP4 LLM training (Wang et al., arXiv 2501.17116; ../shared/design/papers-training.md §2.7):
//
//   forward   A_c = OCC clamp of x (or x);  Â = Q(A_c) per token;  Ŵ = Q(W) per output channel
//             y = Â·Ŵ + ΔA·W                      (ΔA = x − A_c, sparse, float64 accumulation)
//   backward  G = E5M2(∇y) (per-tensor scale; or ∇y)
//             ∇x = G·Ŵᵀ                            (straight through the quantizer and the clamp)
//             ∇W = (Âᵀ·G) ⊙ f′(W·γ) + ΔAᵀ·G        (f′: DGE, or 1)
//
// Every product runs on fp4kit's kernels with quantized operands (the same bits on every backend):
// - forward, per-channel scales: the E2M1 codes on the FP4 integer kernel, exact sums, then the two
//   scales (lib/training/fp4-product.ts); with 'nvfp4' / 'mxfp4' blocks: fp4kit's matmul of the two
//   block-quantized operands;
// - backward with E5M2 gradients: G's codes × Ŵ, Âᵀ stored as FP8 E4M3 with a scale per output row,
//   as the paper's released code stores its FP4-simulated operands (lib/training/fp8-product.ts).
// Float32 products remain for what has no quantized operand — `gradients: 'fp32'` — and for
// non-finite inputs, where Â·Ŵ is simulated as x̂ = Q(x·γ)/γ (NaN in a group with an Inf or NaN).
// They run on fp4kit's float32 kernel in its defined order (lib/tfjs/float-product.ts), not on the
// active tfjs backend: the same bits on every backend, and the fp4kit tfjs backend never quantizes
// an operand of theirs a second time (FP4KIT_WEIGHT_TENSORS = 'all').

import * as tf from '@tensorflow/tfjs';
import { dgeFactors } from '../../training/dge.js';
import { castE5M2, quantizeBlocksE2M1, quantizeE2M1, type QuantizedE2M1 } from '../../training/fp4-quantizer.js';
import { clampRows, residualProduct, type ClampedRows } from '../../training/occ.js';
import { integerW4A4 } from '../../training/fp4-product.js';
import { castFp8Rows, fp8Product, fp8Values, transposePerTensor, type Fp8Rows } from '../../training/fp8-product.js';
import { matmul } from '../../core/matmul.js';
import { transposeLastTwo } from '../../core/transpose.js';
import { floatTimesTransposed } from '../float-product.js';
import type { Fp4LayerConfig } from './fp4-options.js';

function floats(t: tf.Tensor): Float32Array {
  const v = t.dataSync();
  return v instanceof Float32Array ? v : Float32Array.from(v as ArrayLike<number>);
}

/** [rows, cols] → [cols, rows]. */
function transposeOf(a: Float32Array, rows: number, cols: number): Float32Array {
  return transposeLastTwo(a, [rows, cols]);
}

/** Â [t, k] with its scales: per token, or fp4kit blocks along k. */
export function quantizeActivations(a: Float32Array, t: number, k: number, c: Fp4LayerConfig): QuantizedE2M1 {
  return c.scaling === 'per-channel' ? quantizeE2M1(a, t, k, 'rows', c.ties) : quantizeBlocksE2M1(a, t, k, c.scaling);
}

/** Ŵ [k, n]: per output channel (column), or fp4kit blocks along k (each column's run of k; the
 *  fp4kit operand, `blocks`, is Ŵᵀ [n, k] as matmul takes it). */
export function quantizeWeights(w: Float32Array, k: number, n: number, c: Fp4LayerConfig): QuantizedE2M1 {
  if (c.scaling === 'per-channel') return quantizeE2M1(w, k, n, 'columns', c.ties);
  const q = quantizeBlocksE2M1(transposeOf(w, k, n), n, k, c.scaling);
  return { values: transposeOf(q.values, n, k), scaled: transposeOf(q.scaled, n, k), scales: q.scales, blocks: q.blocks };
}

/** ΔAᵀ·G added into dW [k, n] (the residual's non-zeros only). */
function addResidualWeightGradient(occ: ClampedRows, t: number, g: Float32Array, n: number, dw: Float32Array): void {
  for (let r = 0; r < t; r++) {
    for (let e = occ.rowStart[r]; e < occ.rowStart[r + 1]; e++) {
      const d = occ.residuals[e];
      const row = occ.columns[e] * n;
      for (let j = 0; j < n; j++) dw[row + j] = Math.fround(dw[row + j] + d * g[r * n + j]);
    }
  }
}

/** Â·Ŵ on fp4kit's quantized kernels, else (non-finite values, K ≥ 2^16 per channel) on its float32 one. */
function forwardProduct(aq: QuantizedE2M1, wq: QuantizedE2M1, t: number, k: number, n: number): Float32Array {
  if (aq.blocks && wq.blocks) return matmul(aq.blocks, wq.blocks);
  const exact = aq.grid && wq.grid ? integerW4A4(aq.grid, aq.scales, wq.grid, wq.scales, t, k, n) : null;
  return exact ?? floatTimesTransposed(aq.values, t, transposeOf(wq.values, k, n), n, k);
}

/**
 * ∇x = G·Ŵᵀ and Âᵀ·G (before DGE and OCC) on fp4kit's FP8 × FP8 kernel: G = ∇y in E5M2 with one
 * per-tensor scale, Ŵ and Âᵀ in E4M3 with one scale per output row. Null for non-finite values.
 */
function fp8Backward(dy: Float32Array, aHat: Float32Array, wHat: Float32Array, t: number, k: number, n: number): { g: Fp8Rows; dx: Float32Array; dw: Float32Array } | null {
  const g = castFp8Rows(dy, t, n, 'e5m2', 'per-tensor');
  const w8 = castFp8Rows(wHat, k, n, 'e4m3', 'per-row');
  const aT8 = castFp8Rows(aHat, k, t, 'e4m3', 'per-row', true);
  if (!g || !w8 || !aT8) return null;
  return { g, dx: fp8Product(g, w8), dw: fp8Product(aT8, transposePerTensor(g)) };
}

/** Statistics of the last forward pass (tests and reports read them). */
export interface Fp4ForwardStats {
  /** Fraction of activation elements OCC clamped (0 without OCC). */
  clampedFraction: number;
}

/** y [t, n] = W4A4(x [t, k], w [k, n]) with the gradients above. */
export function fp4MatMul(x: tf.Tensor2D, w: tf.Tensor2D, c: Fp4LayerConfig, stats?: Fp4ForwardStats): tf.Tensor2D {
  const op = tf.customGrad(((xs: tf.Tensor2D, ws: tf.Tensor2D) => {
    const [t, k] = xs.shape;
    const n = ws.shape[1];
    const xv = floats(xs);
    const wv = floats(ws);
    const occ = c.occ ? clampRows(xv, t, k, c.occ) : null;
    if (stats) stats.clampedFraction = occ ? occ.residuals.length / Math.max(1, t * k) : 0;
    const aq = quantizeActivations(occ ? occ.clamped : xv, t, k, c);
    const wq = quantizeWeights(wv, k, n, c);
    let y = tf.tensor2d(forwardProduct(aq, wq, t, k, n), [t, n]);
    if (occ) y = tf.add(y, tf.tensor2d(residualProduct(occ, t, wv, n), [t, n]));
    return {
      value: y,
      gradFunc: (dy: tf.Tensor) => {
        const dyv = floats(dy);
        const fp8 = c.gradients === 'e5m2' ? fp8Backward(dyv, aq.values, wq.values, t, k, n) : null;
        // G for the float products (non-finite values, or 'fp32' gradients).
        const g = fp8 ? undefined : c.gradients === 'e5m2' ? castE5M2(dyv) : dyv;
        // ∇x = G·Ŵᵀ [t, k] and Âᵀ·G [k, n] (= Âᵀ [k, t] · (Gᵀ [n, t])ᵀ).
        const dx = fp8 ? fp8.dx : floatTimesTransposed(g!, t, wq.values, k, n);
        let dwv = fp8 ? fp8.dw : floatTimesTransposed(transposeOf(aq.values, t, k), k, transposeOf(g!, t, n), n, t);
        if (c.dge) {
          const f = dgeFactors(wq.scaled, c.dge);
          dwv = dwv.map((v, i) => Math.fround(v * f[i]));
        }
        if (occ) addResidualWeightGradient(occ, t, g ?? fp8Values(fp8!.g), n, dwv);
        return [tf.tensor2d(dx, [t, k]), tf.tensor2d(dwv, [k, n])];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(x, w) as tf.Tensor2D;
}
