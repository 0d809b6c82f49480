// The W4A4 forward product of fp4Dense on fp4kit's FP4 integer kernel, exactly:
//
//   Â·Ŵ = diag(1/γa) · (Qa · Qw) · diag(1/γw)      Qa [t, k], Qw [k, n]: E2M1 values, γ exact scales
//
// Qa goes in as an MXINT8 operand whose every block scale is 2^3 (code = 8·Qa: E2M1 values are
// multiples of 1/2, so the codes are integers in [−48, 48]) and Qwᵀ as an MXFP4 operand whose block
// scales are 1: fp4kit's matmul runs them on its E2M1 × INT8 kernel (the same bits on every backend),
// each unit's dot is exact and, since Qa·Qw are multiples of 1/4 below 2^22 for K < 2^16, so is the
// float32 sum over units. The two scales are applied afterwards in float32 (unscale.ts).

import { encode } from '../core/api.js';
import { matmul } from '../core/matmul.js';
import type { QuantizedTensor } from '../core/quantize.js';
import { unscale } from './unscale.js';

const E8M0_ONE = 127;
const E8M0_EIGHT = 130;
/** Above this K the float32 sum over units may round (|Σ| ≥ 2^22 in quarters): not exact. */
const MAX_EXACT_K = 2 ** 16;

/** The product, or null when the integer path does not apply (non-finite values, huge K). */
export function integerW4A4(aGrid: Float32Array, aScales: Float32Array, wGrid: Float32Array, wScales: Float32Array, t: number, k: number, n: number): Float32Array | null {
  if (k === 0 || k >= MAX_EXACT_K) return null;
  const paddedK = Math.ceil(k / 32) * 32;
  const blocks = paddedK / 32;
  const aCodes = new Uint8Array(t * paddedK);
  for (let r = 0; r < t; r++) {
    for (let i = 0; i < k; i++) {
      const v = aGrid[r * k + i];
      if (!Number.isFinite(v)) return null;
      aCodes[r * paddedK + i] = (v * 8) & 0xff;
    }
  }
  const a: QuantizedTensor = { format: 'mxint8', blockSize: 32, shape: [t, k], data: aCodes, scales: new Uint8Array(t * blocks).fill(E8M0_EIGHT) };
  // Qwᵀ [n, k]: each output channel's run of k, as E2M1 codes (element 2i in the low nibble).
  const column = new Float32Array(paddedK);
  const wData = new Uint8Array((n * paddedK) / 2);
  for (let c = 0; c < n; c++) {
    for (let i = 0; i < k; i++) {
      const v = wGrid[i * n + c];
      if (!Number.isFinite(v)) return null;
      column[i] = v;
    }
    const codes = encode(column, 'e2m1');
    for (let i = 0; i < paddedK; i += 2) wData[(c * paddedK + i) / 2] = codes[i] | (codes[i + 1] << 4);
  }
  const w: QuantizedTensor = { format: 'mxfp4', blockSize: 32, shape: [n, k], data: wData, scales: new Uint8Array(n * blocks).fill(E8M0_ONE) };
  const y = matmul(a, w);
  for (let r = 0; r < t; r++) {
    for (let c = 0; c < n; c++) y[r * n + c] = unscale(y[r * n + c], aScales[r], wScales[c]);
  }
  return y;
}
