// Gradient quantizers of 1-bit FQT (Gao et al., arXiv 2408.14267; StatQuant's per-group affine
// quantizer): the readable reference that assembly/gradient-quant.ts and native/gradient_quant.cc
// follow step for step, so every backend writes the same bytes. Three phases, each also a
// separate entry so the wasm glue can stream row chunks through phases 1 and 3:
//
//   1. ranges   lo_g = min, hi_g = max over group g (float32 values; an empty group is 0, 0;
//               −0 reads as +0). Returns the flat index of the first non-finite element, or −1.
//   2. keep     per group, in float64:  R = hi − lo,  B = 2^bits − 1
//               p (keep probability): 'none' 1; 'agp' water-filled p = min(1, c·R) with
//               Σ p = G/bits (below); 'topk' 1 for the top max(1, ⌊G/bits⌋) groups by max|x|
//               (ties at the threshold all kept), else 0.
//               mask = u53 < p, u53 = (r1·2^21 + (r2 >>> 11))·2^−53 with r1, r2 =
//               randomBits(seed, 2^52 + 2g), randomBits(seed, 2^52 + 2g + 1) — a stream no element
//               index reaches. Kept: scale = f32((R / B) / p), zero = f32(lo / p), inv = B / R
//               (0 when R = 0). Pruned: scale = zero = inv = 0.
//   3. codes    per element x of group g at flat index i (row-major):
//               u = min((x − lo)·inv, B);  f = floor(u);  code = f + (randomBits(seed, i) < (u − f)·2^32)
//               (float64; the noise is quantize(..., { rounding: 'stochastic', seed })'s stream).
//
// Decoding: x̂ = f32(zero + code·scale) (float64 sum), 0 in a pruned group.
//
// AGP water-filling (float64, groups in index order, c starts at 0, K = G / bits):
//   repeat: S = Σ R over unclamped groups with R > 0;  Krem = K − #clamped;
//           stop if S = 0 or Krem ≤ 0;  c = Krem / S;
//           clamp every unclamped group with R > 0 and c·R ≥ 1;  stop if none was clamped.
//   p = 1 if clamped; min(1, c·R) if R > 0; and for R = 0 (a constant group, exact at any
//   width): 1 if its value is non-zero, else 0 (an all-zero group costs nothing pruned).

import { randomBits } from './stochastic.js';

export const GradientGroupsId = { tensor: 0, sample: 1, channel: 2 } as const;
export const GradientPruneId = { none: 0, agp: 1, topk: 2 } as const;

/** First counter index of the keep-decision stream (2^52: above every element index). */
export const KEEP_STREAM_BASE = 2 ** 52;

const TWO_32 = 4294967296;
const TWO_M53 = 2 ** -53;

/** Number of groups: 1 (tensor), rows (sample) or cols (channel). */
export function gradientGroupCount(rows: number, cols: number, groups: number): number {
  return groups === GradientGroupsId.sample ? rows : groups === GradientGroupsId.channel ? cols : 1;
}

/** The rows the element loops (phases 1 and 3, dequantize) visit: none when rows are empty
 *  (cols = 0), however many there are — 2^40 empty rows must not be walked one by one. */
export function gradientElementRows(rows: number, cols: number): number {
  return cols === 0 ? 0 : rows;
}

/** Phase 1, start: every group empty. */
export function rangesInit(lo: Float32Array, hi: Float32Array, count: number): void {
  for (let g = 0; g < count; g++) {
    lo[g] = Infinity;
    hi[g] = -Infinity;
  }
}

/**
 * Phase 1, one run of rows (src holds rows × cols values starting at row `firstRow`): widen each
 * group's [lo, hi]. Returns the index in `src` of the first non-finite value, or −1.
 */
export function rangesAccumulate(src: Float32Array, rows: number, cols: number, groups: number, firstRow: number, lo: Float32Array, hi: Float32Array): number {
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const x = src[r * cols + c];
      if (x - x !== 0) return r * cols + c; // NaN or ±Inf
      const g = groups === GradientGroupsId.sample ? firstRow + r : groups === GradientGroupsId.channel ? c : 0;
      if (x < lo[g]) lo[g] = x;
      if (x > hi[g]) hi[g] = x;
    }
  }
  return -1;
}

/** Phase 1, end: an empty group becomes [0, 0]; −0 becomes +0 (so the order of reading never shows). */
export function rangesFinish(lo: Float32Array, hi: Float32Array, count: number): void {
  for (let g = 0; g < count; g++) {
    if (lo[g] > hi[g]) {
      lo[g] = 0;
      hi[g] = 0;
    }
    lo[g] = lo[g] + 0;
    hi[g] = hi[g] + 0;
  }
}

/** 53 uniform random bits in [0, 1) for group g's keep decision. */
export function keepUniform(seed: number, g: number): number {
  const r1 = randomBits(seed, KEEP_STREAM_BASE + 2 * g);
  const r2 = randomBits(seed, KEEP_STREAM_BASE + 2 * g + 1);
  return (r1 * 2097152 + (r2 >>> 11)) * TWO_M53;
}

/** AGP keep probabilities (see the header) into `p`; `clamped` is scratch of `count` bytes. */
export function agpProbabilities(lo: Float32Array, hi: Float32Array, count: number, bits: number, p: Float64Array, clamped: Uint8Array): void {
  const K = count / bits;
  let c = 0;
  let nClamped = 0;
  clamped.fill(0, 0, count);
  for (;;) {
    let S = 0;
    for (let g = 0; g < count; g++) {
      const R = hi[g] - lo[g];
      if (R > 0 && clamped[g] === 0) S += R;
    }
    const Krem = K - nClamped;
    if (S === 0 || Krem <= 0) break;
    c = Krem / S;
    let newly = 0;
    for (let g = 0; g < count; g++) {
      const R = hi[g] - lo[g];
      if (R > 0 && clamped[g] === 0 && c * R >= 1) {
        clamped[g] = 1;
        newly++;
      }
    }
    if (newly === 0) break;
    nClamped += newly;
  }
  for (let g = 0; g < count; g++) {
    const R = hi[g] - lo[g];
    if (clamped[g] !== 0) p[g] = 1;
    else if (R > 0) p[g] = Math.min(1, c * R);
    else p[g] = lo[g] !== 0 ? 1 : 0;
  }
}

/** The released code's variant: the k = max(1, ⌊G/bits⌋) largest max|x| scores, ties at the k-th all kept. */
export function topkProbabilities(lo: Float32Array, hi: Float32Array, count: number, bits: number, p: Float64Array): void {
  if (count === 0) return;
  const k = Math.max(1, Math.floor(count / bits));
  const scores = new Float32Array(count);
  for (let g = 0; g < count; g++) scores[g] = Math.max(-lo[g], hi[g]);
  const sorted = scores.slice().sort();
  const threshold = sorted[count - k];
  for (let g = 0; g < count; g++) p[g] = scores[g] >= threshold ? 1 : 0;
}

/**
 * Phase 2: keep probabilities, the mask, and each group's decode scale and zero point (1/p folded
 * in) and code multiplier `inv` for phase 3. `p` and `clamped` are scratch of `count` entries.
 */
export function gradientKeep(
  lo: Float32Array, hi: Float32Array, count: number, bits: number, prune: number, seed: number,
  scales: Float32Array, zeros: Float32Array, mask: Uint8Array, keep: Float32Array, inv: Float64Array,
  p: Float64Array, clamped: Uint8Array,
): void {
  const B = 2 ** bits - 1;
  if (prune === GradientPruneId.agp) agpProbabilities(lo, hi, count, bits, p, clamped);
  else if (prune === GradientPruneId.topk) topkProbabilities(lo, hi, count, bits, p);
  else p.fill(1, 0, count);
  for (let g = 0; g < count; g++) {
    const pg = p[g];
    const kept = prune === GradientPruneId.agp ? keepUniform(seed, g) < pg : pg === 1;
    keep[g] = pg;
    mask[g] = kept ? 1 : 0;
    if (kept) {
      const R = hi[g] - lo[g];
      scales[g] = R / B / pg;
      zeros[g] = lo[g] / pg;
      inv[g] = R > 0 ? B / R : 0;
    } else {
      scales[g] = 0;
      zeros[g] = 0;
      inv[g] = 0;
    }
  }
}

/** Phase 3, one run of rows starting at row `firstRow`: the b-bit codes with stochastic rounding. */
export function gradientCodes(
  src: Float32Array, rows: number, cols: number, bits: number, groups: number, seed: number, firstRow: number,
  lo: Float32Array, inv: Float64Array, codes: Uint8Array,
): void {
  const B = 2 ** bits - 1;
  for (let r = 0; r < rows; r++) {
    const row = firstRow + r;
    for (let c = 0; c < cols; c++) {
      const g = groups === GradientGroupsId.sample ? row : groups === GradientGroupsId.channel ? c : 0;
      const m = inv[g];
      if (m === 0) { // R = 0 or pruned: the formula gives 0 without drawing
        codes[r * cols + c] = 0;
        continue;
      }
      let u = (src[r * cols + c] - lo[g]) * m;
      if (u > B) u = B;
      const f = Math.floor(u);
      codes[r * cols + c] = f + (randomBits(seed, row * cols + c) < (u - f) * TWO_32 ? 1 : 0);
    }
  }
}

/** x̂ = f32(zero + code·scale) per element, +0 in a pruned group. */
export function gradientDequantize(
  codes: Uint8Array, scales: Float32Array, zeros: Float32Array, mask: Uint8Array, rows: number, cols: number, groups: number, out: Float32Array,
): void {
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const g = groups === GradientGroupsId.sample ? r : groups === GradientGroupsId.channel ? c : 0;
      out[r * cols + c] = mask[g] === 0 ? 0 : zeros[g] + codes[r * cols + c] * scales[g];
    }
  }
}
