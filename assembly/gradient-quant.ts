// Gradient quantizers of 1-bit FQT, the wasm twin of lib/kernels/ref/gradient-quant.ts (which
// documents the steps and their float order): 1. per-group ranges, 2. keep decisions (AGP /
// top-k) with each group's scale, zero point and code multiplier, 3. stochastic b-bit codes.
// Phases 1 and 3 take runs of rows (lib/kernels/wasm.ts streams chunks through them); phase 2
// sees every group at once. The same float32/float64 operations in the same order as the
// reference, so the bytes are identical.

import { fmix32, randomBits, randomBitsVec, streamKey } from "./stochastic";

const GROUPS_SAMPLE: i32 = 1;
const GROUPS_CHANNEL: i32 = 2;
const PRUNE_AGP: i32 = 1;
const PRUNE_TOPK: i32 = 2;
const KEEP_STREAM_BASE: u64 = <u64>1 << 52;

// @ts-ignore: decorator
@inline
function groupOf(groups: i32, row: u32, col: i32): usize {
  return groups == GROUPS_SAMPLE ? <usize>row : groups == GROUPS_CHANNEL ? <usize>col : 0;
}

/** Phase 1, start: every group empty (lo = +Inf, hi = −Inf). */
export function gradientRangesInit(lo: usize, hi: usize, count: i32): void {
  for (let g = 0; g < count; g++) {
    store<f32>(lo + (<usize>g << 2), Infinity);
    store<f32>(hi + (<usize>g << 2), -Infinity);
  }
}

/** Index in the row of its first non-finite value, or −1. */
function firstNonFinite(row: usize, cols: i32): i32 {
  for (let c = 0; c < cols; c++) {
    const x = load<f32>(row + (<usize>c << 2));
    if (x - x != 0) return c;
  }
  return -1;
}

/** Phase 1, a run of rows from row `firstRow`: widen each group's range, four lanes at a time
 *  (min and max do not depend on the order; −0 is dropped at the end). Returns the index in
 *  `src` of the first non-finite value, or −1. */
export function gradientRanges(src: usize, rows: i32, cols: i32, groups: i32, firstRow: u32, lo: usize, hi: usize): i32 {
  const zero = f32x4.splat(0);
  for (let r = 0; r < rows; r++) {
    const row = src + (<usize>(r * cols) << 2);
    let bad = i32x4.splat(0);
    let c = 0;
    if (groups == GROUPS_CHANNEL) {
      for (; c + 4 <= cols; c += 4) {
        const o = <usize>c << 2;
        const x = v128.load(row + o);
        bad = v128.or(bad, f32x4.ne(f32x4.sub(x, x), zero));
        v128.store(lo + o, f32x4.pmin(v128.load(lo + o), x));
        v128.store(hi + o, f32x4.pmax(v128.load(hi + o), x));
      }
      for (; c < cols; c++) {
        const o = <usize>c << 2;
        const x = load<f32>(row + o);
        if (x - x != 0) bad = i32x4.splat(-1);
        if (x < load<f32>(lo + o)) store<f32>(lo + o, x);
        if (x > load<f32>(hi + o)) store<f32>(hi + o, x);
      }
    } else {
      const o = groupOf(groups, firstRow + <u32>r, 0) << 2;
      let lv = f32x4.splat(load<f32>(lo + o));
      let hv = f32x4.splat(load<f32>(hi + o));
      for (; c + 4 <= cols; c += 4) {
        const x = v128.load(row + (<usize>c << 2));
        bad = v128.or(bad, f32x4.ne(f32x4.sub(x, x), zero));
        lv = f32x4.pmin(lv, x);
        hv = f32x4.pmax(hv, x);
      }
      let l = min(min(f32x4.extract_lane(lv, 0), f32x4.extract_lane(lv, 1)), min(f32x4.extract_lane(lv, 2), f32x4.extract_lane(lv, 3)));
      let h = max(max(f32x4.extract_lane(hv, 0), f32x4.extract_lane(hv, 1)), max(f32x4.extract_lane(hv, 2), f32x4.extract_lane(hv, 3)));
      for (; c < cols; c++) {
        const x = load<f32>(row + (<usize>c << 2));
        if (x - x != 0) bad = i32x4.splat(-1);
        if (x < l) l = x;
        if (x > h) h = x;
      }
      store<f32>(lo + o, l);
      store<f32>(hi + o, h);
    }
    if (v128.any_true(bad)) return r * cols + firstNonFinite(row, cols);
  }
  return -1;
}

/** Phase 1, end: an empty group becomes [0, 0], −0 becomes +0. */
export function gradientRangesFinish(lo: usize, hi: usize, count: i32): void {
  for (let g = 0; g < count; g++) {
    const o = <usize>g << 2;
    let l = load<f32>(lo + o);
    let h = load<f32>(hi + o);
    if (l > h) {
      l = 0;
      h = 0;
    }
    store<f32>(lo + o, l + <f32>0);
    store<f32>(hi + o, h + <f32>0);
  }
}

// @ts-ignore: decorator
@inline
function rangeOf(lo: usize, hi: usize, g: i32): f64 {
  const o = <usize>g << 2;
  return <f64>load<f32>(hi + o) - <f64>load<f32>(lo + o);
}

function keepUniform(seed: u32, g: i32): f64 {
  const r1 = randomBits(seed, KEEP_STREAM_BASE + 2 * <u64>g);
  const r2 = randomBits(seed, KEEP_STREAM_BASE + 2 * <u64>g + 1);
  return <f64>((<u64>r1 << 21) | <u64>(r2 >>> 11)) * 1.1102230246251565e-16; // 2^-53
}

function agpProbabilities(lo: usize, hi: usize, count: i32, bits: i32, p: usize, clamped: usize): void {
  const K = <f64>count / <f64>bits;
  let c: f64 = 0;
  let nClamped: i32 = 0;
  memory.fill(clamped, 0, <usize>count);
  for (;;) {
    let S: f64 = 0;
    for (let g = 0; g < count; g++) {
      const R = rangeOf(lo, hi, g);
      if (R > 0 && load<u8>(clamped + <usize>g) == 0) S += R;
    }
    const Krem = K - <f64>nClamped;
    if (S == 0 || Krem <= 0) break;
    c = Krem / S;
    let newly: i32 = 0;
    for (let g = 0; g < count; g++) {
      const R = rangeOf(lo, hi, g);
      if (R > 0 && load<u8>(clamped + <usize>g) == 0 && c * R >= 1) {
        store<u8>(clamped + <usize>g, 1);
        newly++;
      }
    }
    if (newly == 0) break;
    nClamped += newly;
  }
  for (let g = 0; g < count; g++) {
    const R = rangeOf(lo, hi, g);
    let pg: f64;
    if (load<u8>(clamped + <usize>g) != 0) pg = 1;
    else if (R > 0) pg = Math.min(1, c * R);
    else pg = load<f32>(lo + (<usize>g << 2)) != 0 ? 1 : 0;
    store<f64>(p + (<usize>g << 3), pg);
  }
}

function siftDown(a: usize, start: i32, end: i32): void {
  let root = start;
  while (2 * root + 1 < end) {
    let child = 2 * root + 1;
    if (child + 1 < end && load<f32>(a + (<usize>child << 2)) < load<f32>(a + (<usize>(child + 1) << 2))) child++;
    const rv = load<f32>(a + (<usize>root << 2));
    const cv = load<f32>(a + (<usize>child << 2));
    if (!(rv < cv)) return;
    store<f32>(a + (<usize>root << 2), cv);
    store<f32>(a + (<usize>child << 2), rv);
    root = child;
  }
}

/** Ascending heap sort of `n` float32 (no NaN: the scores are finite). */
function sortAscending(a: usize, n: i32): void {
  for (let s = n / 2 - 1; s >= 0; s--) siftDown(a, s, n);
  for (let end = n - 1; end > 0; end--) {
    const t = load<f32>(a);
    store<f32>(a, load<f32>(a + (<usize>end << 2)));
    store<f32>(a + (<usize>end << 2), t);
    siftDown(a, 0, end);
  }
}

function topkProbabilities(lo: usize, hi: usize, count: i32, bits: i32, p: usize, scores: usize): void {
  if (count == 0) return;
  const k = max(1, count / bits);
  for (let g = 0; g < count; g++) {
    const o = <usize>g << 2;
    store<f32>(scores + o, max(-load<f32>(lo + o), load<f32>(hi + o)));
  }
  sortAscending(scores, count);
  const threshold = load<f32>(scores + (<usize>(count - k) << 2));
  for (let g = 0; g < count; g++) {
    const o = <usize>g << 2;
    const score = max(-load<f32>(lo + o), load<f32>(hi + o));
    store<f64>(p + (<usize>g << 3), score >= threshold ? 1 : 0);
  }
}

/** Phase 2 over all `count` groups; `p` (f64), `clamped` (u8) and `scores` (f32) are scratch. */
export function gradientKeep(
  lo: usize, hi: usize, count: i32, bits: i32, prune: i32, seed: u32,
  scales: usize, zeros: usize, mask: usize, keep: usize, inv: usize,
  p: usize, clamped: usize, scores: usize,
): void {
  const B = <f64>((1 << bits) - 1);
  if (prune == PRUNE_AGP) agpProbabilities(lo, hi, count, bits, p, clamped);
  else if (prune == PRUNE_TOPK) topkProbabilities(lo, hi, count, bits, p, scores);
  else for (let g = 0; g < count; g++) store<f64>(p + (<usize>g << 3), 1);
  for (let g = 0; g < count; g++) {
    const o = <usize>g << 2;
    const pg = load<f64>(p + (<usize>g << 3));
    const kept = prune == PRUNE_AGP ? keepUniform(seed, g) < pg : pg == 1;
    store<f32>(keep + o, <f32>pg);
    store<u8>(mask + <usize>g, kept ? 1 : 0);
    if (kept) {
      const l = <f64>load<f32>(lo + o);
      const R = <f64>load<f32>(hi + o) - l;
      store<f32>(scales + o, <f32>(R / B / pg));
      store<f32>(zeros + o, <f32>(l / pg));
      store<f64>(inv + (<usize>g << 3), R > 0 ? B / R : 0);
    } else {
      store<f32>(scales + o, 0);
      store<f32>(zeros + o, 0);
      store<f64>(inv + (<usize>g << 3), 0);
    }
  }
}

// @ts-ignore: decorator
@inline
function scalarCode(x: f32, l: f64, m: f64, B: f64, bits32: u32): u8 {
  if (m == 0) return 0; // R = 0 or pruned: the formula gives 0 without drawing
  let u = (<f64>x - l) * m;
  if (u > B) u = B;
  const f = Math.floor(u);
  return <u8>(<u32>f + (<f64>bits32 < (u - f) * 4294967296.0 ? 1 : 0));
}

/** Four codes at once: the scalar steps on two f64x2 halves (trunc = floor for u ≥ 0; −0 gives
 *  code 0 either way), random bits as four u32 lanes. Returns the codes as i32x4. */
// @ts-ignore: decorator
@inline
function codes4(x: v128, lLo: v128, lHi: v128, mLo: v128, mHi: v128, B: v128, rnd: v128): v128 {
  const two32 = f64x2.splat(4294967296.0);
  const uLo = f64x2.pmin(f64x2.mul(f64x2.sub(f64x2.promote_low_f32x4(x), lLo), mLo), B);
  const uHi = f64x2.pmin(f64x2.mul(f64x2.sub(f64x2.promote_low_f32x4(v128.shuffle<i32>(x, x, 2, 3, 0, 1)), lHi), mHi), B);
  const fLo = i32x4.trunc_sat_f64x2_s_zero(uLo);
  const fHi = i32x4.trunc_sat_f64x2_s_zero(uHi);
  const upLo = f64x2.lt(f64x2.convert_low_i32x4_u(rnd), f64x2.mul(f64x2.sub(uLo, f64x2.convert_low_i32x4_s(fLo)), two32));
  const upHi = f64x2.lt(f64x2.convert_low_i32x4_u(v128.shuffle<i32>(rnd, rnd, 2, 3, 0, 1)), f64x2.mul(f64x2.sub(uHi, f64x2.convert_low_i32x4_s(fHi)), two32));
  return i32x4.sub(v128.shuffle<i32>(fLo, fHi, 0, 1, 4, 5), v128.shuffle<i32>(upLo, upHi, 0, 2, 4, 6));
}

/** Phase 3, a run of rows from row `firstRow`: stochastic b-bit codes, four at a time (SIMD128)
 *  where the four flat indices share their high word, one at a time otherwise. */
export function gradientCodes(
  src: usize, rows: i32, cols: i32, bits: i32, groups: i32, seed: u32, firstRow: u32, lo: usize, inv: usize, codes: usize,
): void {
  const B = <f64>((1 << bits) - 1);
  const Bv = f64x2.splat(B);
  let keyHigh: u32 = 0;
  let key = streamKey(seed, 0);
  const perColumn = groups == GROUPS_CHANNEL;
  for (let r = 0; r < rows; r++) {
    const row = firstRow + <u32>r;
    const x = src + (<usize>(r * cols) << 2);
    const out = codes + <usize>(r * cols);
    const g = groupOf(groups, row, 0);
    const l = <f64>load<f32>(lo + (g << 2));
    const m = load<f64>(inv + (g << 3));
    if (!perColumn && m == 0) {
      memory.fill(out, 0, <usize>cols);
      continue;
    }
    const lv = f64x2.splat(l);
    const mv = f64x2.splat(m);
    const base = <u64>row * <u64>cols;
    let c = 0;
    for (; c + 4 <= cols; c += 4) {
      const index = base + <u64>c;
      const high = <u32>(index >>> 32);
      const low = <u32>index;
      if (high != keyHigh) {
        keyHigh = high;
        key = streamKey(seed, high);
      }
      if (low > 0xfffffffc) break; // the four indices would cross into the next stream: finish one by one
      const xv = v128.load(x + (<usize>c << 2));
      let v: v128;
      if (perColumn) {
        const lc = v128.load(lo + (<usize>c << 2));
        v = codes4(xv, f64x2.promote_low_f32x4(lc), f64x2.promote_low_f32x4(v128.shuffle<i32>(lc, lc, 2, 3, 0, 1)),
          v128.load(inv + (<usize>c << 3)), v128.load(inv + (<usize>c << 3), 16), Bv, randomBitsVec(key, low));
      } else {
        v = codes4(xv, lv, lv, mv, mv, Bv, randomBitsVec(key, low));
      }
      const bytes = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(v, v), i16x8.narrow_i32x4_u(v, v));
      store<u32>(out + <usize>c, i32x4.extract_lane(bytes, 0));
    }
    for (; c < cols; c++) {
      const index = base + <u64>c;
      const high = <u32>(index >>> 32);
      if (high != keyHigh) {
        keyHigh = high;
        key = streamKey(seed, high);
      }
      const lc = perColumn ? <f64>load<f32>(lo + (<usize>c << 2)) : l;
      const mc = perColumn ? load<f64>(inv + (<usize>c << 3)) : m;
      store<u8>(out + <usize>c, scalarCode(load<f32>(x + (<usize>c << 2)), lc, mc, B, fmix32(<u32>index ^ key)));
    }
  }
}

/** x̂ = f32(zero + code·scale), +0 in a pruned group, for a run of rows from row `firstRow`. */
export function gradientDequantize(codes: usize, scales: usize, zeros: usize, mask: usize, rows: i32, cols: i32, groups: i32, firstRow: u32, out: usize): void {
  for (let r = 0; r < rows; r++) {
    const row = firstRow + <u32>r;
    for (let c = 0; c < cols; c++) {
      const i = <usize>(r * cols + c);
      const g = groupOf(groups, row, c);
      let v: f32 = 0;
      if (load<u8>(mask + g) != 0) {
        v = <f32>(<f64>load<f32>(zeros + (g << 2)) + <f64>load<u8>(codes + i) * <f64>load<f32>(scales + (g << 2)));
      }
      store<f32>(out + (i << 2), v);
    }
  }
}
