// The sums behind a quantized tensor's error statistics, in the order lib/kernels/ref/error-sums.ts
// defines (the readable reference): every element in float64, d = x − y; per row eight lanes
// (element c in lane c mod 8) held as four f64x2 vectors, the row's sum
// ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)); the rows added in order; max |d| where a NaN
// |d| counts for nothing (a compare and select: f64x2.max would return the NaN).

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

// @ts-ignore: decorator
@inline
function laneTree(p: usize): f64 {
  return ((lane(p, 0) + lane(p, 1)) + (lane(p, 2) + lane(p, 3))) + ((lane(p, 4) + lane(p, 5)) + (lane(p, 6) + lane(p, 7)));
}

/**
 * Adds rows × cols elements of src (dtype f32, bf16 or f16) against `decoded` (float32) to
 * sums = [Σd², Σx², max |d|] (three f64 at `sums`, carried between calls). `widened`: room for one
 * row of float32 (used for 16-bit sources).
 */
export function errorSums(src: usize, dtype: i32, decoded: usize, rows: i32, cols: i32, widened: usize, sums: usize): void {
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
}
