// Test loss and accuracy of the MLP with its weights replaced (e.g. by dequantize(quantize(w))).
// Biases stay float32 (they are 394 numbers against 234 752 weights).

import type { Dataset } from './data.js';
import { forward, softmaxCrossEntropy, type InputQuantizer, type Mlp } from './mlp.js';

export interface Evaluation {
  loss: number;
  accuracy: number;
  /** Per-sample cross-entropy, for paired comparisons between configurations. */
  losses: Float64Array;
}

export function evaluate(model: Mlp, data: Dataset, weights: Float32Array[] = model.w, batch = 500, quantizeInput?: InputQuantizer): Evaluation {
  const { sizes } = model;
  const classes = sizes[sizes.length - 1];
  const inputs = sizes[0];
  const losses = new Float64Array(data.n);
  let total = 0;
  let correct = 0;
  for (let start = 0; start < data.n; start += batch) {
    const bsz = Math.min(batch, data.n - start);
    const acts = forward(model, data.x.subarray(start * inputs, (start + bsz) * inputs), bsz, weights, quantizeInput);
    const logits = acts[acts.length - 1];
    const labels = data.y.subarray(start, start + bsz);
    total += softmaxCrossEntropy(logits, labels, bsz, classes, undefined, losses.subarray(start, start + bsz));
    for (let r = 0; r < bsz; r++) {
      let best = 0;
      for (let c = 1; c < classes; c++) if (logits[r * classes + c] > logits[r * classes + best]) best = c;
      if (best === labels[r]) correct++;
    }
  }
  return { loss: total / data.n, accuracy: correct / data.n, losses };
}

/** Mean and standard error of the per-sample loss difference a − b (paired, same test digits). */
export function pairedDifference(a: Float64Array, b: Float64Array): { mean: number; se: number } {
  const n = a.length;
  let s = 0;
  for (let i = 0; i < n; i++) s += a[i] - b[i];
  const mean = s / n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (a[i] - b[i] - mean) ** 2;
  return { mean, se: Math.sqrt(v / (n - 1) / n) };
}
