// WebAssembly SIMD twin of the FP4×INT8 block matmul (native/matmul_avx512.cc): same repacked
// weights, same exact integer dot products, same float32 steps per output column, so the bits
// match the native and pure-TS backends. A 128-bit vector holds 4 columns; i32x4.dot_i16x8_s sums
// products in pairs, so each column's dot product lives in two lanes until the end of a unit.

import { foldPairs, storeColumns, TILE } from "./matmul-columns";

// E2M1 code → 2w as a signed byte (0, ±1, ±2, ±3, ±4, ±6, ±8, ±12).
// @ts-ignore: decorator
@inline
function e2m1Lut(): v128 {
  return i8x16(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
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
 * aScales f32 [m][paddedK/32], bias f32 [n] (0 = none), out f32 [m][n].
 */
export function matmulFp4Int8(
  nibbles: usize, scales: usize, fp8Lanes: usize, fp8Values: usize, n: i32, units: i32, unit: i32, kGroups: i32,
  aCodes: usize, aScales: usize, m: i32, paddedK: i32, bias: usize, out: usize, tileBegin: i32, tileEnd: i32,
): void {
  const lowNibble = i8x16.splat(0x0f);
  const lut = e2m1Lut();
  const unitScale = f32x4.splat(1.0 / 32768.0);
  const aBlocksPerRow = paddedK >> 5;
  const groupsPerUnit = unit >> 3;
  for (let tile = tileBegin; tile < tileEnd; tile++) {
    for (let row = 0; row < m; row++) {
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
        acc0 = f32x4.add(acc0, f32x4.mul(f32x4.mul(f32x4.convert_i32x4_s(d0), unitScale), f32x4.mul(sa, v128.load(sb))));
        acc1 = f32x4.add(acc1, f32x4.mul(f32x4.mul(f32x4.convert_i32x4_s(d1), unitScale), f32x4.mul(sa, v128.load(sb, 16))));
        acc2 = f32x4.add(acc2, f32x4.mul(f32x4.mul(f32x4.convert_i32x4_s(d2), unitScale), f32x4.mul(sa, v128.load(sb, 32))));
        acc3 = f32x4.add(acc3, f32x4.mul(f32x4.mul(f32x4.convert_i32x4_s(d3), unitScale), f32x4.mul(sa, v128.load(sb, 48))));
      }
      storeColumns(out, bias, n, row, tile, 0, acc0);
      storeColumns(out, bias, n, row, tile, 4, acc1);
      storeColumns(out, bias, n, row, tile, 8, acc2);
      storeColumns(out, bias, n, row, tile, 12, acc3);
    }
  }
}
