// Binary × b-bit products by bit planes (1-bit FQT), the wasm twin of lib/kernels/ref/bitplane-gemm.ts
// (which defines the operand layouts, the product and its float order). Packing takes runs of
// source rows (lib/kernels/wasm.ts streams chunks; the output is zeroed there once); the product
// takes runs of code rows. Counts are exact integers, so SIMD order does not matter; the float
// form is the reference's f32 operations in its order.

const PANEL: i32 = 8;

// @ts-ignore: decorator
@inline
function signWord(j: i32, kk: i32, words: i32): usize {
  return ((<usize>(j >> 3) * <usize>words + <usize>(kk >> 6)) * PANEL + <usize>(j & 7)) << 3;
}

/** Source rows [firstRow, firstRow + rows) of x [·, cols] into a signs operand (OR into zeroed `out`). */
export function packSignsRows(src: usize, rows: i32, cols: i32, firstRow: i32, transpose: i32, ternary: i32, outRows: i32, length: i32, out: usize): void {
  const words = (length + 63) >> 6;
  const half = <usize>((outRows + PANEL - 1) / PANEL) * PANEL * <usize>words * 8;
  for (let r = 0; r < rows; r++) {
    const row = src + (<usize>r * <usize>cols << 2);
    for (let c = 0; c < cols; c++) {
      const v = load<f32>(row + (<usize>c << 2));
      const j = transpose ? c : firstRow + r;
      const kk = transpose ? firstRow + r : c;
      const at = out + signWord(j, kk, words);
      const bit = <u64>1 << <u64>(kk & 63);
      if (ternary ? v > 0 : v >= 0) store<u64>(at, load<u64>(at) | bit);
      if (ternary && !(v == 0)) store<u64>(at + half, load<u64>(at + half) | bit);
    }
  }
}

/** Code rows [firstRow, firstRow + rows) of [·, cols] into bit planes (OR into zeroed `out`).
 *  Returns −1 or the index within this run of the first code ≥ 2^bits. */
export function packBitPlanesRows(codes: usize, rows: i32, cols: i32, firstRow: i32, bits: i32, transpose: i32, length: i32, out: usize): i32 {
  const words = (length + 63) >> 6;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const code = <i32>load<u8>(codes + <usize>r * <usize>cols + <usize>c);
      if (code >> bits != 0) return r * cols + c;
      const i = transpose ? c : firstRow + r;
      const kk = transpose ? firstRow + r : c;
      const bit = <u64>1 << <u64>(kk & 63);
      for (let p = 0; p < bits; p++) {
        if ((code >> p) & 1) {
          const at = out + (((<usize>i * <usize>bits + <usize>p) * <usize>words + <usize>(kk >> 6)) << 3);
          store<u64>(at, load<u64>(at) | bit);
        }
      }
    }
  }
  return -1;
}

/** T_j = 2·popcount(pos_j) − popcount(non-zero_j) (binary: − length), into sums (i32 × n). */
export function bitplaneSignSums(signs: usize, n: i32, length: i32, ternary: i32, sums: usize): void {
  const words = (length + 63) >> 6;
  const half = <usize>((n + PANEL - 1) / PANEL) * PANEL * <usize>words * 8;
  for (let j = 0; j < n; j++) {
    let pos: i64 = 0;
    let nz: i64 = 0;
    for (let w = 0; w < words; w++) {
      const at = signs + signWord(j, w << 6, words);
      pos += popcnt<u64>(load<u64>(at));
      if (ternary) nz += popcnt<u64>(load<u64>(at + half));
    }
    store<i32>(sums + (<usize>j << 2), <i32>(2 * pos - (ternary ? nz : <i64>length)));
  }
}

// @ts-ignore: decorator
@inline
function countBytes(v: v128): v128 {
  return i32x4.extadd_pairwise_i16x8_u(i16x8.extadd_pairwise_i8x16_u(i8x16.popcnt(v)));
}

/** R of one code row against every signs row of `panels` (pos or non-zero array) into r (i32 × n):
 *  a panel's word is four v128 of two columns each; one splat of the code word serves all four. */
function countRow(a: usize, bits: i32, words: i32, panels: usize, n: i32, r: usize): void {
  const panelCount = (n + PANEL - 1) / PANEL;
  const panelBytes = <usize>words * PANEL * 8;
  for (let q = 0; q < panelCount; q++) {
    const panel = panels + <usize>q * panelBytes;
    let t0 = i32x4.splat(0), t1 = i32x4.splat(0), t2 = i32x4.splat(0), t3 = i32x4.splat(0);
    for (let p = 0; p < bits; p++) {
      let c0 = i32x4.splat(0), c1 = i32x4.splat(0), c2 = i32x4.splat(0), c3 = i32x4.splat(0);
      const plane = a + (<usize>p * <usize>words << 3);
      for (let w = 0; w < words; w++) {
        const x = i64x2.splat(load<i64>(plane + (<usize>w << 3)));
        const s = panel + (<usize>w * PANEL << 3);
        c0 = i32x4.add(c0, countBytes(v128.and(x, v128.load(s))));
        c1 = i32x4.add(c1, countBytes(v128.and(x, v128.load(s, 16))));
        c2 = i32x4.add(c2, countBytes(v128.and(x, v128.load(s, 32))));
        c3 = i32x4.add(c3, countBytes(v128.and(x, v128.load(s, 48))));
      }
      t0 = i32x4.add(t0, i32x4.shl(c0, p));
      t1 = i32x4.add(t1, i32x4.shl(c1, p));
      t2 = i32x4.add(t2, i32x4.shl(c2, p));
      t3 = i32x4.add(t3, i32x4.shl(c3, p));
    }
    // Lanes 0, 1 are column 2h's two 32-bit halves, lanes 2, 3 column 2h + 1's.
    const j0 = q * PANEL;
    const at = r + (<usize>j0 << 2);
    const valid = min(PANEL, n - j0);
    if (valid > 0) store<i32>(at, i32x4.extract_lane(t0, 0) + i32x4.extract_lane(t0, 1));
    if (valid > 1) store<i32>(at, i32x4.extract_lane(t0, 2) + i32x4.extract_lane(t0, 3), 4);
    if (valid > 2) store<i32>(at, i32x4.extract_lane(t1, 0) + i32x4.extract_lane(t1, 1), 8);
    if (valid > 3) store<i32>(at, i32x4.extract_lane(t1, 2) + i32x4.extract_lane(t1, 3), 12);
    if (valid > 4) store<i32>(at, i32x4.extract_lane(t2, 0) + i32x4.extract_lane(t2, 1), 16);
    if (valid > 5) store<i32>(at, i32x4.extract_lane(t2, 2) + i32x4.extract_lane(t2, 3), 20);
    if (valid > 6) store<i32>(at, i32x4.extract_lane(t3, 0) + i32x4.extract_lane(t3, 1), 24);
    if (valid > 7) store<i32>(at, i32x4.extract_lane(t3, 2) + i32x4.extract_lane(t3, 3), 28);
  }
}

/**
 * Code rows [firstRow, firstRow + rows) (their planes at `planes`) against every signs row: the
 * integer form into outInt, or (scales ≠ 0) the float form into outFloat, both rows × n from this
 * run's first row. `sums` from bitplaneSignSums (float form); `scratch` holds 2·n i32.
 */
export function bitplaneMatmulRows(
  planes: usize, rows: i32, firstRow: i32, bits: i32, signs: usize, n: i32, length: i32, ternary: i32,
  rowsPerGroup: i32, mask: usize, scales: usize, zeros: usize, sums: usize, outInt: usize, outFloat: usize, scratch: usize,
): void {
  const words = (length + 63) >> 6;
  const half = <usize>((n + PANEL - 1) / PANEL) * PANEL * <usize>words * 8;
  const rowBytes = <usize>bits * <usize>words * 8;
  const rPos = scratch;
  const rNonzero = scratch + (<usize>n << 2);
  for (let i = 0; i < rows; i++) {
    const g = (firstRow + i) / rowsPerGroup;
    const outRow = <usize>i * <usize>n << 2;
    if (mask != 0 && load<u8>(mask + <usize>g) == 0) {
      memory.fill(outInt != 0 ? outInt + outRow : outFloat + outRow, 0, <usize>n << 2);
      continue;
    }
    const a = planes + <usize>i * rowBytes;
    countRow(a, bits, words, signs, n, rPos);
    let codeSum: i32 = 0;
    if (ternary) {
      countRow(a, bits, words, signs + half, n, rNonzero);
    } else {
      for (let p = 0; p < bits; p++) {
        let count: i32 = 0;
        for (let w = 0; w < words; w++) count += <i32>popcnt<u64>(load<u64>(a + ((<usize>p * <usize>words + <usize>w) << 3)));
        codeSum += count << p;
      }
    }
    for (let j = 0; j < n; j++) {
      const jj = <usize>j << 2;
      const product = 2 * load<i32>(rPos + jj) - (ternary ? load<i32>(rNonzero + jj) : codeSum);
      if (outInt != 0) {
        store<i32>(outInt + outRow + jj, product);
      } else {
        const scaled = load<f32>(scales + (<usize>g << 2)) * <f32>product;
        const shift = load<f32>(zeros + (<usize>g << 2)) * <f32>load<i32>(sums + jj);
        store<f32>(outFloat + outRow + jj, scaled + shift);
      }
    }
  }
}
