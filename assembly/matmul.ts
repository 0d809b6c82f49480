// WebAssembly SIMD twin of the FP4×INT8 block matmul (native/matmul_avx512.cc): same repacked
// weights, same exact integer dot products, same float32 steps per output column, so the bits
// match the native and pure-TS backends. A 128-bit vector holds 4 columns; i32x4.dot_i16x8_s sums
// products in pairs, so each column's dot product lives in two lanes until the end of a unit.
//
// Built twice (package.json build:wasm; lib/kernels/wasm-builds.ts picks one): fp4kit.wasm with
// SIMD128 only, fp4kit-relaxed.wasm with relaxed SIMD too, where ASC_FEATURE_RELAXED_SIMD routes
// matmulFp4Int8 to relaxedTiles below: i32x4.relaxed_dot_i8x16_i7x16_add_s sums 4 byte products per
// lane in one instruction. It is deterministic and exact when its second operand's bytes are in
// 0…127, so the weights go in as 2w + 12 (0…24) against the signed activation codes and 12·Σa over
// the unit (activationUnitSums) comes off afterwards: D is the same integer in both builds.

import { foldPairs, storeColumns, TILE, unitStep } from "./matmul-columns";

// E2M1 code → 2w as a signed byte (0, ±1, ±2, ±3, ±4, ±6, ±8, ±12).
// @ts-ignore: decorator
@inline
function e2m1Lut(): v128 {
  return i8x16(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
}

/** What makes every 2w non-negative for the relaxed dot. */
const WEIGHT_BIAS: i32 = 12;

// E2M1 code → 2w + WEIGHT_BIAS (0 … 24).
// @ts-ignore: decorator
@inline
function e2m1BiasedLut(): v128 {
  return i8x16(12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0);
}

/** Σ of each row-unit's activation codes: i32 [m][units] at `sums` (relaxedTiles' correction). */
export function activationUnitSums(aCodes: usize, m: i32, paddedK: i32, units: i32, unit: i32, sums: usize): void {
  for (let row = 0; row < m; row++) {
    for (let j = 0; j < units; j++) {
      const a = aCodes + <usize>row * <usize>paddedK + <usize>(j * unit);
      let s: i32 = 0;
      for (let i = 0; i < unit; i++) s += <i32>load<i8>(a + <usize>i);
      store<i32>(sums + ((<usize>row * <usize>units + <usize>j) << 2), s);
    }
  }
}

/** 1 where this build has relaxed SIMD (ASC_FEATURE_RELAXED_SIMD), else 0. */
export function relaxedSimd(): i32 {
  return ASC_FEATURE_RELAXED_SIMD ? 1 : 0;
}

// An E4M3 code as a signed integer multiple of 2^-9.
// @ts-ignore: decorator
@inline
function e4m3AsInt(code: i32): i32 {
  const mag = code & 0x7f;
  const exponent = mag >> 3;
  const mantissa = mag & 7;
  const v = exponent == 0 ? mantissa : (8 | mantissa) << (exponent - 1);
  return (code & 0x80) != 0 ? -v : v;
}

/**
 * FGMP FP8 lanes decoded once per call rather than once per activation row: the E4M3 codes
 * u8 [tiles][units][unit][16] of every unit with a nonzero fp8Lanes mask → i32 multiples of 2^-9
 * at the same index of `values`.
 */
export function decodeFp8Lanes(fp8Lanes: usize, fp8Codes: usize, tiles: i32, units: i32, unit: i32, values: usize): void {
  const perUnit = <usize>unit * <usize>TILE;
  for (let u: usize = 0; u < <usize>tiles * <usize>units; u++) {
    if (load<u16>(fp8Lanes + (u << 1)) == 0) continue;
    for (let i: usize = u * perUnit; i < (u + 1) * perUnit; i++) store<i32>(values + (i << 2), e4m3AsInt(load<u8>(fp8Codes + i)));
  }
}

/**
 * out[m, n] for rows [0, m) and tiles [tileBegin, tileEnd). Pointers into this module's memory:
 * nibbles [tiles][kGroups][64], scales f32 [tiles][units][16], fp8Lanes u16 [tiles][units] (0 if
 * none), fp8Values i32 [tiles][units][unit][16] (from decodeFp8Lanes), aCodes i8 [m][paddedK],
 * aScales f32 [m][paddedK/32], aSums i32 [m][units] (activationUnitSums; read by the relaxed build
 * only), bias f32 [n] (0 = none), out f32 [m][n].
 */
export function matmulFp4Int8(
  nibbles: usize, scales: usize, fp8Lanes: usize, fp8Values: usize, n: i32, units: i32, unit: i32, kGroups: i32,
  aCodes: usize, aScales: usize, aSums: usize, m: i32, paddedK: i32, bias: usize, out: usize, tileBegin: i32, tileEnd: i32,
): void {
  if (ASC_FEATURE_RELAXED_SIMD) {
    relaxedTiles(nibbles, scales, fp8Lanes, fp8Values, n, units, unit, kGroups, aCodes, aScales, aSums, m, paddedK, bias, out, tileBegin, tileEnd);
    return;
  }
  const lowNibble = i8x16.splat(0x0f);
  const lut = e2m1Lut();
  const unitScale = f32x4.splat(1.0 / 32768.0);
  const aBlocksPerRow = paddedK >> 5;
  const groupsPerUnit = unit >> 3;
  const fourRowsEnd = m & ~3;
  for (let tile = tileBegin; tile < tileEnd; tile++) {
    for (let quad = 0; quad < 4; quad++) {
      for (let row = 0; row < fourRowsEnd; row += 4) {
        fourRowsQuad(nibbles, scales, fp8Lanes, fp8Values, n, units, unit, kGroups, aCodes, aScales, paddedK, bias, out, tile, quad, row);
      }
    }
    for (let row = fourRowsEnd; row < m; row++) {
      const aRow = aCodes + <usize>row * <usize>paddedK;
      let acc0 = f32x4.splat(0), acc1 = f32x4.splat(0), acc2 = f32x4.splat(0), acc3 = f32x4.splat(0);
      for (let j = 0; j < units; j++) {
        // Pair-split sums: p[q][0] holds columns 4q, 4q+1 (two lanes each), p[q][1] columns 4q+2, 4q+3.
        let p00 = i32x4.splat(0), p01 = i32x4.splat(0), p10 = i32x4.splat(0), p11 = i32x4.splat(0);
        let p20 = i32x4.splat(0), p21 = i32x4.splat(0), p30 = i32x4.splat(0), p31 = i32x4.splat(0);
        for (let g = j * groupsPerUnit; g < (j + 1) * groupsPerUnit; g++) {
          const a = aRow + (<usize>g << 3);
          const aLo = i16x8.extend_low_i8x16_s(i32x4.splat(load<i32>(a)));
          const aHi = i16x8.extend_low_i8x16_s(i32x4.splat(load<i32>(a, 4)));
          const w = nibbles + ((<usize>tile * <usize>kGroups + <usize>g) << 6);
          let v = v128.load(w);
          let lo = i8x16.swizzle(lut, v128.and(v, lowNibble));
          let hi = i8x16.swizzle(lut, v128.and(i16x8.shr_u(v, 4), lowNibble));
          p00 = i32x4.add(p00, i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(lo), aLo), i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(hi), aHi)));
          p01 = i32x4.add(p01, i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(lo), aLo), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(hi), aHi)));
          v = v128.load(w, 16);
          lo = i8x16.swizzle(lut, v128.and(v, lowNibble));
          hi = i8x16.swizzle(lut, v128.and(i16x8.shr_u(v, 4), lowNibble));
          p10 = i32x4.add(p10, i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(lo), aLo), i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(hi), aHi)));
          p11 = i32x4.add(p11, i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(lo), aLo), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(hi), aHi)));
          v = v128.load(w, 32);
          lo = i8x16.swizzle(lut, v128.and(v, lowNibble));
          hi = i8x16.swizzle(lut, v128.and(i16x8.shr_u(v, 4), lowNibble));
          p20 = i32x4.add(p20, i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(lo), aLo), i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(hi), aHi)));
          p21 = i32x4.add(p21, i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(lo), aLo), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(hi), aHi)));
          v = v128.load(w, 48);
          lo = i8x16.swizzle(lut, v128.and(v, lowNibble));
          hi = i8x16.swizzle(lut, v128.and(i16x8.shr_u(v, 4), lowNibble));
          p30 = i32x4.add(p30, i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(lo), aLo), i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(hi), aHi)));
          p31 = i32x4.add(p31, i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(lo), aLo), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(hi), aHi)));
        }
        // Fold the pairs: [c0a c0b c1a c1b] + [c2a c2b c3a c3b] → [c0 c1 c2 c3], then to units of 2^-15.
        let d0 = i32x4.shl(foldPairs(p00, p01), 8);
        let d1 = i32x4.shl(foldPairs(p10, p11), 8);
        let d2 = i32x4.shl(foldPairs(p20, p21), 8);
        let d3 = i32x4.shl(foldPairs(p30, p31), 8);
        if (fp8Lanes != 0 && load<u16>(fp8Lanes + ((<usize>tile * <usize>units + <usize>j) << 1)) != 0) {
          const values = fp8Values + (((<usize>tile * <usize>units + <usize>j) * <usize>unit * <usize>TILE) << 2);
          for (let i = 0; i < unit; i++) {
            const k = i32x4.splat(<i32>load<i8>(aRow + <usize>(j * unit + i)));
            const c = values + <usize>(i * TILE * 4);
            d0 = i32x4.add(d0, i32x4.mul(k, v128.load(c)));
            d1 = i32x4.add(d1, i32x4.mul(k, v128.load(c, 16)));
            d2 = i32x4.add(d2, i32x4.mul(k, v128.load(c, 32)));
            d3 = i32x4.add(d3, i32x4.mul(k, v128.load(c, 48)));
          }
        }
        const sa = f32x4.splat(load<f32>(aScales + ((<usize>row * <usize>aBlocksPerRow + <usize>((j * unit) >> 5)) << 2)));
        const sb = scales + ((<usize>tile * <usize>units + <usize>j) << 6);
        acc0 = unitStep(acc0, d0, unitScale, sa, v128.load(sb));
        acc1 = unitStep(acc1, d1, unitScale, sa, v128.load(sb, 16));
        acc2 = unitStep(acc2, d2, unitScale, sa, v128.load(sb, 32));
        acc3 = unitStep(acc3, d3, unitScale, sa, v128.load(sb, 48));
      }
      storeColumns(out, bias, n, row, tile, 0, acc0);
      storeColumns(out, bias, n, row, tile, 4, acc1);
      storeColumns(out, bias, n, row, tile, 8, acc2);
      storeColumns(out, bias, n, row, tile, 12, acc3);
    }
  }
}

// What the four-row blocks of both builds share: a unit's D per column quad.

/** A unit's D for one row and column quad: the FP4 dot in units of 2^-15, plus the unit's FP8
 *  lanes (i32 values of the quad's 4 columns at `fp8Quad`, 0 when the unit has none). */
// @ts-ignore: decorator
@inline
function unitD(dot: v128, fp8Quad: usize, aUnit: usize, unit: i32): v128 {
  let d = i32x4.shl(dot, 8);
  if (fp8Quad != 0) {
    for (let i = 0; i < unit; i++) {
      d = i32x4.add(d, i32x4.mul(i32x4.splat(<i32>load<i8>(aUnit + <usize>i)), v128.load(fp8Quad + <usize>(i * TILE * 4))));
    }
  }
  return d;
}

/** Columns 4·quad … 4·quad + 3 of `tile` for rows row … row + 3 (SIMD128): four rows share each
 *  decoded, widened weight vector; each row's sums are pair-split as in the one-row loop. */
function fourRowsQuad(
  nibbles: usize, scales: usize, fp8Lanes: usize, fp8Values: usize, n: i32, units: i32, unit: i32, kGroups: i32,
  aCodes: usize, aScales: usize, paddedK: i32, bias: usize, out: usize, tile: i32, quad: i32, row: i32,
): void {
  const lowNibble = i8x16.splat(0x0f);
  const lut = e2m1Lut();
  const unitScale = f32x4.splat(1.0 / 32768.0);
  const aBlocksPerRow = paddedK >> 5;
  const groupsPerUnit = unit >> 3;
  const stride = <usize>paddedK;
  const blocksBytes = <usize>aBlocksPerRow << 2;
  const w0 = nibbles + ((<usize>tile * <usize>kGroups) << 6) + (<usize>quad << 4);
  const a0 = aCodes + <usize>row * stride;
  let acc0 = f32x4.splat(0), acc1 = f32x4.splat(0), acc2 = f32x4.splat(0), acc3 = f32x4.splat(0);
  for (let j = 0; j < units; j++) {
    // p[r][0]: columns 4·quad, +1 (two lanes each) of row r; p[r][1]: columns +2, +3.
    let p00 = i32x4.splat(0), p01 = i32x4.splat(0), p10 = i32x4.splat(0), p11 = i32x4.splat(0);
    let p20 = i32x4.splat(0), p21 = i32x4.splat(0), p30 = i32x4.splat(0), p31 = i32x4.splat(0);
    for (let g = j * groupsPerUnit; g < (j + 1) * groupsPerUnit; g++) {
      const v = v128.load(w0 + (<usize>g << 6));
      const lo = i8x16.swizzle(lut, v128.and(v, lowNibble));
      const hi = i8x16.swizzle(lut, v128.and(i16x8.shr_u(v, 4), lowNibble));
      const lo0 = i16x8.extend_low_i8x16_s(lo), lo1 = i16x8.extend_high_i8x16_s(lo);
      const hi0 = i16x8.extend_low_i8x16_s(hi), hi1 = i16x8.extend_high_i8x16_s(hi);
      const a = a0 + (<usize>g << 3);
      let aLo = i16x8.extend_low_i8x16_s(v128.load32_splat(a)), aHi = i16x8.extend_low_i8x16_s(v128.load32_splat(a, 4));
      p00 = i32x4.add(p00, i32x4.add(i32x4.dot_i16x8_s(lo0, aLo), i32x4.dot_i16x8_s(hi0, aHi)));
      p01 = i32x4.add(p01, i32x4.add(i32x4.dot_i16x8_s(lo1, aLo), i32x4.dot_i16x8_s(hi1, aHi)));
      aLo = i16x8.extend_low_i8x16_s(v128.load32_splat(a + stride));
      aHi = i16x8.extend_low_i8x16_s(v128.load32_splat(a + stride, 4));
      p10 = i32x4.add(p10, i32x4.add(i32x4.dot_i16x8_s(lo0, aLo), i32x4.dot_i16x8_s(hi0, aHi)));
      p11 = i32x4.add(p11, i32x4.add(i32x4.dot_i16x8_s(lo1, aLo), i32x4.dot_i16x8_s(hi1, aHi)));
      aLo = i16x8.extend_low_i8x16_s(v128.load32_splat(a + 2 * stride));
      aHi = i16x8.extend_low_i8x16_s(v128.load32_splat(a + 2 * stride, 4));
      p20 = i32x4.add(p20, i32x4.add(i32x4.dot_i16x8_s(lo0, aLo), i32x4.dot_i16x8_s(hi0, aHi)));
      p21 = i32x4.add(p21, i32x4.add(i32x4.dot_i16x8_s(lo1, aLo), i32x4.dot_i16x8_s(hi1, aHi)));
      aLo = i16x8.extend_low_i8x16_s(v128.load32_splat(a + 3 * stride));
      aHi = i16x8.extend_low_i8x16_s(v128.load32_splat(a + 3 * stride, 4));
      p30 = i32x4.add(p30, i32x4.add(i32x4.dot_i16x8_s(lo0, aLo), i32x4.dot_i16x8_s(hi0, aHi)));
      p31 = i32x4.add(p31, i32x4.add(i32x4.dot_i16x8_s(lo1, aLo), i32x4.dot_i16x8_s(hi1, aHi)));
    }
    const tileUnit = <usize>tile * <usize>units + <usize>j;
    const fp8Quad = fp8Lanes != 0 && load<u16>(fp8Lanes + (tileUnit << 1)) != 0
      ? fp8Values + ((tileUnit * <usize>unit * <usize>TILE) << 2) + (<usize>quad << 4) : 0;
    const sb = v128.load(scales + (tileUnit << 6) + (<usize>quad << 4));
    const aUnit = a0 + <usize>(j * unit);
    const sa = aScales + ((<usize>row * <usize>aBlocksPerRow + <usize>((j * unit) >> 5)) << 2);
    acc0 = unitStep(acc0, unitD(foldPairs(p00, p01), fp8Quad, aUnit, unit), unitScale, f32x4.splat(load<f32>(sa)), sb);
    acc1 = unitStep(acc1, unitD(foldPairs(p10, p11), fp8Quad, aUnit + stride, unit), unitScale, f32x4.splat(load<f32>(sa + blocksBytes)), sb);
    acc2 = unitStep(acc2, unitD(foldPairs(p20, p21), fp8Quad, aUnit + 2 * stride, unit), unitScale, f32x4.splat(load<f32>(sa + 2 * blocksBytes)), sb);
    acc3 = unitStep(acc3, unitD(foldPairs(p30, p31), fp8Quad, aUnit + 3 * stride, unit), unitScale, f32x4.splat(load<f32>(sa + 3 * blocksBytes)), sb);
  }
  storeColumns(out, bias, n, row, tile, quad << 2, acc0);
  storeColumns(out, bias, n, row + 1, tile, quad << 2, acc1);
  storeColumns(out, bias, n, row + 2, tile, quad << 2, acc2);
  storeColumns(out, bias, n, row + 3, tile, quad << 2, acc3);
}

// The relaxed-SIMD build's kernel (see the top of this file). Each 16 weight bytes of a group hold
// 4 columns × 8 k (low nibbles k 0…3, high nibbles k 4…7), exactly the relaxed dot's shape: one
// instruction per nibble half gives each of the 4 columns its 4-k sum, no pair fold. The loops run
// a column quad (4 of a tile's 16 columns) at a time so that four rows share each decoded weight
// vector with 4 integer and 4 float accumulators in registers; rows past a multiple of 4 take the
// one-row form. Per (row, column) the float steps are those of every backend, in unit order.

/** Row `a`'s relaxed dot over one group's 4 columns × 8 k (lo: k 0…3, hi: k 4…7), into q. */
// @ts-ignore: decorator
@inline
function groupDot(a: usize, lo: v128, hi: v128, q: v128): v128 {
  q = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(a), lo, q);
  return i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(a, 4), hi, q);
}

/** The relaxed dot's sum q of biased weights less the bias's share, 12·Σa: the FP4 dot itself. */
// @ts-ignore: decorator
@inline
function unbiased(q: v128, aSum: i32): v128 {
  return i32x4.sub(q, i32x4.splat(WEIGHT_BIAS * aSum));
}

/** matmulFp4Int8 on the relaxed dot: same arguments, same bits. Rows in fours by column quads,
 *  the rest one at a time over whole tiles (one row gains nothing from quads, and loses). */
function relaxedTiles(
  nibbles: usize, scales: usize, fp8Lanes: usize, fp8Values: usize, n: i32, units: i32, unit: i32, kGroups: i32,
  aCodes: usize, aScales: usize, aSums: usize, m: i32, paddedK: i32, bias: usize, out: usize, tileBegin: i32, tileEnd: i32,
): void {
  const lowNibble = i8x16.splat(0x0f);
  const lut = e2m1BiasedLut();
  const unitScale = f32x4.splat(1.0 / 32768.0);
  const aBlocksPerRow = paddedK >> 5;
  const groupsPerUnit = unit >> 3;
  const stride = <usize>paddedK;
  const unitsBytes = <usize>units << 2, blocksBytes = <usize>aBlocksPerRow << 2;
  const fourRowsEnd = m & ~3;
  for (let tile = tileBegin; tile < tileEnd; tile++) {
    const tileNibbles = nibbles + ((<usize>tile * <usize>kGroups) << 6);
    for (let quad = 0; quad < 4; quad++) {
      const w0 = tileNibbles + (<usize>quad << 4);
      for (let row = 0; row < fourRowsEnd; row += 4) {
        const a0 = aCodes + <usize>row * stride;
        let acc0 = f32x4.splat(0), acc1 = f32x4.splat(0), acc2 = f32x4.splat(0), acc3 = f32x4.splat(0);
        for (let j = 0; j < units; j++) {
          let q0 = i32x4.splat(0), q1 = i32x4.splat(0), q2 = i32x4.splat(0), q3 = i32x4.splat(0);
          for (let g = j * groupsPerUnit; g < (j + 1) * groupsPerUnit; g++) {
            const v = v128.load(w0 + (<usize>g << 6));
            const lo = i8x16.relaxed_swizzle(lut, v128.and(v, lowNibble)); // indices 0…15: as i8x16.swizzle
            const hi = i8x16.relaxed_swizzle(lut, v128.and(i16x8.shr_u(v, 4), lowNibble));
            const a = a0 + (<usize>g << 3);
            q0 = groupDot(a, lo, hi, q0);
            q1 = groupDot(a + stride, lo, hi, q1);
            q2 = groupDot(a + 2 * stride, lo, hi, q2);
            q3 = groupDot(a + 3 * stride, lo, hi, q3);
          }
          const tileUnit = <usize>tile * <usize>units + <usize>j;
          const fp8Quad = fp8Lanes != 0 && load<u16>(fp8Lanes + (tileUnit << 1)) != 0
            ? fp8Values + ((tileUnit * <usize>unit * <usize>TILE) << 2) + (<usize>quad << 4) : 0;
          const sb = v128.load(scales + (tileUnit << 6) + (<usize>quad << 4));
          const aUnit = a0 + <usize>(j * unit);
          const sums = aSums + ((<usize>row * <usize>units + <usize>j) << 2);
          const sa = aScales + ((<usize>row * <usize>aBlocksPerRow + <usize>((j * unit) >> 5)) << 2);
          acc0 = unitStep(acc0, unitD(unbiased(q0, load<i32>(sums)), fp8Quad, aUnit, unit), unitScale, f32x4.splat(load<f32>(sa)), sb);
          acc1 = unitStep(acc1, unitD(unbiased(q1, load<i32>(sums + unitsBytes)), fp8Quad, aUnit + stride, unit), unitScale, f32x4.splat(load<f32>(sa + blocksBytes)), sb);
          acc2 = unitStep(acc2, unitD(unbiased(q2, load<i32>(sums + 2 * unitsBytes)), fp8Quad, aUnit + 2 * stride, unit), unitScale, f32x4.splat(load<f32>(sa + 2 * blocksBytes)), sb);
          acc3 = unitStep(acc3, unitD(unbiased(q3, load<i32>(sums + 3 * unitsBytes)), fp8Quad, aUnit + 3 * stride, unit), unitScale, f32x4.splat(load<f32>(sa + 3 * blocksBytes)), sb);
        }
        storeColumns(out, bias, n, row, tile, quad << 2, acc0);
        storeColumns(out, bias, n, row + 1, tile, quad << 2, acc1);
        storeColumns(out, bias, n, row + 2, tile, quad << 2, acc2);
        storeColumns(out, bias, n, row + 3, tile, quad << 2, acc3);
      }
    }
    for (let row = fourRowsEnd; row < m; row++) {
      const a0 = aCodes + <usize>row * stride;
      let acc0 = f32x4.splat(0), acc1 = f32x4.splat(0), acc2 = f32x4.splat(0), acc3 = f32x4.splat(0);
      for (let j = 0; j < units; j++) {
        // q[i]: columns 4i … 4i+3 of the tile.
        let q0 = i32x4.splat(0), q1 = i32x4.splat(0), q2 = i32x4.splat(0), q3 = i32x4.splat(0);
        for (let g = j * groupsPerUnit; g < (j + 1) * groupsPerUnit; g++) {
          const w = tileNibbles + (<usize>g << 6);
          const a = a0 + (<usize>g << 3);
          let v = v128.load(w);
          q0 = groupDot(a, i8x16.relaxed_swizzle(lut, v128.and(v, lowNibble)), i8x16.relaxed_swizzle(lut, v128.and(i16x8.shr_u(v, 4), lowNibble)), q0);
          v = v128.load(w, 16);
          q1 = groupDot(a, i8x16.relaxed_swizzle(lut, v128.and(v, lowNibble)), i8x16.relaxed_swizzle(lut, v128.and(i16x8.shr_u(v, 4), lowNibble)), q1);
          v = v128.load(w, 32);
          q2 = groupDot(a, i8x16.relaxed_swizzle(lut, v128.and(v, lowNibble)), i8x16.relaxed_swizzle(lut, v128.and(i16x8.shr_u(v, 4), lowNibble)), q2);
          v = v128.load(w, 48);
          q3 = groupDot(a, i8x16.relaxed_swizzle(lut, v128.and(v, lowNibble)), i8x16.relaxed_swizzle(lut, v128.and(i16x8.shr_u(v, 4), lowNibble)), q3);
        }
        const tileUnit = <usize>tile * <usize>units + <usize>j;
        const fp8Unit = fp8Lanes != 0 && load<u16>(fp8Lanes + (tileUnit << 1)) != 0 ? fp8Values + ((tileUnit * <usize>unit * <usize>TILE) << 2) : 0;
        const sb = scales + (tileUnit << 6);
        const aUnit = a0 + <usize>(j * unit);
        const aSum = load<i32>(aSums + ((<usize>row * <usize>units + <usize>j) << 2));
        const sa = f32x4.splat(load<f32>(aScales + ((<usize>row * <usize>aBlocksPerRow + <usize>((j * unit) >> 5)) << 2)));
        acc0 = unitStep(acc0, unitD(unbiased(q0, aSum), fp8Unit, aUnit, unit), unitScale, sa, v128.load(sb));
        acc1 = unitStep(acc1, unitD(unbiased(q1, aSum), fp8Unit != 0 ? fp8Unit + 16 : 0, aUnit, unit), unitScale, sa, v128.load(sb, 16));
        acc2 = unitStep(acc2, unitD(unbiased(q2, aSum), fp8Unit != 0 ? fp8Unit + 32 : 0, aUnit, unit), unitScale, sa, v128.load(sb, 32));
        acc3 = unitStep(acc3, unitD(unbiased(q3, aSum), fp8Unit != 0 ? fp8Unit + 48 : 0, aUnit, unit), unitScale, sa, v128.load(sb, 48));
      }
      storeColumns(out, bias, n, row, tile, 0, acc0);
      storeColumns(out, bias, n, row, tile, 4, acc1);
      storeColumns(out, bias, n, row, tile, 8, acc2);
      storeColumns(out, bias, n, row, tile, 12, acc3);
    }
  }
}
