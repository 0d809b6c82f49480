// WebAssembly SIMD twin of the aligned decoded-operand product (native/matmul_aligned.h): the
// reference's D = f32(Σ a·b in float64) of one unit, computed as an exact int32 dot where it can be.
// A row-unit whose values are all i·2^e with |i| < 2^15 is stored as int16 integers and one
// exponent (its span: the bits between its top and its lowest set bit); for a pair of row-units with
// spanA + spanB + log2(unit) ≤ 31 and −126 ≤ ea + eb ≤ 96, Σ ia·ib is an exact int32
// (i32x4.dot_i16x8_s: two products per lane) and D = f32(Σ)·2^(ea+eb) exactly the reference's.
// Every other lane (non-finite values, wide spans, extreme exponents) takes the reference's float64
// sum. The rest — S = f32(sa·sb), acc = f32(acc + f32(D·S)), the bias — is the reference's order,
// so the bits are those of every other backend. No split row-units here (the addon's second int16
// form): their lanes take the float64 sum.
//
// Layout: rows of an operand aligned once (alignRows: [rows][units·unit] int16, [rows][units]
// exponents and spans); the kernel builds a panel of 8 columns of b ([unit][pair][8] int32 pairs)
// and runs two rows of a against it (4 int32 sums and 4 float accumulators in registers).

import { storeColumns } from "./matmul-columns";

const UNALIGNED: i32 = 100; // the span of a row-unit without an int16 form
const MAX_SPAN: i32 = 15;
const MIN_EXP: i32 = -126;
const MAX_EXP: i32 = 96;
const COLUMNS: i32 = 8;

/** One row-unit's int16 form into `ints`; returns its span (UNALIGNED: none) and stores its
 *  exponent at `expOut` (0 when all zero or unaligned). native/matmul_aligned.cc alignRowUnit. */
function alignUnit(values: usize, count: i32, ints: usize, expOut: usize): i32 {
  let top = i32.MIN_VALUE, low = i32.MAX_VALUE;
  store<i32>(expOut, 0);
  for (let i = 0; i < count; i++) {
    const bits = reinterpret<u32>(load<f32>(values + (<usize>i << 2)));
    const field = (bits >> 23) & 0xff, mantissa = bits & 0x7fffff;
    if (field == 255) return UNALIGNED; // Inf or NaN
    if (field == 0 && mantissa == 0) continue;
    const sig = field != 0 ? mantissa | 0x800000 : mantissa;
    const lsb: i32 = field != 0 ? <i32>field - 150 : -149;
    const t = lsb + 32 - <i32>clz(sig), l = lsb + <i32>ctz(sig);
    if (t > top) top = t;
    if (l < low) low = l;
  }
  if (top == i32.MIN_VALUE) {
    for (let i = 0; i < count; i++) store<i16>(ints + (<usize>i << 1), 0);
    return 0;
  }
  if (top - low > MAX_SPAN) return UNALIGNED;
  store<i32>(expOut, low);
  for (let i = 0; i < count; i++) {
    const bits = reinterpret<u32>(load<f32>(values + (<usize>i << 2)));
    const field = (bits >> 23) & 0xff, mantissa = bits & 0x7fffff;
    let v: i32 = 0;
    if (field != 0 || mantissa != 0) {
      const sig = field != 0 ? mantissa | 0x800000 : mantissa;
      const lsb: i32 = field != 0 ? <i32>field - 150 : -149;
      v = <i32>(sig >> <u32>(low - lsb)); // low − lsb ≤ ctz(sig): only zero bits drop
      if (bits >> 31) v = -v;
    }
    store<i16>(ints + (<usize>i << 1), <i16>v);
  }
  return top - low;
}

/** Rows of an operand (rows × padded values) as int16 row-units: ints [rows][units·unit],
 *  exps and spans [rows][units] (an unaligned row-unit's integers are zeros). */
export function alignRows(values: usize, rows: i32, padded: i32, units: i32, unit: i32, ints: usize, exps: usize, spans: usize): void {
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < units; j++) {
      const at = <usize>(r * units + j);
      const dst = ints + ((<usize>r * <usize>(units * unit) + <usize>(j * unit)) << 1);
      const span = alignUnit(values + ((<usize>r * <usize>padded + <usize>(j * unit)) << 2), unit, dst, exps + (at << 2));
      store<i32>(spans + (at << 2), span);
      if (span == UNALIGNED) for (let i = 0; i < unit; i++) store<i16>(dst + (<usize>i << 1), 0);
    }
  }
}

/** log2 of the unit (16 or 32): the bits the sum of `unit` products may add. */
// @ts-ignore: decorator
@inline
function unitBits(unit: i32): i32 {
  return unit <= 16 ? 4 : 5;
}

/** The reference's float64 sum of one unit's products, in k order. */
function referenceUnitDot(a: usize, b: usize, count: i32): f64 {
  let d: f64 = 0;
  for (let i = 0; i < count; i++) d += <f64>load<f32>(a + (<usize>i << 2)) * <f64>load<f32>(b + (<usize>i << 2));
  return d;
}

/** Columns col0 … col0 + 7 of b into the panel: [units][pairs][8] int32 pairs, then [units][8]
 *  exponents, spans and block multipliers (padding columns: zeros, span 0, multiplier 0). */
function fillPanel(bInts: usize, bExps: usize, bSpans: usize, bScales: usize, n: i32, bBlock: i32, bBlocksPerRow: i32, units: i32, unit: i32,
  col0: i32, panel: usize): void {
  const pairs = unit >> 1, K = units * unit;
  const exps = panel + (<usize>(K >> 1) * COLUMNS << 2), spans = exps + (<usize>units * COLUMNS << 2), scales = spans + (<usize>units * COLUMNS << 2);
  for (let c = 0; c < COLUMNS; c++) {
    const col = col0 + c;
    const real = col < n;
    const row = bInts + (<usize>col * <usize>K << 1);
    for (let j = 0; j < units; j++) {
      for (let q = 0; q < pairs; q++) {
        const p: i32 = real ? load<i32>(row + (<usize>(j * unit + 2 * q) << 1)) : 0; // two int16, the first in the low half
        store<i32>(panel + (<usize>((j * pairs + q) * COLUMNS + c) << 2), p);
      }
      const at = <usize>(j * COLUMNS + c) << 2, src = <usize>(col * units + j) << 2;
      store<i32>(exps + at, real ? load<i32>(bExps + src) : 0);
      store<i32>(spans + at, real ? load<i32>(bSpans + src) : 0);
      store<f32>(scales + at, real ? load<f32>(bScales + (<usize>(col * bBlocksPerRow + (j * unit) / bBlock) << 2)) : 0);
    }
  }
}

/** D of one unit of row `row` against 4 of the panel's columns (col0 …): the int32 dots where the
 *  rule holds, the float64 sums elsewhere. */
// @ts-ignore: decorator
@inline
function unitD(sum: v128, spanA: i32, expA: i32, expB: v128, spanB: v128, sumBits: i32, a: usize, aPadded: i32, row: i32, b: usize, bPadded: i32,
  n: i32, col0: i32, j: i32, unit: i32, tmp: usize): v128 {
  const power = i32x4.shl(i32x4.add(expB, i32x4.splat(expA + 127)), 23); // 2^(ea+eb) as f32 bits, where in range
  let d = f32x4.mul(f32x4.convert_i32x4_s(sum), power);
  const exact = v128.and(v128.and(i32x4.le_s(spanB, i32x4.splat(sumBits - spanA)), i32x4.ge_s(expB, i32x4.splat(MIN_EXP - expA))),
    i32x4.le_s(expB, i32x4.splat(MAX_EXP - expA)));
  if (!i32x4.all_true(exact)) {
    v128.store(tmp, d);
    v128.store(tmp, exact, 16);
    const aUnit = a + ((<usize>row * <usize>aPadded + <usize>(j * unit)) << 2);
    for (let c = 0; c < 4; c++) {
      const col = col0 + c;
      if (col >= n || load<i32>(tmp + 16 + (<usize>c << 2)) != 0) continue;
      const bUnit = b + ((<usize>col * <usize>bPadded + <usize>(j * unit)) << 2);
      store<f32>(tmp + (<usize>c << 2), <f32>referenceUnitDot(aUnit, bUnit, unit));
    }
    d = v128.load(tmp);
  }
  return d;
}

/**
 * out[m][n] = the reference product of a (m × aPadded values, multipliers, and its alignRows form)
 * and b (likewise, n rows); `units` units of `unit` k; bias 0 for none. panel: scratch of
 * units·unit·16 + units·96 + 32 bytes.
 */
export function matmulAligned(
  a: usize, aScales: usize, aInts: usize, aExps: usize, aSpans: usize, m: i32, aPadded: i32, aBlock: i32, aBlocksPerRow: i32,
  b: usize, bScales: usize, bInts: usize, bExps: usize, bSpans: usize, n: i32, bPadded: i32, bBlock: i32, bBlocksPerRow: i32,
  units: i32, unit: i32, bias: usize, out: usize, panel: usize,
): void {
  const pairs = unit >> 1, K = units * unit, sumBits = 31 - unitBits(unit);
  const panelExps = panel + (<usize>(K >> 1) * COLUMNS << 2), panelSpans = panelExps + (<usize>units * COLUMNS << 2);
  const panelScales = panelSpans + (<usize>units * COLUMNS << 2), tmp = panelScales + (<usize>units * COLUMNS << 2);
  for (let col0 = 0; col0 < n; col0 += COLUMNS) {
    fillPanel(bInts, bExps, bSpans, bScales, n, bBlock, bBlocksPerRow, units, unit, col0, panel);
    for (let row = 0; row < m; row += 2) {
      const second = row + 1 < m ? row + 1 : row; // an odd last row is computed twice, stored once
      const i0 = aInts + (<usize>row * <usize>K << 1), i1 = aInts + (<usize>second * <usize>K << 1);
      // Two rows × 8 columns: [row][half] sums and accumulators.
      let acc00 = f32x4.splat(0), acc01 = f32x4.splat(0), acc10 = f32x4.splat(0), acc11 = f32x4.splat(0);
      for (let j = 0; j < units; j++) {
        let s00 = i32x4.splat(0), s01 = i32x4.splat(0), s10 = i32x4.splat(0), s11 = i32x4.splat(0);
        const pb = panel + (<usize>(j * pairs) * COLUMNS << 2);
        const pa0 = i0 + (<usize>(j * unit) << 1), pa1 = i1 + (<usize>(j * unit) << 1);
        for (let q = 0; q < pairs; q++) {
          const b0 = v128.load(pb + (<usize>q * COLUMNS << 2)), b1 = v128.load(pb + (<usize>q * COLUMNS << 2), 16);
          const x0 = i32x4.splat(load<i32>(pa0 + (<usize>q << 2))), x1 = i32x4.splat(load<i32>(pa1 + (<usize>q << 2)));
          s00 = i32x4.add(s00, i32x4.dot_i16x8_s(x0, b0));
          s01 = i32x4.add(s01, i32x4.dot_i16x8_s(x0, b1));
          s10 = i32x4.add(s10, i32x4.dot_i16x8_s(x1, b0));
          s11 = i32x4.add(s11, i32x4.dot_i16x8_s(x1, b1));
        }
        const at = <usize>j * COLUMNS << 2;
        const expB0 = v128.load(panelExps + at), expB1 = v128.load(panelExps + at, 16);
        const spanB0 = v128.load(panelSpans + at), spanB1 = v128.load(panelSpans + at, 16);
        const sb0 = v128.load(panelScales + at), sb1 = v128.load(panelScales + at, 16);
        const a0 = <usize>(row * units + j) << 2, a1 = <usize>(second * units + j) << 2;
        const spanA0 = load<i32>(aSpans + a0), expA0 = load<i32>(aExps + a0), spanA1 = load<i32>(aSpans + a1), expA1 = load<i32>(aExps + a1);
        const block = (j * unit) / aBlock;
        const sa0 = f32x4.splat(load<f32>(aScales + (<usize>(row * aBlocksPerRow + block) << 2)));
        const sa1 = f32x4.splat(load<f32>(aScales + (<usize>(second * aBlocksPerRow + block) << 2)));
        const d00 = unitD(s00, spanA0, expA0, expB0, spanB0, sumBits, a, aPadded, row, b, bPadded, n, col0, j, unit, tmp);
        const d01 = unitD(s01, spanA0, expA0, expB1, spanB1, sumBits, a, aPadded, row, b, bPadded, n, col0 + 4, j, unit, tmp);
        const d10 = unitD(s10, spanA1, expA1, expB0, spanB0, sumBits, a, aPadded, second, b, bPadded, n, col0, j, unit, tmp);
        const d11 = unitD(s11, spanA1, expA1, expB1, spanB1, sumBits, a, aPadded, second, b, bPadded, n, col0 + 4, j, unit, tmp);
        acc00 = f32x4.add(acc00, f32x4.mul(d00, f32x4.mul(sa0, sb0)));
        acc01 = f32x4.add(acc01, f32x4.mul(d01, f32x4.mul(sa0, sb1)));
        acc10 = f32x4.add(acc10, f32x4.mul(d10, f32x4.mul(sa1, sb0)));
        acc11 = f32x4.add(acc11, f32x4.mul(d11, f32x4.mul(sa1, sb1)));
      }
      storeColumns(out, bias, n, row, 0, col0, acc00);
      storeColumns(out, bias, n, row, 0, col0 + 4, acc01);
      if (second != row) {
        storeColumns(out, bias, n, second, 0, col0, acc10);
        storeColumns(out, bias, n, second, 0, col0 + 4, acc11);
      }
    }
  }
}
