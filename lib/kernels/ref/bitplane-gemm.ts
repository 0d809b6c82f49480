// Binary × b-bit products by bit planes (1-bit FQT, Gao et al., arXiv 2408.14267): the readable
// reference that assembly/bitplane-gemm.ts and native/bitplane_gemm*.cc follow, so every backend
// writes the same bytes.
//
// Operands (a "row" is one output row or column; its `length` elements are the reduction axis):
//   signs    n rows of ±1 (or, `ternary`, of −1 / 0 / +1), one bit per element, 64-bit words
//            little-endian, words = ⌈length/64⌉; element kk of a row is bit kk & 63 of word kk >> 6.
//            Rows are interleaved in panels of 8 (the SIMD kernels load one word of 8 rows at
//            once): word w of row j is at word index ((j >> 3)·words + w)·8 + (j & 7). A ternary
//            operand has a second array of the same layout after the first, bit = "non-zero".
//            Sign bit: 1 for +1. Binary: x ≥ 0 (−0 too) is +1, below or NaN is −1, as binarize()
//            in lib/tfjs/layers/binary-ops.ts; ternary: x > 0 is +1, ±0 is 0, below or NaN is −1.
//   planes   m rows of unsigned b-bit codes as b bit planes, row-major: word w of plane p of row i
//            at word index (i·bits + p)·words + w (plane p holds bit p of each code).
//   Bits past `length` and rows past n in the last panel are 0.
//
// Product: I[i][j] = Σ_kk code[i][kk]·s[j][kk] = 2·R⁺ − R⁰, with
//   R⁺ = Σ_p 2^p·Σ_w popcount(plane_p[i][w] & pos[j][w]),
//   R⁰ = Σ_p 2^p·Σ_w popcount(plane_p[i][w] & nonzero[j][w])  (binary: Σ_kk code[i][kk]).
// Integers, so any summation order gives the same I; |I| ≤ 255·length < 2^31 for length ≤ 2^22.
//
// Grouped affine operand (the quantized gradient, lib/core/quantize-gradient.ts): row i belongs to
// group g = ⌊i / rowsPerGroup⌋ and decodes as zeros[g] + code·scales[g], so
//   out[i][j] = f32(f32(scales[g]·f32(I)) + f32(zeros[g]·f32(T_j))),  T_j = Σ_kk s[j][kk]
// (float32 operations in this order, no fused multiply-add). A row whose group has mask 0 is
// pruned: it is not multiplied and its output row is 0 (+0, or 0 in the integer form).

export const PANEL_ROWS = 8;
/** Largest reduction length: keeps 2·255·length inside int32. */
export const MAX_BITPLANE_LENGTH = 2 ** 22;

export function wordsOf(length: number): number {
  return Math.ceil(length / 64);
}

/** Bytes of a signs operand (both arrays when ternary). */
export function signsBytes(rows: number, length: number, ternary: boolean): number {
  return Math.ceil(rows / PANEL_ROWS) * PANEL_ROWS * wordsOf(length) * 8 * (ternary ? 2 : 1);
}

/** Bytes of a bit-plane operand. */
export function planesBytes(rows: number, length: number, bits: number): number {
  return rows * bits * wordsOf(length) * 8;
}

/** Byte index of element kk of signs row j (add signsBytes(…, false) for the non-zero array). */
function signByte(j: number, kk: number, words: number): number {
  return (((j >> 3) * words + (kk >> 6)) * PANEL_ROWS + (j & 7)) * 8 + ((kk & 63) >> 3);
}

/**
 * Packs x [rows, cols] (row-major) as a signs operand: each row of x becomes a signs row of length
 * cols, or with `transpose` each column of x becomes a signs row of length rows.
 */
export function packSigns(x: Float32Array, rows: number, cols: number, transpose: boolean, ternary: boolean, out: Uint8Array): void {
  const outRows = transpose ? cols : rows;
  const length = transpose ? rows : cols;
  const words = wordsOf(length);
  const half = signsBytes(outRows, length, false);
  out.fill(0, 0, ternary ? 2 * half : half);
  if (cols === 0) return; // empty rows: nothing to read, however many (2^31 must not be walked)
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = x[r * cols + c];
      const j = transpose ? c : r;
      const kk = transpose ? r : c;
      const at = signByte(j, kk, words);
      const bit = 1 << (kk & 7);
      if (ternary ? v > 0 : v >= 0) out[at] |= bit;
      if (ternary && !(v === 0)) out[half + at] |= bit;
    }
  }
}

/**
 * Packs b-bit codes [rows, cols] (row-major, one per byte) as bit planes: rows of length cols, or
 * with `transpose` one row per column of length rows. Returns −1, or the flat index of the first
 * code ≥ 2^bits (then `out` is unspecified).
 */
export function packBitPlanes(codes: Uint8Array, rows: number, cols: number, bits: number, transpose: boolean, out: Uint8Array): number {
  const outRows = transpose ? cols : rows;
  const length = transpose ? rows : cols;
  const words = wordsOf(length);
  out.fill(0, 0, planesBytes(outRows, length, bits));
  if (cols === 0) return -1; // empty rows: nothing to read, however many (2^31 must not be walked)
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const code = codes[r * cols + c];
      if (code >> bits !== 0) return r * cols + c;
      const i = transpose ? c : r;
      const kk = transpose ? r : c;
      for (let p = 0; p < bits; p++) {
        if ((code >> p) & 1) out[(i * bits + p) * words * 8 + (kk >> 3)] |= 1 << (kk & 7);
      }
    }
  }
  return -1;
}

function popcount32(v: number): number {
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

/** The arguments of one product (lib/kernels/contract.ts BitplaneMatmulArgs). */
export interface BitplaneMatmulRefArgs {
  planes: Uint8Array;
  m: number;
  bits: number;
  signs: Uint8Array;
  n: number;
  length: number;
  ternary: boolean;
  rowsPerGroup: number;
  /** Group keep mask (null: every row kept). */
  mask: Uint8Array | null;
  /** Group scales and zero points: the float form; null: the integer form. */
  scales: Float32Array | null;
  zeros: Float32Array | null;
  outInt: Int32Array | null;
  outFloat: Float32Array | null;
}

/** T_j = Σ s[j][kk] for every signs row: popcount(pos)·2 − popcount(non-zero) (binary: − length). */
export function signSums(signs: Uint8Array, n: number, length: number, ternary: boolean): Int32Array {
  const words = wordsOf(length);
  const half = signsBytes(n, length, false);
  const view = new DataView(signs.buffer, signs.byteOffset, signs.byteLength);
  const sums = new Int32Array(n);
  for (let j = 0; j < n; j++) {
    let pos = 0;
    let nz = 0;
    for (let w = 0; w < words; w++) {
      const at = signByte(j, w * 64, words);
      pos += popcount32(view.getUint32(at, true)) + popcount32(view.getUint32(at + 4, true));
      if (ternary) nz += popcount32(view.getUint32(half + at, true)) + popcount32(view.getUint32(half + at + 4, true));
    }
    sums[j] = 2 * pos - (ternary ? nz : length);
  }
  return sums;
}

export function bitplaneMatmul(a: BitplaneMatmulRefArgs): void {
  const { m, bits, n, length, ternary, rowsPerGroup, mask, scales, zeros, outInt, outFloat } = a;
  const words = wordsOf(length);
  const half = signsBytes(n, length, false);
  const A = new DataView(a.planes.buffer, a.planes.byteOffset, a.planes.byteLength);
  const S = new DataView(a.signs.buffer, a.signs.byteOffset, a.signs.byteLength);
  const sums = scales ? signSums(a.signs, n, length, ternary) : null;
  for (let i = 0; i < m; i++) {
    const g = Math.floor(i / rowsPerGroup);
    if (mask && mask[g] === 0) {
      if (outInt) outInt.fill(0, i * n, (i + 1) * n);
      if (outFloat) outFloat.fill(0, i * n, (i + 1) * n);
      continue;
    }
    // R⁰ of a binary operand: the row's code sum.
    let codeSum = 0;
    if (!ternary) {
      for (let p = 0; p < bits; p++) {
        let count = 0;
        for (let w = 0; w < words; w++) {
          const at = ((i * bits + p) * words + w) * 8;
          count += popcount32(A.getUint32(at, true)) + popcount32(A.getUint32(at + 4, true));
        }
        codeSum += count * 2 ** p;
      }
    }
    for (let j = 0; j < n; j++) {
      let pos = 0;
      let nz = 0;
      for (let p = 0; p < bits; p++) {
        let countPos = 0;
        let countNz = 0;
        for (let w = 0; w < words; w++) {
          const at = ((i * bits + p) * words + w) * 8;
          const lo = A.getUint32(at, true);
          const hi = A.getUint32(at + 4, true);
          const s = signByte(j, w * 64, words);
          countPos += popcount32(lo & S.getUint32(s, true)) + popcount32(hi & S.getUint32(s + 4, true));
          if (ternary) countNz += popcount32(lo & S.getUint32(half + s, true)) + popcount32(hi & S.getUint32(half + s + 4, true));
        }
        pos += countPos * 2 ** p;
        nz += countNz * 2 ** p;
      }
      const I = 2 * pos - (ternary ? nz : codeSum);
      if (outInt) outInt[i * n + j] = I;
      if (outFloat && scales && zeros && sums) {
        outFloat[i * n + j] = Math.fround(Math.fround(scales[g] * Math.fround(I)) + Math.fround(zeros[g] * Math.fround(sums[j])));
      }
    }
  }
}
