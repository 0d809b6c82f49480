// fp4kit's tfjs training layers used as a demanding user would (a probe of 2026-12-08): what broke,
// and what the probe checked against definitions of its own (not fp4kit's code), kept so a change
// that breaks it shows:
// - binaryConv2d with an input smaller than its 'valid' kernel: a RangeError naming the sizes (it
//   was "Invalid typed array length: -32" from a scratch buffer);
// - fp4Dense as a drop-in for tf.layers.dense: every Dense option gives the same weights (names,
//   shapes, order, trainable), the same config and the same regularization penalty in fit;
// - fp4Dense's forward and both gradients against an independent float64 reference over random
//   shapes (input widths that are not multiples of 16 or 32, one row, one unit, K = 1), OCC's α,
//   DGE's k and cap and both tie rules; the E5M2 backward likewise; rank 3 and 4 inputs as their
//   rows; a toJSON → modelFromJSON round trip with every FP4 option non-default.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { layers, Fp4Dense } from '../lib/tfjs/index.js';
import { rng } from './helpers/data.js';
import { onTfCpuForThisFile } from './helpers/tf-cpu-suite.js';

onTfCpuForThisFile();

const f32 = Math.fround;

function refusal(f: () => unknown): string {
  try {
    f();
    return 'no error';
  } catch (e) {
    return `${(e as Error).constructor.name}: ${(e as Error).message}`;
  }
}

describe('binaryConv2d: an input smaller than its kernel', () => {
  it("with padding 'valid' (output size below 0) is a RangeError naming the sizes, channels last and first", () => {
    const last = layers.binaryConv2d({ filters: 1, kernelSize: 4 });
    expect(refusal(() => last.apply(tf.ones([1, 2, 5, 1])))).toBe("RangeError: binaryConv2d: a 4 × 4 kernel with padding 'valid' does not fit a 2 × 5 input (output -1 × 2)");
    const first = layers.binaryConv2d({ filters: 2, kernelSize: [3, 1], dataFormat: 'channelsFirst' });
    expect(refusal(() => first.apply(tf.ones([1, 1, 1, 5])))).toBe("RangeError: binaryConv2d: a 3 × 1 kernel with padding 'valid' does not fit a 1 × 5 input (output -1 × 5)");
  });

  it('an output size of 0 stays an empty output with empty gradients (as tf.layers.conv2d), and padding same fits any input', () => {
    const l = layers.binaryConv2d({ filters: 1, kernelSize: 4 });
    const x = tf.ones([1, 3, 5, 1]);
    expect((l.apply(x) as tf.Tensor).shape).toEqual([1, 0, 2, 1]);
    expect(tf.grads((xx: tf.Tensor) => tf.sum(l.apply(xx) as tf.Tensor))([x])[0].shape).toEqual([1, 3, 5, 1]);
    const same = layers.binaryConv2d({ filters: 2, kernelSize: 5, padding: 'same' });
    expect((same.apply(tf.ones([1, 1, 2, 3])) as tf.Tensor).shape).toEqual([1, 1, 2, 2]);
  });
});

describe('fp4Dense as a drop-in for tf.layers.dense', () => {
  const options: Record<string, Record<string, unknown>> = {
    activation: { activation: 'tanh' },
    useBias: { useBias: false },
    kernelInitializer: { kernelInitializer: 'ones' },
    biasInitializer: { biasInitializer: 'ones' },
    kernelRegularizer: { kernelRegularizer: tf.regularizers.l2({ l2: 0.5 }) },
    biasRegularizer: { biasRegularizer: tf.regularizers.l1({ l1: 0.25 }) },
    kernelConstraint: { kernelConstraint: 'maxNorm' },
    biasConstraint: { biasConstraint: 'nonNeg' },
    trainable: { trainable: false },
    inputDim: { inputDim: 7, inputShape: undefined },
    batchInputShape: { batchInputShape: [3, 7], inputShape: undefined },
    batchSize: { batchSize: 3 },
  };

  it.each(Object.keys(options))('%s: the same weights, config and regularization penalty', async (key) => {
    const build = (make: (a: never) => tf.layers.Layer, name: string) => {
      const layer = make({ units: 3, inputShape: [7], name, kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }), ...options[key] } as never);
      const model = tf.sequential({ layers: [layer, tf.layers.dense({ units: 2, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) })] });
      return { layer, model };
    };
    const dense = build(tf.layers.dense as never, `d_${key}`);
    const fp4 = build(layers.fp4Dense as never, `f_${key}`);
    const describeWeights = (l: tf.layers.Layer) => l.weights.map((w) => `${w.originalName.split('/').pop()} ${w.shape} ${w.trainable}`);
    expect(describeWeights(fp4.layer)).toEqual(describeWeights(dense.layer));
    expect(fp4.model.outputs[0].shape).toEqual(dense.model.outputs[0].shape);
    const { name: _a, ...denseConfig } = dense.layer.getConfig();
    const { name: _b, dge: _c, occ: _d, gradients: _e, scaling: _f, ties: _g, ...fp4Config } = fp4.layer.getConfig();
    expect(fp4Config).toEqual(denseConfig);
    // The regularization penalty in fit's loss: the loss with a learning rate of 0 minus the
    // same model's data loss (evaluate), from the same weights.
    fp4.model.setWeights(dense.model.getWeights());
    const x = tf.tensor2d(Array.from({ length: 21 }, (_, i) => Math.sin(i)), [3, 7]);
    const y = tf.zeros([3, 2]);
    const penalty = async (m: tf.LayersModel) => {
      m.compile({ optimizer: tf.train.sgd(0), loss: 'meanSquaredError' });
      const h = await m.fit(x, y, { epochs: 1, batchSize: 3, verbose: 0 });
      return (h.history.loss[0] as number) - (m.evaluate(x, y, { batchSize: 3 }) as tf.Scalar).dataSync()[0];
    };
    expect(await penalty(fp4.model)).toBeCloseTo(await penalty(dense.model), 6);
  });
});

// An independent reference of the layer (docs/fp4-training.md), in float64 over the float32 inputs.
const GRID = [0, 0.5, 1, 1.5, 2, 3, 4, 6];

/** The E2M1 value nearest u (|u| ≤ 6): ties to the even code (0, 1, 2, 4), or toward +∞. */
function e2m1(u: number, tiesUp: boolean): number {
  const a = Math.abs(u);
  let best = 0;
  for (let i = 1; i < GRID.length; i++) {
    const d = Math.abs(a - GRID[i]) - Math.abs(a - GRID[best]);
    if (d < 0 || (d === 0 && (tiesUp ? u > 0 : i % 2 === 0))) best = i;
  }
  return u < 0 || Object.is(u, -0) ? -GRID[best] : GRID[best];
}

/** γ = f32(6 / amax) (1 for a zero group), the scaled values within ±6, and Q(v·γ)/γ. */
function absmaxE2M1(v: number[], tiesUp: boolean): { scaled: number[]; values: number[] } {
  const amax = Math.max(...v.map(Math.abs));
  const g = amax > 0 ? f32(6 / amax) : 1;
  const scaled = v.map((x) => Math.max(-6, Math.min(6, f32(x * g))));
  return { scaled, values: scaled.map((u) => f32(e2m1(u, tiesUp) / g)) };
}

const EDGES = [-6, -4, -3, -2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 3, 4, 6];
function dgeFactorRef(u: number, k: number, cap: number): number {
  let i = 0;
  while (i < EDGES.length - 2 && u >= EDGES[i + 1]) i++;
  const t = Math.abs((2 * (u - EDGES[i])) / (EDGES[i + 1] - EDGES[i]) - 1);
  return Math.min((1 / k) * t ** (1 / k - 1), cap);
}

/** FP8 round to nearest even: `mbits` mantissa bits, normals from 2^minExp, saturating at max. */
function fp8(v: number, mbits: number, minExp: number, max: number): number {
  const a = Math.abs(v);
  if (a === 0) return v;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  const step = 2 ** (Math.max(e, minExp) - mbits);
  const q0 = a / step;
  const q = q0 - Math.floor(q0) === 0.5 ? 2 * Math.round(q0 / 2) : Math.round(q0);
  return Math.sign(v) * Math.min(q * step, max);
}

/** Rows cast to FP8 with one absmax scale per row (or one for all), returned as values. */
function fp8Rows(rows: number[][], e5m2: boolean, perTensor: boolean): number[][] {
  const max = e5m2 ? 57344 : 448;
  const rowMax = rows.map((r) => Math.max(0, ...r.map(Math.abs)));
  const all = Math.max(0, ...rowMax);
  return rows.map((r, i) => {
    const amax = perTensor ? all : rowMax[i];
    const s = amax > 0 ? f32(max / amax) : 1;
    return r.map((v) => f32(fp8(f32(v * s), e5m2 ? 2 : 3, e5m2 ? -14 : -6, max) / s));
  });
}

const columns = (m: number[][]) => m[0].map((_, j) => m.map((r) => r[j]));
const product = (a: number[][], bT: number[][]) => a.map((r) => bT.map((c) => r.reduce((s, v, i) => s + v * c[i], 0)));

/** Largest |actual − expected| over the largest |expected| (0 for an all-zero expectation). */
function relativeError(actual: tf.Tensor, expected: number[][]): number {
  const a = actual.arraySync() as number[][];
  let scale = 0;
  let err = 0;
  expected.forEach((r, i) => r.forEach((v, j) => { scale = Math.max(scale, Math.abs(v)); err = Math.max(err, Math.abs(a[i][j] - v)); }));
  return scale > 0 ? err / scale : err;
}

function layerGradients(layer: tf.layers.Layer, x: tf.Tensor, dy: tf.Tensor): { y: tf.Tensor; dx: tf.Tensor; dw: tf.Tensor } {
  const y = layer.apply(x) as tf.Tensor; // builds the layer
  const kernel = (layer.trainableWeights[0] as unknown as { val: tf.Variable }).val;
  const loss = (xx: tf.Tensor) => tf.sum(tf.mul(layer.apply(xx) as tf.Tensor, dy)) as tf.Scalar;
  return { y, dx: tf.grads(loss)([x])[0], dw: tf.variableGrads(() => loss(x), [kernel]).grads[kernel.name] };
}

describe('fp4Dense against an independent reference, random shapes and options', () => {
  it('y = Q(clamp(x))·Q(W) + ΔA·W, ∇x = ∇y·Q(W)ᵀ, ∇W = (Q(A)ᵀ·∇y) ⊙ f′ + ΔAᵀ·∇y (fp32 gradients)', () => {
    const next = rng(2026);
    const gauss = () => Math.sqrt(-2 * Math.log(next() + 1e-12)) * Math.cos(2 * Math.PI * next());
    for (let it = 0; it < 120; it++) {
      const t = 1 + Math.floor(next() * 9), k = 1 + Math.floor(next() * 150), n = 1 + Math.floor(next() * 7);
      const tiesUp = next() < 0.3;
      const occ = next() < 0.6 ? { alpha: 0.5001 + 0.4998 * next() } : false;
      const dge = next() < 0.6 ? { k: 1 + 8 * next(), cap: 0.5 + 4 * next() } : false;
      const x = Array.from({ length: t }, () => Array.from({ length: k }, () => f32(gauss() * (next() < 0.05 ? 30 : 1))));
      const w = Array.from({ length: k }, () => Array.from({ length: n }, () => f32(0.3 * gauss())));
      const dy = Array.from({ length: t }, () => Array.from({ length: n }, () => f32(gauss())));
      // OCC: each row clamped at sorted[⌊(1 − α)k⌋] and sorted[⌊αk⌋]; the residual x − clamp(x).
      const clamped = x.map((r) => {
        if (!occ) return r;
        const s = [...r].sort((a, b) => a - b);
        const lo = s[Math.floor((1 - occ.alpha) * k)], hi = s[Math.min(k - 1, Math.floor(occ.alpha * k))];
        return r.map((v) => Math.min(hi, Math.max(lo, v)));
      });
      const residual = x.map((r, i) => r.map((v, j) => f32(v - clamped[i][j])));
      const aHat = clamped.map((r) => absmaxE2M1(r, tiesUp).values);
      const wCols = columns(w).map((c) => absmaxE2M1(c, tiesUp));
      const wHatT = wCols.map((c) => c.values); // [n, k]
      const wT = columns(w);
      const y = product(aHat, wHatT).map((r, i) => r.map((v, j) => v + residual[i].reduce((s, d, c) => s + d * wT[j][c], 0)));
      const dx = product(dy, columns(wHatT));
      const aT = columns(aHat), resT = columns(residual), dyT = columns(dy);
      const dw = aT.map((a, i) => dyT.map((g, j) => a.reduce((s, v, r) => s + v * g[r], 0) * (dge ? dgeFactorRef(wCols[j].scaled[i], dge.k, dge.cap) : 1)
        + resT[i].reduce((s, d, r) => s + d * g[r], 0)));
      const layer = layers.fp4Dense({ units: n, useBias: false, gradients: 'fp32', occ, dge, ties: tiesUp ? 'ties-up' : 'nearest-even', weights: [tf.tensor2d(w)] });
      const got = layerGradients(layer, tf.tensor2d(x), tf.tensor2d(dy));
      const label = JSON.stringify({ t, k, n, tiesUp, occ, dge });
      expect(relativeError(got.y, y), `y ${label}`).toBeLessThan(1e-6);
      expect(relativeError(got.dx, dx), `dx ${label}`).toBeLessThan(1e-6);
      expect(relativeError(got.dw, dw), `dw ${label}`).toBeLessThan(1e-6);
    }
  });

  it('E5M2 gradients: ∇x = G·E4M3(Ŵ)ᵀ and ∇W = E4M3(Âᵀ)·G, G = E5M2(∇y) per tensor, the E4M3 operands per output row', () => {
    const next = rng(77);
    const gauss = () => Math.sqrt(-2 * Math.log(next() + 1e-12)) * Math.cos(2 * Math.PI * next());
    for (let it = 0; it < 80; it++) {
      const t = 1 + Math.floor(next() * 70), k = 1 + Math.floor(next() * 70), n = 1 + Math.floor(next() * 40);
      const x = Array.from({ length: t }, () => Array.from({ length: k }, () => f32(gauss() * (next() < 0.05 ? 30 : 1))));
      const w = Array.from({ length: k }, () => Array.from({ length: n }, () => f32(0.3 * gauss())));
      const dy = Array.from({ length: t }, () => Array.from({ length: n }, () => f32(gauss() * (next() < 0.1 ? 100 : 1))));
      const aHat = x.map((r) => absmaxE2M1(r, false).values);
      const wHat = columns(columns(w).map((c) => absmaxE2M1(c, false).values)); // [k, n]
      const g = fp8Rows(dy, true, true);
      const dx = product(g, fp8Rows(wHat, false, false));
      const dw = product(fp8Rows(columns(aHat), false, false), columns(g));
      const layer = layers.fp4Dense({ units: n, useBias: false, gradients: 'e5m2', occ: false, dge: false, weights: [tf.tensor2d(w)] });
      const got = layerGradients(layer, tf.tensor2d(x), tf.tensor2d(dy));
      expect(relativeError(got.dx, dx), `dx ${t}×${k}×${n}`).toBeLessThan(1e-6);
      expect(relativeError(got.dw, dw), `dw ${t}×${k}×${n}`).toBeLessThan(1e-6);
    }
  });

  it('rank 3 and 4 inputs are their rows (output, ∇x and ∇W equal to the reshaped rank-2 call), every scaling', () => {
    for (const scaling of ['per-channel', 'nvfp4', 'mxfp4'] as const) {
      for (const shape of [[2, 3, 17], [2, 2, 3, 33], [1, 1, 1]]) {
        const k = shape[shape.length - 1];
        const layer = layers.fp4Dense({ units: 3, scaling, occ: { alpha: 0.8 }, kernelInitializer: tf.initializers.randomNormal({ seed: 1 }) });
        const x = tf.randomNormal(shape, 0, 1, 'float32', 7);
        const rows = x.reshape([-1, k]);
        const dy = tf.randomNormal([...shape.slice(0, -1), 3], 0, 1, 'float32', 8);
        const a = layerGradients(layer, x, dy);
        const b = layerGradients(layer, rows, dy.reshape([-1, 3]));
        expect(a.y.shape).toEqual([...shape.slice(0, -1), 3]);
        expect(Array.from(a.y.dataSync())).toEqual(Array.from(b.y.dataSync()));
        expect(Array.from(a.dx.dataSync())).toEqual(Array.from(b.dx.dataSync()));
        expect(Array.from(a.dw.dataSync())).toEqual(Array.from(b.dw.dataSync()));
      }
    }
  });

  it('toJSON → modelFromJSON keeps every non-default FP4 option and predicts the same', async () => {
    const variants = [
      { dge: { k: 2, cap: 4 }, occ: { alpha: 0.9 }, gradients: 'fp32', scaling: 'mxfp4' },
      { dge: false, occ: false, gradients: 'fp32', ties: 'ties-up' },
      { dge: { k: 1.5, cap: 0.5 }, occ: { alpha: 0.75 }, scaling: 'nvfp4' },
    ] as const;
    for (const v of variants) {
      const model = tf.sequential({ layers: [
        layers.fp4Dense({ units: 4, inputShape: [5, 20], activation: 'relu', kernelRegularizer: 'l1l2', biasConstraint: 'nonNeg', ...v }),
        layers.fp4Dense({ units: 2, ...v }),
      ] });
      const copy = await tf.models.modelFromJSON(JSON.parse(model.toJSON() as string));
      copy.setWeights(model.getWeights());
      for (let i = 0; i < 2; i++) expect((copy.layers[i] as Fp4Dense).fp4).toEqual((model.layers[i] as Fp4Dense).fp4);
      const x = tf.randomNormal([3, 5, 20], 0, 1, 'float32', 3);
      expect(Array.from((copy.predict(x) as tf.Tensor).dataSync())).toEqual(Array.from((model.predict(x) as tf.Tensor).dataSync()));
    }
  });
});
