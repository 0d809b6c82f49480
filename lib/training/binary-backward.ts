// The output gradient of a binary layer (1-bit FQT, Gao et al., arXiv 2408.14267), quantized for
// its two backward products. ∇Y feeds ∇X = ∇Y·Wᵀ, a reduction over output channels, and
// ∇W = Xᵀ·∇Y, a reduction over samples. Sample-Channel joint Quantization (SCQ) quantizes ∇Y
// twice: per sample for ∇X and per channel for ∇W, so in each product the scale and zero point
// of a group sit outside the reduction and the product itself is an integer one (bit planes ×
// signs, lib/core/bitplane-gemm.ts). Each path prunes along its own group axis (AGP).
//
// ∇Y is [samples, positions, channels]: a dense layer has one position per sample; a conv layer
// has the H'·W' output positions of each sample. A sample group is all positions × channels of
// one sample (its row in the [samples, positions·channels] view); a channel group is one output
// channel over all samples and positions (a column of the [samples·positions, channels] view).

import {
  dequantizeGradient, GradientScaleOverflowError, quantizeGradient, type GradientPrune, type QuantizedGradient,
} from '../core/quantize-gradient.js';
import { bitplaneMatmul, bitplaneMatmulInt, packBitPlanes, packGradient, type PackedSigns } from '../core/bitplane-gemm.js';
import { DtypeId } from '../core/formats.js';
import { getKernels } from '../kernels/registry.js';
import { MAX_BITPLANE_LENGTH, signSums } from '../kernels/ref/bitplane-gemm.js';

/** How a binary layer's backward pass treats the output gradient:
 *  'fp32' full precision (QAT); 'ptq' one scale per tensor for both products; 'psq' per sample for
 *  both products (the baseline of the paper); 'scq' per sample for ∇X, per channel for ∇W. */
export type BinaryGradientMode = 'fp32' | 'ptq' | 'psq' | 'scq';
export const BINARY_GRADIENT_MODES: readonly BinaryGradientMode[] = ['fp32', 'ptq', 'psq', 'scq'];

export interface BinaryGradientOptions {
  mode: BinaryGradientMode;
  /** Bits per kept element, 1 … 8 (ignored by 'fp32'). */
  bits: number;
  /** Group pruning of each path: 'agp' (unbiased, ~1/bits of the groups kept), 'topk' (the released code's, biased) or 'none'. */
  prune: GradientPrune;
}

/** The shape of an output gradient: samples × positions × channels, row-major. */
export interface GradientShape {
  samples: number;
  positions: number;
  channels: number;
}

/** One path's quantized gradient, in the [rows, cols] view it was grouped in. */
export interface QuantizedPath {
  q: QuantizedGradient;
  /** 'rows': q is the [samples, positions·channels] view; 'cols': the [samples·positions, channels] view. */
  view: 'rows' | 'cols';
}

export interface OutputGradientEstimates {
  /** The gradient ∇X's product takes, in ∇Y's layout (samples, positions, channels). */
  forInput: Float32Array;
  /** The gradient ∇W's product takes, in the same layout. */
  forWeight: Float32Array;
  /** The quantized forms (absent for 'fp32'); the integer products take these. */
  input?: QuantizedPath;
  weight?: QuantizedPath;
}

function quantizePath(
  g: Float32Array, shape: GradientShape, view: 'rows' | 'cols', groups: 'sample' | 'channel' | 'tensor', o: BinaryGradientOptions, seed: number,
): QuantizedPath {
  const { samples, positions, channels } = shape;
  const dims = view === 'rows' ? [samples, positions * channels] : [samples * positions, channels];
  return { q: quantizeGradient(g, { shape: dims, bits: o.bits, groups, prune: o.prune, seed }), view };
}

/**
 * The two estimates of ∇Y (`g`, laid out samples × positions × channels) for the input and weight
 * products. `seed` draws this step's rounding noise and keep decisions; the weight path uses a
 * second stream derived from it, so the two quantizations are independent.
 */
export function outputGradientEstimates(g: Float32Array, shape: GradientShape, o: BinaryGradientOptions, seed: number): OutputGradientEstimates {
  if (o.mode === 'fp32') return { forInput: g, forWeight: g };
  const { input, weight } = quantizedPaths(g, shape, o, seed);
  // Both views are row-major over the same (sample, position, channel) order, so a dequantized
  // view is already in ∇Y's layout.
  return { forInput: dequantizeGradient(input.q), forWeight: dequantizeGradient(weight.q), input, weight };
}

/** The quantized ∇Y of each product ('ptq', 'psq', 'scq'): the same draws outputGradientEstimates makes. */
export function quantizedPaths(g: Float32Array, shape: GradientShape, o: BinaryGradientOptions, seed: number): { input: QuantizedPath; weight: QuantizedPath } {
  if (o.mode === 'fp32') throw new RangeError("quantizedPaths: mode 'fp32' quantizes nothing");
  const weightSeed = (Math.imul(seed ^ 0x5bd1e995, 0x27d4eb2d) >>> 0) ^ 0x9e3779b9;
  if (o.mode === 'ptq') {
    return { input: quantizePath(g, shape, 'rows', 'tensor', o, seed), weight: quantizePath(g, shape, 'rows', 'tensor', o, weightSeed >>> 0) };
  }
  const input = quantizePath(g, shape, 'rows', 'sample', o, seed);
  // PSQ quantizes per sample for both products; SCQ per channel for the weight product.
  const weight = o.mode === 'psq' ? quantizePath(g, shape, 'rows', 'sample', o, weightSeed >>> 0) : quantizePath(g, shape, 'cols', 'channel', o, weightSeed >>> 0);
  return { input, weight };
}

/**
 * The quantized ∇Y of each product as quantizedPaths draws it, or null when ∇Y cannot be quantized:
 * it holds no element (an empty batch or an empty output image), a NaN or ±Inf (a loss that
 * diverged), or a group whose scale would overflow float32. A layer then runs that step's products
 * in float32, as mode 'fp32' does, so a diverged loss shows as NaN or Inf in the loss, as with
 * tf.layers.dense, instead of ending model.fit with an error.
 */
export function tryQuantizedPaths(g: Float32Array, shape: GradientShape, o: BinaryGradientOptions, seed: number): { input: QuantizedPath; weight: QuantizedPath } | null {
  if (g.length === 0 || !Number.isFinite(getKernels().absMax(g, DtypeId.f32))) return null;
  try {
    return quantizedPaths(g, shape, o, seed);
  } catch (err) {
    if (err instanceof GradientScaleOverflowError) return null;
    throw err;
  }
}

/**
 * ∇X's product on bit planes: Ĝ[samples·positions, channels] · Sᵀ, where `weightSigns` holds one
 * row per output column of the product (a dense layer's W [inputs, channels] packed by rows; a
 * conv layer's filter as [taps·inputChannels, channels]). The input path is per sample or per
 * tensor, so its scales factor out of the reduction over channels. [samples·positions, weightSigns.rows],
 * into `out` when given.
 */
export function inputGradientProduct(path: QuantizedPath, shape: GradientShape, weightSigns: PackedSigns, out?: Float32Array): Float32Array {
  return bitplaneMatmul(packGradient(path.q, { reduce: 'columns', length: shape.channels }), weightSigns, out ? { out } : undefined);
}

/**
 * ∇W's product on bit planes, transposed: Ĝᵀ · S → [channels, inputSigns.rows], where `inputSigns`
 * packs the binary input (a dense layer's sign(x) [samples, inputs], a conv layer's patches of
 * sign(x) [samples·positions, taps·inputChannels], ternary for the zero padding) by columns — called
 * only when this path runs, so a forward pass (inference) never packs it.
 * Null where this path does not run, and the caller multiplies the dequantized estimate in float32:
 * - PSQ: per-sample scales sit inside the reduction over samples (the reason SCQ exists);
 * - a reduction over samples·positions longer than the bit-plane products take (2^22: their
 *   integer sums must fit int32), e.g. a conv layer's batch of 128 at 192×192.
 */
export function weightGradientProduct(path: QuantizedPath, shape: GradientShape, inputSigns: () => PackedSigns): Float32Array | null {
  const { q } = path;
  if (!weightGradientOnBitplanes(path, shape)) return null;
  // A tensor-wide group reads the same in any view: take the [samples·positions, channels] one.
  const byChannel = q.groups === 'tensor' ? { ...q, shape: [shape.samples * shape.positions, shape.channels] as [number, number] } : q;
  return bitplaneMatmul(packGradient(byChannel, { reduce: 'rows' }), inputSigns());
}

/** Whether ∇W's product runs on bit planes (weightGradientProduct's condition). */
function weightGradientOnBitplanes(path: QuantizedPath, shape: GradientShape): boolean {
  return path.q.groups !== 'sample' && shape.samples * shape.positions <= MAX_BITPLANE_LENGTH;
}

/**
 * Rows [r0, r1) of inputGradientProduct's result (rows of the [samples·positions, channels] view),
 * the same bits row for row: each row is decoded with its own group's scale, zero point and mask
 * (a chunk of rows may start or end inside a sample's group).
 */
export function inputGradientRows(path: QuantizedPath, shape: GradientShape, weightSigns: PackedSigns, r0: number, r1: number, out?: Float32Array): Float32Array {
  const { q } = path;
  if (q.groups === 'channel') throw new RangeError("inputGradientRows: per-channel scales do not factor out of a reduction over channels; quantize with groups 'sample' or 'tensor'");
  const c = shape.channels;
  const rows = r1 - r0;
  const scales = new Float32Array(rows);
  const zeros = new Float32Array(rows);
  const mask = new Uint8Array(rows);
  for (let i = 0; i < rows; i++) {
    const g = q.groups === 'sample' ? Math.floor((r0 + i) / shape.positions) : 0;
    scales[i] = q.scales[g];
    zeros[i] = q.zeros[g];
    mask[i] = q.mask[g];
  }
  const planes = packBitPlanes(q.codes.subarray(r0 * c, r1 * c), { shape: [rows, c], bits: q.bits });
  return bitplaneMatmul({ ...planes, rowsPerGroup: 1, scales, zeros, mask }, weightSigns, out ? { out } : undefined);
}

/**
 * weightGradientProduct with the input's rows (samples·positions) handed in chunk by chunk, so a
 * conv layer's patches never exist whole. Its result is scales[g]·I + zeros[g]·T per element with
 * I and T integer sums over every row (ref/bitplane-gemm.ts), so the chunks' integer products are
 * summed exactly (|partial sums| ≤ 255 · 2^22 < 2^31) and the same float32 steps applied once at
 * the end: the same bits as one product over all rows.
 */
export class WeightGradientSums {
  private readonly I: Int32Array;
  private readonly T: Int32Array;
  private next = 0;

  private constructor(private readonly path: QuantizedPath, private readonly shape: GradientShape, private readonly inputRows: number) {
    this.I = new Int32Array(shape.channels * inputRows);
    this.T = new Int32Array(inputRows);
  }

  /** Null where weightGradientProduct would return null (the caller multiplies in float32). */
  static start(path: QuantizedPath, shape: GradientShape, inputRows: number): WeightGradientSums | null {
    return weightGradientOnBitplanes(path, shape) ? new WeightGradientSums(path, shape, inputRows) : null;
  }

  /** Rows [r0, r1) of the [samples·positions, channels] view against `inputSigns` ([inputRows]
   *  signs rows of length r1 − r0: that chunk of the input packed by columns), in order. */
  add(r0: number, r1: number, inputSigns: PackedSigns): void {
    if (r0 !== this.next || inputSigns.length !== r1 - r0 || inputSigns.rows !== this.inputRows) {
      throw new RangeError(`WeightGradientSums.add: rows [${r0}, ${r1}) with ${inputSigns.rows} signs rows of ${inputSigns.length}, expected rows from ${this.next} and ${this.inputRows} signs rows`);
    }
    this.next = r1;
    const { q } = this.path;
    const c = this.shape.channels;
    // Both views are row-major over (sample, position, channel): rows r0 … r1 of the channel view.
    const planes = packBitPlanes(q.codes.subarray(r0 * c, r1 * c), { shape: [r1 - r0, c], bits: q.bits, transpose: true });
    const I = bitplaneMatmulInt(planes, inputSigns, { mask: q.mask, rowsPerGroup: q.groups === 'channel' ? 1 : c });
    for (let i = 0; i < I.length; i++) this.I[i] += I[i];
    const T = signSums(inputSigns.data, inputSigns.rows, inputSigns.length, inputSigns.ternary);
    for (let j = 0; j < T.length; j++) this.T[j] += T[j];
  }

  /** Ĝᵀ · S → [channels, inputRows], as weightGradientProduct gives it, once every row is in. */
  finish(): Float32Array {
    const { q } = this.path;
    const { channels } = this.shape;
    if (this.next !== this.shape.samples * this.shape.positions) throw new RangeError(`WeightGradientSums.finish: ${this.next} of ${this.shape.samples * this.shape.positions} rows added`);
    const n = this.inputRows;
    const out = new Float32Array(channels * n);
    for (let i = 0; i < channels; i++) {
      const g = q.groups === 'channel' ? i : 0;
      if (q.mask[g] === 0) continue; // a pruned group's rows are 0
      const scale = q.scales[g];
      const zero = q.zeros[g];
      // The kernels' float32 steps, in their order (ref/bitplane-gemm.ts; double rounding of one
      // float32 operation through float64 is exact).
      for (let j = 0; j < n; j++) out[i * n + j] = Math.fround(Math.fround(scale * Math.fround(this.I[i * n + j])) + Math.fround(zero * Math.fround(this.T[j])));
    }
    return out;
  }
}
