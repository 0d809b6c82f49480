// float32 → element code and back, the twin of lib/kernels/ref/element-codec.ts (and its format table,
// lib/core/formats.ts). Scalar steps mirror the reference exactly on the float32 bit pattern; the
// SIMD nearest-even path reaches the same codes through exact float32 steps (see roundNearestVec).

import { loadBits as loadBitsAt, loadBitsInto as loadBitsFrom } from "./dtype";
import { streamBits } from "./stochastic";

export const E2M1: i32 = 0;
export const E2M3: i32 = 1;
export const E3M2: i32 = 2;
export const E4M3: i32 = 3;
export const E5M2: i32 = 4;
export const E8M0: i32 = 5;
export const INT8: i32 = 6;

const OVERFLOW_SATURATE: i32 = 0;
const OVERFLOW_NAN: i32 = 1;
const OVERFLOW_INF: i32 = 2;

// The format table, one field per function (ids as in lib/core/formats.ts ElementId).
// @ts-ignore: decorator
@inline export function formatBits(f: i32): i32 { return f == E2M1 ? 4 : f == E2M3 || f == E3M2 ? 6 : 8; }
// @ts-ignore: decorator
@inline export function mantissaBits(f: i32): i32 { return f == E2M1 ? 1 : f == E2M3 || f == E4M3 ? 3 : f == INT8 ? 7 : f == E8M0 ? 0 : 2; }
// @ts-ignore: decorator
@inline export function minNormalExponent(f: i32): i32 {
  return f == E2M1 || f == E2M3 ? 0 : f == E3M2 ? -2 : f == E4M3 ? -6 : f == E5M2 ? -14 : f == E8M0 ? -127 : 1;
}
/** floor(log2 maxFinite), the OCP emax. */
// @ts-ignore: decorator
@inline export function maxExponent(f: i32): i32 {
  return f == E2M1 || f == E2M3 ? 2 : f == E3M2 ? 4 : f == E4M3 ? 8 : f == E5M2 ? 15 : f == E8M0 ? 127 : 0;
}
// @ts-ignore: decorator
@inline export function maxFinite(f: i32): f32 {
  return f == E2M1 ? 6 : f == E2M3 ? 7.5 : f == E3M2 ? 28 : f == E4M3 ? 448 : f == E5M2 ? 57344 : f == INT8 ? <f32>(127.0 / 64.0) : <f32>1.7014118346046923e38;
}
// @ts-ignore: decorator
@inline export function maxFiniteCode(f: i32): i32 {
  return f == E2M1 ? 7 : f == E2M3 || f == E3M2 ? 0x1f : f == E4M3 ? 0x7e : f == E5M2 ? 0x7b : f == E8M0 ? 0xfe : 127;
}
// @ts-ignore: decorator
@inline export function signBit(f: i32): i32 { return f == E8M0 ? 0 : 1 << (formatBits(f) - 1); }
// @ts-ignore: decorator
@inline export function overflowRule(f: i32): i32 { return f == E4M3 || f == E8M0 ? OVERFLOW_NAN : f == E5M2 ? OVERFLOW_INF : OVERFLOW_SATURATE; }
/** Code of +NaN, or −1 without NaN. */
// @ts-ignore: decorator
@inline export function nanCode(f: i32): i32 { return f == E4M3 ? 0x7f : f == E5M2 ? 0x7e : f == E8M0 ? 0xff : -1; }

/** floor(log2 |x|) of a finite nonzero float32 given as bits, exact for subnormals. */
// @ts-ignore: decorator
@inline
export function floorLog2Bits(absBits: u32): i32 {
  const biased = <i32>(absBits >>> 23);
  if (biased != 0) return biased - 127;
  return -149 + 31 - <i32>clz(absBits);
}

export function ceilLog2Bits(absBits: u32): i32 {
  const floor = floorLog2Bits(absBits);
  const biased = absBits >>> 23;
  const exact = biased != 0 ? (absBits & 0x7fffff) == 0 : (absBits & (absBits - 1)) == 0;
  return exact ? floor : floor + 1;
}

/**
 * Round |x|·2^(−scaleExponent) to a code magnitude (no sign, no overflow handling), exactly as
 * roundMagnitude in lib/kernels/ref/element-codec.ts. `absBits` finite and nonzero; `stochastic` rounds up
 * with probability frac/quantum by comparing the 32-bit scaled fraction with `random`.
 */
export function roundMagnitude(absBits: u32, scaleExponent: i32, mbits: i32, emin: i32, stochastic: bool, random: u32): i32 {
  const biased = <i32>(absBits >>> 23);
  let m: u32;
  let e: i32;
  if (biased != 0) {
    m = (absBits & 0x7fffff) | 0x800000;
    e = biased - 127 - scaleExponent;
  } else {
    const lead = 31 - <i32>clz(absBits);
    m = absBits << (23 - lead);
    e = lead - 149 - scaleExponent;
  }
  const binade = e > emin ? e : emin;
  const shift = 23 + binade - mbits - e; // ≥ 23 − mantissaBits > 0
  let r: u32;
  if (!stochastic) {
    if (shift >= 25) {
      r = 0;
    } else {
      r = m >>> shift;
      const rem = m & ((1 << shift) - 1);
      const half = <u32>1 << (shift - 1);
      if (rem > half || (rem == half && (r & 1) == 1)) r += 1;
    }
  } else {
    let frac32: u64;
    if (shift <= 32) {
      r = shift == 32 ? 0 : m >>> shift;
      const rem: u64 = shift == 32 ? <u64>m : <u64>(m & ((1 << shift) - 1));
      frac32 = rem << <u64>(32 - shift);
    } else {
      r = 0;
      frac32 = shift - 32 >= 32 ? 0 : <u64>(m >>> (shift - 32));
    }
    if (<u64>random < frac32) r += 1;
  }
  return ((binade - emin) << mbits) + <i32>r;
}

/** E8M0 as ml_dtypes casts it (encodeE8m0Bits in lib/kernels/ref/element-codec.ts). */
export function encodeE8m0Bits(bits: u32, stochastic: bool, random: u32): i32 {
  if (bits == 0 || bits >= 0x7f800000) return 0xff; // zero, negatives, ±Inf, NaN
  if (bits <= 0x400000) return 0;
  if (!stochastic) return <i32>((bits + 0x400000) >>> 23);
  if (bits < 0x800000) return <u64>random < (<u64>(bits - 0x400000) << 10) ? 1 : 0;
  // Rounded up past 2^127 (0xff, NaN): as round-to-nearest does.
  const code = <i32>((<u64>bits + <u64>(random >>> 9)) >>> 23);
  return code == 0xff ? <i32>((bits + 0x400000) >>> 23) : code;
}

/** Element cast of one float32 (as bits) with the format's own overflow and NaN rules. */
export function encodeElementBits(bits: u32, f: i32, stochastic: bool, random: u32): i32 {
  if (f == E8M0) return encodeE8m0Bits(bits, stochastic, random);
  const sign = (bits >>> 31) != 0 ? signBit(f) : 0;
  const abs = bits & 0x7fffffff;
  const nan = nanCode(f);
  const maxCode = maxFiniteCode(f);
  const overflow = overflowRule(f);
  if (abs > 0x7f800000) return nan >= 0 ? nan | sign : 0; // NaN: counted by the caller
  if (abs == 0x7f800000) {
    if (overflow == OVERFLOW_SATURATE) return maxCode | sign;
    if (overflow == OVERFLOW_INF) return (maxCode + 1) | sign;
    return nan | sign;
  }
  if (abs == 0) return sign;
  const mbits = mantissaBits(f);
  const emin = minNormalExponent(f);
  let mag = roundMagnitude(abs, 0, mbits, emin, stochastic, random);
  // Stochastic rounding past the largest finite value behaves as round-to-nearest does.
  if (mag > maxCode && stochastic) mag = roundMagnitude(abs, 0, mbits, emin, false, 0);
  if (mag > maxCode) {
    if (overflow == OVERFLOW_SATURATE) mag = maxCode;
    else if (overflow == OVERFLOW_INF) mag = maxCode + 1;
    else return nan | sign;
  }
  return mag | sign;
}

/** Code of one block element |x|·2^−s, saturated (quantizeScaledElement in lib/kernels/ref/element-codec.ts). */
// @ts-ignore: decorator
@inline
export function quantizeScaledElement(bits: u32, scaleExponent: i32, f: i32, stochastic: bool, random: u32): i32 {
  const abs = bits & 0x7fffffff;
  let mag = abs == 0 ? 0 : roundMagnitude(abs, scaleExponent, mantissaBits(f), minNormalExponent(f), stochastic, random);
  const maxCode = maxFiniteCode(f);
  if (mag > maxCode) mag = maxCode;
  if ((bits >>> 31) == 0) return mag;
  return f == INT8 ? -mag & 0xff : mag | signBit(f);
}

/** 2^k as a float32 for −149 ≤ k ≤ 127 (exact, subnormals included). */
// @ts-ignore: decorator
@inline
export function pow2f(k: i32): f32 {
  return k >= -126 ? reinterpret<f32>(<u32>(k + 127) << 23) : reinterpret<f32>(<u32>1 << <u32>(k + 149));
}

/**
 * Nearest-even code magnitudes of four non-negative float32 values (as bits; ≤ +Inf, no NaN).
 * Below 2^emin the value is added to 2^(emin − mbits + 23), whose ulp is the format's quantum,
 * so float32 addition rounds exactly as the format does; at and above 2^emin the float32 bits are
 * rounded to `mbits` mantissa bits (ties to even, carry into the exponent) and rebased.
 * The result is unsaturated; callers clamp it with their overflow rule.
 */
// @ts-ignore: decorator
@inline
export function roundNearestVec(abs: v128, mbits: i32, emin: i32): v128 {
  const magic = reinterpret<u32>(pow2f(emin - mbits + 23));
  const sub = i32x4.sub(f32x4.add(abs, i32x4.splat(magic)), i32x4.splat(magic));
  const drop = 23 - mbits;
  const lsb = v128.and(i32x4.shr_u(abs, drop), i32x4.splat(1));
  const rounded = i32x4.shr_u(i32x4.add(abs, i32x4.add(i32x4.splat((1 << (drop - 1)) - 1), lsb)), drop);
  const normal = i32x4.sub(rounded, i32x4.splat((126 + emin) << mbits));
  const isSub = i32x4.lt_s(abs, i32x4.splat(<i32>((emin + 127) << 23)));
  return v128.bitselect(sub, normal, isSub);
}

// Decode tables, 256 float32 per format, indexed by the whole code so −0 keeps its sign.
const decodeTables: usize = memory.data(7 * 256 * 4, 16);

function pow2d(k: i32): f64 {
  return reinterpret<f64>(<u64>(k + 1023) << 52);
}

/** Code → value (decodeElement in lib/kernels/ref/element-codec.ts). */
function decodeElement(code: i32, f: i32): f64 {
  if (f == E8M0) return code == 0xff ? NaN : pow2d(code - 127);
  if (f == INT8) return <f64>(<i8>code) / 64;
  const sb = signBit(f);
  if (code >= (sb << 1)) return NaN; // not a code of this format (the js table reads undefined)
  const negative = (code & sb) != 0;
  const mag = code & (sb - 1);
  const maxCode = maxFiniteCode(f);
  let value: f64;
  if (overflowRule(f) == OVERFLOW_INF && mag > maxCode) value = mag == maxCode + 1 ? Infinity : NaN;
  else if (nanCode(f) >= 0 && mag == nanCode(f)) value = NaN;
  else {
    const mbits = mantissaBits(f);
    const field = mag >> mbits;
    const mant = mag & ((1 << mbits) - 1);
    const emin = minNormalExponent(f);
    value = field == 0
      ? <f64>mant * pow2d(emin - mbits)
      : (1 + <f64>mant / <f64>(1 << mbits)) * pow2d(field - 1 + emin);
  }
  return negative ? -value : value;
}

for (let f = 0; f < 7; f++) {
  for (let c = 0; c < 256; c++) store<f32>(decodeTables + ((<usize>f * 256 + <usize>c) << 2), <f32>decodeElement(c, f));
}

/** The decode table of a format: 256 float32 values. */
// @ts-ignore: decorator
@inline
export function decodeTable(f: i32): usize {
  return decodeTables + (<usize>f << 10);
}

// Element casts over whole arrays (encodeElements / decodeElements of the Kernels interface).

const ABS_MASK: i32 = 0x7fffffff;
const castScratch: usize = memory.data(64, 16);

/** Codes of src[0, count) into out, one per byte; returns how many NaNs met a format without NaN. */
export function encodeElements(src: usize, dtype: i32, count: i32, f: i32, stochastic: bool, seed: u32, firstIndex: f64, out: usize): i32 {
  const noNan = nanCode(f) < 0;
  let nans = 0;
  let i = 0;
  if (!stochastic && f != E8M0) {
    const mbits = mantissaBits(f);
    const emin = minNormalExponent(f);
    // Past the largest finite code: saturate, or the next code (E5M2 Inf, E4M3 NaN 0x7f).
    const cap = i32x4.splat(overflowRule(f) == OVERFLOW_SATURATE ? maxFiniteCode(f) : maxFiniteCode(f) + 1);
    const sign = i32x4.splat(signBit(f));
    const nanValue = i32x4.splat(noNan ? 0 : nanCode(f));
    const absMask = i32x4.splat(ABS_MASK);
    const inf = i32x4.splat(0x7f800000);
    let nanLanes = i32x4.splat(0);
    for (; i + 16 <= count; i += 16) {
      let p = src + (<usize>i << 2);
      if (dtype != 0) {
        loadBitsFrom(src, dtype, <usize>i, 16, castScratch, 16);
        p = castScratch;
      }
      const c0 = castCodes(v128.load(p), absMask, inf, cap, sign, nanValue, noNan, mbits, emin);
      const c1 = castCodes(v128.load(p, 16), absMask, inf, cap, sign, nanValue, noNan, mbits, emin);
      const c2 = castCodes(v128.load(p, 32), absMask, inf, cap, sign, nanValue, noNan, mbits, emin);
      const c3 = castCodes(v128.load(p, 48), absMask, inf, cap, sign, nanValue, noNan, mbits, emin);
      if (noNan) {
        nanLanes = i32x4.sub(nanLanes, i32x4.gt_s(v128.and(v128.load(p), absMask), inf));
        nanLanes = i32x4.sub(nanLanes, i32x4.gt_s(v128.and(v128.load(p, 16), absMask), inf));
        nanLanes = i32x4.sub(nanLanes, i32x4.gt_s(v128.and(v128.load(p, 32), absMask), inf));
        nanLanes = i32x4.sub(nanLanes, i32x4.gt_s(v128.and(v128.load(p, 48), absMask), inf));
      }
      v128.store(out + <usize>i, i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(c0, c1), i16x8.narrow_i32x4_u(c2, c3)));
    }
    nans = i32x4.extract_lane(nanLanes, 0) + i32x4.extract_lane(nanLanes, 1) + i32x4.extract_lane(nanLanes, 2) + i32x4.extract_lane(nanLanes, 3);
  }
  const base = <u64>firstIndex;
  for (; i < count; i++) {
    const b = loadBitsAt(src, dtype, <usize>i);
    if (noNan && (b & 0x7fffffff) > 0x7f800000) nans++;
    const random = stochastic ? streamBits(seed, base + <u64>i) : 0;
    store<u8>(out + <usize>i, <u8>encodeElementBits(b, f, stochastic, random));
  }
  return nans;
}

/** Four nearest-even element codes with the format's overflow, sign and NaN rules. */
// @ts-ignore: decorator
@inline
function castCodes(v: v128, absMask: v128, inf: v128, cap: v128, sign: v128, nanValue: v128, noNan: bool, mbits: i32, emin: i32): v128 {
  const abs = v128.and(v, absMask);
  const negative = i32x4.shr_s(v, 31);
  const code = v128.or(i32x4.min_u(roundNearestVec(abs, mbits, emin), cap), v128.and(negative, sign));
  // NaN: +0 without a NaN code (counted by the caller), else the NaN code with the sign.
  const nan = noNan ? nanValue : v128.or(nanValue, v128.and(negative, sign));
  return v128.bitselect(nan, code, i32x4.gt_s(abs, inf));
}

/** Values of codes[0, count) into out (float32), sign of −0 kept. */
export function decodeElements(codes: usize, count: i32, f: i32, out: usize): void {
  const table = decodeTable(f);
  for (let i = 0; i < count; i++) {
    store<f32>(out + (<usize>i << 2), load<f32>(table + (<usize>load<u8>(codes + <usize>i) << 2)));
  }
}

/** E2M1 code of a float32 clamped to ±6, by nearest even (e2m1NearestCode in native/element_codec.h):
 *  per binade scale by the inverse quantum (exact), round by adding and removing 2^23, add the
 *  binade's first code. FGMP's FP4 blocks. */
export function e2m1NearestCode(v: f32): u8 {
  const a = Mathf.abs(v);
  const atLeast2: i32 = a >= 2.0 ? 1 : 0;
  const atLeast4: i32 = a >= 4.0 ? 1 : 0;
  const inverseQuantum: f32 = <f32>2.0 - <f32>atLeast2 - <f32>0.5 * <f32>atLeast4;
  const rounded = <i32>((a * inverseQuantum + <f32>8388608.0) - <f32>8388608.0);
  const code = min(rounded + 2 * (atLeast2 + atLeast4), 7);
  return <u8>(code | (<i32>(reinterpret<u32>(v) >>> 31) << 3));
}

/**
 * Nearest-even E2M1 code magnitudes of four float32 values 0 ≤ v < 8 (as bits), unsaturated
 * (7.x rounds to 8). In units of the local quantum — v·2 below 2, v above, v/2 from 4 — the
 * code is round(v·2^(1−t)) + 2t (t = [v ≥ 2] + [v ≥ 4]), and adding 2^23 rounds to an integer.
 * Scaling by 2^(1−t) is done on the exponent bits; for v = 0 or a float32 subnormal that gives
 * a tiny normal, which still rounds to 0.
 */
// @ts-ignore: decorator
@inline
export function e2m1NearestVec(abs: v128): v128 {
  const t = i32x4.add(i32x4.gt_s(abs, i32x4.splat(0x3fffffff)), i32x4.gt_s(abs, i32x4.splat(0x407fffff))); // −[v ≥ 2] − [v ≥ 4]
  const scaled = i32x4.add(abs, i32x4.add(i32x4.shl(t, 23), i32x4.splat(1 << 23)));
  const rounded = i32x4.sub(f32x4.add(scaled, i32x4.splat(0x4b000000)), i32x4.splat(0x4b000000));
  return i32x4.sub(rounded, i32x4.shl(t, 1));
}

/**
 * Nearest-even E2M1 code magnitudes (0..7) of four float32 values 0 ≤ a ≤ 6 (no NaN), in one
 * float32 add: with e = max(⌊log2 a⌋, 0) ∈ {0, 1, 2}, the magic M = 2^(22+e) + 6·2^(e−1) has
 * ulp 2^(e−1), which is E2M1's quantum in a's binade (0.5 below 2, 1 in [2, 4), 2 in [4, 8)), and
 * a + M stays in M's binade; so a + M rounds a to the format exactly, ties to even (M's last
 * mantissa bits, 6, are even), and bits(a + M) = bits(M) + r with r = a / quantum rounded. The
 * code is r + 2e: adding bits(a + M) >> 22 = 298 + 2e supplies the 2e, and 6 + 298 = 304 = 19·16
 * leaves exactly r + 2e in the low nibble. (a = 0 or a float32 subnormal gets e = 0: r = 0.)
 * Five integer ops and one float add, against e2m1NearestVec's nine (which also takes v < 8).
 */
// @ts-ignore: decorator
@inline
export function e2m1NearestSmallVec(a: v128): v128 {
  const binade = i32x4.max_u(v128.and(a, i32x4.splat(0x7f800000)), i32x4.splat(0x3f800000)); // bits of 2^e
  const sum = f32x4.add(a, i32x4.add(binade, i32x4.splat((22 << 23) + 6))); // a + M
  return v128.and(i32x4.add(sum, i32x4.shr_u(sum, 22)), i32x4.splat(0xf));
}

/**
 * Stochastic E2M1 code magnitudes of four values 0 ≤ v < 8 (as bits), unsaturated: in units of
 * the local quantum (as in e2m1NearestVec) the value is whole + frac, and the code rounds up when
 * random < frac·2^32, which is exactly roundMagnitude's 32-bit fraction (floored when finer).
 */
// @ts-ignore: decorator
@inline
export function e2m1StochasticVec(abs: v128, random: v128): v128 {
  const t = i32x4.add(i32x4.gt_s(abs, i32x4.splat(0x3fffffff)), i32x4.gt_s(abs, i32x4.splat(0x407fffff)));
  const scaled = i32x4.add(abs, i32x4.add(i32x4.shl(t, 23), i32x4.splat(1 << 23)));
  const whole = f32x4.floor(scaled);
  const frac32 = i32x4.trunc_sat_f32x4_u(f32x4.mul(f32x4.sub(scaled, whole), f32x4.splat(4294967296.0)));
  const up = i32x4.lt_u(random, frac32); // −1 where rounding up
  return i32x4.sub(i32x4.sub(i32x4.trunc_sat_f32x4_s(whole), up), i32x4.shl(t, 1));
}
