// The decoded-operand product in the reference order of lib/core/matmul.ts (the addon's
// matmulDecoded*; here for FP8 × FP8, float32 and every pairing without an integer kernel): per
// output, each unit's products summed in float64 in k order (a product of two floats is exact in
// float64, so mul then add is the reference's d += a·b), rounded to float32, times f32(sa·sb),
// added to a float32 accumulator; then the bias. Four output columns side by side (a panel of b's
// values [k][4] built here), two rows at a time, so every output's operations are the scalar ones.

const COLUMNS: i32 = 4;

/** b's columns col0 … col0 + 3 as [k][4] values, then [unit][4] block multipliers; 0 past n. */
function fillPanel(b: usize, bScales: usize, n: i32, bPadded: i32, bBlock: i32, bBlocksPerRow: i32, units: i32, unit: i32, col0: i32, panel: usize): void {
  const K = units * unit;
  const scales = panel + (<usize>K * COLUMNS << 2);
  for (let c = 0; c < COLUMNS; c++) {
    const col = col0 + c;
    const real = col < n;
    const row = b + (<usize>col * <usize>bPadded << 2);
    for (let k = 0; k < K; k++) store<f32>(panel + (<usize>(k * COLUMNS + c) << 2), real ? load<f32>(row + (<usize>k << 2)) : 0);
    for (let j = 0; j < units; j++) {
      const s: f32 = real ? load<f32>(bScales + (<usize>(col * bBlocksPerRow + (j * unit) / bBlock) << 2)) : 0;
      store<f32>(scales + (<usize>(j * COLUMNS + c) << 2), s);
    }
  }
}

/** f32 of each float64 lane of lo (columns 0, 1) and hi (columns 2, 3), as one f32x4. */
// @ts-ignore: decorator
@inline
function roundColumns(lo: v128, hi: v128): v128 {
  return v128.shuffle<f32>(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5);
}

// @ts-ignore: decorator
@inline
function storeRow(out: usize, bias: usize, n: i32, row: i32, col0: i32, acc: v128): void {
  for (let c = 0; c < COLUMNS; c++) {
    const col = col0 + c;
    if (col >= n) break;
    let v: f32 = 0;
    if (c == 0) v = f32x4.extract_lane(acc, 0);
    else if (c == 1) v = f32x4.extract_lane(acc, 1);
    else if (c == 2) v = f32x4.extract_lane(acc, 2);
    else v = f32x4.extract_lane(acc, 3);
    if (bias != 0) v = v + load<f32>(bias + (<usize>col << 2));
    store<f32>(out + ((<usize>row * <usize>n + <usize>col) << 2), v);
  }
}

/**
 * out[m][n] over rows of a (m × aPadded values, m × aBlocksPerRow multipliers) and b (n × bPadded,
 * n × bBlocksPerRow); `units` units of `unit` k; bias 0 for none; panel: scratch of
 * (units·unit + units)·4 floats.
 */
export function matmulDecoded(
  a: usize, aScales: usize, m: i32, aPadded: i32, aBlock: i32, aBlocksPerRow: i32,
  b: usize, bScales: usize, n: i32, bPadded: i32, bBlock: i32, bBlocksPerRow: i32,
  units: i32, unit: i32, bias: usize, out: usize, panel: usize,
): void {
  const K = units * unit;
  const panelScales = panel + (<usize>K * COLUMNS << 2);
  for (let col0 = 0; col0 < n; col0 += COLUMNS) {
    fillPanel(b, bScales, n, bPadded, bBlock, bBlocksPerRow, units, unit, col0, panel);
    for (let row = 0; row < m; row += 2) {
      const second = row + 1 < m ? row + 1 : row; // an odd last row is computed twice, stored once
      const a0 = a + (<usize>row * <usize>aPadded << 2);
      const a1 = a + (<usize>second * <usize>aPadded << 2);
      let acc0 = f32x4.splat(0);
      let acc1 = f32x4.splat(0);
      for (let j = 0; j < units; j++) {
        let d0lo = f64x2.splat(0), d0hi = f64x2.splat(0), d1lo = f64x2.splat(0), d1hi = f64x2.splat(0);
        for (let i = 0; i < unit; i++) {
          const k = j * unit + i;
          const bv = v128.load(panel + (<usize>k * COLUMNS << 2));
          const blo = f64x2.promote_low_f32x4(bv);
          const bhi = f64x2.promote_low_f32x4(v128.shuffle<f32>(bv, bv, 2, 3, 2, 3));
          const x0 = f64x2.splat(<f64>load<f32>(a0 + (<usize>k << 2)));
          const x1 = f64x2.splat(<f64>load<f32>(a1 + (<usize>k << 2)));
          d0lo = f64x2.add(d0lo, f64x2.mul(x0, blo));
          d0hi = f64x2.add(d0hi, f64x2.mul(x0, bhi));
          d1lo = f64x2.add(d1lo, f64x2.mul(x1, blo));
          d1hi = f64x2.add(d1hi, f64x2.mul(x1, bhi));
        }
        const sb = v128.load(panelScales + (<usize>j * COLUMNS << 2));
        const block = (j * unit) / aBlock;
        const s0 = f32x4.mul(f32x4.splat(load<f32>(aScales + (<usize>(row * aBlocksPerRow + block) << 2))), sb);
        const s1 = f32x4.mul(f32x4.splat(load<f32>(aScales + (<usize>(second * aBlocksPerRow + block) << 2))), sb);
        acc0 = f32x4.add(acc0, f32x4.mul(roundColumns(d0lo, d0hi), s0));
        acc1 = f32x4.add(acc1, f32x4.mul(roundColumns(d1lo, d1hi), s1));
      }
      storeRow(out, bias, n, row, col0, acc0);
      if (second != row) storeRow(out, bias, n, second, col0, acc1);
    }
  }
}
