// WebAssembly SIMD twin of the byte-plane matmul (native/matmul_planes.h): MX weights whose element
// values are integers in one unit (E4M3, E3M2, E2M3, INT8) against MXINT8 activations. Each value
// v = h·2^s + l as there (s = lowShift, 0 ≤ l < 2^s); SIMD128's widest integer dot takes 16-bit
// operands, so h is one int16 plane rather than byte planes, and the low bits a second int16 plane
// multiplied only over the groups of 4 k that have any (`lowQuads`, a bit mask per tile-unit). Per
// unit the exact integer dot
//   D = 2^s · Σk a·h + Σk a·l
// (it fits int32: |Σk a·v| < 2^30), then the same float32 steps as every matmul kernel, so the bits
// match the native and pure-TS backends. Layout (lib/kernels/matmul-planes-repack.ts): tiles of 16
// columns; per tile and group of 4 k, 64 int16 — columns 2i and 2i+1 in vector i, 4 k each — so
// i32x4.dot_i16x8_s sums each column's products in two lanes, folded at the end of a unit.
// Rows go four at a time where there are four (fourRowsGroup: a group of 4 columns, each vector of
// the plane of h loaded once for the four rows in a counted loop, the low plane's few groups row by
// row), the rest one at a time over whole tiles. Chromium 150, K = N = 4096, 64 rows: E4M3 30 → 39, FGMP 26 → 35 GFLOP/s.

import { foldPairs, storeColumns, unitStep } from "./matmul-columns";

/** Columns 4·group … 4·group + 3 of one unit: Σ a·plane over the groups of 4 k set in `mask`
 *  (every group of the unit for the plane of h, the groups with low bits for the low plane). */
// @ts-ignore: decorator
@inline
function groupDot(plane: usize, aUnit: usize, mask: u32, group: i32): v128 {
  let pa = i32x4.splat(0), pb = i32x4.splat(0);
  const w0 = plane + (<usize>group << 5);
  while (mask != 0) {
    const q = ctz(mask);
    mask &= mask - 1;
    const a4 = i16x8.extend_low_i8x16_s(i32x4.splat(load<i32>(aUnit + (<usize>q << 2))));
    const w = w0 + (<usize>q << 7);
    pa = i32x4.add(pa, i32x4.dot_i16x8_s(v128.load(w), a4));
    pb = i32x4.add(pb, i32x4.dot_i16x8_s(v128.load(w, 16), a4));
  }
  return foldPairs(pa, pb);
}

/** The same over every group of 4 k of the unit (the plane of h): a counted loop, which V8 runs
 *  faster than the set-bit loop (Chromium 150, 1024², one row: E4M3 13–21 → 26 GFLOP/s, FGMP 13 → 15;
 *  at 4096² one row is bound by reading the planes either way). */
// @ts-ignore: decorator
@inline
function planeDot(plane: usize, aUnit: usize, quads: i32, group: i32): v128 {
  let pa = i32x4.splat(0), pb = i32x4.splat(0);
  const w0 = plane + (<usize>group << 5);
  for (let q = 0; q < quads; q++) {
    const a4 = i16x8.extend_low_i8x16_s(v128.load32_splat(aUnit + (<usize>q << 2)));
    const w = w0 + (<usize>q << 7);
    pa = i32x4.add(pa, i32x4.dot_i16x8_s(v128.load(w), a4));
    pb = i32x4.add(pb, i32x4.dot_i16x8_s(v128.load(w, 16), a4));
  }
  return foldPairs(pa, pb);
}

/** D of columns 4·group … of one unit: the plane of h shifted back, plus the low plane's groups. */
// @ts-ignore: decorator
@inline
function unitDot(h: usize, low: usize, lowMask: u32, lowShift: i32, aUnit: usize, quads: i32, group: i32): v128 {
  let d = i32x4.shl(planeDot(h, aUnit, quads, group), lowShift);
  if (lowMask != 0) d = i32x4.add(d, groupDot(low, aUnit, lowMask, group));
  return d;
}

/**
 * out[m, n] for rows [0, m) and tiles [tileBegin, tileEnd). Pointers into this module's memory:
 * h i16 [tiles][kQuads][64], low i16 (same layout; 0 = none), lowQuads u8 [tiles][units] (bit q: group
 * q of 4 k of the unit has low bits), scales
 * f32 [tiles][units][16], aCodes i8 [m][paddedK], aScales f32 [m][paddedK/32], bias f32 [n]
 * (0 = none), out f32 [m][n]. unitScale = 2^-(shift + 6): activation codes are multiples of 2^-6.
 */
export function matmulPlanesInt8(
  h: usize, low: usize, lowQuads: usize, lowShift: i32, scales: usize, n: i32, units: i32, unit: i32, kQuads: i32, unitScaleValue: f32,
  aCodes: usize, aScales: usize, m: i32, paddedK: i32, bias: usize, out: usize, tileBegin: i32, tileEnd: i32,
): void {
  const unitScale = f32x4.splat(unitScaleValue);
  const aBlocksPerRow = paddedK >> 5;
  const quads = unit >> 2;
  const fourRowsEnd = m & ~3;
  for (let tile = tileBegin; tile < tileEnd; tile++) {
    for (let group = 0; group < 4; group++) {
      for (let row = 0; row < fourRowsEnd; row += 4) {
        fourRowsGroup(h, low, lowQuads, lowShift, scales, n, units, unit, kQuads, unitScale, aCodes, aScales, paddedK, bias, out, tile, group, row);
      }
    }
    for (let row = fourRowsEnd; row < m; row++) {
      const aRow = aCodes + <usize>row * <usize>paddedK;
      let acc0 = f32x4.splat(0), acc1 = f32x4.splat(0), acc2 = f32x4.splat(0), acc3 = f32x4.splat(0);
      for (let j = 0; j < units; j++) {
        const tileUnit = <usize>tile * <usize>units + <usize>j;
        const planeOffset = ((<usize>tile * <usize>kQuads + <usize>(j * quads)) << 7);
        const hu = h + planeOffset;
        const lu = low + planeOffset;
        const lowMask: u32 = low != 0 ? <u32>load<u8>(lowQuads + tileUnit) : 0;
        const aUnit = aRow + <usize>(j * unit);
        const sa = f32x4.splat(load<f32>(aScales + ((<usize>row * <usize>aBlocksPerRow + <usize>((j * unit) >> 5)) << 2)));
        const sb = scales + (tileUnit << 6);
        acc0 = unitStep(acc0, unitDot(hu, lu, lowMask, lowShift, aUnit, quads, 0), unitScale, sa, v128.load(sb));
        acc1 = unitStep(acc1, unitDot(hu, lu, lowMask, lowShift, aUnit, quads, 1), unitScale, sa, v128.load(sb, 16));
        acc2 = unitStep(acc2, unitDot(hu, lu, lowMask, lowShift, aUnit, quads, 2), unitScale, sa, v128.load(sb, 32));
        acc3 = unitStep(acc3, unitDot(hu, lu, lowMask, lowShift, aUnit, quads, 3), unitScale, sa, v128.load(sb, 48));
      }
      storeColumns(out, bias, n, row, tile, 0, acc0);
      storeColumns(out, bias, n, row, tile, 4, acc1);
      storeColumns(out, bias, n, row, tile, 8, acc2);
      storeColumns(out, bias, n, row, tile, 12, acc3);
    }
  }
}

/** Rows row … row + 3, columns 4·group … 4·group + 3 of `tile`: each vector of the plane of h
 *  loaded once for four rows (pair-split sums per row, as groupDot). */
function fourRowsGroup(
  h: usize, low: usize, lowQuads: usize, lowShift: i32, scales: usize, n: i32, units: i32, unit: i32, kQuads: i32, unitScale: v128,
  aCodes: usize, aScales: usize, paddedK: i32, bias: usize, out: usize, tile: i32, group: i32, row: i32,
): void {
  const aBlocksPerRow = paddedK >> 5;
  const quads = unit >> 2;
  const stride = <usize>paddedK, blocksBytes = <usize>aBlocksPerRow << 2;
  const a0 = aCodes + <usize>row * stride;
  let acc0 = f32x4.splat(0), acc1 = f32x4.splat(0), acc2 = f32x4.splat(0), acc3 = f32x4.splat(0);
  for (let j = 0; j < units; j++) {
    const tileUnit = <usize>tile * <usize>units + <usize>j;
    const planeOffset = ((<usize>tile * <usize>kQuads + <usize>(j * quads)) << 7);
    const hGroup = h + planeOffset + (<usize>group << 5);
    const aUnit = a0 + <usize>(j * unit);
    let p00 = i32x4.splat(0), p01 = i32x4.splat(0), p10 = i32x4.splat(0), p11 = i32x4.splat(0);
    let p20 = i32x4.splat(0), p21 = i32x4.splat(0), p30 = i32x4.splat(0), p31 = i32x4.splat(0);
    for (let q = 0; q < quads; q++) {
      const w = hGroup + (<usize>q << 7);
      const w0 = v128.load(w), w1 = v128.load(w, 16);
      const a = aUnit + (<usize>q << 2);
      let a4 = i16x8.extend_low_i8x16_s(v128.load32_splat(a));
      p00 = i32x4.add(p00, i32x4.dot_i16x8_s(w0, a4));
      p01 = i32x4.add(p01, i32x4.dot_i16x8_s(w1, a4));
      a4 = i16x8.extend_low_i8x16_s(v128.load32_splat(a + stride));
      p10 = i32x4.add(p10, i32x4.dot_i16x8_s(w0, a4));
      p11 = i32x4.add(p11, i32x4.dot_i16x8_s(w1, a4));
      a4 = i16x8.extend_low_i8x16_s(v128.load32_splat(a + 2 * stride));
      p20 = i32x4.add(p20, i32x4.dot_i16x8_s(w0, a4));
      p21 = i32x4.add(p21, i32x4.dot_i16x8_s(w1, a4));
      a4 = i16x8.extend_low_i8x16_s(v128.load32_splat(a + 3 * stride));
      p30 = i32x4.add(p30, i32x4.dot_i16x8_s(w0, a4));
      p31 = i32x4.add(p31, i32x4.dot_i16x8_s(w1, a4));
    }
    let d0 = i32x4.shl(foldPairs(p00, p01), lowShift), d1 = i32x4.shl(foldPairs(p10, p11), lowShift);
    let d2 = i32x4.shl(foldPairs(p20, p21), lowShift), d3 = i32x4.shl(foldPairs(p30, p31), lowShift);
    const lowMask: u32 = low != 0 ? <u32>load<u8>(lowQuads + tileUnit) : 0;
    if (lowMask != 0) {
      // The low plane, over the groups of 4 k that have any (a fraction of them), row by row.
      const lowUnit = low + planeOffset;
      d0 = i32x4.add(d0, groupDot(lowUnit, aUnit, lowMask, group));
      d1 = i32x4.add(d1, groupDot(lowUnit, aUnit + stride, lowMask, group));
      d2 = i32x4.add(d2, groupDot(lowUnit, aUnit + 2 * stride, lowMask, group));
      d3 = i32x4.add(d3, groupDot(lowUnit, aUnit + 3 * stride, lowMask, group));
    }
    const sb = v128.load(scales + (tileUnit << 6) + (<usize>group << 4));
    const sa = aScales + ((<usize>row * <usize>aBlocksPerRow + <usize>((j * unit) >> 5)) << 2);
    acc0 = unitStep(acc0, d0, unitScale, f32x4.splat(load<f32>(sa)), sb);
    acc1 = unitStep(acc1, d1, unitScale, f32x4.splat(load<f32>(sa + blocksBytes)), sb);
    acc2 = unitStep(acc2, d2, unitScale, f32x4.splat(load<f32>(sa + 2 * blocksBytes)), sb);
    acc3 = unitStep(acc3, d3, unitScale, f32x4.splat(load<f32>(sa + 3 * blocksBytes)), sb);
  }
  storeColumns(out, bias, n, row, tile, group << 2, acc0);
  storeColumns(out, bias, n, row + 1, tile, group << 2, acc1);
  storeColumns(out, bias, n, row + 2, tile, group << 2, acc2);
  storeColumns(out, bias, n, row + 3, tile, group << 2, acc3);
}
