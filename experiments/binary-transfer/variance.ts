// The measured variance of each gradient quantizer on real output gradients of the binary CNN
// (the pretrained model, one Fashion-MNIST batch), beside its bound (docs/gradient-quant.md):
//   no pruning:  Σ_g D_g R_g² / (4B²)                       (B = 2^b − 1, R_g the group's range)
//   AGP:         Σ_g [(1/p_g − 1)‖g_g‖² + D_g R_g² / (4B² p_g)]
// Measured: the mean over seeds of ‖ĝ − g‖² (ĝ is unbiased, so this is its total variance).

import * as tf from '@tensorflow/tfjs';
import { dequantizeGradient, quantizeGradient, type GradientGroups, type GradientPrune } from '../../lib/index.js';

export interface VarianceRow {
  layer: string;
  shape: [number, number, number];
  quantizer: string;
  bitsPerElement: number;
  measured: number;
  bound: number;
  /** ‖g‖², for scale. */
  norm2: number;
}

interface Setting { name: string; bits: number; prune: GradientPrune; view: 'rows' | 'cols'; groups: GradientGroups }

export const SETTINGS: Setting[] = [
  { name: '1-bit PSQ', bits: 1, prune: 'none', view: 'rows', groups: 'sample' },
  { name: 'AGP + SCQ b=4, ∇X path (per sample)', bits: 4, prune: 'agp', view: 'rows', groups: 'sample' },
  { name: 'AGP + SCQ b=4, ∇W path (per channel)', bits: 4, prune: 'agp', view: 'cols', groups: 'channel' },
  { name: '8-bit PSQ', bits: 8, prune: 'none', view: 'rows', groups: 'sample' },
];

function bound(g: Float32Array, rows: number, cols: number, groups: GradientGroups, bits: number, keep: Float32Array | null): number {
  const B = 2 ** bits - 1;
  const count = groups === 'sample' ? rows : cols;
  const size = groups === 'sample' ? cols : rows;
  let total = 0;
  for (let gi = 0; gi < count; gi++) {
    let lo = Infinity;
    let hi = -Infinity;
    let n2 = 0;
    for (let j = 0; j < size; j++) {
      const v = groups === 'sample' ? g[gi * cols + j] : g[j * cols + gi];
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
      n2 += v * v;
    }
    const r = hi - lo;
    const p = keep ? keep[gi] : 1;
    if (p === 0) continue;
    total += (1 / p - 1) * n2 + (size * r * r) / (4 * B * B * p);
  }
  return total;
}

/** ∇Y [samples, positions, channels] of one layer's output, per setting, over `seeds` draws. */
export function measure(layer: string, g: Float32Array, shape: [number, number, number], seeds: number): VarianceRow[] {
  const [n, p, c] = shape;
  let norm2 = 0;
  for (const v of g) norm2 += v * v;
  return SETTINGS.map((s) => {
    const rows = s.view === 'rows' ? n : n * p;
    const cols = s.view === 'rows' ? p * c : c;
    let sum = 0;
    let kept = 0;
    let b = 0;
    for (let seed = 1; seed <= seeds; seed++) {
      const q = quantizeGradient(g, { shape: [rows, cols], bits: s.bits, groups: s.groups, prune: s.prune, seed });
      const e = dequantizeGradient(q);
      let d2 = 0;
      for (let i = 0; i < g.length; i++) d2 += (e[i] - g[i]) ** 2;
      sum += d2;
      for (const m of q.mask) kept += m;
      if (seed === 1) b = bound(g, rows, cols, s.groups, s.bits, s.prune === 'agp' ? q.keepProbability : null);
    }
    const groupsCount = s.groups === 'sample' ? rows : cols;
    return { layer, shape, quantizer: s.name, bitsPerElement: (s.bits * kept) / (seeds * groupsCount), measured: sum / seeds, bound: b, norm2 };
  });
}

/** The output gradients of every binary conv layer of `model` for one batch (x, labels y). */
export function outputGradients(model: tf.Sequential, x: tf.Tensor4D, y: tf.Tensor2D): Array<{ layer: string; g: Float32Array; shape: [number, number, number] }> {
  const out: Array<{ layer: string; g: Float32Array; shape: [number, number, number] }> = [];
  model.layers.forEach((layer, k) => {
    if (layer.getClassName() !== 'BinaryConv2D') return;
    tf.tidy(() => {
      let h: tf.Tensor = x;
      for (let i = 0; i <= k; i++) h = model.layers[i].apply(h, { training: true }) as tf.Tensor;
      const tail = (yk: tf.Tensor) => {
        let t = yk;
        for (let i = k + 1; i < model.layers.length; i++) t = model.layers[i].apply(t, { training: true }) as tf.Tensor;
        return tf.losses.softmaxCrossEntropy(y, tf.log(tf.add(t, 1e-7)));
      };
      const g = tf.grad(tail)(h);
      const [n, hh, ww, c] = g.shape as number[];
      out.push({ layer: layer.name, g: (g.dataSync() as Float32Array).slice(), shape: [n, hh * ww, c] });
    });
  });
  return out;
}
