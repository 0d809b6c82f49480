// The W4A4 quantizer of FP4 LLM training (Wang et al., arXiv 2501.17116, §2.1–2.2 of
// ../shared/design/papers-training.md): E2M1 values with an exact absmax scale γ = 6 / max|x| per
// row (activations: per token) or per column (weights [K, N]: per output channel), simulated in
// float32: x̂ = Q(x·γ) / γ. Also the FP8 E5M2 cast of the output gradient (per-tensor scale).

import { decode, dequantize, encode, quantize, type QuantizedTensor } from '../core/api.js';

/** E2M1 magnitudes, code order. */
export const E2M1_GRID = [0, 0.5, 1, 1.5, 2, 3, 4, 6] as const;
/** Midpoints between neighbours of the grid. */
const MIDPOINTS = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5] as const;
export const E2M1_MAX = 6;

/** How a value halfway between two E2M1 values rounds: 'nearest-even' (OCP, fp4kit's default:
 *  to the even code) or 'ties-up' (toward +∞: the paper's CUDA table, strict < on ascending midpoints). */
export type TieRule = 'nearest-even' | 'ties-up';
export const TIE_RULES: readonly TieRule[] = ['nearest-even', 'ties-up'];

/** The E2M1 value nearest v (saturating at ±6; NaN stays NaN; −0 stays −0). */
export function roundE2M1(v: number, ties: TieRule): number {
  if (Number.isNaN(v)) return NaN;
  const a = Math.abs(v);
  let i = 0;
  while (i < MIDPOINTS.length && a > MIDPOINTS[i]) i++;
  if (i < MIDPOINTS.length && a === MIDPOINTS[i]) {
    // A tie between grid[i] and grid[i + 1].
    const up = ties === 'ties-up' ? v > 0 : (i + 1) % 2 === 0;
    if (up) i++;
  }
  const m = E2M1_GRID[i];
  return v < 0 || Object.is(v, -0) ? -m : m;
}

/**
 * γ = 6 / amax as float32; 1 when amax is 0; NaN when amax is not finite (an Inf or NaN in the
 * group), so the whole group quantizes to NaN and the layer's output shows it, as a float layer's
 * would. (The paper's code takes 1 there, which saturates an Inf to ±6 and gives a finite output.)
 */
export function absmaxScale(amax: number): number {
  if (!Number.isFinite(amax)) return NaN;
  return amax > 0 ? finiteScale(E2M1_MAX, amax) : 1;
}

/**
 * x·γ as float32, within ±6: |x| ≤ amax puts it there exactly, and float rounding can take the
 * largest element to 6.0000005, which DGE would read as outside the grid (a zero gradient).
 */
function scaledValue(x: number, gamma: number): number {
  const u = Math.fround(x * gamma);
  return u > E2M1_MAX ? E2M1_MAX : u < -E2M1_MAX ? -E2M1_MAX : u;
}

/** f32(max / amax), or 2^127 where that overflows float32 (amax below max · 2^-128: a group of
 *  subnormal values, which 2^127 still maps within ±max): an infinite scale would make 0 · γ NaN. */
export function finiteScale(max: number, amax: number): number {
  const s = Math.fround(max / amax);
  return Number.isFinite(s) ? s : 2 ** 127;
}

export interface QuantizedE2M1 {
  /** x̂ = Q(x·γ)/γ (float32). */
  values: Float32Array;
  /** x·γ, the value the grid saw (float32): DGE's argument. */
  scaled: Float32Array;
  /** γ per row ('rows') or per column ('columns'). */
  scales: Float32Array;
  /** Q(x·γ): the E2M1 values themselves (per-row / per-column quantizer only). */
  grid?: Float32Array;
  /** fp4kit's quantized tensor (block formats only): the operand of fp4kit's matmul. */
  blocks?: QuantizedTensor;
}

/** Quantize x [rows, cols] to E2M1 with one exact absmax scale per row or per column. */
export function quantizeE2M1(x: Float32Array, rows: number, cols: number, axis: 'rows' | 'columns', ties: TieRule): QuantizedE2M1 {
  const count = axis === 'rows' ? rows : cols;
  const amax = new Float32Array(count);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const g = axis === 'rows' ? r : c;
      const a = Math.abs(x[r * cols + c]);
      if (a > amax[g] || Number.isNaN(a)) amax[g] = a;
    }
  }
  const scales = amax.map(absmaxScale);
  const values = new Float32Array(rows * cols);
  const scaled = new Float32Array(rows * cols);
  let finite = true;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      const u = scaledValue(x[i], scales[axis === 'rows' ? r : c]);
      scaled[i] = u;
      finite &&= Number.isFinite(u);
    }
  }
  const grid = ties === 'nearest-even' && finite ? nearestEvenGrid(scaled) : scaled.map((u) => roundE2M1(u, ties));
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      values[i] = Math.fround(grid[i] / scales[axis === 'rows' ? r : c]);
    }
  }
  return { values, scaled, scales, grid };
}

/** roundE2M1(u, 'nearest-even') for finite u, through fp4kit's E2M1 codec (one kernel call; the
 *  values saturate at ±6 as roundE2M1's do; tests check the two agree on every tie). */
function nearestEvenGrid(scaled: Float32Array): Float32Array {
  const clipped = new Float32Array(scaled.length);
  for (let i = 0; i < scaled.length; i++) clipped[i] = Math.max(-E2M1_MAX, Math.min(E2M1_MAX, scaled[i]));
  return decode(encode(clipped, 'e2m1'), 'e2m1');
}

/** E5M2's largest finite value. */
export const E5M2_MAX = 57344;

/** g cast to FP8 E5M2 with one per-tensor scale (amax → 57344), returned dequantized (float32). */
export function castE5M2(g: Float32Array): Float32Array {
  let amax = 0;
  for (let i = 0; i < g.length; i++) {
    const a = Math.abs(g[i]);
    if (a > amax) amax = a;
  }
  if (!(amax > 0) || !Number.isFinite(amax)) return Float32Array.from(g);
  const s = finiteScale(E5M2_MAX, amax);
  const scaled = new Float32Array(g.length);
  for (let i = 0; i < g.length; i++) scaled[i] = Math.fround(g[i] * s);
  const back = decode(encode(scaled, 'e5m2'), 'e5m2');
  for (let i = 0; i < back.length; i++) back[i] = Math.fround(back[i] / s);
  return back;
}

/** fp4kit's block formats in place of the per-channel / per-token scales. */
export type Fp4BlockFormat = 'nvfp4' | 'mxfp4';

/**
 * x [rows, cols] through one of fp4kit's FP4 block formats along each row (blocks of 16 or 32
 * along the reduction axis), dequantized; `scaled` is x·γ_b with the block's absmax scale
 * γ_b = 6 / max|x_b| — DGE's argument. (NVFP4's stored scale is γ_b rounded to E4M3; MX's is a power
 * of two, up to 2× off, so DGE on MX blocks approximates where the grid's intervals fall.)
 */
export function quantizeBlocksE2M1(x: Float32Array, rows: number, cols: number, format: Fp4BlockFormat): QuantizedE2M1 {
  const block = format === 'nvfp4' ? 16 : 32;
  const blocksPerRow = Math.ceil(cols / block);
  const scales = new Float32Array(rows * blocksPerRow);
  const scaled = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < blocksPerRow; b++) {
      let amax = 0;
      const end = Math.min(cols, (b + 1) * block);
      for (let c = b * block; c < end; c++) {
        const a = Math.abs(x[r * cols + c]);
        if (a > amax || Number.isNaN(a)) amax = a;
      }
      const gamma = absmaxScale(amax);
      scales[r * blocksPerRow + b] = gamma;
      for (let c = b * block; c < end; c++) scaled[r * cols + c] = scaledValue(x[r * cols + c], gamma);
    }
  }
  if (scales.every(Number.isFinite)) {
    const q = quantize(x, { format, shape: [rows, cols] });
    return { values: dequantize(q), scaled, scales, blocks: q };
  }
  // An Inf or NaN (NVFP4 cannot encode one; MX blocks would): the blocks holding one are NaN, the
  // others quantized as usual; no fp4kit operand, so the layer multiplies the values in float32.
  const finite = Float32Array.from(x);
  for (let i = 0; i < finite.length; i++) if (Number.isNaN(scales[Math.floor(i / cols) * blocksPerRow + Math.floor((i % cols) / block)])) finite[i] = 0;
  const values = dequantize(quantize(finite, { format, shape: [rows, cols] }));
  for (let i = 0; i < values.length; i++) if (Number.isNaN(scales[Math.floor(i / cols) * blocksPerRow + Math.floor((i % cols) / block)])) values[i] = NaN;
  return { values, scaled, scales };
}
