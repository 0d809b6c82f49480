// Diagonal Fisher information of every weight: F = mean over calibration samples of the squared
// per-sample gradient of the loss. For a Linear layer the per-sample gradient of W[j,i] is
// δ_j · a_i (δ = dLoss/dz of the output, a = the layer's input), so F[j,i] = mean_n δ_nj² a_ni².
//
// labels: 'true' (default) is the *empirical* Fisher, the gradient of the loss at the true label;
// 'sampled' draws each sample's label from the model's own softmax (a seeded one-sample Monte-Carlo
// estimate of the true Fisher); 'expected' is the true Fisher exactly, Σ_y p(y|x) g_y², one
// backward pass per class.

import type { Dataset } from './data.js';
import { backprop, forward, type Mlp } from './mlp.js';
import { Rng } from './prng.js';

export interface FisherOptions {
  labels?: 'true' | 'sampled' | 'expected';
  seed?: number;
  batch?: number;
}

/** One Float32Array per layer, the size of its weight, in the weight's [out, in] layout. */
export function diagonalFisher(model: Mlp, data: Dataset, options: FisherOptions = {}): Float32Array[] {
  const { sizes } = model;
  const classes = sizes[sizes.length - 1];
  const inputs = sizes[0];
  const batch = options.batch ?? 250;
  const rng = new Rng(options.seed ?? 0);
  const sums = model.w.map((w) => new Float64Array(w.length));
  const nz = new Int32Array(Math.max(...sizes));
  for (let start = 0; start < data.n; start += batch) {
    const bsz = Math.min(batch, data.n - start);
    const x = data.x.subarray(start * inputs, (start + bsz) * inputs);
    const acts = forward(model, x, bsz);
    const logits = acts[acts.length - 1];
    const passes = options.labels === 'expected' ? classes : 1;
    for (let pass = 0; pass < passes; pass++) {
      const dOut = new Float32Array(bsz * classes);
      const weight = new Float32Array(bsz).fill(1);
      for (let r = 0; r < bsz; r++) {
        const o = r * classes;
        let m = -Infinity;
        for (let c = 0; c < classes; c++) m = Math.max(m, logits[o + c]);
        let z = 0;
        for (let c = 0; c < classes; c++) z += Math.exp(logits[o + c] - m);
        let label = data.y[start + r];
        if (options.labels === 'sampled') {
          let u = rng.next() * z;
          label = classes - 1;
          for (let c = 0; c < classes; c++) { u -= Math.exp(logits[o + c] - m); if (u < 0) { label = c; break; } }
        } else if (options.labels === 'expected') {
          label = pass;
          weight[r] = Math.exp(logits[o + pass] - m) / z;
        }
        for (let c = 0; c < classes; c++) dOut[o + c] = Math.exp(logits[o + c] - m) / z - (c === label ? 1 : 0);
      }
      const deltas = backprop(model, acts, dOut, bsz);
      for (let l = 0; l + 1 < sizes.length; l++) {
        const nIn = sizes[l];
        const nOut = sizes[l + 1];
        const a = acts[l];
        const d = deltas[l];
        const s = sums[l];
        for (let r = 0; r < bsz; r++) {
          let k = 0;
          const aOff = r * nIn;
          for (let i = 0; i < nIn; i++) if (a[aOff + i] !== 0) nz[k++] = i;
          for (let j = 0; j < nOut; j++) {
            const dj = d[r * nOut + j];
            if (dj === 0) continue;
            const d2 = weight[r] * dj * dj;
            const sOff = j * nIn;
            for (let t = 0; t < k; t++) { const i = nz[t]; const ai = a[aOff + i]; s[sOff + i] += d2 * ai * ai; }
          }
        }
      }
    }
  }
  return sums.map((s) => Float32Array.from(s, (v) => v / data.n));
}
