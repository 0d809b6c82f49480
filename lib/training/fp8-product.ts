// The backward products of fp4Dense on fp4kit's FP8 × FP8 kernel, as the paper's released code runs
// them (../shared/design/papers-training.md §2.2: ∇Y cast to FP8 E5M2 with one per-tensor scale, the
// FP4-simulated operands Q(W) and Q(A) stored as FP8 E4M3):
//
//   out = diag(1/σa) · (Ca · Cbᵀ) · diag(1/σb)      Ca [m, r], Cb [n, r]: FP8 element values
//
// Each operand is FP8 codes with one scale per row (the output axis: rows of out for `a`, columns
// for `b`; a per-tensor scale is the same value on every row), so the scales factor out of the
// reduction. The codes go in as MXFP8 operands whose block scales are all 1 and fp4kit's matmul
// multiplies them in its documented order (each unit of 32 summed in float64, units in float32; the
// same bits on every backend); the two scales are applied afterwards in float32 (unscale.ts).

import { decode, encode } from '../core/api.js';
import { finiteScale } from './fp4-quantizer.js';
import { matmul } from '../core/matmul.js';
import type { QuantizedTensor } from '../core/quantize.js';
import { unscale } from './unscale.js';

export type Fp8Element = 'e4m3' | 'e5m2';

/** FP8 codes [rows, cols] (cols padded to whole blocks of 32 with +0) and one scale per row. */
export interface Fp8Rows {
  element: Fp8Element;
  rows: number;
  cols: number;
  /** rows × ⌈cols/32⌉·32 codes. */
  codes: Uint8Array;
  /** σ per row: the codes hold x·σ. */
  scales: Float32Array;
}

/** The largest finite value of each FP8 element format: a row's absmax maps onto it. */
export const FP8_MAX: Record<Fp8Element, number> = { e4m3: 448, e5m2: 57344 };

const E8M0_ONE = 127;
const BLOCK = 32;

const paddedLength = (cols: number) => Math.ceil(cols / BLOCK) * BLOCK;

/** σ = max / amax as float32; 1 when amax is 0. */
function scaleFor(element: Fp8Element, amax: number): number {
  return amax > 0 ? finiteScale(FP8_MAX[element], amax) : 1;
}

/**
 * x [rows, cols] (or its transpose, `transposed`: x is [cols, rows] and row i of the result is
 * column i of x) cast to FP8 with round-to-nearest-even, one absmax scale per row or one for the
 * whole tensor. Null when x holds a NaN or an infinity (the caller falls back to float products).
 */
export function castFp8Rows(x: Float32Array, rows: number, cols: number, element: Fp8Element, scaling: 'per-row' | 'per-tensor', transposed = false): Fp8Rows | null {
  // Element (r, c) of the result sits at x[r·rowStep + c·colStep].
  const rowStep = transposed ? 1 : cols;
  const colStep = transposed ? rows : 1;
  const amax = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let c = 0, i = r * rowStep; c < cols; c++, i += colStep) {
      const v = Math.abs(x[i]);
      if (!(v <= 3.4028234663852886e38)) return null;
      if (v > m) m = v;
    }
    amax[r] = m;
  }
  let tensorMax = 0;
  for (let r = 0; r < rows; r++) tensorMax = Math.max(tensorMax, amax[r]);
  const scales = new Float32Array(rows);
  for (let r = 0; r < rows; r++) scales[r] = scaleFor(element, scaling === 'per-row' ? amax[r] : tensorMax);
  const padded = paddedLength(cols);
  const scaled = new Float32Array(rows * padded);
  for (let r = 0; r < rows; r++) {
    const s = scales[r];
    for (let c = 0, i = r * rowStep; c < cols; c++, i += colStep) scaled[r * padded + c] = Math.fround(x[i] * s);
  }
  return { element, rows, cols, codes: encode(scaled, element), scales };
}

/** xᵀ from x's codes (no second cast): per-tensor scaling only, whose one scale serves every row. */
export function transposePerTensor(x: Fp8Rows): Fp8Rows {
  if (x.scales.some((s) => s !== x.scales[0])) throw new RangeError('transposePerTensor: the rows have scales of their own');
  const from = paddedLength(x.cols);
  const to = paddedLength(x.rows);
  const codes = new Uint8Array(x.cols * to);
  for (let r = 0; r < x.rows; r++) for (let c = 0; c < x.cols; c++) codes[c * to + r] = x.codes[r * from + c];
  return { element: x.element, rows: x.cols, cols: x.rows, codes, scales: new Float32Array(x.cols).fill(x.rows > 0 ? x.scales[0] : 1) };
}

/** The float32 values the codes stand for, f32(code value / σ), [rows, cols] unpadded. */
export function fp8Values(x: Fp8Rows): Float32Array {
  const padded = paddedLength(x.cols);
  const values = decode(x.codes, x.element);
  const out = new Float32Array(x.rows * x.cols);
  for (let r = 0; r < x.rows; r++) for (let c = 0; c < x.cols; c++) out[r * x.cols + c] = Math.fround(values[r * padded + c] / x.scales[r]);
  return out;
}

function asOperand(x: Fp8Rows): QuantizedTensor {
  const blocks = paddedLength(x.cols) / BLOCK;
  return { format: x.element === 'e4m3' ? 'mxfp8_e4m3' : 'mxfp8_e5m2', blockSize: BLOCK, shape: [x.rows, x.cols], data: x.codes, scales: new Uint8Array(x.rows * blocks).fill(E8M0_ONE) };
}

/** a [m, r] · b [n, r]ᵀ → [m, n] (float32), the scales divided out after the FP8 product. */
export function fp8Product(a: Fp8Rows, b: Fp8Rows): Float32Array {
  if (a.cols !== b.cols) throw new RangeError(`fp8Product: a has ${a.cols} columns, b has ${b.cols}`);
  const out = matmul(asOperand(a), asOperand(b));
  const n = b.rows;
  for (let i = 0; i < a.rows; i++) {
    for (let j = 0; j < n; j++) out[i * n + j] = unscale(out[i * n + j], a.scales[i], b.scales[j]);
  }
  return out;
}
