// Gradient quantizers (1-bit FQT): unbiasedness and variance against the analytical values,
// AGP's kept fraction and its distribution, top-k selection, the independent reference vectors
// (scripts/gradient-quant-vectors.py), cross-backend byte equality and argument errors — on
// every backend that loads.
//
// The statistical tests draw with fixed seeds, so they are deterministic; each states the
// probability that a correct implementation would fail it for a random choice of seeds.
// Bernstein's inequality (bounded draws) is used where it applies: no normal approximation.
//
// Variance, per element i of group g (range R_g, step Δ = R_g/B, B = 2^b − 1, u = (x − lo)/Δ,
// f = u − ⌊u⌋): stochastic rounding adds v_i = Δ²·f(1 − f) ≤ Δ²/4. Hence
//   'none'  Var = Σ v_i ≤ Σ_g D_g R_g² / (4B²)          (PSQ: (D/4B²)·Σ_i R_i²; PCQ, PTQ alike)
//   'agp'   x̂ = (m/p)·Q(x):  Var = Σ_g [ (1/p_g − 1)·‖x_g‖² + Σ_{i∈g} v_i / p_g ]
//                            ≤ Σ_g [ (1/p_g − 1)·‖x_g‖² + D_g R_g² / (4B² p_g) ]
//   'topk'  biased: E‖x̂ − x‖² = Σ_kept v_i + Σ_pruned ‖x_g‖² (kept groups as 'none', pruned exactly 0)
// (the paper's Eq. 24 keeps only the second term over the N/b largest groups; the Bernoulli
// mask adds the first, which dominates at small p.)

import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dequantizeGradient, quantizeGradient, withBackend, type GradientGroups, type GradientPrune, type QuantizedGradient } from '../lib/index.js';
import { kernelsFor } from '../lib/kernels/registry.js';
import { testedBackends, useBackend } from './helpers/backends.js';
import { expectClean, runInChild } from './helpers/child-process.js';
import { gaussian, rng } from './helpers/data.js';

const backends = testedBackends();

/** Half-width t with P(|mean of S draws − μ| ≥ t) ≤ δ for draws within M of μ with variance σ² (Bernstein). */
function bernstein(S: number, sigma2: number, M: number, delta: number): number {
  const L = Math.log(2 / delta);
  const a = (2 * M * L) / 3;
  return (a + Math.sqrt(a * a + 8 * S * L * sigma2)) / (2 * S);
}

function groupIndex(groups: GradientGroups, cols: number, i: number): number {
  const r = Math.floor(i / cols);
  return groups === 'sample' ? r : groups === 'channel' ? i - r * cols : 0;
}

function groupRanges(x: Float32Array, rows: number, cols: number, groups: GradientGroups) {
  const count = groups === 'sample' ? rows : groups === 'channel' ? cols : 1;
  const lo = new Float64Array(count).fill(Infinity);
  const hi = new Float64Array(count).fill(-Infinity);
  const size = new Float64Array(count);
  for (let i = 0; i < x.length; i++) {
    const g = groupIndex(groups, cols, i);
    lo[g] = Math.min(lo[g], x[i]);
    hi[g] = Math.max(hi[g], x[i]);
    size[g]++;
  }
  for (let g = 0; g < count; g++) if (size[g] === 0) lo[g] = hi[g] = 0;
  return { count, lo, hi, size };
}

/** Water-filling by sorting (not the kernels' iteration): p = min(1, c·R), Σ p = K over R > 0. */
function waterFill(R: Float64Array, K: number): Float64Array {
  const p = new Float64Array(R.length);
  const order = Array.from(R.keys()).filter((g) => R[g] > 0).sort((a, b) => R[b] - R[a] || a - b);
  let rest = order.reduce((s, g) => s + R[g], 0);
  for (let k = 0; k <= order.length; k++) {
    if (k === order.length) { for (const g of order) p[g] = 1; return p; }
    const c = (K - k) / rest;
    if (c * R[order[k]] < 1) {
      order.forEach((g, j) => { p[g] = j < k ? 1 : c * R[g]; });
      return p;
    }
    rest -= R[order[k]];
  }
  return p;
}

/** Exact mean, variance and bound of each element's estimate, and the variance bound. */
function moments(x: Float32Array, rows: number, cols: number, bits: number, groups: GradientGroups, prune: GradientPrune, p: Float32Array) {
  const B = 2 ** bits - 1;
  const { lo, hi } = groupRanges(x, rows, cols, groups);
  const sigma2 = new Float64Array(x.length);
  const M = new Float64Array(x.length);
  const mu = Float64Array.from(x); // E[x̂]: x, or 0 in a group top-k prunes (its bias is x)
  let bias2 = 0;
  let bound = 0;
  for (let i = 0; i < x.length; i++) {
    const g = groupIndex(groups, cols, i);
    const step = (hi[g] - lo[g]) / B;
    const u = step > 0 ? (x[i] - lo[g]) / step : 0;
    const f = u - Math.floor(u);
    const v = step * step * f * (1 - f);
    const pg = prune === 'none' ? 1 : p[g];
    if (pg === 0) { // agp: an all-zero group; topk: a pruned group, exactly 0
      mu[i] = 0;
      bias2 += x[i] * x[i];
      continue;
    }
    const agp = prune === 'agp' ? pg : 1; // top-k keeps without rescaling
    sigma2[i] = x[i] * x[i] * (1 / agp - 1) + v / agp;
    // |x̂ − x| ≤ Δ when always kept; else a pruned draw is off by |x|, a kept one by ≤ |x|(1/p − 1) + Δ/p
    M[i] = agp === 1 ? step : Math.max(Math.abs(x[i]), Math.abs(x[i]) * (1 / agp - 1) + step / agp);
    bound += x[i] * x[i] * (1 / agp - 1) + (step * step) / 4 / agp;
  }
  return { sigma2, M, mu, bias2, bound: bound + bias2 };
}

function draws(x: Float32Array, rows: number, cols: number, bits: number, groups: GradientGroups, prune: GradientPrune, S: number, firstSeed: number) {
  const sum = new Float64Array(x.length);
  const sq: number[] = [];
  const kept: number[] = [];
  const out = new Float32Array(x.length);
  let first: QuantizedGradient | undefined;
  for (let s = 0; s < S; s++) {
    const q = quantizeGradient(x, { shape: [rows, cols], bits, groups, prune, seed: firstSeed + s });
    first ??= q;
    dequantizeGradient(q, { out });
    let e = 0;
    for (let i = 0; i < x.length; i++) {
      sum[i] += out[i];
      e += (out[i] - x[i]) ** 2;
    }
    sq.push(e);
    kept.push(q.mask.reduce((a, b) => a + b, 0));
  }
  return { mean: sum.map((v) => v / S), sq, kept, first: first! };
}

/** Rows of varied scale (so AGP's p differs per group) with one dominant row (clamped to p = 1). */
function testGradient(rows: number, cols: number, seed: number): Float32Array {
  const x = gaussian(rows * cols, seed);
  const r = rng(seed + 1);
  for (let row = 0; row < rows; row++) {
    const scale = row === 3 ? 30 : 0.5 + 2 * r();
    for (let c = 0; c < cols; c++) x[row * cols + c] *= scale;
  }
  return x;
}

describe.each(backends)('gradient quantizers on %s', (backend) => {
  useBackend(backend);

  describe('unbiasedness and variance (false failure ≤ 2·10⁻⁶ per mode for random seeds)', () => {
    const rows = 24;
    const cols = 16;
    const S = 1500;
    const x = testGradient(rows, cols, 11);
    const modes: Array<[GradientGroups, GradientPrune, number]> = [
      ['sample', 'none', 1], ['sample', 'none', 4], ['channel', 'none', 2], ['tensor', 'none', 4],
      ['sample', 'agp', 4], ['channel', 'agp', 4], ['tensor', 'agp', 2], ['sample', 'agp', 1],
      ['sample', 'topk', 4], ['channel', 'topk', 2],
    ];
    it.each(modes)('%s groups, prune %s, %i bits', (groups, prune, bits) => {
      const { mean, sq, first } = draws(x, rows, cols, bits, groups, prune, S, 1000 * bits);
      const { sigma2, M, mu, bias2, bound } = moments(x, rows, cols, bits, groups, prune, first.keepProbability);
      // every element's mean within Bernstein's half-width of E[x̂] (union bound over elements:
      // δ = 10⁻⁶); E[x̂] = g except where top-k prunes (there x̂ is exactly 0: M = 0)
      const delta = 1e-6 / x.length;
      for (let i = 0; i < x.length; i++) {
        const t = bernstein(S, sigma2[i], M[i], delta);
        if (!(Math.abs(mean[i] - mu[i]) <= t)) {
          throw new Error(`element ${i}: mean ${mean[i]} vs ${mu[i]}, allowed ±${t} (σ² ${sigma2[i]})`);
        }
      }
      if (prune === 'topk') expect(bias2).toBeGreaterThan(0); // the test data does prune something
      // the measured total variance, the mean of Y = ‖x̂ − x‖², against its exact value V, with
      // Bernstein (δ = 10⁻⁶): 0 ≤ Y ≤ Σ M²; Var(Y) ≤ Σ_i M_i²·σ_i² when the elements are
      // independent ('none'), ≤ Σ_g Ymax_g·V_g when only the groups are (AGP: one mask per group)
      // (top-k: Y also holds the fixed Σ_pruned g², added to V; Y − V still lies within ±Σ M²)
      const V = sigma2.reduce((a, b) => a + b, 0) + bias2;
      const Ymax = M.reduce((a, m) => a + m * m, 0);
      let varY = 0;
      if (prune !== 'agp') {
        for (let i = 0; i < x.length; i++) varY += M[i] * M[i] * sigma2[i];
      } else {
        const yMax = new Float64Array(x.length);
        const vg = new Float64Array(x.length);
        for (let i = 0; i < x.length; i++) {
          const g = groupIndex(groups, cols, i);
          yMax[g] += M[i] * M[i];
          vg[g] += sigma2[i];
        }
        for (let g = 0; g < x.length; g++) varY += yMax[g] * vg[g];
      }
      const measured = sq.reduce((a, b) => a + b, 0) / S;
      const t = bernstein(S, varY, Ymax, 1e-6);
      expect(Math.abs(measured - V)).toBeLessThanOrEqual(t);
      expect(V).toBeLessThanOrEqual(bound);
      expect(measured).toBeLessThanOrEqual(bound + t);
      // the check has teeth: measured V̂ is ~0.5 % from V here; one tensor-wide Bernoulli is the loose case
      expect(t / V).toBeLessThan(groups === 'tensor' && prune === 'agp' ? 0.7 : 0.35);
    });
  });

  describe('AGP keep decisions', () => {
    const rows = 64;
    const cols = 8;
    const bits = 4;
    const x = gaussian(rows * cols, 5);
    const r = rng(6);
    for (let row = 0; row < rows; row++) {
      const scale = row < 2 ? 40 : Math.exp(3 * r() - 1.5);
      for (let c = 0; c < cols; c++) x[row * cols + c] *= scale;
    }
    const S = 3000;

    it('probabilities are the water-filled p_i = N·R_i/(b·ΣR) (clamped to 1) and sum to N/b', () => {
      const q = quantizeGradient(x, { shape: [rows, cols], bits, prune: 'agp', seed: 3 });
      const { lo, hi } = groupRanges(x, rows, cols, 'sample');
      const p = waterFill(hi.map((h, g) => h - lo[g]), rows / bits);
      expect(p[0]).toBe(1); // the two dominant rows are clamped
      expect(p[1]).toBe(1);
      for (let g = 0; g < rows; g++) expect(Math.abs(q.keepProbability[g] - p[g])).toBeLessThanOrEqual(2 ** -22 * p[g]);
      expect(Math.abs(p.reduce((a, b) => a + b, 0) - rows / bits)).toBeLessThan(1e-9);
      // a kept group's codes are the unpruned quantizer's codes (same seed); its scale and zero carry 1/p
      const none = quantizeGradient(x, { shape: [rows, cols], bits, seed: 3 });
      for (let g = 0; g < rows; g++) {
        const codes = q.codes.subarray(g * cols, (g + 1) * cols);
        if (q.mask[g]) {
          expect(codes).toEqual(none.codes.subarray(g * cols, (g + 1) * cols));
          expect(Math.abs(q.scales[g] - none.scales[g] / q.keepProbability[g])).toBeLessThanOrEqual(1e-6 * q.scales[g]);
        } else {
          expect(codes.every((c) => c === 0)).toBe(true);
          expect([q.scales[g], q.zeros[g]]).toEqual([0, 0]);
        }
      }
    });

    it('each group is kept with frequency p_i, and the kept count follows the Poisson-binomial law (false failure ≤ 2·10⁻⁶)', () => {
      const freq = new Float64Array(rows);
      const counts = new Float64Array(rows + 1);
      let p = new Float32Array(0);
      for (let s = 0; s < S; s++) {
        const q = quantizeGradient(x, { shape: [rows, cols], bits, prune: 'agp', seed: 50000 + s });
        p = q.keepProbability;
        let k = 0;
        for (let g = 0; g < rows; g++) { freq[g] += q.mask[g]; k += q.mask[g]; }
        counts[k]++;
      }
      for (let g = 0; g < rows; g++) {
        const t = bernstein(S, p[g] * (1 - p[g]), Math.max(p[g], 1 - p[g]), 1e-6 / rows);
        expect(Math.abs(freq[g] / S - p[g])).toBeLessThanOrEqual(t);
      }
      // Poisson-binomial pmf of the kept count, then a χ² goodness of fit over bins expecting ≥ 5
      let pmf = new Float64Array([1]);
      for (let g = 0; g < rows; g++) {
        const next = new Float64Array(pmf.length + 1);
        for (let k = 0; k < pmf.length; k++) { next[k] += pmf[k] * (1 - p[g]); next[k + 1] += pmf[k] * p[g]; }
        pmf = next;
      }
      const mean = pmf.reduce((a, v, k) => a + v * k, 0);
      expect(Math.abs(mean - rows / bits)).toBeLessThan(1e-4); // p is stored as float32
      const bins: Array<[number, number]> = [];
      let e = 0, o = 0;
      for (let k = 0; k <= rows; k++) {
        e += pmf[k] * S; o += counts[k];
        if (e >= 5 && (1 - pmf.slice(0, k + 1).reduce((a, b) => a + b, 0)) * S >= 5) { bins.push([o, e]); e = 0; o = 0; }
      }
      bins[bins.length - 1][0] += o; bins[bins.length - 1][1] += e;
      const chi2 = bins.reduce((a, [ob, ex]) => a + (ob - ex) ** 2 / ex, 0);
      const df = bins.length - 1;
      const z = 4.753; // upper 10⁻⁶ normal quantile; Wilson–Hilferty for the χ² quantile
      const limit = df * (1 - 2 / (9 * df) + z * Math.sqrt(2 / (9 * df))) ** 3;
      expect(df).toBeGreaterThanOrEqual(4);
      expect(chi2).toBeLessThanOrEqual(limit);
    });

    it('zero groups are pruned, constant non-zero groups always kept and exact', () => {
      const y = gaussian(6 * 5, 9);
      y.fill(0, 0, 5); // row 0: zeros
      y.fill(-2.5, 10, 15); // row 2: constant
      for (let seed = 0; seed < 50; seed++) {
        const q = quantizeGradient(y, { shape: [6, 5], bits: 2, prune: 'agp', seed });
        expect(q.mask[0]).toBe(0);
        expect(q.keepProbability[0]).toBe(0);
        expect(q.mask[2]).toBe(1);
        expect(Array.from(dequantizeGradient(q).subarray(10, 15))).toEqual([-2.5, -2.5, -2.5, -2.5, -2.5]);
      }
    });
  });

  describe('top-k (the released code: deterministic, biased)', () => {
    it('keeps exactly the groups whose max |g| is among the ⌊G/b⌋ largest, ties at the threshold all kept', () => {
      const rows = 5;
      const cols = 37;
      const x = gaussian(rows * cols, 21);
      for (let r = 0; r < rows; r++) x[r * cols + 10] = x[r * cols + 11] = 0; // equal score…
      x[2 * cols + 10] = 7; x[4 * cols + 11] = -7; // …of 7 in channels 10 and 11
      const score = Array.from({ length: cols }, (_, c) => Math.max(...Array.from({ length: rows }, (_, r) => Math.abs(x[r * cols + c]))));
      const sorted = [...score].sort((a, b) => b - a);
      for (const bits of [1, 2, 4, 8]) {
        const k = Math.max(1, Math.floor(cols / bits));
        const q = quantizeGradient(x, { shape: [rows, cols], bits, groups: 'channel', prune: 'topk', seed: 4 });
        const want = score.map((s) => (s >= sorted[k - 1] ? 1 : 0));
        expect(Array.from(q.mask)).toEqual(want);
        expect(Array.from(q.keepProbability)).toEqual(want);
        const none = quantizeGradient(x, { shape: [rows, cols], bits, groups: 'channel', seed: 4 });
        const est = dequantizeGradient(q);
        const full = dequantizeGradient(none);
        for (let i = 0; i < x.length; i++) expect(est[i]).toBe(want[i % cols] ? full[i] : 0);
      }
      const q4 = quantizeGradient(x, { shape: [rows, cols], bits: 4, groups: 'channel', prune: 'topk' });
      expect(q4.mask[10] + q4.mask[11]).toBe(2); // the tie at 7 is the largest score: both kept
    });

    it('fewer groups than bits keeps the largest one', () => {
      const q = quantizeGradient(new Float32Array([1, -3, 2]), { shape: [3, 1], bits: 4, prune: 'topk' });
      expect(Array.from(q.mask)).toEqual([0, 1, 0]);
    });
  });

  describe('the reference vectors (scripts/gradient-quant-vectors.py: numpy and torch.topk)', () => {
    interface Case {
      name: string; rows: number; cols: number; bits: number; groups: GradientGroups; prune: GradientPrune; seed: number;
      g: number[]; scales: number[]; zeros: number[]; mask: number[]; keepProbability: number[]; codes: number[];
    }
    const fixture = JSON.parse(readFileSync(new URL('./fixtures/gradient-quant-vectors.json', import.meta.url), 'utf8')) as { cases: Case[] };
    const f32 = (bits: number[]) => new Float32Array(new Uint32Array(bits).buffer);
    it(`match all ${fixture.cases.length} cases`, () => {
      for (const c of fixture.cases) {
        const where = `${c.name}, ${c.bits} bits, ${c.groups}, ${c.prune}`;
        const q = quantizeGradient(f32(c.g), { shape: [c.rows, c.cols], bits: c.bits, groups: c.groups, prune: c.prune, seed: c.seed });
        expect(Array.from(q.mask), where).toEqual(c.mask);
        expect(Array.from(q.codes), where).toEqual(c.codes);
        if (c.prune === 'agp') {
          // p comes from another algorithm (sorting, not iteration): allow 4 float32 ulps on what depends on it
          const close = (a: Float32Array, b: Float32Array) => Array.from(a).every((v, i) => Math.abs(v - b[i]) <= 2 ** -21 * Math.abs(b[i]));
          expect(close(q.keepProbability, new Float32Array(c.keepProbability)), where).toBe(true);
          expect(close(q.scales, f32(c.scales)), where).toBe(true);
          expect(close(q.zeros, f32(c.zeros)), where).toBe(true);
        } else {
          expect(Array.from(new Uint32Array(q.scales.buffer)), where).toEqual(c.scales);
          expect(Array.from(new Uint32Array(q.zeros.buffer)), where).toEqual(c.zeros);
          expect(Array.from(q.keepProbability), where).toEqual(c.keepProbability);
        }
      }
    });
  });

  describe('edges', () => {
    it('codes stay in 0 … 2^b − 1 and the layout is as documented', () => {
      const x = gaussian(40 * 9, 2, 3);
      for (const bits of [1, 3, 8]) {
        for (const groups of ['sample', 'channel', 'tensor'] as const) {
          const q = quantizeGradient(x, { shape: [40, 9], bits, groups, seed: 1 });
          expect(q.codes.length).toBe(360);
          expect(q.scales.length).toBe(groups === 'sample' ? 40 : groups === 'channel' ? 9 : 1);
          expect(Math.max(...q.codes)).toBeLessThanOrEqual(2 ** bits - 1);
          expect(Math.max(...q.codes)).toBe(2 ** bits - 1); // each group's max reaches the top code
          const est = dequantizeGradient(q);
          for (let i = 0; i < x.length; i++) {
            const g = groupIndex(groups, 9, i);
            expect(est[i]).toBe(Math.fround(q.zeros[g] + q.codes[i] * q.scales[g]));
          }
        }
      }
    });

    it('constant groups, empty tensors and 1×1 are exact', () => {
      const c = new Float32Array(12).fill(0.7);
      const q = quantizeGradient(c, { shape: [3, 4], bits: 1, seed: 5 });
      expect(Array.from(q.codes)).toEqual(new Array(12).fill(0));
      expect(Array.from(dequantizeGradient(q))).toEqual(Array.from(c));
      expect(dequantizeGradient(quantizeGradient(new Float32Array([-3]), { shape: [1, 1], bits: 4 }))[0]).toBe(-3);
      const e = quantizeGradient(new Float32Array(0), { shape: [5, 0], bits: 4 });
      expect(e.scales.length).toBe(5);
      expect(dequantizeGradient(e).length).toBe(0);
      expect(quantizeGradient(new Float32Array(0), { shape: [0, 3], bits: 4, groups: 'channel', prune: 'agp' }).mask.length).toBe(3);
      // Caller buffers holding old values: every group is written, as for a fresh result.
      for (const prune of ['none', 'agp', 'topk'] as const) {
        const out = { codes: new Uint8Array(0), scales: new Float32Array(4).fill(7), zeros: new Float32Array(4).fill(7), mask: new Uint8Array(4).fill(7), keepProbability: new Float32Array(4).fill(7) };
        const fresh = quantizeGradient(new Float32Array(0), { shape: [4, 0], bits: 2, prune });
        quantizeGradient(new Float32Array(0), { shape: [4, 0], bits: 2, prune, out });
        for (const key of ['scales', 'zeros', 'mask', 'keepProbability'] as const) expect(Array.from(out[key]), `${prune} ${key}`).toEqual(Array.from(fresh[key]));
        expect(Array.from(fresh.mask)).toEqual(new Array(4).fill(prune === 'agp' ? 0 : 1));
      }
    });

    // In a child process: every backend used to walk 2^40 empty rows one by one (a hang).
    it('2^40 empty rows (cols = 0) are not walked: per tensor and per channel at once', () => {
      expectClean(runInChild(backend, `
        const rows = 2 ** 40;
        for (const groups of ['tensor', 'channel']) {
          for (const prune of ['none', 'agp']) {
            const q = fp4.quantizeGradient(new Float32Array(0), { shape: [rows, 0], bits: 2, groups, prune, seed: 3 });
            const count = groups === 'tensor' ? 1 : 0;
            check(q.codes.length === 0 && q.scales.length === count && q.mask.length === count, groups + ' ' + prune + ': lengths');
            if (count) check(q.scales[0] === 0 && q.zeros[0] === 0, 'an empty group is [0, 0]');
            check(fp4.dequantizeGradient(q).length === 0, groups + ' ' + prune + ': dequantized');
          }
        }
        // Per-sample groups would need 2^40 scales: refused by name, not an engine message.
        let message = 'no error';
        try { fp4.quantizeGradient(new Float32Array(0), { shape: [rows, 0], bits: 2, groups: 'sample' }); } catch (e) { message = e.message; }
        check(message === "quantizeGradient: cannot allocate the scales of the 'sample' groups (" + rows + " elements)", 'per-sample: ' + message);
        // 2^24 empty per-sample groups: their outputs (13 bytes a group, the zeroed half never touched)
        // and nothing more; a kernel's working arrays took ~45 bytes a group (2^29 rows: an OOM kill).
        const before = process.memoryUsage().rss;
        const e = fp4.quantizeGradient(new Float32Array(0), { shape: [2 ** 24, 0], bits: 4, seed: 1 });
        const grew = (process.memoryUsage().rss - before) / 2 ** 20;
        check(e.scales.length === 2 ** 24 && e.mask[2 ** 24 - 1] === 1 && e.keepProbability[0] === 1 && e.scales[5] === 0, 'empty groups: [0, 0], kept');
        check(grew < 200, 'empty per-sample groups grew the process by ' + grew.toFixed(0) + ' MiB');
      `, { timeoutMs: 30_000 }));
    });

    it('non-finite gradients are refused, naming the first one', () => {
      const x = new Float32Array(20).fill(1);
      x[13] = NaN;
      x[17] = Infinity;
      expect(() => quantizeGradient(x, { shape: [4, 5], bits: 4 })).toThrow(/^quantizeGradient: g\[13\] \(row 2, column 3\) is NaN; gradients must be finite$/);
      x[13] = 0;
      expect(() => quantizeGradient(x, { shape: [4, 5], bits: 4, groups: 'channel' })).toThrow(/g\[17\] \(row 3, column 2\) is Infinity/);
      x[2] = -Infinity;
      expect(() => quantizeGradient(x, { shape: [4, 5], bits: 4, groups: 'tensor' })).toThrow(RangeError);
    });

    it('a scale that overflows float32 is refused', () => {
      const x = new Float32Array([3e38, -3e38, 1, 2]);
      expect(() => quantizeGradient(x, { shape: [1, 4], bits: 1 })).toThrow(/^quantizeGradient: group 0's scale overflows float32/);
      expect(quantizeGradient(x, { shape: [1, 4], bits: 2 }).scales[0]).toBe(Math.fround((Math.fround(3e38) * 2) / 3));
    });
  });

  describe('options.out', () => {
    it('writes into the given buffers, with the bytes of a fresh call', () => {
      const x = gaussian(12 * 7, 8);
      const out = { codes: new Uint8Array(84), scales: new Float32Array(12), zeros: new Float32Array(12), mask: new Uint8Array(12), keepProbability: new Float32Array(12) };
      for (const prune of ['none', 'agp', 'topk'] as const) {
        const fresh = quantizeGradient(x, { shape: [12, 7], bits: 3, prune, seed: 2 });
        const q = quantizeGradient(x, { shape: [12, 7], bits: 3, prune, seed: 2, out });
        expect(q.codes).toBe(out.codes);
        expect(q.scales).toBe(out.scales);
        for (const key of ['codes', 'scales', 'zeros', 'mask', 'keepProbability'] as const) expect(out[key]).toEqual(fresh[key]);
      }
    });

    it('refuses buffers of the wrong kind or length, or sharing memory', () => {
      const x = new Float32Array(6);
      const good = () => ({ codes: new Uint8Array(6), scales: new Float32Array(2), zeros: new Float32Array(2), mask: new Uint8Array(2), keepProbability: new Float32Array(2) });
      const q = (out: unknown) => () => quantizeGradient(x, { shape: [2, 3], bits: 4, out: out as never });
      expect(q(null)).toThrow(/^quantizeGradient: options\.out must be an object/);
      expect(q({ ...good(), codes: new Uint8Array(5) })).toThrow(/options\.out\.codes must hold 6 elements, got 5/);
      expect(q({ ...good(), zeros: new Float64Array(2) })).toThrow(/options\.out\.zeros must be a Float32Array/);
      const shared = new Float32Array(4);
      expect(q({ ...good(), scales: shared.subarray(0, 2), zeros: shared.subarray(1, 3) })).toThrow(/options\.out\.scales and options\.out\.zeros share memory/);
      expect(q({ ...good(), codes: new Uint8Array(x.buffer, 0, 6) })).toThrow(/^quantizeGradient: options\.out\.codes and g share memory$/);
      expect(q({ ...good(), scales: shared.subarray(0, 2), zeros: shared.subarray(2, 4) })).not.toThrow();
    });
  });

  describe('argument errors', () => {
    const g = new Float32Array(6);
    const ok = { shape: [2, 3], bits: 4 };
    it.each([
      [undefined, TypeError, /^quantizeGradient: options must be an object/],
      [{ ...ok, bits: 0 }, RangeError, /options\.bits must be an integer in \[1, 8\], got 0/],
      [{ ...ok, bits: 9 }, RangeError, /options\.bits/],
      [{ ...ok, bits: 2.5 }, RangeError, /options\.bits/],
      [{ ...ok, bits: '4' }, TypeError, /options\.bits .*a Number/],
      [{ shape: [2, 3] }, TypeError, /options\.bits/],
      [{ ...ok, groups: 'row' }, RangeError, /options\.groups must be 'sample', 'channel' or 'tensor'/],
      [{ ...ok, prune: 'toString' }, RangeError, /options\.prune must be 'none', 'agp' or 'topk'/],
      [{ ...ok, seed: -1 }, RangeError, /options\.seed/],
      [{ ...ok, seed: 2 ** 32 }, RangeError, /options\.seed/],
      [{ ...ok, seed: 1n }, TypeError, /options\.seed/],
      [{ ...ok, shape: [3, 3] }, RangeError, /options\.shape \[3, 3\] holds 9 elements but the input has 6/],
      [{ ...ok, shape: [6] }, RangeError, /options\.shape must be \[rows, cols\]/],
      [{ ...ok, shape: [1, 2, 3] }, RangeError, /options\.shape must be \[rows, cols\]/],
      [{ bits: 4 }, TypeError, /options\.shape must be \[rows, cols\]/],
    ])('quantizeGradient(g, %o)', (options, kind, message) => {
      const call = () => quantizeGradient(g, options as never);
      expect(call).toThrow(kind as ErrorConstructor);
      expect(call).toThrow(message as RegExp);
    });

    it('refuses a gradient that is not a Float32Array', () => {
      expect(() => quantizeGradient(new Float64Array(6) as never, ok as never)).toThrow(/^quantizeGradient: g must be a Float32Array/);
      expect(() => quantizeGradient([1, 2] as never, ok as never)).toThrow(TypeError);
    });

    it('dequantizeGradient checks the quantized gradient', () => {
      const q = quantizeGradient(g, { shape: [2, 3], bits: 4 });
      expect(() => dequantizeGradient(null as never)).toThrow(/^dequantizeGradient: q must be a quantized gradient/);
      expect(() => dequantizeGradient({ ...q, codes: new Uint8Array(5) })).toThrow(/^dequantizeGradient: q\.codes must hold 6 elements, got 5/);
      expect(() => dequantizeGradient({ ...q, scales: new Float64Array(2) as never })).toThrow(/q\.scales must be a Float32Array/);
      expect(() => dequantizeGradient({ ...q, groups: 'channel' })).toThrow(/q\.scales must hold 3 elements, got 2/);
      expect(() => dequantizeGradient({ ...q, groups: 'rows' as never })).toThrow(RangeError);
      expect(() => dequantizeGradient(q, { out: new Float32Array(5) })).toThrow(/options\.out must hold 6 elements/);
    });

    it('the kernel itself checks what the facade would (a caller may skip the facade)', () => {
      const k = kernelsFor(backend)!;
      const args = () => ({
        src: new Float32Array(6), rows: 2, cols: 3, bits: 4, groups: 1, prune: 1, seed: 0,
        codes: new Uint8Array(6), scales: new Float32Array(2), zeros: new Float32Array(2), mask: new Uint8Array(2), keepProbability: new Float32Array(2),
      });
      expect(k.quantizeGradient(args())).toBe(-1);
      expect(() => k.quantizeGradient(null as never)).toThrow(TypeError);
      expect(() => k.quantizeGradient({ ...args(), codes: new Uint8Array(5) })).toThrow(RangeError);
      expect(() => k.quantizeGradient({ ...args(), groups: 2 })).toThrow(RangeError); // scales hold 2, 3 needed
      expect(() => k.quantizeGradient({ ...args(), bits: 9 })).toThrow(RangeError);
      expect(() => k.quantizeGradient({ ...args(), prune: 3 })).toThrow(RangeError);
      expect(() => k.quantizeGradient({ ...args(), seed: 2 ** 32 })).toThrow(RangeError);
      expect(() => k.quantizeGradient({ ...args(), src: new Float64Array(6) as never })).toThrow(TypeError);
      expect(() => k.quantizeGradient({ ...args(), rows: 2 ** 41 })).toThrow(RangeError);
      expect(() => k.dequantizeGradient({ codes: new Uint8Array(6), scales: new Float32Array(2), zeros: new Float32Array(2), mask: new Uint8Array(1), rows: 2, cols: 3, groups: 1, out: new Float32Array(6) })).toThrow(RangeError);
      // a getter that detaches a buffer after it was named: the kernel sees an empty buffer and refuses it
      const src = new Float32Array(6);
      const hostile = { ...args(), src, get seed() { structuredClone(src.buffer, { transfer: [src.buffer] }); return 0; } };
      expect(() => k.quantizeGradient(hostile)).toThrow(/src (must hold|holds 0)/);
      const out = new Float32Array(6);
      const hostileOut = {
        codes: new Uint8Array(6), scales: new Float32Array(2), zeros: new Float32Array(2), mask: new Uint8Array(2), rows: 2, cols: 3, out,
        get groups() { structuredClone(out.buffer, { transfer: [out.buffer] }); return 1; },
      };
      expect(() => k.dequantizeGradient(hostileOut)).toThrow(/out (must hold|holds 0)/);
      expect(() => k.dequantizeGradient({ codes: new Uint8Array(6), scales: new Float32Array(2), zeros: new Float32Array(2), mask: new Uint8Array(2), rows: 2, cols: 3, groups: 1, out: new Uint8Array(6) as never })).toThrow(TypeError);
      // An output over an input or another output (found by an audit, twenty-fifth session: the js
      // and wasm kernels took them, and the js one then read its half-overwritten input).
      const f32 = new Float32Array(8);
      expect(() => k.quantizeGradient({ ...args(), src: f32.subarray(0, 6), codes: new Uint8Array(f32.buffer, 0, 6) })).toThrow(RangeError);
      expect(() => k.quantizeGradient({ ...args(), scales: f32.subarray(0, 2), zeros: f32.subarray(1, 3) })).toThrow(RangeError);
      const d = new Float32Array(9);
      expect(() => k.dequantizeGradient({ codes: new Uint8Array(6), scales: d.subarray(5, 7), zeros: new Float32Array(2), mask: new Uint8Array(2), rows: 2, cols: 3, groups: 1, out: d.subarray(0, 6) })).toThrow(RangeError);
    });
  });
});

describe.each(backends.filter((b) => b !== 'js'))('%s gives the bytes of js', (backend) => {
  useBackend(backend);
  function run(name: string, x: Float32Array, rows: number, cols: number, bits: number, groups: GradientGroups, prune: GradientPrune, seed: number) {
    const opts = { shape: [rows, cols], bits, groups, prune, seed };
    const [want, wantEst] = withBackend('js', () => {
      const q = quantizeGradient(x, opts);
      return [q, dequantizeGradient(q)] as const;
    });
    const got = quantizeGradient(x, opts);
    const gotEst = dequantizeGradient(got);
    const where = `${name} [${rows}, ${cols}] ${bits} bits ${groups} ${prune}`;
    const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    for (const key of ['codes', 'scales', 'zeros', 'mask', 'keepProbability'] as const) {
      expect(Buffer.compare(bytes(got[key]), bytes(want[key])), `${where}: ${key}`).toBe(0);
    }
    expect(Buffer.compare(bytes(gotEst), bytes(wantEst)), `${where}: estimate`).toBe(0);
  }
  const modes: Array<[GradientGroups, GradientPrune]> = [];
  for (const groups of ['sample', 'channel', 'tensor'] as const) for (const prune of ['none', 'agp', 'topk'] as const) modes.push([groups, prune]);

  it.each(modes)('random tensors (several wasm chunks, several native threads): %s, %s', (groups, prune) => {
    for (const [rows, cols] of [[600, 1000], [3, 70001], [4097, 3], [1, 1], [7, 13]]) {
      const x = gaussian(rows * cols, rows + cols);
      const r = rng(cols);
      for (let i = 0; i < x.length; i += 97) x[i] *= 2 ** (40 * r() - 20);
      for (const bits of [1, 4, 8]) run('random', x, rows, cols, bits, groups, prune, 0xdeadbeef - bits);
    }
  });

  it.each(modes)('adversarial tensors: %s, %s', (groups, prune) => {
    const rows = 33;
    const cols = 29;
    const cases: Array<[string, Float32Array]> = [];
    const base = gaussian(rows * cols, 77);
    const withRows = base.slice();
    withRows.fill(0, 0, cols); // a zero row
    withRows.fill(-0, cols, 2 * cols); // a −0 row
    withRows.fill(1.25, 2 * cols, 3 * cols); // a constant row
    for (let r = 0; r < rows; r++) withRows[r * cols + 5] = 0; // a zero column
    cases.push(['zero, −0 and constant rows', withRows]);
    cases.push(['all −0', new Float32Array(rows * cols).fill(-0)]);
    cases.push(['subnormals', base.map((v) => v * 2 ** -140)]);
    cases.push(['huge', base.map((v) => Math.fround(v * 1e37))]);
    cases.push(['ties of 1 and 2', base.map((v) => (v > 0 ? 1 : 2))]);
    cases.push(['one outlier', base.map((v, i) => (i === 400 ? 1e6 : v))]);
    for (const [name, x] of cases) for (const bits of [1, 2, 4, 8]) run(name, x, rows, cols, bits, groups, prune, bits * 7);
    for (const [rows2, cols2] of [[0, 4], [4, 0], [1, 1]]) run('empty or 1×1', new Float32Array(rows2 * cols2).fill(0.5), rows2, cols2, 4, groups, prune, 1);
  });

  it('refuses the same non-finite element and the same overflow', () => {
    const x = gaussian(50, 1);
    x[31] = -Infinity;
    x[44] = NaN;
    for (const groups of ['sample', 'channel', 'tensor'] as const) {
      expect(() => quantizeGradient(x, { shape: [5, 10], bits: 4, groups })).toThrow(/g\[31\] \(row 3, column 1\) is -Infinity/);
    }
    expect(() => quantizeGradient(new Float32Array([3e38, -3e38]), { shape: [1, 2], bits: 1 })).toThrow(/overflows float32/);
  });
});

// The addon splits phases 1 and 3 over its threads: the bytes must not depend on how many.
// (defined only where the addon loads, so nothing is reported as skipped elsewhere)
if (backends.includes('native')) describe('native thread counts', () => {
  it('FP4KIT_THREADS=1|2|3 give the digest of the js reference', () => {
    const script = `
      import { quantizeGradient, setBackend } from './lib/index.ts';
      import { createHash } from 'node:crypto';
      setBackend(process.env.DIGEST_BACKEND ?? 'native');
      const [rows, cols] = [900, 700]; const x = new Float32Array(rows * cols);
      for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37) * 2 ** ((i % 29) - 14) + (i % 1237 === 0 ? -0 : 0);
      const h = createHash('sha256');
      for (const groups of ['sample', 'channel', 'tensor']) for (const prune of ['none', 'agp', 'topk']) {
        const q = quantizeGradient(x, { shape: [rows, cols], bits: 4, groups, prune, seed: 9 });
        for (const a of [q.codes, q.scales, q.zeros, q.mask, q.keepProbability]) h.update(new Uint8Array(a.buffer));
      }
      console.log(h.digest('hex'));`;
    const run = (env: Record<string, string>) =>
      execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env: { ...process.env, ...env }, encoding: 'utf8' }).trim();
    const reference = run({ DIGEST_BACKEND: 'js' });
    expect(reference).toMatch(/^[0-9a-f]{64}$/);
    for (const threads of ['1', '2', '3']) expect(run({ FP4KIT_THREADS: threads }), `FP4KIT_THREADS=${threads}`).toBe(reference);
  }, 120_000);
});
