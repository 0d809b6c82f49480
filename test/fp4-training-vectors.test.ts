// fp4kit's FP4 training path against independent reference vectors: test/fixtures/fp4-training-vectors.json,
// written by scripts/fp4-training-vectors.py from Wang et al. 2025 (arXiv 2501.17116) and its released
// code (Azure/MS-AMP@9746ea8, Mr-Philo/MS-AMP@8fde535) in numpy/torch, nothing of fp4kit. Exact
// definitions are compared bit for bit; float32 sums within the error bound of float32 summation.
// Where fp4kit departs from the released code on purpose, the test says so and cites the doc.
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { onTfCpuForThisFile } from './helpers/tf-cpu-suite.js';
import { castE5M2, quantizeE2M1, roundE2M1, type TieRule } from '../lib/training/fp4-quantizer.js';
import { dgeFactor } from '../lib/training/dge.js';
import { clampRows } from '../lib/training/occ.js';
import { layers } from '../lib/tfjs/index.js';

type Bits = number[];
interface QuantCase { name: string; rows: number; cols: number; axis: 'rows' | 'columns'; ties: TieRule; x: Bits; scales: Bits; scaled: Bits; grid: Bits; values: Bits;
  release_expression: { scales: Bits; scaled: Bits; grid: Bits; values: Bits } }
interface DgeCase { name: string; k: number; cap: number; u: Bits; exact: number[]; f32: Bits; kernel_bf16: Bits; bf16_determined: boolean[]; f32_determined: boolean[] }
interface OccCase { name: string; rows: number; cols: number; alpha: number; x: Bits; clamped: Bits; residual: Bits }
interface LayerCase { name: string; ties: TieRule; occ: number | null; gradients: 'fp32' | 'e5m2'; dge: { k: number; cap: number };
  a_scales: Bits; w_scales: Bits; a_grid: Bits; w_grid: Bits; w_scaled: Bits; residual: Bits;
  y_product: number[]; y_residual: number[]; y_residual_abs: number[]; y: number[];
  dx: number[]; dx_abs: number[]; dw_base: number[]; dw_base_abs: number[]; dge_release: number[]; dge_u_clamped: number[];
  dw_residual: number[]; dw_residual_abs: number[]; dw: number[]; u_past_grid: number; g_e5m2?: Bits }
interface Fixture {
  rounding: { x: Bits; ties_up: Bits; nearest_even: Bits };
  quantizer: QuantCase[];
  quantizer_nonfinite_release: { rows: number; cols: number; x: Bits; scales: Bits; values: Bits };
  dge: DgeCase[];
  occ: OccCase[];
  layer: { m: number; k: number; n: number; x: Bits; w: Bits; dy: Bits; cases: LayerCase[] };
}

const fixture = JSON.parse(readFileSync(new URL('./fixtures/fp4-training-vectors.json', import.meta.url), 'utf8')) as Fixture;

const f32 = (b: Bits): Float32Array => new Float32Array(Uint32Array.from(b).buffer);
const bitsOf = (a: ArrayLike<number>): number[] => Array.from(new Uint32Array(Float32Array.from(a).buffer));
/** Indices where two float32 arrays differ in bits. */
function bitDiff(actual: ArrayLike<number>, expectedBits: Bits): number[] {
  const a = bitsOf(actual);
  expect(a.length).toBe(expectedBits.length);
  return a.flatMap((v, i) => (v === expectedBits[i] ? [] : [i]));
}
function bf16(v: number): number {
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer);
  if ((u[0] & 0x7fffffff) <= 0x7f800000) u[0] = (u[0] + 0x7fff + ((u[0] >>> 16) & 1)) & 0xffff0000;
  return f[0];
}
const isNegZeroForPosZero = (actual: number, expected: number) => Object.is(actual, -0) && Object.is(expected, 0);
/** u clamped to ±6, as fp4kit's quantizer reports its scaled value (docs/fp4-training.md, "DGE"). */
const clamp6 = (u: number) => Math.min(6, Math.max(-6, u));

onTfCpuForThisFile();

describe('E2M1 rounding (roundE2M1) against the released table and OCP round-to-nearest-even', () => {
  const x = f32(fixture.rounding.x);

  it("'nearest-even': bit for bit", () => {
    expect(bitDiff(Array.from(x, (v) => roundE2M1(v, 'nearest-even')), fixture.rounding.nearest_even)).toEqual([]);
  });

  it("'ties-up' is quantize.cu's table (ties toward +∞), up to the sign of zero", () => {
    const want = f32(fixture.rounding.ties_up);
    const got = Array.from(x, (v) => roundE2M1(v, 'ties-up'));
    const diff = bitDiff(got, fixture.rounding.ties_up);
    // The only difference: the released kernel writes +0 for every input in [−0.25, 0.25)
    // (quantize.cu:36-37, `closest = 0.0f`), fp4kit keeps the sign (E2M1 has a −0 code, notes §2.1;
    // docs/fp4-training.md: "E2M1 saturates at ±6, keeps NaN and −0"). Equal as numbers.
    for (const i of diff) {
      expect(x[i] < 0 || Object.is(x[i], -0), `input ${x[i]}`).toBe(true);
      expect(isNegZeroForPosZero(got[i], want[i]), `input ${x[i]}: ${got[i]} vs ${want[i]}`).toBe(true);
    }
    expect(diff.length).toBeGreaterThan(0); // -0 and -0.1 are in the vectors
  });
});

describe('the E2M1 quantizer (quantizeE2M1) with exact absmax scales: per token and per output channel', () => {
  for (const c of fixture.quantizer) {
    it(c.name, () => {
      const q = quantizeE2M1(f32(c.x), c.rows, c.cols, c.axis, c.ties);
      // γ = f32(6 / amax) (1 for an all-zero group): bit for bit.
      expect(bitDiff(q.scales, c.scales)).toEqual([]);
      // u = f32(x·γ): fp4kit clamps it to ±6 (docs/fp4-training.md, "DGE": float rounding can take
      // a group's largest element to 6.0000005); the released code does not. Equal after the clamp.
      const refScaled = f32(c.scaled);
      expect(bitDiff(q.scaled, bitsOf(refScaled.map(clamp6)))).toEqual([]);
      const past = refScaled.reduce((n, u) => n + (Math.abs(u) > 6 ? 1 : 0), 0);
      expect(bitDiff(q.scaled, c.scaled).length).toBe(past);
      // Q(u) and Q(u)/γ: bit for bit, except a +0 of the released table that fp4kit writes as −0
      // (see the rounding test: only the tie rule the released kernel has).
      for (const [got, want] of [[q.grid!, c.grid], [q.values, c.values]] as const) {
        const ref = f32(want);
        const diff = bitDiff(got, want);
        if (c.ties === 'nearest-even') expect(diff).toEqual([]);
        for (const i of diff) expect(isNegZeroForPosZero(got[i], ref[i]), `${i}: ${got[i]} vs ${ref[i]}`).toBe(true);
      }
    });

    it(`${c.name}: against the released expression of the scale, amax.reciprocal() * 6 (two roundings)`, () => {
      // The released `fp_max / amax` (fp4_quantize.py:164 → meta.py) is torch's reversed division,
      // computed as reciprocal-then-multiply. fp4kit takes the correctly rounded quotient (the paper's
      // Eq. 1; docs/fp4-training.md "exact float32 absmax scale γ = 6 / max|x|"). NOT documented as a
      // difference: they differ by one float32 ulp of γ on some groups; a value differs only in
      // those groups (its x̂ = Q(u)/γ), and its E2M1 code only where u sits within an ulp of a midpoint.
      const q = quantizeE2M1(f32(c.x), c.rows, c.cols, c.axis, c.ties);
      const r = c.release_expression;
      const scaleDiff = new Set(bitDiff(q.scales, r.scales));
      const group = (i: number) => (c.axis === 'rows' ? Math.floor(i / c.cols) : i % c.cols);
      for (const i of bitDiff(q.values, r.values)) {
        const [got, want] = [q.values[i], f32(r.values)[i]];
        if (!isNegZeroForPosZero(got, want)) expect(scaleDiff.has(group(i)), `element ${i}`).toBe(true);
      }
      for (const g of scaleDiff) expect(Math.abs(q.scales[g] - f32(r.scales)[g])).toBeLessThanOrEqual(q.scales[g] * 2 ** -23);
    });
  }

  it('Inf / NaN: the released code takes γ = 1 and saturates; fp4kit makes the group NaN (docs/fp4-training.md, "Non-finite values")', () => {
    const c = fixture.quantizer_nonfinite_release;
    const q = quantizeE2M1(f32(c.x), c.rows, c.cols, 'rows', 'ties-up');
    const ref = f32(c.values);
    for (let r = 0; r < c.rows; r++) {
      const row = Array.from(f32(c.x).subarray(r * c.cols, (r + 1) * c.cols));
      const got = Array.from(q.values.subarray(r * c.cols, (r + 1) * c.cols));
      const want = Array.from(ref.subarray(r * c.cols, (r + 1) * c.cols));
      expect(want.every(Number.isFinite)).toBe(true); // the release: finite (Inf → ±6, NaN → 6)
      if (row.every(Number.isFinite)) expect(bitsOf(got)).toEqual(bitsOf(want));
      else expect(got.every(Number.isNaN)).toBe(true);
    }
  });
});

describe('DGE (dgeFactor) against f′(u) = (1/k)|2(u − l)/δ − 1|^(1/k − 1), capped, and the released kernel', () => {
  for (const c of fixture.dge) {
    it(c.name, () => {
      const u = f32(c.u);
      const o = { k: c.k, cap: c.cap };
      const got = Array.from(u, (v) => dgeFactor(v, o));
      // float64: one pow in each implementation (V8's and the C library's, each within an ulp or so)
      // after the same exact operations: a few float64 ulps apart at most.
      got.forEach((d, i) => expect(Math.abs(d - c.exact[i]), `u = ${u[i]}`).toBeLessThanOrEqual(4 * 2 ** -53 * Math.abs(c.exact[i])));
      // float32 (what the layer multiplies by): bit for bit where the float64 value is not within
      // 2^-40 of a float32 rounding boundary (every value here; the script checks).
      expect(c.f32_determined.every(Boolean)).toBe(true);
      expect(bitDiff(got.map(Math.fround), c.f32)).toEqual([]);
      // bf16, as the released kernel writes it (quantize.cu:118), where its float32 arithmetic (powf,
      // x + 6.0f …) cannot move the bf16 result; elsewhere the kernel's bits are the GPU's to decide.
      const kernel = f32(c.kernel_bf16);
      const determined = c.bf16_determined.flatMap((ok, i) => (ok ? [i] : []));
      expect(determined.length).toBeGreaterThan(0.9 * u.length);
      for (const i of determined) expect(bitsOf([bf16(got[i])]), `u = ${u[i]}`).toEqual(bitsOf([kernel[i]]));
    });
  }

  it("the released unit vector (test_DGE) bit for bit in bf16, every element determined", () => {
    const c = fixture.dge[0];
    expect(c.bf16_determined.every(Boolean)).toBe(true);
    expect(bitsOf(Array.from(f32(c.u), (v) => bf16(dgeFactor(v, { k: 5, cap: 3 }))))).toEqual(c.kernel_bf16);
  });
});

describe('OCC (clampRows) against the released quantile clipping (fp4_quantize.py _apply_quantile_clipping, token_wise)', () => {
  for (const c of fixture.occ) {
    it(c.name, () => {
      const r = clampRows(f32(c.x), c.rows, c.cols, { alpha: c.alpha });
      expect(bitDiff(r.clamped, c.clamped)).toEqual([]);
      const dense = new Float32Array(c.rows * c.cols);
      for (let row = 0; row < c.rows; row++) {
        for (let e = r.rowStart[row]; e < r.rowStart[row + 1]; e++) dense[row * c.cols + r.columns[e]] = r.residuals[e];
      }
      // One difference, at an infinity: where +Inf is itself the upper quantile (n = 100, α = 0.99:
      // upper = sorted[99], the row's maximum) the released residual is input − output = Inf − Inf = NaN
      // (fp4_quantize.py:100); fp4kit stores no residual for an element the clamp left unchanged (0).
      // Not documented; unobservable in the layer, whose row with an Inf is NaN anyway
      // (docs/fp4-training.md, "Non-finite values"). Allowed only there.
      const x = f32(c.x);
      const want = f32(c.residual);
      for (const i of bitDiff(dense, c.residual)) {
        expect([Math.abs(x[i]), Number.isNaN(want[i]), dense[i]], `element ${i}`).toEqual([Infinity, true, 0]);
        expect(r.clamped[i]).toBe(x[i]);
      }
    });
  }
});

describe('fp4Dense (tfjs cpu) against the reference W4A4 layer: forward with and without OCC, DGE-scaled weight gradient', () => {
  const { m, k, n } = fixture.layer;
  const xv = f32(fixture.layer.x);
  const wv = f32(fixture.layer.w);
  const dyv = f32(fixture.layer.dy);
  const U = 2 ** -24; // float32 unit roundoff

  function run(c: LayerCase): { y: Float32Array; dx: Float32Array; dw: Float32Array } {
    const layer = layers.fp4Dense({ units: n, inputShape: [k], useBias: false, dge: c.dge, occ: c.occ === null ? false : { alpha: c.occ }, gradients: c.gradients, ties: c.ties });
    layer.build([null, k]);
    layer.setWeights([tf.tensor2d(wv, [k, n])]);
    const x = tf.tensor2d(xv, [m, k]);
    const dy = tf.tensor2d(dyv, [m, n]);
    const kernel = (layer.trainableWeights[0] as unknown as { val: tf.Variable }).val;
    const y = (layer.apply(x) as tf.Tensor).dataSync() as Float32Array;
    const dx = tf.grads((xx: tf.Tensor) => tf.sum(tf.mul(layer.apply(xx) as tf.Tensor, dy)))([x])[0].dataSync() as Float32Array;
    const { grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(x) as tf.Tensor, dy)) as tf.Scalar, [kernel]);
    return { y, dx, dw: grads[kernel.name].dataSync() as Float32Array };
  }

  /** |actual − expected| ≤ tol[i], reporting the worst element. */
  function within(actual: ArrayLike<number>, expected: number[], tol: (i: number) => number, what: string): void {
    expect(actual.length).toBe(expected.length);
    let worst = -1;
    let ratio = 0;
    for (let i = 0; i < expected.length; i++) {
      const r = Math.abs(actual[i] - expected[i]) / tol(i);
      if (!(r <= ratio)) [worst, ratio] = [i, r];
    }
    expect(ratio, `${what}: worst element ${worst}: ${actual[worst]} vs ${expected[worst]} (tolerance ${tol(worst)})`).toBeLessThanOrEqual(1);
  }

  for (const c of fixture.layer.cases) {
    it(c.name, () => {
      // The operands fp4kit quantizes, bit for bit: OCC's clamp and residual, the scales and E2M1 codes.
      const occ = c.occ === null ? null : clampRows(xv, m, k, { alpha: c.occ });
      const residual = new Float32Array(m * k);
      if (occ) for (let r = 0; r < m; r++) for (let e = occ.rowStart[r]; e < occ.rowStart[r + 1]; e++) residual[r * k + occ.columns[e]] = occ.residuals[e];
      expect(bitDiff(residual, c.residual)).toEqual([]);
      const aq = quantizeE2M1(occ ? occ.clamped : xv, m, k, 'rows', c.ties);
      const wq = quantizeE2M1(wv, k, n, 'columns', c.ties);
      expect(bitDiff(aq.scales, c.a_scales)).toEqual([]);
      expect(bitDiff(wq.scales, c.w_scales)).toEqual([]);
      // E2M1 codes as numbers (the sign of a zero code aside, see the rounding test).
      expect(Array.from(aq.grid!, (v) => v + 0)).toEqual(Array.from(f32(c.a_grid), (v) => v + 0));
      expect(Array.from(wq.grid!, (v) => v + 0)).toEqual(Array.from(f32(c.w_grid), (v) => v + 0));
      if (c.g_e5m2) expect(bitDiff(castE5M2(dyv), c.g_e5m2)).toEqual([]);

      const { y, dx, dw } = run(c);
      // Forward y = (Qa·Qw)/(γa·γw) + ΔA·W, reference in float64. fp4kit sums Qa·Qw exactly and divides
      // by γa then γw in float32 (two roundings: ≤ 2u|P|); ΔA·W accumulates in float64 and is rounded
      // once (≤ u|R|, plus float64 order ≤ 2^-40 Σ|ΔA||W|); the sum P + R is rounded once (≤ u|y|).
      within(y, c.y, (i) => 2 * U * Math.abs(c.y_product[i]) + U * Math.abs(c.y_residual[i]) + 2 ** -40 * c.y_residual_abs[i] + U * Math.abs(c.y[i]) + 1e-45, 'y');
      // ∇x = G·Q(W)ᵀ: a float32 sum of n products in fp4kit's order (fp32: its float32 kernel; e5m2:
      // units of 32 in float64, then float32) and, for e5m2, two scale divisions: ≤ (n + 2)u Σ|g||ŵ|
      // (the summation bound for any order, Higham Thm 3.1; dx_abs is Σ|g||ŵ| rounded up).
      within(dx, c.dx, (i) => (n + 2) * U * c.dx_abs[i] + 1e-45, 'dx');
      // DGE: fp4kit evaluates f′ on u clamped to ±6 (docs/fp4-training.md, "DGE": "u = x·γ is clamped
      // to ±6 … which read as past the grid gave that weight a zero gradient"); the released kernel
      // gives 0 at u > 6 (quantize.cu:114-116). The two factors differ exactly at those weights.
      const uRef = f32(c.w_scaled);
      c.dge_release.forEach((f, i) => {
        if (uRef[i] > 6) {
          expect(f).toBe(0);
          expect(c.dge_u_clamped[i]).toBe(0.2); // 1/k at the grid's end
        } else if (uRef[i] < -6) {
          expect(Math.abs(f - 0.2)).toBeLessThan(1e-6); // the first interval extends below −6 (quantize.cu:88)
          expect(c.dge_u_clamped[i]).toBe(0.2);
        } else expect(f).toBe(c.dge_u_clamped[i]);
      });
      expect(c.u_past_grid).toBeGreaterThan(0); // the vectors hold such weights
      // ∇W = (Q(A)ᵀ·G) ⊙ f′(u) + ΔAᵀ·G: the float32 sum of m products (≤ (m + 2)u Σ|â||g|, as above), the
      // product with f′ rounded to float32 (f′ itself rounded: 2u), then ΔAᵀ·G added term by term in
      // float32 (≤ (m + 2)u Σ|Δa||g|) and the last addition (≤ u|ref|).
      within(dw, c.dw, (i) => (m + 4) * U * (c.dw_base_abs[i] * c.dge_u_clamped[i] + c.dw_residual_abs[i]) + U * Math.abs(c.dw[i]) + 1e-45, 'dw');
      // and DGE is not vacuous here: the reference without it differs beyond the tolerance somewhere
      expect(c.dw_base.some((b, i) => Math.abs(b + c.dw_residual[i] - c.dw[i]) > 1e-3 * Math.abs(c.dw[i]))).toBe(true);
    });
  }
});
