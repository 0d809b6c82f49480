// fp4Dense (FP4 LLM training, Wang et al., arXiv 2501.17116): the E2M1 quantizer's two tie rules
// (nearest-even against fp4kit's conformance-tested codec, ties-up against the paper's table), DGE
// against the released code's unit vector, OCC's quantile rule and sparsity, the layer's forward
// and gradients against definitions built from fp4kit's own encode/decode, training inside
// tf.sequential and tf.model with SGD and Adam on the cpu and fp4kit backends, serialization, and
// option errors.
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onTfCpuForThisFile } from './helpers/tf-cpu-suite.js';
import { decode, dequantize, encode, matmul as fp4kitMatmul, quantize, withBackend } from '../lib/index.js';
import { integerW4A4 } from '../lib/training/fp4-product.js';
import { castFp8Rows, fp8Product, fp8Values, transposePerTensor } from '../lib/training/fp8-product.js';
import { quantizeE2M1 } from '../lib/training/fp4-quantizer.js';
import { testedBackends } from './helpers/backends.js';
import { layers, Fp4Dense } from '../lib/tfjs/index.js';
import { dgeFactor } from '../lib/training/dge.js';
import { E2M1_GRID, roundE2M1 } from '../lib/training/fp4-quantizer.js';
import { clampRows } from '../lib/training/occ.js';
import { onCpuAndOnFp4kitQuantizingEveryB } from './helpers/fp4kit-every-b.js';
import { gaussian, rng } from './helpers/data.js';

onTfCpuForThisFile();

function bf16(v: number): number {
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer);
  u[0] = (u[0] + 0x7fff + ((u[0] >>> 16) & 1)) & 0xffff0000;
  return f[0];
}

/** Q(x) through fp4kit's E2M1 codec (RNE, saturating): the independent reference of 'nearest-even'. */
function fp4kitE2M1(values: Float32Array): Float32Array {
  const clipped = values.map((v) => Math.max(-6, Math.min(6, v)));
  return decode(encode(clipped, 'e2m1'), 'e2m1');
}

/** Per-column (weights [k, n]) or per-row (activations [t, k]) absmax E2M1 with fp4kit's codec. */
function referenceQuantize(x: Float32Array, rows: number, cols: number, axis: 'rows' | 'columns'): Float32Array {
  const out = new Float32Array(x.length);
  const count = axis === 'rows' ? rows : cols;
  for (let g = 0; g < count; g++) {
    const idx = Array.from({ length: axis === 'rows' ? cols : rows }, (_, i) => (axis === 'rows' ? g * cols + i : i * cols + g));
    const amax = Math.max(...idx.map((i) => Math.abs(x[i])));
    const gamma = amax > 0 ? Math.fround(6 / amax) : 1;
    const q = fp4kitE2M1(Float32Array.from(idx.map((i) => Math.fround(x[i] * gamma))));
    idx.forEach((i, j) => { out[i] = Math.fround(q[j] / gamma); });
  }
  return out;
}

/** x [rows, cols] (or xᵀ when `transposed`: x is [cols, rows]) cast to FP8 with fp4kit's codec
 *  (round to nearest even), one absmax scale per row (absmax → the format's largest value) or one
 *  per tensor; returned dequantized (codes / σ, float32). */
function referenceFp8(x: Float32Array, rows: number, cols: number, element: 'e4m3' | 'e5m2', perRow: boolean, transposed = false): Float32Array {
  const max = element === 'e4m3' ? 448 : 57344;
  const at = (r: number, c: number) => (transposed ? x[c * rows + r] : x[r * cols + c]);
  const rowMax = Array.from({ length: rows }, (_, r) => Math.max(0, ...Array.from({ length: cols }, (_, c) => Math.abs(at(r, c)))));
  const tensorMax = Math.max(...rowMax);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const amax = perRow ? rowMax[r] : tensorMax;
    const sigma = amax > 0 ? Math.fround(max / amax) : 1;
    const v = decode(encode(Float32Array.from({ length: cols }, (_, c) => Math.fround(at(r, c) * sigma)), element), element);
    for (let c = 0; c < cols; c++) out[r * cols + c] = Math.fround(v[c] / sigma);
  }
  return out;
}

function matmul(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number, ta = false, tb = false): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let t = 0; t < k; t++) s += (ta ? a[t * m + i] : a[i * k + t]) * (tb ? b[j * k + t] : b[t * n + j]);
    out[i * n + j] = s;
  }
  return out;
}

function closeTo(actual: ArrayLike<number>, expected: ArrayLike<number>, rel = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i] - expected[i])).toBeLessThanOrEqual(rel * scale + 1e-30);
}

describe('the E2M1 quantizer of fp4Dense', () => {
  it("'nearest-even' is fp4kit's E2M1 codec (every multiple of 1/64 in [−8, 8] and every tie)", () => {
    const values = Float32Array.from({ length: 1025 }, (_, i) => -8 + i / 64);
    const want = fp4kitE2M1(values);
    values.forEach((v, i) => expect(roundE2M1(v, 'nearest-even') === want[i]).toBe(true));
  });

  it('quantizeE2M1 gives roundE2M1 of each scaled value under both tie rules (ties, ±0, saturation)', () => {
    const [rows, cols] = [9, 40];
    const x = gaussian(rows * cols, 41);
    // Ties of the grid after scaling (row maxima 6 → γ = 1) and negative zeros.
    for (let r = 0; r < rows; r++) x[r * cols] = 6;
    [0.25, -0.75, 1.25, -1.75, 2.5, -3.5, 5, -0, -0.1, 0.1].forEach((v, i) => { x[3 * cols + 1 + i] = v; });
    for (const ties of ['nearest-even', 'ties-up'] as const) {
      for (const axis of ['rows', 'columns'] as const) {
        const q = quantizeE2M1(x, rows, cols, axis, ties);
        const want = q.scaled.map((u) => roundE2M1(u, ties));
        expect(Buffer.compare(Buffer.from(q.grid!.buffer), Buffer.from(want.buffer)), `${ties} ${axis}`).toBe(0);
      }
    }
  });

  it("'ties-up' is the paper's table: ties toward +∞", () => {
    const table: Array<[number, number]> = [
      [0.25, 0.5], [0.75, 1], [1.25, 1.5], [1.75, 2], [2.5, 3], [3.5, 4], [5, 6],
      [-0.25, 0], [-0.75, -0.5], [-1.25, -1], [-1.75, -1.5], [-2.5, -2], [-3.5, -3], [-5, -4],
      [0.24, 0], [5.01, 6], [-5.01, -6], [100, 6], [-100, -6], [0.26, 0.5],
    ];
    for (const [v, q] of table) expect(roundE2M1(v, 'ties-up') === q).toBe(true);
    // and nearest-even differs on the ties the paper's kernel rounds up
    expect(roundE2M1(0.25, 'nearest-even')).toBe(0);
    expect(roundE2M1(2.5, 'nearest-even')).toBe(2);
    expect(E2M1_GRID.length).toBe(8);
  });

  it("DGE reproduces the released code's unit vector (test_DGE: bf16(linspace(−6, 6, 20)), k = 5, cap = 3) in bf16", () => {
    const expected = [0.2002, 0.4375, 0.6055, 0.2168, 1.8359, 0.2695, 0.3027, 0.2695, 0.2402, 0.5781, 0.5781, 0.2402, 0.2695, 0.3027,
      0.2695, 1.8359, 0.2168, 0.6055, 0.4375, 0.2002];
    const inputs = Array.from({ length: 20 }, (_, i) => bf16(Math.fround(-6 + (12 * i) / 19)));
    expect(inputs.slice(0, 4)).toEqual([-6, -5.375, -4.75, bf16(-4.0938)]);
    inputs.forEach((u, i) => expect(bf16(dgeFactor(u, { k: 5, cap: 3 }))).toBe(bf16(expected[i])));
    // 1/k at grid points, the cap at interval midpoints
    expect(dgeFactor(2, { k: 5, cap: 3 })).toBeCloseTo(0.2, 12);
    expect(dgeFactor(2.5, { k: 5, cap: 3 })).toBe(3);
    expect(dgeFactor(7, { k: 5, cap: 3 })).toBe(0);
  });

  it('OCC clamps each row at sorted[⌊(1−α)n⌋] and sorted[⌊αn⌋] (the released code\'s indices), ~2(1−α) non-zero residuals', () => {
    const n = 4096;
    const x = gaussian(4 * n, 3);
    const c = clampRows(x, 4, n, { alpha: 0.99 });
    for (let r = 0; r < 4; r++) {
      const sorted = Float32Array.from(x.subarray(r * n, (r + 1) * n)).sort();
      const row = c.clamped.subarray(r * n, (r + 1) * n);
      expect(Math.min(...row)).toBe(sorted[40]);
      expect(Math.max(...row)).toBe(sorted[4055]);
    }
    const fraction = c.residuals.length / x.length;
    expect(fraction).toBeGreaterThan(0.019);
    expect(fraction).toBeLessThan(0.021);
    for (let r = 0; r < 4; r++) {
      for (let e = c.rowStart[r]; e < c.rowStart[r + 1]; e++) {
        const i = r * n + c.columns[e];
        expect(c.clamped[i] + c.residuals[e]).toBeCloseTo(x[i], 6);
      }
    }
  });

  it('a residual float32 cannot hold (a huge value in a row whose quantile lies far on the other side) is kept in float64, not ±Inf', () => {
    const rows = new Float32Array(256).fill(-3e38);
    rows[127] = 3e38; // row 0's 0.99 quantile is −3e38: its residual is 6e38
    rows.set(gaussian(128, 45), 128);
    rows[128 + 9] = 1e6; // row 1: an ordinary outlier, its residual rounded to float32 as the released code does
    const c = clampRows(rows, 2, 128);
    const huge = c.residuals[Array.from(c.columns).indexOf(127)];
    expect(huge).toBe(2 * Math.fround(3e38)); // v − clamp(v) in float64
    const e = c.rowStart[1] + Array.from(c.columns.subarray(c.rowStart[1], c.rowStart[2])).indexOf(9);
    expect(c.residuals[e]).toBe(Math.fround(1e6 - c.clamped[128 + 9]));
    expect(c.residuals[e]).not.toBe(1e6 - c.clamped[128 + 9]); // the float32 rounding is exercised
  });
});

describe('OCC quantiles by selection', () => {
  it('clamps exactly as a sort would: duplicates, ±0, infinities, NaN rows, every α and width', () => {
    const next = rng(31);
    const reference = (x: Float32Array, rows: number, cols: number, alpha: number) => {
      const out = new Float32Array(x.length);
      const lowAt = Math.min(cols - 1, Math.floor((1 - alpha) * cols));
      const highAt = Math.min(cols - 1, Math.floor(alpha * cols));
      for (let r = 0; r < rows; r++) {
        const sorted = Float32Array.from(x.subarray(r * cols, (r + 1) * cols)).sort();
        for (let c = 0; c < cols; c++) {
          const v = x[r * cols + c];
          out[r * cols + c] = v < sorted[lowAt] ? sorted[lowAt] : v > sorted[highAt] ? sorted[highAt] : v;
        }
      }
      return out;
    };
    const pool = [0, -0, 1, -1, 2.5, -2.5, Infinity, -Infinity, 1e-40, -1e-40, 3.4e38];
    for (const cols of [1, 2, 3, 7, 64, 128, 513]) {
      for (const alpha of [0.51, 0.9, 0.97, 0.99, 0.999]) {
        const rows = 6;
        const x = Float32Array.from({ length: rows * cols }, () => (next() < 0.3 ? pool[Math.floor(next() * pool.length)] : (next() - 0.5) * 100));
        if (cols > 1) x[2 * cols + 1] = NaN; // row 2 takes the sort
        const got = clampRows(x, rows, cols, { alpha }).clamped;
        const want = reference(x, rows, cols, alpha);
        expect(Buffer.compare(Buffer.from(got.buffer), Buffer.from(want.buffer)), `cols ${cols} α ${alpha}`).toBe(0);
      }
    }
  });
});

describe('the W4A4 forward on fp4kit\'s FP4 integer kernel', () => {
  it('equals diag(1/γa)·(Qa·Qw)·diag(1/γw) with the integer sum exact, on every backend, bit for bit', () => {
    for (const [t, k, n] of [[5, 70, 9], [33, 256, 17], [1, 1, 1], [64, 1000, 40]] as const) {
      const x = gaussian(t * k, t + k);
      for (let i = 0; i < x.length; i += 13) x[i] *= 40;
      const w = gaussian(k * n, n + 1);
      const aq = quantizeE2M1(x, t, k, 'rows', 'nearest-even');
      const wq = quantizeE2M1(w, k, n, 'columns', 'ties-up');
      const want = new Float32Array(t * n);
      for (let r = 0; r < t; r++) {
        for (let c = 0; c < n; c++) {
          let sum = 0; // multiples of 1/4 far below 2^53: exact in float64
          for (let i = 0; i < k; i++) sum += aq.grid![r * k + i] * wq.grid![i * n + c];
          want[r * n + c] = Math.fround(Math.fround(sum / aq.scales[r]) / wq.scales[c]);
        }
      }
      for (const backend of testedBackends()) {
        const got = withBackend(backend, () => integerW4A4(aq.grid!, aq.scales, wq.grid!, wq.scales, t, k, n))!;
        expect(Buffer.compare(Buffer.from(got.buffer), Buffer.from(want.buffer)), `${backend} ${t}×${k}×${n}`).toBe(0);
      }
    }
  });

  it('declines non-finite values (the layer then simulates in float32)', () => {
    const g = new Float32Array([NaN, 1]);
    expect(integerW4A4(g, new Float32Array([1]), new Float32Array([1, 1]), new Float32Array([1]), 1, 2, 1)).toBeNull();
  });

  it('huge activations against small weights give the finite product: where sum / γa leaves float32 the scales divide in float64', () => {
    const [t, k, n] = [3, 64, 4];
    const x = gaussian(t * k, 41).map((v) => v * 5e37); // row absmax ~1.5e38: γa ~4e-38, sum / γa ~1e39
    const w = gaussian(k * n, 42).map((v) => v * 1e-4);
    const aq = quantizeE2M1(x, t, k, 'rows', 'nearest-even');
    const wq = quantizeE2M1(w, k, n, 'columns', 'nearest-even');
    let overflowing = 0;
    for (const backend of testedBackends()) {
      const got = withBackend(backend, () => integerW4A4(aq.grid!, aq.scales, wq.grid!, wq.scales, t, k, n))!;
      for (let r = 0; r < t; r++) {
        for (let c = 0; c < n; c++) {
          // The simulated product x̂·ŵ in float64 (x̂ = grid / γa, ŵ = grid / γw): independent of the kernel.
          let sum = 0, size = 0, exactSum = 0;
          for (let i = 0; i < k; i++) {
            const term = (aq.grid![r * k + i] / aq.scales[r]) * (wq.grid![i * n + c] / wq.scales[c]);
            sum += term; size += Math.abs(term);
            exactSum += aq.grid![r * k + i] * wq.grid![i * n + c];
          }
          if (!Number.isFinite(Math.fround(exactSum / aq.scales[r]))) overflowing++;
          expect(Number.isFinite(got[r * n + c]), `${backend} (${r}, ${c})`).toBe(true);
          expect(Math.abs(got[r * n + c] - sum), `${backend} (${r}, ${c})`).toBeLessThanOrEqual(1e-6 * size);
        }
      }
    }
    expect(overflowing).toBeGreaterThan(0); // the case is exercised: the old order gave ±Inf there
  });
});

describe('the FP8 backward product (lib/training/fp8-product.ts)', () => {
  it('huge rows against small ones give the finite product (the first scale division would overflow float32)', () => {
    const [m, r, n] = [2, 64, 3];
    const a = castFp8Rows(gaussian(m * r, 43).map((v) => v * 5e37), m, r, 'e4m3', 'per-row')!;
    const b = castFp8Rows(gaussian(n * r, 44).map((v) => v * 1e-4), n, r, 'e5m2', 'per-tensor')!;
    const av = fp8Values(a), bv = fp8Values(b);
    const got = fp8Product(a, b);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0, size = 0;
        for (let q = 0; q < r; q++) { sum += av[i * r + q] * bv[j * r + q]; size += Math.abs(av[i * r + q] * bv[j * r + q]); }
        expect(Number.isFinite(got[i * n + j]), `(${i}, ${j})`).toBe(true);
        expect(Math.abs(got[i * n + j] - sum), `(${i}, ${j})`).toBeLessThanOrEqual(1e-6 * size);
      }
    }
  });

  it('casts per row or per tensor, declines non-finite values, multiplies zeros to +0 and checks shapes', () => {
    const x = new Float32Array([1, -2, 0.5, 4, 0, 0]);
    const perRow = castFp8Rows(x, 3, 2, 'e4m3', 'per-row')!;
    expect(Array.from(perRow.scales)).toEqual([224, 112, 1]); // 448 / rowmax; an all-zero row keeps 1
    const perTensor = castFp8Rows(x, 3, 2, 'e5m2', 'per-tensor')!;
    expect(Array.from(perTensor.scales)).toEqual([14336, 14336, 14336]);
    expect(perRow.codes.length).toBe(3 * 32); // columns padded to a block of 32 with +0
    expect(castFp8Rows(new Float32Array([1, NaN]), 1, 2, 'e5m2', 'per-tensor')).toBeNull();
    expect(castFp8Rows(new Float32Array([Infinity, 1]), 2, 1, 'e4m3', 'per-row')).toBeNull();
    const zeros = castFp8Rows(new Float32Array(4), 2, 2, 'e5m2', 'per-tensor')!;
    expect(Array.from(fp8Product(zeros, perRow))).toEqual([0, 0, 0, 0, 0, 0]);
    expect(() => fp8Product(perRow, castFp8Rows(new Float32Array(3), 1, 3, 'e5m2', 'per-tensor')!)).toThrow(/columns/);
    // a 1×2 · (3×2)ᵀ product: the codes' float64 dot, then f32(f32(D / σa) / σb)
    const a = castFp8Rows(new Float32Array([3, -0.75]), 1, 2, 'e5m2', 'per-tensor')!;
    const ca = decode(a.codes, 'e5m2');
    const cb = decode(perRow.codes, 'e4m3');
    const want = [0, 1, 2].map((j) => Math.fround(Math.fround((ca[0] * cb[j * 32] + ca[1] * cb[j * 32 + 1]) / a.scales[0]) / perRow.scales[j]));
    expect(Array.from(fp8Product(a, perRow))).toEqual(want);
    expect(want[0]).not.toBe(4.5); // σa = f32(57344 / 3) is inexact: the scales are divided out after the dot
    expect(Math.abs(want[0] - 4.5)).toBeLessThan(1e-6);
    // A per-tensor cast transposed from its codes is the cast of the transpose; per-row scales refuse.
    const m = Float32Array.from({ length: 3 * 40 }, (_, i) => Math.sin(i) * (i % 7));
    const direct = castFp8Rows(m, 40, 3, 'e5m2', 'per-tensor', true)!;
    const viaCodes = transposePerTensor(castFp8Rows(m, 3, 40, 'e5m2', 'per-tensor')!);
    expect([viaCodes.rows, viaCodes.cols, Array.from(viaCodes.scales)]).toEqual([direct.rows, direct.cols, Array.from(direct.scales)]);
    expect(Buffer.compare(Buffer.from(viaCodes.codes), Buffer.from(direct.codes))).toBe(0);
    expect(() => transposePerTensor(perRow)).toThrow(/scales of their own/);
    // fp8Values: f32(code value / σ), unpadded
    expect(Array.from(fp8Values(a))).toEqual([Math.fround(ca[0] / a.scales[0]), Math.fround(ca[1] / a.scales[0])]);
  });
});

describe('fp4Dense', () => {
  const [t, k, n] = [8, 48, 6];
  // Activations with heavy outliers (a few large values per row): what OCC is for.
  const xv = gaussian(t * k, 5);
  for (let i = 0; i < xv.length; i += 37) xv[i] *= 25;
  const dyv = gaussian(t * n, 6);

  function make(options: Record<string, unknown>): Fp4Dense {
    const layer = layers.fp4Dense({ units: n, inputShape: [k], useBias: false, kernelInitializer: tf.initializers.randomNormal({ seed: 3 }), ...options });
    layer.build([null, k]);
    return layer;
  }

  function grads(layer: tf.layers.Layer): { y: Float32Array; dx: Float32Array; dw: Float32Array } {
    const x = tf.tensor2d(xv, [t, k]);
    const dy = tf.tensor2d(dyv, [t, n]);
    const kernel = (layer.trainableWeights[0] as unknown as { val: tf.Variable }).val;
    const y = (layer.apply(x) as tf.Tensor).dataSync() as Float32Array;
    const dx = tf.grads((xx: tf.Tensor) => tf.sum(tf.mul(layer.apply(xx) as tf.Tensor, dy)))([x])[0].dataSync() as Float32Array;
    const { grads: g } = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(x) as tf.Tensor, dy)) as tf.Scalar, [kernel]);
    return { y, dx, dw: g[kernel.name].dataSync() as Float32Array };
  }

  it('direct W4A4 (dge: false, occ: false): y = Q(x)·Q(W) per token / per output channel; ∇x = ∇y·Q(W)ᵀ; ∇W = Q(x)ᵀ·∇y', () => {
    const layer = make({ dge: false, occ: false, gradients: 'fp32' });
    const w = layer.getWeights()[0].dataSync() as Float32Array;
    const aq = referenceQuantize(xv, t, k, 'rows');
    const wq = referenceQuantize(w, k, n, 'columns');
    const { y, dx, dw } = grads(layer);
    closeTo(y, matmul(aq, wq, t, k, n));
    // The forward ran on fp4kit's integer kernel: the exact product's bits.
    const ga = quantizeE2M1(xv, t, k, 'rows', 'nearest-even');
    const gw = quantizeE2M1(w, k, n, 'columns', 'nearest-even');
    expect(Array.from(y)).toEqual(Array.from(integerW4A4(ga.grid!, ga.scales, gw.grid!, gw.scales, t, k, n)!));
    closeTo(dx, matmul(dyv, wq, t, n, k, false, true));
    closeTo(dw, matmul(aq, dyv, k, t, n, true, false));
    // and it is not the float product (the test would pass vacuously otherwise)
    const yFloat = matmul(xv, w, t, k, n);
    expect(Array.from(y).some((v, i) => Math.abs(v - yFloat[i]) > 1e-3)).toBe(true);
  });

  it('DGE multiplies ∇W by f′(W·γ); E5M2 gradients: ∇x = E5M2(∇y)·E4M3(Ŵ)ᵀ, ∇W = E4M3(Âᵀ)·E5M2(∇y) (the released code\'s FP8 backward)', () => {
    const layer = make({ dge: { k: 5, cap: 3 }, occ: false, gradients: 'e5m2' });
    const w = layer.getWeights()[0].dataSync() as Float32Array;
    const aq = referenceQuantize(xv, t, k, 'rows');
    const wq = referenceQuantize(w, k, n, 'columns');
    const amax = Math.max(...Array.from(w.subarray(0)).map(Math.abs));
    expect(amax).toBeGreaterThan(0);
    const colMax = Array.from({ length: n }, (_, j) => Math.max(...Array.from({ length: k }, (_, i) => Math.abs(w[i * n + j]))));
    const f = w.map((v, i) => dgeFactor(Math.fround(v * Math.fround(6 / colMax[i % n])), { k: 5, cap: 3 }));
    const dyMax = Math.max(...Array.from(dyv).map(Math.abs));
    const s = Math.fround(57344 / dyMax);
    const g8 = decode(encode(dyv.map((v) => Math.fround(v * s)), 'e5m2'), 'e5m2').map((v) => Math.fround(v / s));
    expect(Array.from(g8).some((v, i) => v !== dyv[i])).toBe(true);
    expect(Array.from(referenceFp8(dyv, t, n, 'e5m2', false))).toEqual(Array.from(g8));
    // The FP4-simulated operands as FP8 E4M3, one scale per output row: Ŵ [k, n] and Âᵀ [k, t].
    const w8 = referenceFp8(wq, k, n, 'e4m3', true);
    const aT8 = referenceFp8(aq, k, t, 'e4m3', true, true);
    expect(Array.from(w8).some((v, i) => v !== wq[i])).toBe(true); // the E4M3 store is not vacuous
    const { dx, dw } = grads(layer);
    closeTo(dx, matmul(g8, w8, t, n, k, false, true));
    const base = matmul(aT8, g8, k, t, n);
    closeTo(dw, base.map((v, i) => v * f[i]));
  });

  it('the FP8 backward products give the same bits on every backend', () => {
    const layer = make({ dge: { k: 5, cap: 3 }, occ: { alpha: 0.95 }, gradients: 'e5m2' });
    const runs = testedBackends().map((backend) => ({ backend, ...withBackend(backend, () => grads(layer)) }));
    for (const r of runs.slice(1)) {
      for (const key of ['y', 'dx', 'dw'] as const) {
        expect(Buffer.compare(Buffer.from(r[key].buffer, r[key].byteOffset, r[key].byteLength), Buffer.from(runs[0][key].buffer, runs[0][key].byteOffset, runs[0][key].byteLength)), `${r.backend} ${key}`).toBe(0);
      }
    }
  });

  it('OCC: the forward error against the float product falls, and clamps ~2(1−α) of the activations', () => {
    const wide = 256;
    const x = gaussian(16 * wide, 9);
    for (let i = 0; i < x.length; i += 53) x[i] *= 40;
    const mk = (occ: unknown) => {
      const l = layers.fp4Dense({ units: 32, inputShape: [wide], useBias: false, dge: false, occ, kernelInitializer: tf.initializers.randomNormal({ seed: 4 }) } as never);
      l.build([null, wide]);
      return l;
    };
    const direct = mk(false);
    const occ = mk({ alpha: 0.99 });
    occ.setWeights(direct.getWeights());
    const w = direct.getWeights()[0].dataSync() as Float32Array;
    const exact = matmul(x, w, 16, wide, 32);
    const err = (l: tf.layers.Layer) => {
      const y = (l.apply(tf.tensor2d(x, [16, wide])) as tf.Tensor).dataSync();
      let e = 0;
      for (let i = 0; i < y.length; i++) e += (y[i] - exact[i]) ** 2;
      return e;
    };
    const eDirect = err(direct);
    const eOcc = err(occ);
    expect(eOcc).toBeLessThan(0.5 * eDirect);
    expect(occ.lastForward.clampedFraction).toBeGreaterThan(0.015);
    expect(occ.lastForward.clampedFraction).toBeLessThan(0.025);
  });

  it("scaling 'nvfp4' / 'mxfp4': both operands through fp4kit's block formats, multiplied on fp4kit's matmul (its bits, every fp4kit backend)", () => {
    for (const scaling of ['nvfp4', 'mxfp4'] as const) {
      const layer = make({ scaling, dge: false, occ: false, gradients: 'fp32' });
      const w = layer.getWeights()[0].dataSync() as Float32Array;
      const { y } = grads(layer);
      // Â and Ŵ through fp4kit's quantizer (blocks along k: rows of x, columns of W).
      const wT = Float32Array.from({ length: n * k }, (_, i) => w[(i % k) * n + Math.floor(i / k)]);
      const aQ = quantize(xv, { format: scaling, shape: [t, k] });
      const wQ = quantize(wT, { format: scaling, shape: [n, k] });
      closeTo(y, matmul(dequantize(aQ), dequantize(wQ), t, k, n, false, true));
      for (const backend of testedBackends()) {
        const want = withBackend(backend, () => fp4kitMatmul(aQ, wQ));
        expect(Buffer.compare(Buffer.from(y.buffer, y.byteOffset, y.byteLength), Buffer.from(want.buffer)), `${scaling} ${backend}`).toBe(0);
      }
      const yFloat = matmul(xv, w, t, k, n);
      let err = 0;
      let norm = 0;
      for (let i = 0; i < y.length; i++) { err += (y[i] - yFloat[i]) ** 2; norm += yFloat[i] ** 2; }
      expect(err / norm).toBeGreaterThan(1e-6);
      expect(err / norm).toBeLessThan(0.1);
    }
  });

  it("the same bits on tfjs's cpu and on the fp4kit backend quantizing every B operand (the float products are fp4kit's, never re-quantized)", async () => {
    const run = () => {
      const out: Float32Array[] = [];
      for (const scaling of ['per-channel', 'nvfp4'] as const) {
        for (const gradients of ['fp32', 'e5m2'] as const) {
          const r = grads(make({ scaling, gradients, occ: { alpha: 0.9 } }));
          out.push(r.y, r.dx, r.dw);
        }
      }
      return out;
    };
    const { onCpu, onFp4kit } = await onCpuAndOnFp4kitQuantizingEveryB(run);
    onCpu.forEach((v, i) => expect(Buffer.compare(Buffer.from(v.buffer, v.byteOffset, v.byteLength), Buffer.from(onFp4kit[i].buffer, onFp4kit[i].byteOffset, onFp4kit[i].byteLength)), `array ${i}`).toBe(0));
  });

  it('an Inf or NaN shows in the output as in a float layer: its row (input) or column (kernel) is NaN, the rest finite; no scaling throws', () => {
    for (const scaling of ['per-channel', 'nvfp4', 'mxfp4'] as const) {
      for (const occ of [false, { alpha: 0.9 }] as const) {
        for (const bad of [Infinity, -Infinity, NaN]) {
          const layer = make({ scaling, occ, dge: { k: 5, cap: 3 } });
          const x = Float32Array.from(xv);
          x[2 * k + 5] = bad;
          const y = (layer.apply(tf.tensor2d(x, [t, k])) as tf.Tensor).dataSync();
          for (let r = 0; r < t; r++) {
            const row = Array.from(y.subarray(r * n, (r + 1) * n));
            if (r === 2) expect(row.every((v) => !Number.isFinite(v)), `${scaling} ${bad} occ ${!!occ}`).toBe(true);
            else expect(row.every(Number.isFinite), `${scaling} ${bad} row ${r}`).toBe(true);
          }
        }
        const layer = make({ scaling, occ });
        const w = layer.getWeights()[0].dataSync().slice() as Float32Array;
        w[7 * n + 3] = Infinity;
        layer.setWeights([tf.tensor2d(w, [k, n])]);
        const y = (layer.apply(tf.tensor2d(xv, [t, k])) as tf.Tensor).dataSync();
        for (let i = 0; i < y.length; i++) expect(Number.isFinite(y[i]), `${scaling} kernel Inf, element ${i}`).toBe(i % n !== 3);
      }
    }
  });

  it("DGE: the scaled weight never passes ±6 by rounding, so a group's largest weight gets 1/k, not 0", () => {
    // fround(a · fround(6 / a)) = 6.0000005 for this a: read as past the grid it gave a zero gradient.
    const a = 0.6350778937339783;
    expect(Math.fround(a * Math.fround(6 / a))).toBeGreaterThan(6);
    const layer = layers.fp4Dense({ units: 1, inputShape: [3], useBias: false, occ: false, gradients: 'fp32', weights: [tf.tensor2d([[a], [-a / 3], [a / 5]])] });
    tf.sequential({ layers: [layer] });
    const kernel = (layer.trainableWeights[0] as unknown as { val: tf.Variable }).val;
    const { grads: g } = tf.variableGrads(() => tf.sum(layer.apply(tf.ones([1, 3])) as tf.Tensor) as tf.Scalar, [kernel]);
    const dw = g[kernel.name].dataSync();
    // dW = (Âᵀ·G) ⊙ f′ with Âᵀ·G = 1 (an input of ones): f′ itself, 1/k at the largest weight.
    expect(dw[0]).toBe(Math.fround(0.2));
    // Over many scales: the largest |scaled| of a column is 6 or just below (never above), its factor 1/k.
    const next = rng(77);
    for (let i = 0; i < 2000; i++) {
      const col = Float32Array.from({ length: 5 }, () => (next() - 0.5) * 10 ** (6 * next() - 3));
      const q = quantizeE2M1(col, 5, 1, 'columns', 'nearest-even');
      const top = Math.max(...Array.from(q.scaled, Math.abs));
      expect(top).toBeLessThanOrEqual(6);
      expect(top).toBeGreaterThan(6 - 1e-6);
      for (const u of q.scaled) if (Math.abs(u) === top) expect(dgeFactor(u)).toBeCloseTo(0.2, 6);
    }
  });

  it("takes tf.layers.dense's own `weights` (initial weights) and `scaling` beside it; a string `weights` is scaling's earlier name", () => {
    const w0 = tf.tensor2d(gaussian(6 * 3, 9), [6, 3]);
    const b0 = tf.tensor1d([0.5, -1, 2]);
    for (const scaling of [undefined, 'nvfp4'] as const) {
      const layer = layers.fp4Dense({ units: 3, inputShape: [6], weights: [w0, b0], scaling });
      tf.sequential({ layers: [layer] });
      expect(Array.from(layer.getWeights()[0].dataSync())).toEqual(Array.from(w0.dataSync()));
      expect(Array.from(layer.getWeights()[1].dataSync())).toEqual([0.5, -1, 2]);
      expect(layer.fp4.scaling).toBe(scaling ?? 'per-channel');
    }
    expect(layers.fp4Dense({ units: 3, weights: 'mxfp4' }).fp4.scaling).toBe('mxfp4');
    expect(() => layers.fp4Dense({ units: 3, weights: 'mxfp4', scaling: 'nvfp4' })).toThrow(/disagree/);
    expect(() => layers.fp4Dense({ units: 3, weights: { a: 1 } as never })).toThrow(/weights must be an array/);
    // an old config ({ weights: 'nvfp4' }) loads
    const old = Fp4Dense.fromConfig(Fp4Dense as never, { units: 2, weights: 'nvfp4', dge: false, occ: false, gradients: 'e5m2', ties: 'nearest-even' }) as Fp4Dense;
    expect(old.fp4.scaling).toBe('nvfp4');
  });

  it('serializes (getConfig, save/load) and predicts the same', async () => {
    const model = tf.sequential({ layers: [layers.fp4Dense({ units: 5, inputShape: [12], activation: 'relu', dge: { k: 3, cap: 2 }, occ: { alpha: 0.97 }, ties: 'ties-up' })] });
    const cfg = (model.layers[0] as Fp4Dense).getConfig();
    expect(cfg).toMatchObject({ units: 5, activation: 'relu', dge: { k: 3, cap: 2 }, occ: { alpha: 0.97 }, gradients: 'e5m2', scaling: 'per-channel', ties: 'ties-up' });
    let artifacts!: tf.io.ModelArtifacts;
    await model.save(tf.io.withSaveHandler(async (a) => { artifacts = a; return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } }; }));
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
    expect(loaded.layers[0]).toBeInstanceOf(Fp4Dense);
    expect((loaded.layers[0] as Fp4Dense).fp4).toEqual((model.layers[0] as Fp4Dense).fp4);
    const x = tf.tensor2d(gaussian(4 * 12, 7), [4, 12]);
    expect(Array.from((loaded.predict(x) as tf.Tensor).dataSync())).toEqual(Array.from((model.predict(x) as tf.Tensor).dataSync()));
  });

  it('rows and gradients of subnormal values stay finite (an overflowing 6 / amax would make 0 · γ NaN)', () => {
    const layer = make({ dge: { k: 5, cap: 3 }, occ: { alpha: 0.95 }, gradients: 'e5m2' });
    const x = tf.tensor2d(Float32Array.from({ length: t * k }, (_, i) => (i < k ? (i % 3 === 0 ? 0 : 1e-40 * (1 + (i % 5))) : xv[i])), [t, k]);
    const dy = tf.tensor2d(Float32Array.from({ length: t * n }, (_, i) => (i % 4 === 0 ? 0 : 1e-41)), [t, n]);
    const kernel = (layer.trainableWeights[0] as unknown as { val: tf.Variable }).val;
    const y = (layer.apply(x) as tf.Tensor).dataSync();
    const dx = tf.grads((xx: tf.Tensor) => tf.sum(tf.mul(layer.apply(xx) as tf.Tensor, dy)))([x])[0].dataSync();
    const { grads: g } = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(x) as tf.Tensor, dy)) as tf.Scalar, [kernel]);
    for (const v of [y, dx, g[kernel.name].dataSync()]) expect(Array.from(v).every(Number.isFinite)).toBe(true);
    // The subnormal row's γ is capped at 2^127, which leaves its values below E2M1's 0.25: it
    // quantizes to zeros (no float32 γ resolves it), and the other rows are untouched.
    expect(Array.from(y.subarray(0, n))).toEqual(Array.from({ length: n }, () => 0));
    expect(Array.from(y.subarray(n)).some((v) => v !== 0)).toBe(true);
    expect(Array.from(dx).some((v) => v !== 0)).toBe(true); // 1e-41 gradients survive the E5M2 cast
    const c = castFp8Rows(new Float32Array([1e-40, -3e-41, 0]), 1, 3, 'e4m3', 'per-row')!;
    expect(c.scales[0]).toBe(2 ** 127);
    expect(Array.from(c.codes.subarray(0, 3)).every((code) => (code & 0x7f) !== 0x7f)).toBe(true);
  });

  it('refuses bad options', () => {
    expect(() => layers.fp4Dense({ units: 2, dge: { k: 0 } })).toThrow(/dge.k/);
    expect(() => layers.fp4Dense({ units: 2, occ: { alpha: 1.5 } })).toThrow(/occ.alpha/);
    expect(() => layers.fp4Dense({ units: 2, gradients: 'e4m3' as never })).toThrow(/gradients must be one of/);
    expect(() => layers.fp4Dense({ units: 2, weights: 'int4' as never })).toThrow(/weights must be one of/);
    expect(() => layers.fp4Dense({ units: 2, weights: 'nvfp4', ties: 'ties-up' })).toThrow(/ties applies/);
    expect(() => layers.fp4Dense({ units: 2, scaling: 'int4' as never })).toThrow(/scaling must be one of/);
    expect(() => layers.fp4Dense({ units: 2, dge: 'yes' as never })).toThrow(TypeError);
    expect(() => layers.fp4Dense({ units: 2, dge: { cap: Infinity } })).toThrow(/dge.cap must be a finite/);
    expect(() => layers.fp4Dense({ units: 2, dge: { k: '5' as never } })).toThrow(TypeError);
    expect(() => layers.fp4Dense({ units: 2, dge: { kk: 3 } as never })).toThrow(/dge has no option "kk"/);
    expect(() => layers.fp4Dense({ units: 2, occ: { alpha: 0.9, beta: 1 } as never })).toThrow(/occ has no option "beta"/);
    expect(() => layers.fp4Dense({ units: 2, dge: { toString: 1 } as never })).toThrow(/dge has no option "toString"/);
    // Dense's own count, checked by name before tfjs sees it (tfjs: a plain Error naming no layer, a BigInt printed as 2)
    const refusal = (f: () => unknown): string => { try { f(); return 'no error'; } catch (e) { return `${(e as Error).constructor.name}: ${(e as Error).message}`; } };
    expect(refusal(() => layers.fp4Dense({ units: 2n as never }))).toBe('TypeError: fp4Dense: units must be a positive integer (a Number), got 2n (a BigInt)');
    expect(refusal(() => layers.fp4Dense({ units: NaN }))).toBe('RangeError: fp4Dense: units must be a positive integer, got NaN');
    expect(refusal(() => layers.fp4Dense({ units: 0 }))).toBe('RangeError: fp4Dense: units must be a positive integer, got 0');
    expect(refusal(() => layers.fp4Dense(null as never))).toBe('TypeError: fp4Dense: expected an options object { units, … }, got null');
    expect(refusal(() => layers.fp4Dense({ units: 2, gradients: 5 as never }))).toBe('TypeError: fp4Dense: gradients must be one of e5m2, fp32, got 5');
    expect(refusal(() => layers.fp4Dense({ units: 2, weights: 'nvfp4', scaling: 4n as never }))).toBe('TypeError: fp4Dense: scaling must be one of per-channel, nvfp4, mxfp4, got 4n (a BigInt)');
    const { proxy, revoke } = Proxy.revocable([], {}); revoke();
    expect(refusal(() => layers.fp4Dense({ units: 2, weights: proxy as never }))).toMatch(/^TypeError: fp4Dense: weights must be an array of initial weight tensors .*got a revoked Proxy$/);
    // null means the default, as for the other options
    expect(layers.fp4Dense({ units: 2, dge: null, occ: null, gradients: null, scaling: null, ties: null }).fp4).toEqual(layers.fp4Dense({ units: 2 }).fp4);
    // a key given as undefined keeps its default, as an absent one does
    expect(layers.fp4Dense({ units: 2, dge: { k: undefined, cap: 2 }, occ: { alpha: undefined } }).fp4)
      .toEqual(layers.fp4Dense({ units: 2, dge: { cap: 2 }, occ: {} }).fp4);
  });
});

describe.each(['cpu', 'fp4kit'])('fp4Dense trains on the %s backend', (backend) => {
  beforeAll(async () => {
    await tf.setBackend(backend);
    tf.env().set('FP4KIT_WEIGHTS', 'none');
  });
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  // y = sin-ish regression target from a fixed random float network.
  const next = rng(12);
  const N = 256, D = 16;
  const xs = Float32Array.from({ length: N * D }, () => 2 * next() - 1);
  const ys = new Float32Array(N);
  for (let i = 0; i < N; i++) { let s = 0; for (let j = 0; j < D; j++) s += Math.sin((j + 1) * xs[i * D + j]); ys[i] = s / 4; }

  async function fitLoss(model: tf.LayersModel, optimizer: tf.Optimizer): Promise<number[]> {
    model.compile({ optimizer, loss: 'meanSquaredError' });
    const h = await model.fit(tf.tensor2d(xs, [N, D]), tf.tensor2d(ys, [N, 1]), { epochs: 25, batchSize: 32, shuffle: false, verbose: 0 });
    return h.history.loss as number[];
  }

  it.each([
    ['sequential, SGD, DGE + OCC', 'sgd'],
    ['functional tf.model, Adam, direct W4A4', 'adam'],
  ])('%s: the loss falls', async (_name, opt) => {
    const fp4 = opt === 'sgd' ? { dge: { k: 5, cap: 3 }, occ: { alpha: 0.99 } } : { dge: false as const, occ: false as const };
    let model: tf.LayersModel;
    if (opt === 'sgd') {
      model = tf.sequential({ layers: [
        layers.fp4Dense({ units: 64, inputShape: [D], activation: 'relu', kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }), ...fp4 }),
        layers.fp4Dense({ units: 1, kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }), ...fp4 }),
      ] });
    } else {
      const input = tf.input({ shape: [D] });
      const hidden = layers.fp4Dense({ units: 64, activation: 'relu', kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }), ...fp4 }).apply(input) as tf.SymbolicTensor;
      const out = layers.fp4Dense({ units: 1, kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }), ...fp4 }).apply(hidden) as tf.SymbolicTensor;
      model = tf.model({ inputs: input, outputs: out });
    }
    const loss = await fitLoss(model, opt === 'sgd' ? tf.train.sgd(0.05) : tf.train.adam(0.01));
    expect(loss.every(Number.isFinite)).toBe(true);
    expect(loss[loss.length - 1]).toBeLessThan(0.6 * loss[0]);
  }, 60_000);
});
