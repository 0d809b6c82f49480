// Activation quantization, as FGMP does it (the paper's "activation quantization unit"): every
// Linear layer's input is quantized block by block (16 along the input channels) just before the
// product, each block FP4 or FP8 chosen online by a threshold calibrated offline. Schemes:
// - fgmp:     impact = Σ F_c (Q4(a_c) − Q8(a_c))² with F_c the per-channel Fisher of the layer's input
//             (mean squared dLoss/da_c over calibration digits), one global threshold for all layers;
// - noFisher: the same with F = 1 (plain squared quantization error);
// - random:   each block FP4 with probability p, from a seeded generator.
// Thresholds are calibrated on the calibration digits in the same 500-row batches the evaluation
// uses, with per-batch (dynamic) tensor scales, so the realised FP4 share on test digits is close to,
// not exactly, the target; it is measured and reported.

import { dequantize, fgmpImpacts, quantize, quantizeFgmpActivations, selectThreshold, type FgmpTensor } from '../../lib/core/api.js';
import type { Dataset } from './data.js';
import { backprop, forward, softmaxCrossEntropy, type InputQuantizer, type Mlp } from './mlp.js';
import { Rng } from './prng.js';

export type ActivationScheme = 'fgmp' | 'noFisher' | 'random';

/** Per layer, the diagonal Fisher of its input activations, one value per input channel. */
export function activationFisher(model: Mlp, data: Dataset, batch = 500): Float32Array[] {
  const { sizes } = model;
  const classes = sizes[sizes.length - 1];
  const sums = sizes.slice(0, -1).map((n) => new Float64Array(n));
  for (let start = 0; start < data.n; start += batch) {
    const bsz = Math.min(batch, data.n - start);
    const acts = forward(model, data.x.subarray(start * sizes[0], (start + bsz) * sizes[0]), bsz);
    const dOut = new Float32Array(bsz * classes);
    softmaxCrossEntropy(acts[acts.length - 1], data.y.subarray(start, start + bsz), bsz, classes, dOut);
    const deltas = backprop(model, acts, dOut, bsz);
    for (let l = 0; l + 1 < sizes.length; l++) {
      // dLoss/da = δ_l · W_l (the gradient at the quantized value, before any ReLU mask).
      const nIn = sizes[l];
      const nOut = sizes[l + 1];
      const w = model.w[l];
      const d = deltas[l];
      const g = new Float64Array(nIn);
      for (let r = 0; r < bsz; r++) {
        g.fill(0);
        for (let j = 0; j < nOut; j++) {
          const dj = d[r * nOut + j];
          if (dj === 0) continue;
          for (let i = 0; i < nIn; i++) g[i] += dj * w[j * nIn + i];
        }
        for (let i = 0; i < nIn; i++) sums[l][i] += g[i] * g[i];
      }
    }
  }
  return sums.map((s) => Float32Array.from(s, (v) => v / data.n));
}

export interface ActivationQuantizer {
  quantizeInput: InputQuantizer;
  /** FP4 blocks / all blocks quantized so far (reset with `resetCount`). */
  fp4Share(): number;
  resetCount(): void;
}

/** A quantizer for every layer input under `scheme` at target FP4 fraction `p`. */
export function activationQuantizer(
  model: Mlp, scheme: ActivationScheme, p: number, fisher: Float32Array[], calibration: Dataset, seed = 0, batch = 500,
): ActivationQuantizer {
  const { sizes } = model;
  const channelFisher = scheme === 'fgmp' ? fisher : sizes.slice(0, -1).map((n) => new Float32Array(n).fill(1));
  let threshold = 0;
  if (scheme !== 'random') {
    // One global threshold over the impacts of every layer's calibration activations.
    const impacts: Float64Array[] = [];
    for (let start = 0; start < calibration.n; start += batch) {
      const bsz = Math.min(batch, calibration.n - start);
      const acts = forward(model, calibration.x.subarray(start * sizes[0], (start + bsz) * sizes[0]), bsz);
      for (let l = 0; l + 1 < sizes.length; l++) {
        impacts.push(fgmpImpacts(acts[l], { shape: [bsz, sizes[l]], fisher: channelFisher[l], clipping: false }));
      }
    }
    threshold = selectThreshold(impacts, p).threshold;
  }
  const rng = new Rng(seed + 7919);
  let fp4 = 0;
  let total = 0;
  const quantizeInput: InputQuantizer = (l, a, rows) => {
    const cols = sizes[l];
    let q: FgmpTensor;
    if (scheme === 'random') {
      const blocks = rows * Math.ceil(cols / 16);
      const mask = new Uint8Array(Math.ceil(blocks / 8));
      for (let b = 0; b < blocks; b++) if (rng.next() >= p) mask[b >> 3] |= 1 << (b & 7);
      q = quantize(a, { format: 'fgmp', shape: [rows, cols], mask, clipping: false }) as FgmpTensor;
    } else {
      q = quantizeFgmpActivations(a, { shape: [rows, cols], channelFisher: channelFisher[l], threshold });
    }
    const blocks = rows * Math.ceil(cols / 16);
    fp4 += Math.round(q.fp4Fraction * blocks);
    total += blocks;
    return dequantize(q);
  };
  return { quantizeInput, fp4Share: () => (total === 0 ? 0 : fp4 / total), resetCount: () => { fp4 = 0; total = 0; } };
}

/** Every layer input in a plain block format (nvfp4 for all-FP4 activations). */
export function uniformActivationQuantizer(model: Mlp, format: 'nvfp4' | 'mxfp8_e4m3'): InputQuantizer {
  return (l, a, rows) => dequantize(quantize(a, { format, shape: [rows, model.sizes[l]] }));
}
