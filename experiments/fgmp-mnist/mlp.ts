// A small ReLU MLP (e.g. 784→256→128→10) with softmax cross-entropy, forward and backward written
// by hand on Float32Array. Weights are in PyTorch Linear layout [out, in], so FGMP's blocks of 16
// run along the input (dot-product) axis. The loops skip zero activations (most MNIST pixels and
// about half the ReLU outputs are zero), which keeps training on one core to seconds.

import { Rng } from './prng.js';
import type { Dataset } from './data.js';

export interface Mlp {
  /** Layer widths, input first: [784, 256, 128, 10]. */
  sizes: number[];
  /** w[l]: sizes[l+1] × sizes[l], row-major (out × in). */
  w: Float32Array[];
  b: Float32Array[];
}

/** He-normal weights, zero biases, from a seeded generator. */
export function createMlp(sizes: number[], seed: number): Mlp {
  const rng = new Rng(seed);
  const w: Float32Array[] = [];
  const b: Float32Array[] = [];
  for (let l = 0; l + 1 < sizes.length; l++) {
    const fanIn = sizes[l];
    const std = Math.sqrt(2 / fanIn);
    const wl = new Float32Array(sizes[l + 1] * fanIn);
    for (let i = 0; i < wl.length; i++) wl[i] = rng.normal() * std;
    w.push(wl);
    b.push(new Float32Array(sizes[l + 1]));
  }
  return { sizes, w, b };
}

/**
 * Forward pass over a batch of `batch` rows of `x`. Returns every layer's output: acts[0] is the
 * input, acts[l] for hidden layers is post-ReLU, the last is the logits. `weights` overrides the
 * model's weights (e.g. dequantized ones) without copying the model.
 */
/** Replaces layer l's input (rows × sizes[l]) by its quantized-then-dequantized values. */
export type InputQuantizer = (layer: number, input: Float32Array, rows: number) => Float32Array;

export function forward(model: Mlp, x: Float32Array, batch: number, weights: Float32Array[] = model.w, quantizeInput?: InputQuantizer): Float32Array[] {
  const { sizes } = model;
  const acts: Float32Array[] = [x];
  const nz = new Int32Array(Math.max(...sizes));
  for (let l = 0; l + 1 < sizes.length; l++) {
    const nIn = sizes[l];
    const nOut = sizes[l + 1];
    const a = quantizeInput ? quantizeInput(l, acts[l], batch) : acts[l];
    const w = weights[l];
    const bias = model.b[l];
    const out = new Float32Array(batch * nOut);
    const last = l + 2 === sizes.length;
    for (let r = 0; r < batch; r++) {
      let k = 0;
      const aOff = r * nIn;
      for (let i = 0; i < nIn; i++) if (a[aOff + i] !== 0) nz[k++] = i;
      for (let j = 0; j < nOut; j++) {
        const wOff = j * nIn;
        let s = bias[j];
        for (let t = 0; t < k; t++) { const i = nz[t]; s += w[wOff + i] * a[aOff + i]; }
        out[r * nOut + j] = last || s > 0 ? s : 0;
      }
    }
    acts.push(out);
  }
  return acts;
}

/**
 * Softmax cross-entropy. Writes each sample's loss into `losses` (if given) and returns the sum;
 * `delta` (if given) receives dLoss/dlogits = softmax − onehot, per sample (not averaged).
 */
export function softmaxCrossEntropy(
  logits: Float32Array, labels: Uint8Array, batch: number, classes: number,
  delta?: Float32Array, losses?: Float64Array,
): number {
  let total = 0;
  for (let r = 0; r < batch; r++) {
    const o = r * classes;
    let m = -Infinity;
    for (let c = 0; c < classes; c++) if (logits[o + c] > m) m = logits[o + c];
    let z = 0;
    for (let c = 0; c < classes; c++) z += Math.exp(logits[o + c] - m);
    const logZ = m + Math.log(z);
    const loss = logZ - logits[o + labels[r]];
    total += loss;
    if (losses) losses[r] = loss;
    if (delta) {
      for (let c = 0; c < classes; c++) delta[o + c] = Math.exp(logits[o + c] - logZ) - (c === labels[r] ? 1 : 0);
    }
  }
  return total;
}

/**
 * Backpropagation: given dLoss/dlogits per sample, returns dLoss/dz for every layer's
 * pre-activation z (deltas[l] has batch × sizes[l+1] entries), per sample.
 */
export function backprop(model: Mlp, acts: Float32Array[], dOut: Float32Array, batch: number): Float32Array[] {
  const { sizes } = model;
  const L = sizes.length - 1;
  const deltas: Float32Array[] = new Array(L);
  deltas[L - 1] = dOut;
  const nz = new Int32Array(Math.max(...sizes));
  for (let l = L - 1; l >= 1; l--) {
    const nIn = sizes[l];
    const nOut = sizes[l + 1];
    const d = deltas[l];
    const w = model.w[l];
    const a = acts[l]; // post-ReLU input of layer l
    const prev = new Float32Array(batch * nIn);
    for (let r = 0; r < batch; r++) {
      let k = 0;
      for (let i = 0; i < nIn; i++) if (a[r * nIn + i] > 0) nz[k++] = i;
      const pOff = r * nIn;
      for (let j = 0; j < nOut; j++) {
        const dj = d[r * nOut + j];
        if (dj === 0) continue;
        const wOff = j * nIn;
        for (let t = 0; t < k; t++) { const i = nz[t]; prev[pOff + i] += dj * w[wOff + i]; }
      }
    }
    deltas[l - 1] = prev;
  }
  return deltas;
}

/** Sum over the batch of the weight and bias gradients, added into gW / gb. */
export function accumulateGradients(
  model: Mlp, acts: Float32Array[], deltas: Float32Array[], batch: number, gW: Float32Array[], gb: Float32Array[],
): void {
  const { sizes } = model;
  const nz = new Int32Array(Math.max(...sizes));
  for (let l = 0; l + 1 < sizes.length; l++) {
    const nIn = sizes[l];
    const nOut = sizes[l + 1];
    const a = acts[l];
    const d = deltas[l];
    const g = gW[l];
    for (let r = 0; r < batch; r++) {
      let k = 0;
      const aOff = r * nIn;
      for (let i = 0; i < nIn; i++) if (a[aOff + i] !== 0) nz[k++] = i;
      for (let j = 0; j < nOut; j++) {
        const dj = d[r * nOut + j];
        if (dj === 0) continue;
        gb[l][j] += dj;
        const gOff = j * nIn;
        for (let t = 0; t < k; t++) { const i = nz[t]; g[gOff + i] += dj * a[aOff + i]; }
      }
    }
  }
}

export interface TrainOptions {
  epochs: number;
  batch: number;
  lr: number;
  seed: number;
  /** Called after each epoch with the mean training loss. */
  onEpoch?: (epoch: number, meanLoss: number) => void;
}

/** Adam (β = 0.9, 0.999), minibatches in a seeded order; the model is updated in place. */
export function train(model: Mlp, data: Dataset, options: TrainOptions): void {
  const { sizes } = model;
  const classes = sizes[sizes.length - 1];
  const inputs = sizes[0];
  const rng = new Rng(options.seed);
  const gW = model.w.map((w) => new Float32Array(w.length));
  const gb = model.b.map((b) => new Float32Array(b.length));
  const params = [...model.w, ...model.b];
  const grads = [...gW, ...gb];
  const m1 = params.map((p) => new Float32Array(p.length));
  const m2 = params.map((p) => new Float32Array(p.length));
  const beta1 = 0.9;
  const beta2 = 0.999;
  const eps = 1e-8;
  let step = 0;
  const order = new Uint32Array(data.n);
  for (let i = 0; i < data.n; i++) order[i] = i;
  const xb = new Float32Array(options.batch * inputs);
  const yb = new Uint8Array(options.batch);
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    rng.shuffle(order);
    let lossSum = 0;
    for (let start = 0; start < data.n; start += options.batch) {
      const bsz = Math.min(options.batch, data.n - start);
      for (let r = 0; r < bsz; r++) {
        const s = order[start + r];
        xb.set(data.x.subarray(s * inputs, (s + 1) * inputs), r * inputs);
        yb[r] = data.y[s];
      }
      const x = xb.subarray(0, bsz * inputs);
      const acts = forward(model, x, bsz);
      const dOut = new Float32Array(bsz * classes);
      lossSum += softmaxCrossEntropy(acts[acts.length - 1], yb, bsz, classes, dOut);
      const deltas = backprop(model, acts, dOut, bsz);
      for (const g of grads) g.fill(0);
      accumulateGradients(model, acts, deltas, bsz, gW, gb);
      step++;
      const c1 = 1 - beta1 ** step;
      const c2 = 1 - beta2 ** step;
      for (let p = 0; p < params.length; p++) {
        const w = params[p];
        const g = grads[p];
        const a = m1[p];
        const v = m2[p];
        for (let i = 0; i < w.length; i++) {
          const gi = g[i] / bsz;
          a[i] = beta1 * a[i] + (1 - beta1) * gi;
          v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
          w[i] -= (options.lr * (a[i] / c1)) / (Math.sqrt(v[i] / c2) + eps);
        }
      }
    }
    options.onEpoch?.(epoch, lossSum / data.n);
  }
}
