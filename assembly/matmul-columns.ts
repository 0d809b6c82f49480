// What the two matmul kernels (matmul.ts, matmul-planes.ts) share: the tile width and the store of
// four finished output columns (bias added, columns past n skipped).

export const TILE: i32 = 16;

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
