// The forward products of binary layers (1-bit FQT) on bit planes: a ±1 operand as 1-bit codes
// c = [v ≥ 0] (so v = 2c − 1) against the other operand's packed signs, through the integer
// bit-plane product (lib/core/bitplane-gemm.ts): Σ_k (2c_k − 1)·s_k = 2·Σ_k c_k·s_k − Σ_k s_k.
// Exact integers, so the result equals a float32 product of ±1 values (|sum| < 2^24) bit for bit.

import { bitplaneMatmulInt, packBitPlanes, packSigns, type PackedBitPlanes } from '../core/bitplane-gemm.js';

/** c = [v ≥ 0] (NaN: 0, i.e. −1, as binarize() in the layers). */
function signCodes(v: Float32Array): Uint8Array {
  const c = new Uint8Array(v.length);
  for (let i = 0; i < v.length; i++) c[i] = v[i] >= 0 ? 1 : 0;
  return c;
}

/** sign(x)[t, k] · sign(w)[k, n] → [t, n] (float32 values of exact integers). */
export function binaryDenseForward(x: Float32Array, t: number, k: number, w: Float32Array, n: number): Float32Array {
  const planes = packBitPlanes(signCodes(x), { shape: [t, k], bits: 1 });
  const signs = packSigns(w, { shape: [k, n], transpose: true });
  const I = bitplaneMatmulInt(planes, signs);
  const sums = new Int32Array(n);
  for (let r = 0; r < k; r++) for (let j = 0; j < n; j++) sums[j] += w[r * n + j] >= 0 ? 1 : -1;
  const y = new Float32Array(t * n);
  for (let i = 0; i < t; i++) for (let j = 0; j < n; j++) y[i * n + j] = 2 * I[i * n + j] - sums[j];
  return y;
}

/** The 1-bit codes of a filter's signs, w [taps, n] packed by columns: the operand of binaryPatchRows. */
export function filterCodePlanes(w: Float32Array, taps: number, n: number): PackedBitPlanes {
  return packBitPlanes(signCodes(w), { shape: [taps, n], bits: 1, transpose: true });
}

/**
 * A convolution in im2col form, for some rows of patches: patches [rows, taps] of sign(x) (0 in the
 * zero padding, hence `ternary`) · sign(w) [taps, n] → out [rows, n], the filter's signs as the
 * 1-bit codes (filterCodePlanes) and the patches as the (ternary) signs operand, so the padding's
 * zeros are exact. Each output row depends on its own patch only: any split of the rows gives the
 * same bits.
 */
export function binaryPatchRows(planes: PackedBitPlanes, patches: Float32Array, rows: number, taps: number, n: number, ternary: boolean, out: Float32Array): Float32Array {
  const signs = packSigns(patches.subarray(0, rows * taps), { shape: [rows, taps], ternary });
  const I = bitplaneMatmulInt(planes, signs); // [n, rows]
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let c = 0; c < taps; c++) sum += patches[r * taps + c];
    for (let j = 0; j < n; j++) out[r * n + j] = 2 * I[j * rows + r] - sum;
  }
  return out;
}
