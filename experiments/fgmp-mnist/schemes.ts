// The weight-quantization schemes compared, each turning the model's float32 weights into
// dequantize(quantize(w, …)) with fp4kit. FGMP-family schemes share one mask per layer chosen
// model-wide (one global threshold / one global random draw across all layers' blocks):
// - fgmp:      impact = Σ F_i (Q4(x_i) − Q8(x_i))², Fisher-weighted clipping of FP4 scales;
// - noFisher:  the same with F = 1 (plain squared quantization error), in selection and clipping;
// - random:    a seeded uniformly random set of blocks is FP4 (FP4 scales Fisher-clipped as in fgmp).
// Ablations: fgmpNoClip (Fisher selection, absmax FP4 scales), noFisherClipF (plain-error selection,
// Fisher-weighted clipping) separate the two places the Fisher information enters.

import {
  BLOCK_FORMATS, assignPrecision, bitsPerElement, dequantize, fgmpBitsPerElement, fgmpImpacts, quantize,
  selectThreshold, type BlockFormatName, type FgmpTensor,
} from '../../lib/core/api.js';
import type { Mlp } from './mlp.js';
import { Rng } from './prng.js';

export type SchemeName = 'fgmp' | 'noFisher' | 'random' | 'fgmpNoClip' | 'noFisherClipF';

export interface Quantized {
  /** Dequantized weights, one per layer. */
  weights: Float32Array[];
  /** Storage bits per weight element, scales and mask included (per-tensor float32 scales not). */
  bits: number;
  /** Fraction of all weight blocks stored as FP4 (model-wide). */
  fp4Fraction: number;
  /** Fraction of FP4 blocks per layer. */
  layerFp4: number[];
}

function shapeOf(model: Mlp, l: number): [number, number] {
  return [model.sizes[l + 1], model.sizes[l]];
}

/** A plain block format for every layer (mxfp8_e4m3, nvfp4, …). */
export function quantizeUniform(model: Mlp, format: BlockFormatName): Quantized {
  const weights = model.w.map((w, l) => dequantize(quantize(w, { format, shape: shapeOf(model, l) })));
  const fp4 = format === 'nvfp4' || format === 'mxfp4' ? 1 : 0;
  return { weights, bits: bitsPerElement(BLOCK_FORMATS[format]), fp4Fraction: fp4, layerFp4: model.w.map(() => fp4) };
}

/** Random masks (bit set = FP8) with exactly round(p · total) FP4 blocks over all layers. */
export function randomMasks(blockCounts: number[], fp4Fraction: number, seed: number): Uint8Array[] {
  const total = blockCounts.reduce((a, b) => a + b, 0);
  const order = new Uint32Array(total);
  for (let i = 0; i < total; i++) order[i] = i;
  new Rng(seed).shuffle(order);
  const fp4 = Math.round(fp4Fraction * total);
  const isFp8 = new Uint8Array(total).fill(1);
  for (let k = 0; k < fp4; k++) isFp8[order[k]] = 0;
  const masks: Uint8Array[] = [];
  let o = 0;
  for (const n of blockCounts) {
    const m = new Uint8Array(Math.ceil(n / 8));
    for (let b = 0; b < n; b++) if (isFp8[o + b]) m[b >> 3] |= 1 << (b & 7);
    masks.push(m);
    o += n;
  }
  return masks;
}

/** An FGMP-family scheme at a model-wide FP4 fraction; `fisher` is one array per layer. */
export function quantizeFgmpScheme(model: Mlp, scheme: SchemeName, fp4Fraction: number, fisher: Float32Array[], seed = 0): Quantized {
  const shapes = model.w.map((_, l) => shapeOf(model, l));
  const blockCounts = shapes.map(([r, c]) => r * Math.ceil(c / 16));
  const selectFisher = scheme === 'noFisher' || scheme === 'noFisherClipF' ? undefined : fisher;
  const clipFisher = scheme === 'noFisher' ? undefined : fisher;
  const clipping = scheme !== 'fgmpNoClip';
  let masks: Uint8Array[];
  if (scheme === 'random') {
    masks = randomMasks(blockCounts, fp4Fraction, seed);
  } else {
    // One global threshold over every layer's impacts (the paper's model-wide selection).
    const impacts = model.w.map((w, l) => fgmpImpacts(w, { shape: shapes[l], fisher: selectFisher?.[l], clipping }));
    masks = assignPrecision(impacts, selectThreshold(impacts, fp4Fraction));
  }
  const tensors = model.w.map((w, l) => quantize(w, {
    format: 'fgmp', shape: shapes[l], fisher: clipFisher?.[l], clipping, mask: masks[l],
  }) as FgmpTensor);
  let fp4Blocks = 0;
  tensors.forEach((t, l) => { fp4Blocks += Math.round(t.fp4Fraction * blockCounts[l]); });
  const total = blockCounts.reduce((a, b) => a + b, 0);
  const p = fp4Blocks / total;
  return {
    weights: tensors.map((t) => dequantize(t)),
    bits: fgmpBitsPerElement(p),
    fp4Fraction: p,
    layerFp4: tensors.map((t) => t.fp4Fraction),
  };
}
