// What the integer matmul kernels (matmul.ts, matmul-planes.ts, matmul-aligned.ts) share: the tile
// width, the fold of i32x4.dot_i16x8_s's pair-split sums, the float32 step of a unit (matmul.ts and
// matmul-planes.ts), and the store of four finished output columns (bias added, columns past n skipped).

export const TILE: i32 = 16;

/** [c0 c0 c1 c1] + [c2 c2 c3 c3] (each column's sum in two lanes) → [c0 c1 c2 c3]. */
// @ts-ignore: decorator
@inline
export function foldPairs(pa: v128, pb: v128): v128 {
  return i32x4.add(v128.shuffle<i32>(pa, pb, 0, 2, 4, 6), v128.shuffle<i32>(pa, pb, 1, 3, 5, 7));
}

/** acc + (D·unitScale)·(sa·sb): the float32 step of one unit for four columns, in every backend's
 *  order (D the unit's exact integer dot, sa the activation block's multiplier splat, sb the columns'). */
// @ts-ignore: decorator
@inline
export function unitStep(acc: v128, d: v128, unitScale: v128, sa: v128, sb: v128): v128 {
  return f32x4.add(acc, f32x4.mul(f32x4.mul(f32x4.convert_i32x4_s(d), unitScale), f32x4.mul(sa, sb)));
}

// @ts-ignore: decorator
@inline
function storeColumn(out: usize, bias: usize, n: i32, row: i32, col: i32, v: f32): void {
  if (col >= n) return;
  if (bias != 0) v = v + load<f32>(bias + (<usize>col << 2));
  store<f32>(out + ((<usize>row * <usize>n + <usize>col) << 2), v);
}

/** Columns tile·16 + first … + 3 of `row`: the four lanes of acc. */
// @ts-ignore: decorator
@inline
export function storeColumns(out: usize, bias: usize, n: i32, row: i32, tile: i32, first: i32, acc: v128): void {
  const col0 = tile * TILE + first;
  storeColumn(out, bias, n, row, col0, f32x4.extract_lane(acc, 0));
  storeColumn(out, bias, n, row, col0 + 1, f32x4.extract_lane(acc, 1));
  storeColumn(out, bias, n, row, col0 + 2, f32x4.extract_lane(acc, 2));
  storeColumn(out, bias, n, row, col0 + 3, f32x4.extract_lane(acc, 3));
}
