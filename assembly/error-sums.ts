// The sums behind a quantized tensor's error statistics, in the order lib/kernels/ref/error-sums.ts
// defines (the readable reference): every element in float64, d = x − y; per row eight lanes
// (element c in lane c mod 8) held as four f64x2 vectors, the row's sum
// ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)); the rows added in order; max |d| where a NaN
// |d| counts for nothing (a compare and select: f64x2.max would return the NaN). With a histogram,
// each element counted in the bin of d (errorBin, the reference's: from d's exponent field).

import { DTYPE_F32, loadBitsInto } from "./dtype";

// Eight float64 lanes of Σd², Σx² and max |d|, for the elements past the last whole group of 8.
const numLanes: usize = memory.data(64, 16);
const denLanes: usize = memory.data(64, 16);
const maxLanes: usize = memory.data(64, 16);

// @ts-ignore: decorator
@inline
function lane(p: usize, i: i32): f64 {
  return load<f64>(p + (<usize>i << 3));
}

// The histogram's bins (lib/kernels/ref/error-sums.ts): 0 exact, 1 … 278 the binades 2^−149 …
// 2^128 of |d|, ERROR_BIN_INFINITE, ERROR_BIN_NAN.
const ERROR_BINADE_MIN: i32 = -149;
const ERROR_BIN_INFINITE: i32 = 279;

// The bin of d: its float64 exponent field E − 873 clamped to [0, ERROR_BIN_INFINITE] (d = ±0 is
// E = 0: bin 0; ±Inf and NaN are E = 2047: ERROR_BIN_INFINITE), one more for a NaN.
// @ts-ignore: decorator
@inline
function errorBin(d: f64): i32 {
  const bits = reinterpret<u64>(d);
  const exponent = <i32>(bits >> 52) & 0x7ff;
  const bin = min(max(exponent - (1023 + ERROR_BINADE_MIN - 1), 0), ERROR_BIN_INFINITE);
  return bin + <i32>((bits & 0x7fffffffffffffff) > 0x7ff0000000000000);
}

const ERROR_BINS: i32 = 281;

// This call's counts: a table of i32 per lane (element c counts in table c mod 8 — eight tables, so
// the increments of a group never wait on each other), added to the caller's float64 histogram at
// the end of the call. A call's rows fit the module's memory, far below 2^31 elements.
const laneCounts: usize = memory.data(ERROR_BINS * 8 * 4, 16);

// @ts-ignore: decorator
@inline
function count(bin: i32, lane: i32): void {
  const p = laneCounts + ((<usize>bin << 5) | (<usize>lane << 2));
  store<i32>(p, load<i32>(p) + 1);
}

// errorBin of four differences (two f64x2: lanes a0, a1, b0, b1), computed on their high words.
// @ts-ignore: decorator
@inline
function errorBins4(a: v128, b: v128): v128 {
  const high = i8x16.shuffle(a, b, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
  const exponent = v128.and(i32x4.shr_u(high, 20), i32x4.splat(0x7ff));
  const bin = i32x4.min_s(i32x4.max_s(i32x4.sub(exponent, i32x4.splat(1023 + ERROR_BINADE_MIN - 1)), i32x4.splat(0)), i32x4.splat(ERROR_BIN_INFINITE));
  // NaN: d ≠ d (its fraction may sit in the low word only); the mask is −1, so subtracting adds one.
  const nan = i8x16.shuffle(f64x2.ne(a, a), f64x2.ne(b, b), 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27);
  return i32x4.sub(bin, nan);
}

// Counts four differences (lanes `lane` … `lane` + 3).
// @ts-ignore: decorator
@inline
function count4(a: v128, b: v128, lane: i32): void {
  const bins = errorBins4(a, b);
  count(i32x4.extract_lane(bins, 0), lane);
  count(i32x4.extract_lane(bins, 1), lane + 1);
  count(i32x4.extract_lane(bins, 2), lane + 2);
  count(i32x4.extract_lane(bins, 3), lane + 3);
}

// @ts-ignore: decorator
@inline
function laneTree(p: usize): f64 {
  return ((lane(p, 0) + lane(p, 1)) + (lane(p, 2) + lane(p, 3))) + ((lane(p, 4) + lane(p, 5)) + (lane(p, 6) + lane(p, 7)));
}

/**
 * Adds rows × cols elements of src (dtype f32, bf16 or f16) against `decoded` (float32) to
 * sums = [Σd², Σx², max |d|] (three f64 at `sums`, carried between calls). `widened`: room for one
 * row of float32 (used for 16-bit sources). `histogram`: 0, or ERROR_BINS f64 counts each element
 * adds 1 to (the caller starts them at zero and adds them to its own).
 */
export function errorSums(src: usize, dtype: i32, decoded: usize, rows: i32, cols: i32, widened: usize, sums: usize, histogram: usize): void {
  if (histogram != 0) memory.fill(laneCounts, 0, ERROR_BINS * 8 * 4);
  let squaredError = load<f64>(sums), squaredSource = load<f64>(sums, 8);
  const start = load<f64>(sums, 16);
  let m0 = f64x2.splat(start), m1 = m0, m2 = m0, m3 = m0;
  for (let r = 0; r < rows; r++) {
    const base = <usize>r * <usize>cols;
    let x: usize = src + (base << 2);
    if (dtype != DTYPE_F32) {
      loadBitsInto(src, dtype, base, cols, widened, 0);
      x = widened;
    }
    const y: usize = decoded + (base << 2);
    let n0 = f64x2.splat(0), n1 = n0, n2 = n0, n3 = n0;
    let s0 = n0, s1 = n0, s2 = n0, s3 = n0;
    let c = 0;
    for (; c + 8 <= cols; c += 8) {
      const p = <usize>c << 2;
      const xa = v128.load(x + p), xb = v128.load(x + p, 16);
      const ya = v128.load(y + p), yb = v128.load(y + p, 16);
      const x0 = f64x2.promote_low_f32x4(xa), x1 = f64x2.promote_low_f32x4(i32x4.shuffle(xa, xa, 2, 3, 0, 1));
      const x2 = f64x2.promote_low_f32x4(xb), x3 = f64x2.promote_low_f32x4(i32x4.shuffle(xb, xb, 2, 3, 0, 1));
      const d0 = f64x2.sub(x0, f64x2.promote_low_f32x4(ya)), d1 = f64x2.sub(x1, f64x2.promote_low_f32x4(i32x4.shuffle(ya, ya, 2, 3, 0, 1)));
      const d2 = f64x2.sub(x2, f64x2.promote_low_f32x4(yb)), d3 = f64x2.sub(x3, f64x2.promote_low_f32x4(i32x4.shuffle(yb, yb, 2, 3, 0, 1)));
      n0 = f64x2.add(n0, f64x2.mul(d0, d0)); n1 = f64x2.add(n1, f64x2.mul(d1, d1));
      n2 = f64x2.add(n2, f64x2.mul(d2, d2)); n3 = f64x2.add(n3, f64x2.mul(d3, d3));
      s0 = f64x2.add(s0, f64x2.mul(x0, x0)); s1 = f64x2.add(s1, f64x2.mul(x1, x1));
      s2 = f64x2.add(s2, f64x2.mul(x2, x2)); s3 = f64x2.add(s3, f64x2.mul(x3, x3));
      const a0 = f64x2.abs(d0), a1 = f64x2.abs(d1), a2 = f64x2.abs(d2), a3 = f64x2.abs(d3);
      m0 = v128.bitselect(a0, m0, f64x2.gt(a0, m0)); m1 = v128.bitselect(a1, m1, f64x2.gt(a1, m1));
      m2 = v128.bitselect(a2, m2, f64x2.gt(a2, m2)); m3 = v128.bitselect(a3, m3, f64x2.gt(a3, m3));
      if (histogram != 0) {
        count4(d0, d1, 0); count4(d2, d3, 4);
      }
    }
    v128.store(numLanes, n0); v128.store(numLanes, n1, 16); v128.store(numLanes, n2, 32); v128.store(numLanes, n3, 48);
    v128.store(denLanes, s0); v128.store(denLanes, s1, 16); v128.store(denLanes, s2, 32); v128.store(denLanes, s3, 48);
    v128.store(maxLanes, m0); v128.store(maxLanes, m1, 16); v128.store(maxLanes, m2, 32); v128.store(maxLanes, m3, 48);
    // The rest of the row: lane c mod 8 (c is a multiple of 8 here).
    for (; c < cols; c++) {
      const l: usize = <usize>(c & 7) << 3;
      const xv = <f64>load<f32>(x + (<usize>c << 2));
      const d = xv - <f64>load<f32>(y + (<usize>c << 2));
      store<f64>(numLanes + l, load<f64>(numLanes + l) + d * d);
      store<f64>(denLanes + l, load<f64>(denLanes + l) + xv * xv);
      const a = abs<f64>(d);
      if (a > load<f64>(maxLanes + l)) store<f64>(maxLanes + l, a);
      if (histogram != 0) count(errorBin(d), c & 7);
    }
    m0 = v128.load(maxLanes); m1 = v128.load(maxLanes, 16); m2 = v128.load(maxLanes, 32); m3 = v128.load(maxLanes, 48);
    squaredError += laneTree(numLanes);
    squaredSource += laneTree(denLanes);
  }
  v128.store(maxLanes, m0); v128.store(maxLanes, m1, 16); v128.store(maxLanes, m2, 32); v128.store(maxLanes, m3, 48);
  let maxAbs = start;
  for (let i = 0; i < 8; i++) if (lane(maxLanes, i) > maxAbs) maxAbs = lane(maxLanes, i);
  store<f64>(sums, squaredError);
  store<f64>(sums, squaredSource, 8);
  store<f64>(sums, maxAbs, 16);
  if (histogram != 0) {
    for (let b = 0; b < ERROR_BINS; b++) {
      let n = 0;
      for (let l = 0; l < 8; l++) n += load<i32>(laneCounts + ((<usize>b << 5) | (<usize>l << 2)));
      const p = histogram + (<usize>b << 3);
      store<f64>(p, load<f64>(p) + <f64>n);
    }
  }
}
