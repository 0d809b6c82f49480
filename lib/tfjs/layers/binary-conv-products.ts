// binaryConv2d's three products in im2col form, over chunks of output pixels (patch rows) so that
// no patch matrix — rows × taps floats, 1.85 GB for 64 images of 112² with 3 × 3 × 64 taps — is
// ever whole: ~16 MB of patches per chunk (2^22 values, as the tfjs backend's Conv2D in
// lib/tfjs/conv-product.ts), and a chunk may end inside an image or an image row. Every result has
// the bits of one product over all rows:
//   forward        each output row depends on its own patch only;
//   input gradient dPatches rows likewise (the quantized ∇Y's per-sample or per-tensor scales are
//                  computed once, over the whole gradient, before any chunk), added onto dX by
//                  col2im in row order, whatever ranges the rows come in;
//   weight gradient a reduction over every row of the batch: on bit planes the chunks' integer
//                  sums are added exactly (WeightGradientSums); in float32 each chunk starts on a
//                  32-row unit of the product and is handed the running sums as leading columns
//                  against an identity (as conv-product.ts's filter gradient).

import type { backend_util } from '@tensorflow/tfjs';
import { packSigns, type PackedSigns } from '../../core/bitplane-gemm.js';
import { decodedProduct } from '../../core/matmul.js';
import { scratch } from '../../core/scratch.js';
import { transposeInto } from '../../core/transpose.js';
import { inputGradientRows, WeightGradientSums, type GradientShape, type QuantizedPath } from '../../training/binary-backward.js';
import { binaryPatchRows, filterCodePlanes } from '../../training/binary-forward.js';
import { continuedProduct, FLOAT_BLOCK, floatOperand, floatRows, floatStride } from '../float-product.js';
import { col2im, hasNonFinite, im2col, type ImageStrides } from '../im2col.js';

/** Patch values per chunk (2^22 floats = 16 MB). Tests set it small to cross chunk boundaries. */
export const binaryConvChunking = { values: 1 << 22 };

/** The patches of sign(x): rows (output pixels of the batch, NHWC) × taps (filter taps × input channels). */
export interface SignPatches {
  /** sign(x), NHWC. */
  signs: Float32Array;
  strides: ImageStrides;
  info: backend_util.Conv2DInfo;
  rows: number;
  taps: number;
  /** Whether any tap lies in the zero padding (then the patches are ternary). */
  padded: boolean;
}

function rowsPerChunk(taps: number): number {
  return Math.max(1, Math.floor(binaryConvChunking.values / Math.max(1, taps)));
}

/** Patch rows [r0, r1) in reused scratch, zeroed first (im2col leaves the padding's taps). */
function patchRows(p: SignPatches, r0: number, r1: number): Float32Array {
  const rows = scratch('binary-conv2d.patches', Float32Array, (r1 - r0) * p.taps).fill(0);
  im2col(p.signs, p.strides, p.info, r0, r1, rows, p.taps, 1);
  return rows;
}

/** patches [rows, taps] · sign(w) [taps, n] → [rows, n] (binaryPatchRows, chunk by chunk). */
export function binaryConvForward(p: SignPatches, w: Float32Array, n: number): Float32Array {
  const y = new Float32Array(p.rows * n);
  const planes = filterCodePlanes(w, p.taps, n);
  const chunk = rowsPerChunk(p.taps);
  for (let r0 = 0; r0 < p.rows; r0 += chunk) {
    const r1 = Math.min(p.rows, r0 + chunk);
    binaryPatchRows(planes, patchRows(p, r0, r1), r1 - r0, p.taps, n, p.padded, y.subarray(r0 * n, r1 * n));
  }
  return y;
}

/** dX (sign(x)'s shape) = col2im of patch gradients made chunk by chunk by `rows(r0, r1)` [r1 − r0, taps]. */
function col2imByChunks(p: SignPatches, rows: (r0: number, r1: number) => Float32Array): Float32Array {
  const dx = new Float32Array(p.signs.length);
  const chunk = rowsPerChunk(p.taps);
  for (let r0 = 0; r0 < p.rows; r0 += chunk) {
    const r1 = Math.min(p.rows, r0 + chunk);
    col2im(rows(r0, r1), p.taps, p.info, p.strides, r0, r1, dx);
  }
  return dx;
}

/** dX from ∇Y [rows, c] in float32: dPatches = ∇Y · sign(w) [taps, c]ᵀ on fp4kit's float32 kernel
 *  (floatTimesTransposed's operands, a chunk of ∇Y's rows at a time). */
export function binaryConvInputGradientFloat(p: SignPatches, g: Float32Array, c: number, wb: Float32Array): Float32Array {
  if (c === 0) return new Float32Array(p.signs.length); // empty sums: +0 patches add nothing to +0
  const w = floatOperand(floatRows(wb, 0, p.taps, c, 'binary-conv2d.filter'), p.taps, c);
  return col2imByChunks(p, (r0, r1) => decodedProduct(floatOperand(floatRows(g, r0 * c, r1 - r0, c, 'binary-conv2d.dy-rows'), r1 - r0, c), w, undefined,
    scratch('binary-conv2d.dpatches', Float32Array, (r1 - r0) * p.taps)));
}

/** dX from the quantized ∇Y of the input path, on bit planes (inputGradientProduct, chunk by chunk). */
export function binaryConvInputGradientQuantized(p: SignPatches, path: QuantizedPath, shape: GradientShape, weightSigns: PackedSigns): Float32Array {
  return col2imByChunks(p, (r0, r1) => inputGradientRows(path, shape, weightSigns, r0, r1, scratch('binary-conv2d.dpatches', Float32Array, (r1 - r0) * p.taps)));
}

/** ∇W's product on bit planes, transposed ([c, taps]), or null where weightGradientProduct gives
 *  null (the caller then multiplies the dequantized ∇Y in float32). */
export function binaryConvWeightGradientQuantized(p: SignPatches, path: QuantizedPath, shape: GradientShape): Float32Array | null {
  const sums = WeightGradientSums.start(path, shape, p.taps);
  if (sums === null) return null;
  const chunk = rowsPerChunk(p.taps);
  for (let r0 = 0; r0 < p.rows; r0 += chunk) {
    const r1 = Math.min(p.rows, r0 + chunk);
    // Taps in the zero padding are 0, not ±1: packed ternary when there is padding.
    sums.add(r0, r1, packSigns(patchRows(p, r0, r1), { shape: [r1 - r0, p.taps], transpose: true, ternary: p.padded }));
  }
  return sums.finish();
}

/** Rows per chunk of the float32 weight gradient: ~16 MB of patches, whole 32-row units of the
 *  product, and at least 8× the carried columns so carrying costs ≤ 1/8 more. */
function weightGradientChunk(taps: number, carried: number): number {
  const units = Math.max(1, Math.floor(binaryConvChunking.values / Math.max(1, taps) / FLOAT_BLOCK));
  return Math.max(units * FLOAT_BLOCK, 8 * carried);
}

/**
 * ∇W [taps, c] = patchesᵀ · ∇Y in float32: one product over every row of the batch on fp4kit's
 * float32 kernel (lib/tfjs/float-product.ts: units of 32 rows summed in order into one float32 per
 * output), computed chunk by chunk with the same bits — a chunk starts on a unit and its first
 * units carry ∇W so far against an identity. A non-finite running value would meet the identity's
 * zeros (Inf·0 = NaN), so then the product is taken whole (a diverged run: the whole patch matrix).
 */
export function binaryConvWeightGradientFloat(p: SignPatches, g: Float32Array, c: number): Float32Array {
  const out = new Float32Array(p.taps * c);
  if (p.rows === 0 || out.length === 0) return out;
  const chunk = weightGradientChunk(p.taps, floatStride(c));
  for (let r0 = 0; r0 < p.rows; r0 += chunk) {
    const r1 = Math.min(p.rows, r0 + chunk);
    const carry = r0 > 0;
    if (carry && hasNonFinite(out)) return weightGradientRows(p, g, c, 0, p.rows, undefined);
    out.set(weightGradientRows(p, g, c, r0, r1, carry ? out : undefined));
  }
  return out;
}

/** patchesᵀ · ∇Y over rows [r0, r1) (r0 on a unit) as one product [taps, c], continuing the sums
 *  `carried` (∇W so far, all finite) when given. */
function weightGradientRows(p: SignPatches, g: Float32Array, c: number, r0: number, r1: number, carried: Float32Array | undefined): Float32Array {
  // Both operands with the rows as the reduction axis (the padding's taps, the units' tails zero).
  return continuedProduct(['binary-conv2d.patches', 'binary-conv2d.dy-transposed'], p.taps, c, r1 - r0, carried, (patchesT, gT, lead, stride) => {
    im2col(p.signs, p.strides, p.info, r0, r1, patchesT.subarray(lead), 1, stride);
    transposeInto(g, r0 * c, r1 - r0, c, gT, lead, stride);
  });
}
