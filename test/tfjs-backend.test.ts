// The fp4kit TensorFlow.js backends ('fp4kit' on tfjs's wasm backend, 'fp4kit-cpu' on its cpu
// backend) with real tfjs 4.22: tfjs-core's own specs for every kernel fp4kit replaces, agreement
// with tfjs's cpu backend (float32 within reassociation error; quantizing modes on fake-quantized
// operands), the weight cache, bit-identical results across fp4kit's own backends, tfjs-layers
// models that train and predict, and no tensor leaks.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { availableBackends, dequantize, getBackend as getFp4kitBackend, quantize, setBackend as setFp4kitBackend, withBackend as withFp4kitBackend } from '../lib/index.js';
import { getKernels } from '../lib/kernels/registry.js';
import { FP4KIT_BACKEND, FP4KIT_CPU_BACKEND, readCounters, resetCounters, weightCacheOf, type WeightMode } from '../lib/tfjs/index.js';
import { MAX_CACHED_PIECES } from '../lib/tfjs/weight-cache.js';
import { lcgUniform } from './helpers/data.js';
import { OWN_KERNEL_SPEC_FILES, runTfjsCoreSpecs } from './helpers/tfjs-core-specs.js';

const BACKENDS = [FP4KIT_BACKEND, FP4KIT_CPU_BACKEND];
const QUANTIZING: Exclude<WeightMode, 'none'>[] = ['nvfp4', 'mxfp4', 'mxfp8_e4m3', 'fgmp'];

describe.each(BACKENDS)('tfjs-core specs on %s, FP4KIT_WEIGHTS=none', (backendName) => {
  for (const file of OWN_KERNEL_SPEC_FILES) {
    runTfjsCoreSpecs(file, { name: backendName, backendName, flags: { FP4KIT_WEIGHTS: 'none' } });
  }
});

// ---------------------------------------------------------------------------------------------
// Host-side references.

/** Deterministic values in [-1, 1) (a small LCG; the same on every run). */
const values = (count: number, seed: number) => lcgUniform(count, seed);

/** [rows, cols] → [cols, rows]. */
function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = x[r * cols + c];
  return out;
}

/** dequantize(quantize(x)) of a row-major [rows, cols] matrix (blocks along cols). */
function fakeQuant(x: Float32Array, rows: number, cols: number, format: Exclude<WeightMode, 'none'> | 'mxint8'): Float32Array {
  const q = format === 'fgmp' ? quantize(x, { format: 'fgmp', shape: [rows, cols] }) : quantize(x, { format, shape: [rows, cols] });
  return dequantize(q);
}

/**
 * Checks actual against reference within float32 reassociation error of a K-term dot product:
 * |actual − reference| ≤ K · 2⁻²³ · Σ_k |a_k · b_k| (+ 1e-30), per element; `magnitudes` is that sum.
 */
function expectWithinReassociation(actual: Float32Array, reference: Float32Array, magnitudes: Float32Array, k: number): void {
  expect(actual.length).toBe(reference.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const bound = k * 2 ** -23 * magnitudes[i] + 1e-30;
    worst = Math.max(worst, Math.abs(actual[i] - reference[i]) / bound);
  }
  expect(worst).toBeLessThanOrEqual(1);
}

/** a[M,K]·b[N,K]ᵀ and Σ|a||b| on tfjs's cpu backend. */
function cpuProduct(a: Float32Array, b: Float32Array, m: number, k: number, n: number): { product: Float32Array; magnitudes: Float32Array } {
  return tf.tidy(() => {
    const ta = tf.tensor2d(a, [m, k], 'float32', );
    const tb = tf.tensor2d(b, [n, k]);
    return {
      product: tf.matMul(ta, tb, false, true).dataSync() as Float32Array,
      magnitudes: tf.matMul(tf.abs(ta), tf.abs(tb), false, true).dataSync() as Float32Array,
    };
  });
}

/** Runs f with `name` as the tfjs backend, then goes back to the fp4kit backend under test. */
async function on<T>(name: string, f: () => T): Promise<T> {
  const previous = tf.getBackend();
  await tf.setBackend(name);
  try {
    return f();
  } finally {
    await tf.setBackend(previous);
  }
}

describe.each(BACKENDS)('products on %s', (backendName) => {
  beforeEach(async () => {
    tf.engine().reset();
    expect(await tf.setBackend(backendName)).toBe(true);
    tf.env().set('FP4KIT_WEIGHTS', 'none');
    resetCounters();
  });

  it('FP4KIT_WEIGHTS=none agrees with the cpu backend within float32 reassociation error (shapes, transposes, batches)', async () => {
    const cases: [number, number, number][] = [[1, 1, 1], [3, 5, 7], [17, 33, 9], [64, 100, 31], [2, 257, 3]];
    for (const [m, k, n] of cases) {
      for (const transposeA of [false, true]) {
        for (const transposeB of [false, true]) {
          const a = values(m * k, m + 7 * k);
          const b = values(k * n, n + 3 * k);
          // The operands as tfjs sees them, and as [M,K] / [N,K] for the reference.
          const aTf = transposeA ? transpose(a, m, k) : a;
          const bTf = transposeB ? transpose(b, k, n) : b;
          const got = tf.tidy(() => tf.matMul(tf.tensor2d(aTf, transposeA ? [k, m] : [m, k]), tf.tensor2d(bTf, transposeB ? [n, k] : [k, n]), transposeA, transposeB).dataSync() as Float32Array);
          const ref = await on('cpu', () => cpuProduct(a, transpose(b, k, n), m, k, n));
          expectWithinReassociation(got, ref.product, ref.magnitudes, k);
        }
      }
    }
    expect(readCounters().floatProducts).toBeGreaterThanOrEqual(20);
    expect(readCounters().quantizedProducts).toBe(0);
  });

  it('FP4KIT_WEIGHTS=none: batched and broadcast products, fused bias and activations agree with cpu', async () => {
    const run = () => tf.tidy(() => {
      const a = tf.tensor(values(2 * 3 * 4 * 40, 1), [2, 3, 4, 40]);
      const b = tf.tensor(values(3 * 40 * 6, 2), [3, 40, 6]);
      const w = tf.tensor(values(40 * 6, 3), [40, 6]);
      const bias = tf.tensor(values(6, 4), [6]);
      const bias2d = tf.tensor(values(4 * 6, 5), [4, 6]);
      return [
        tf.matMul(a, b), // batch dims [2,3] × [3]
        tf.matMul(a, w), // one weight for every matrix
        tf.fused.matMul({ a: a.reshape([24, 40]), b: w, bias, activation: 'relu' }),
        tf.fused.matMul({ a: a.reshape([24, 40]), b: w, bias, activation: 'elu' }),
        tf.fused.matMul({ a: a.reshape([2, 3, 4, 40]), b: w, bias: bias2d, activation: 'sigmoid' }), // [4,6] bias: not per column
        tf.fused.matMul({ a: a.reshape([24, 40]), b: w, activation: 'leakyrelu', leakyreluAlpha: 0.3 }),
        tf.fused.matMul({ a: a.reshape([24, 40]), b: w, activation: 'prelu', preluActivationWeights: bias }),
      ].map((t) => t.dataSync() as Float32Array);
    });
    const got = run();
    const ref = await on('cpu', run);
    for (let i = 0; i < got.length; i++) {
      expect(got[i].length).toBe(ref[i].length);
      // 40-term sums of values below 1 in magnitude (activations only shrink differences).
      for (let j = 0; j < got[i].length; j++) expect(Math.abs(got[i][j] - ref[i][j])).toBeLessThanOrEqual(40 * 40 * 2 ** -23);
    }
  });

  it.each(['none', 'nvfp4'] as const)('FP4KIT_WEIGHTS=%s: batch dims broadcast on both sides (numpy\'s rule) give the product of the tiled operands, float32 and int32', async (mode) => {
    tf.env().set('FP4KIT_WEIGHTS', mode);
    const cases: [number[], number[]][] = [[[2, 1, 4, 5], [1, 3, 5, 6]], [[3, 1, 2, 4, 5], [2, 1, 5, 6]], [[1, 4, 5], [2, 3, 5, 6]], [[2, 3, 4, 5], [3, 5, 6]]];
    for (const [aShape, bShape] of cases) {
      const outer = tf.broadcast_util.assertAndGetBroadcastShape(aShape.slice(0, -2), bShape.slice(0, -2));
      const tiled = (t: tf.Tensor) => tf.tidy(() => {
        const expanded = t.reshape([...new Array(outer.length + 2 - t.rank).fill(1), ...t.shape]);
        return tf.tile(expanded, [...outer.map((d, i) => d / expanded.shape[i]), 1, 1]);
      });
      const a = tf.tensor(values(tf.util.sizeFromShape(aShape), 65), aShape);
      const b = tf.variable(tf.tensor(values(tf.util.sizeFromShape(bShape), 66), bShape));
      const bTiled = tf.variable(tiled(b));
      const got = tf.tidy(() => tf.matMul(a, b));
      expect(got.shape).toEqual([...outer, aShape.at(-2)!, bShape.at(-1)!]);
      const want = tf.tidy(() => tf.matMul(tiled(a), bTiled));
      // Each matrix of b is quantized on its own: its tiled copies quantize to the same values.
      expect(got.dataSync()).toEqual(want.dataSync());
      if (mode === 'none') {
        const ints = (t: tf.Tensor) => tf.tidy(() => tf.cast(tf.round(tf.mul(t, 9)), 'int32'));
        const gotInt = tf.tidy(() => tf.matMul(ints(a), ints(b)).dataSync());
        const wantInt = tf.tidy(() => tf.matMul(ints(tiled(a)), ints(bTiled)).dataSync());
        expect(gotInt).toEqual(wantInt);
      }
      tf.dispose([a, b, bTiled, got, want]);
    }
  });

  it.each(QUANTIZING)('FP4KIT_WEIGHTS=%s: a variable B is quantized, activations MXINT8 — equal to cpu on the fake-quantized operands, every transpose', async (mode) => {
    tf.env().set('FP4KIT_WEIGHTS', mode);
    const m = 24;
    const k = 96;
    const n = 40;
    const a = values(m * k, 11);
    const w = values(k * n, 12); // the weight as [K, N] (Dense layout)
    const wNK = transpose(w, k, n);
    const aQ = fakeQuant(a, m, k, 'mxint8');
    const wQ = fakeQuant(wNK, n, k, mode);
    const ref = await on('cpu', () => cpuProduct(aQ, wQ, m, k, n));
    for (const transposeA of [false, true]) {
      for (const transposeB of [false, true]) {
        const weight = tf.variable(tf.tensor2d(transposeB ? wNK : w, transposeB ? [n, k] : [k, n]));
        const x = tf.tensor2d(transposeA ? transpose(a, m, k) : a, transposeA ? [k, m] : [m, k]);
        const before = readCounters();
        const got = tf.tidy(() => tf.matMul(x, weight, transposeA, transposeB).dataSync() as Float32Array);
        const after = readCounters();
        expect(after.quantizedProducts - before.quantizedProducts).toBe(1);
        expect(after.floatProducts - before.floatProducts).toBe(0);
        expectWithinReassociation(got, ref.product, ref.magnitudes, k);
        x.dispose();
        weight.dispose();
      }
    }
  });

  it('quantizing mode, broadcast batches: one weight under 2×3 matrices of a, and one weight per batch of b', async () => {
    tf.env().set('FP4KIT_WEIGHTS', 'nvfp4');
    const [m, k, n] = [5, 64, 8];
    const a = values(6 * m * k, 21);
    const wBatched = values(2 * k * n, 22);
    const aQ = fakeQuant(a, 6 * m, k, 'mxint8');
    // a [2,3,M,K] × w [K,N]: all 30 rows in one product with one quantized weight.
    const w0 = wBatched.subarray(0, k * n);
    const ref1 = await on('cpu', () => cpuProduct(aQ, fakeQuant(transpose(w0, k, n), n, k, 'nvfp4'), 6 * m, k, n));
    const v1 = tf.variable(tf.tensor2d(w0, [k, n]));
    const got1 = tf.tidy(() => tf.matMul(tf.tensor(a, [2, 3, m, k]), v1).dataSync() as Float32Array);
    expectWithinReassociation(got1, ref1.product, ref1.magnitudes, k);
    // a [2,M,K] × w [2,K,N]: each batch with its own weight matrix, each quantized on its own.
    const v2 = tf.variable(tf.tensor3d(wBatched, [2, k, n]));
    const got2 = tf.tidy(() => tf.matMul(tf.tensor3d(a.subarray(0, 2 * m * k), [2, m, k]), v2).dataSync() as Float32Array);
    for (let i = 0; i < 2; i++) {
      const wi = wBatched.subarray(i * k * n, (i + 1) * k * n);
      const ref = await on('cpu', () => cpuProduct(aQ.subarray(i * m * k, (i + 1) * m * k), fakeQuant(transpose(wi, k, n), n, k, 'nvfp4'), m, k, n));
      expectWithinReassociation(got2.subarray(i * m * n, (i + 1) * m * n), ref.product, ref.magnitudes, k);
    }
    v1.dispose();
    v2.dispose();
  });

  it('quantizing mode: products without a weight operand (gradients, two activations) run in float32', async () => {
    tf.env().set('FP4KIT_WEIGHTS', 'mxfp4');
    const a = tf.tensor2d(values(8 * 32, 31), [8, 32]);
    const b = tf.tensor2d(values(32 * 4, 32), [32, 4]);
    const got = tf.matMul(a, b).dataSync() as Float32Array;
    expect(readCounters()).toMatchObject({ quantizedProducts: 0, floatProducts: 1 });
    const ref = await on('cpu', () => cpuProduct(values(8 * 32, 31), transpose(values(32 * 4, 32), 32, 4), 8, 32, 4));
    expectWithinReassociation(got, ref.product, ref.magnitudes, 32);
    // FP4KIT_WEIGHT_TENSORS=all: every B is a weight (e.g. a GraphModel's constant weights).
    tf.env().set('FP4KIT_WEIGHT_TENSORS', 'all');
    tf.matMul(a, b).dataSync();
    expect(readCounters().quantizedProducts).toBe(1);
  });

  it.each(QUANTIZING)('FP4KIT_WEIGHTS=%s: a Dense layer on rank-3 input quantizes its kernel (dot() passes it through an identity transpose)', async (mode) => {
    tf.env().set('FP4KIT_WEIGHTS', mode);
    const layer = tf.layers.dense({ units: 8, inputShape: [3, 64], useBias: false });
    const model = tf.sequential({ layers: [layer] });
    const x = tf.tensor3d(values(2 * 3 * 64, 61), [2, 3, 64]);
    resetCounters();
    const got = tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync() as Float32Array);
    expect(readCounters()).toMatchObject({ quantizedProducts: 1, floatProducts: 0, weightsPrepared: 1 });
    // The same kernel on the same rows as a rank-2 product: the cached weight, the same bits.
    const kernel = layer.getWeights()[0];
    const flat = tf.tidy(() => tf.matMul(x.reshape([6, 64]), kernel).dataSync() as Float32Array);
    expect(readCounters()).toMatchObject({ quantizedProducts: 2, weightsPrepared: 1, weightCacheHits: 1 });
    expect(got).toEqual(flat);
    // A transpose that moves axes still copies, through the base's kernel.
    const moved = tf.tidy(() => tf.transpose(x, [0, 2, 1]).dataSync() as Float32Array);
    expect(moved[1]).toBe(x.dataSync()[64]);
    model.dispose();
    x.dispose();
  });

  it.each(['none', 'nvfp4'] as const)('FP4KIT_WEIGHTS=%s: float32 tensors cast from int32 and bool give the bits of the same values made as float32 (the cpu base shares the integer data)', async (mode) => {
    tf.env().set('FP4KIT_WEIGHTS', mode);
    const ints = (count: number, seed: number) => Array.from(values(count, seed), (v) => Math.round(v * 7));
    const [m, k, n] = [6, 32, 5];
    const aInts = ints(m * k, 71);
    const wInts = ints(k * n, 72);
    const biasInts = ints(n, 73);
    const mask = aInts.map((v) => v > 0);
    const run = (make: (v: number[] | boolean[], shape: number[], dtype: 'int32' | 'bool') => tf.Tensor) => tf.tidy(() => {
      const a = make(aInts, [m, k], 'int32') as tf.Tensor2D;
      const w = tf.variable(make(wInts, [k, n], 'int32') as tf.Tensor2D);
      const bias = make(biasInts, [n], 'int32');
      const image = make(aInts, [1, m, k / 4, 4], 'int32') as tf.Tensor4D;
      const filter = make(wInts.slice(0, 3 * 3 * 4 * 2), [3, 3, 4, 2], 'int32') as tf.Tensor4D;
      const out = [
        tf.fused.matMul({ a, b: w, bias }), // bias added inside the product
        tf.fused.matMul({ a, b: w, bias, activation: 'prelu', preluActivationWeights: bias }),
        tf.matMul(make(mask, [m, k], 'bool') as tf.Tensor2D, w), // a bool mask as A
        tf.matMul(a, a, true, false), // neither operand a weight: the float32 product
        tf.conv2d(image, filter, 1, 'same'),
      ].map((t) => t.dataSync() as Float32Array);
      w.dispose();
      return out;
    });
    const asFloat = run((v, shape) => tf.tensor(v.map(Number), shape, 'float32'));
    const cast = run((v, shape, dtype) => tf.cast(tf.tensor(v as number[], shape, dtype), 'float32'));
    for (let i = 0; i < asFloat.length; i++) expect(cast[i]).toEqual(asFloat[i]);
    expect(asFloat[0].some((v) => v !== 0)).toBe(true);
  });

  it.each(QUANTIZING)('FP4KIT_WEIGHTS=%s: a weight column holding NaN or ±Inf gives NaN in its output column, the other columns the weight with that column zeroed', async (mode) => {
    tf.env().set('FP4KIT_WEIGHTS', mode);
    const [m, k, n] = [3, 64, 6];
    const a = tf.tensor2d(values(m * k, 81), [m, k]);
    const clean = values(k * n, 82);
    for (const bad of [NaN, Infinity, -Infinity]) {
      const w = clean.slice();
      w[5 * n + 1] = bad; // column 1 of the [K, N] Dense kernel
      w[60 * n + 4] = bad; // column 4
      const zeroed = w.map((v, i) => (i % n === 1 || i % n === 4 ? 0 : v));
      const weight = tf.variable(tf.tensor2d(w, [k, n]));
      const reference = tf.variable(tf.tensor2d(zeroed, [k, n]));
      for (const conv of [false, true]) {
        // The same weight as a Dense kernel and as a 1×1 convolution's filter.
        const run = (v: tf.Variable) => tf.tidy(() => (conv
          ? tf.conv2d(a.reshape([1, 1, m, k]) as tf.Tensor4D, v.reshape([1, 1, k, n]) as tf.Tensor4D, 1, 'valid')
          : tf.matMul(a, v)).dataSync() as Float32Array);
        const got = run(weight);
        const ref = run(reference);
        for (let i = 0; i < got.length; i++) {
          if (i % n === 1 || i % n === 4) expect(got[i]).toBeNaN();
          else expect(got[i]).toBe(ref[i]);
        }
      }
      // The backward product dX = dY · Wᵀ: rows of W are columns of Wᵀ; NaN where they meet.
      const dx = tf.tidy(() => tf.matMul(tf.ones([2, n]), weight, false, true).dataSync() as Float32Array);
      for (let i = 0; i < dx.length; i++) expect(Number.isNaN(dx[i])).toBe(i % k === 5 || i % k === 60);
      tf.dispose([weight, reference]);
    }
    a.dispose();
  });

  it('int32 tf.fused.matMul (bias; linear, relu, relu6; transposes, batches) gives tfjs cpu\'s integers', async () => {
    const ints = (count: number, seed: number) => Array.from(values(count, seed), (v) => Math.round(v * 50));
    const run = () => tf.tidy(() => {
      const out: Int32Array[] = [];
      for (const activation of ['linear', 'relu', 'relu6'] as const) {
        for (const [transposeA, transposeB] of [[false, false], [true, true]]) {
          const a = tf.tensor(ints(2 * 4 * 7, 91), transposeA ? [2, 7, 4] : [2, 4, 7], 'int32') as tf.Tensor3D;
          const b = tf.tensor(ints(7 * 3, 92), transposeB ? [3, 7] : [7, 3], 'int32') as tf.Tensor2D;
          const bias = tf.tensor1d(ints(3, 93), 'int32');
          const r = tf.fused.matMul({ a, b, bias, activation, transposeA, transposeB });
          expect(r.dtype).toBe('int32');
          out.push(r.dataSync() as Int32Array);
        }
      }
      return out;
    });
    const got = run();
    const ref = await on('cpu', run);
    expect(got).toEqual(ref);
    expect(ref[0].some((v) => v < 0) && ref[2].every((v) => v >= 0)).toBe(true);
  });

  it('a fused product or convolution that fails in its epilogue (an activation it lacks, a bias that does not broadcast) keeps no buffer', () => {
    const a = tf.tensor2d(values(4 * 8, 94), [4, 8]);
    const b = tf.tensor2d(values(8 * 3, 95), [8, 3]);
    const x = tf.tensor4d(values(1 * 5 * 5 * 2, 96), [1, 5, 5, 2]);
    const filter = tf.tensor4d(values(3 * 3 * 2 * 4, 97), [3, 3, 2, 4]);
    const badBias = tf.tensor2d(values(8 * 3, 98), [8, 3]);
    const buffers = tf.memory().numDataBuffers;
    const ids = tf.backend().numDataIds();
    for (let i = 0; i < 20; i++) {
      expect(() => tf.fused.matMul({ a, b, activation: 'tanh' as never })).toThrow(/activation 'tanh' is not implemented/);
      expect(() => tf.fused.conv2d({ x, filter, strides: 1, pad: 'same', activation: 'swish' as never })).toThrow(/activation 'swish' is not implemented/);
      expect(() => tf.engine().runKernel('_FusedMatMul', { a, b, bias: badBias }, { transposeA: false, transposeB: false, activation: 'linear' })).toThrow();
    }
    expect(tf.memory().numDataBuffers).toBe(buffers);
    expect(tf.backend().numDataIds()).toBe(ids);
    tf.dispose([a, b, x, filter, badBias]);
  });


  it('a fused leaky ReLU without an alpha takes the op\'s 0.2 in every fused kernel, also where a call falls back to the base or cpu', async () => {
    // Reference: the same ops unfused, as tfjs computes them under a gradient tape (leakyRelu's default).
    const x = tf.tensor4d(values(2 * 5 * 5 * 3, 81), [2, 5, 5, 3]);
    const filter = tf.tensor4d(values(3 * 3 * 3 * 4, 82), [3, 3, 3, 4]);
    const depthFilter = tf.tensor4d(values(3 * 3 * 3 * 2, 83), [3, 3, 3, 2]);
    const a = tf.tensor2d(values(6 * 10, 84), [6, 10]);
    const b = tf.tensor2d(values(10 * 7, 85), [10, 7]);
    const bias3 = tf.tensor3d(values(6, 87), [1, 1, 6]);
    const unfused: [string, tf.Tensor, tf.Tensor][] = [
      ['conv2d', tf.fused.conv2d({ x, filter, strides: 1, pad: 'same', activation: 'leakyrelu' }), tf.leakyRelu(tf.conv2d(x, filter, 1, 'same'))],
      ['depthwiseConv2d', tf.fused.depthwiseConv2d({ x, filter: depthFilter, strides: 1, pad: 'same', activation: 'leakyrelu' }), tf.leakyRelu(tf.depthwiseConv2d(x, depthFilter, 1, 'same'))],
      // A bias of rank 3: the wasm base refuses it, so 'fp4kit' runs this call on cpu.
      ['depthwiseConv2d, rank-3 bias', tf.fused.depthwiseConv2d({ x, filter: depthFilter, strides: 1, pad: 'same', bias: bias3, activation: 'leakyrelu' }),
        tf.leakyRelu(tf.add(tf.depthwiseConv2d(x, depthFilter, 1, 'same'), bias3))],
      ['matMul', tf.fused.matMul({ a, b, activation: 'leakyrelu' }), tf.leakyRelu(tf.matMul(a, b))],
    ];
    for (const [name, fused, reference] of unfused) {
      const got = await fused.data(), want = await reference.data();
      expect(got.some((v) => Number.isNaN(v)), name).toBe(false);
      expect(got.some((v) => v < 0), `${name}: negative outputs kept (not a ReLU)`).toBe(true);
      // The unfused op's values (a fallback may sum in another order: float32 rounding apart).
      const worst = Math.max(...Array.from(got, (v, i) => Math.abs(v - want[i]) / (1 + Math.abs(want[i]))));
      expect(worst, name).toBeLessThan(1e-5);
    }
    tf.dispose([x, filter, depthFilter, bias3, a, b, ...unfused.flatMap(([, f, r]) => [f, r])]);
  });
  it('a Dense layer fed int32 quantizes its kernel as for float32 input (tfjs casts both operands; a cast to the same dtype shares the data)', () => {
    tf.env().set('FP4KIT_WEIGHTS', 'nvfp4');
    const layer = tf.layers.dense({ units: 4, kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) });
    const ints = Array.from(values(3 * 20, 80), (v) => Math.round(v * 3));
    const fromInts = tf.tidy(() => (layer.apply(tf.tensor2d(ints, [3, 20], 'int32')) as tf.Tensor).dataSync() as Float32Array);
    expect(readCounters()).toMatchObject({ quantizedProducts: 1, floatProducts: 0 });
    const fromFloats = tf.tidy(() => (layer.apply(tf.tensor2d(ints, [3, 20], 'float32')) as tf.Tensor).dataSync() as Float32Array);
    expect(fromInts).toEqual(fromFloats);
    const x = tf.tensor1d([1.5, -2]);
    const same = tf.cast(x, 'float32');
    expect(same.dataSync()).toEqual(new Float32Array([1.5, -2]));
    tf.dispose([x, same]);
    expect(tf.cast(tf.tensor1d([1.5, -2.5]), 'int32').dataSync()).toEqual(new Int32Array([1, -2])); // a real cast is the base's
    layer.dispose();
  });

  it('pieces of a weight (tf.split, tf.slice: a GRU\'s recurrent kernel, ConvLSTM2D\'s kernels) are quantized as weights, cached under the weight, released with it', async () => {
    tf.env().set('FP4KIT_WEIGHTS', 'nvfp4');
    const cache = weightCacheOf(tf.backend());
    const models = [
      tf.sequential({ layers: [tf.layers.gru({ units: 8, inputShape: [4, 6] })] }),
      tf.sequential({ layers: [tf.layers.convLstm2d({ filters: 2, kernelSize: 3, padding: 'same', inputShape: [3, 5, 5, 2] })] }),
    ];
    for (const model of models) {
      const x = tf.tensor(values(2 * model.inputs[0].shape.slice(1).reduce((p, d) => p * d!, 1), 62), [2, ...model.inputs[0].shape.slice(1)] as number[]);
      resetCounters();
      const got = tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync() as Float32Array);
      const first = readCounters();
      expect(first.floatProducts).toBe(0);
      expect(first.quantizedProducts).toBeGreaterThan(first.weightsPrepared);
      // Every time step cuts the pieces afresh: the second call quantizes nothing.
      tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync());
      expect(readCounters().weightsPrepared).toBe(first.weightsPrepared);
      // The same bits as quantizing every B operand as a tensor of its own.
      tf.env().set('FP4KIT_WEIGHT_TENSORS', 'all');
      const asTensors = tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync() as Float32Array);
      tf.env().set('FP4KIT_WEIGHT_TENSORS', 'variables');
      expect(got).toEqual(asTensors);
      // One call on cpu moves the weights there and back under the same dataIds (the backend they
      // leave frees them): their pieces are still pieces of weights afterwards.
      await on('cpu', () => tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync()));
      resetCounters();
      const back = tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync() as Float32Array);
      expect(readCounters().floatProducts).toBe(0);
      expect(back).toEqual(got);
      x.dispose();
    }
    // A slice of a variable in a product, and a slice of that slice.
    const w = tf.tidy(() => tf.variable(tf.tensor2d(values(64 * 16, 63), [64, 16])));
    const a = tf.tensor2d(values(3 * 32, 64), [3, 32]);
    resetCounters();
    tf.tidy(() => tf.matMul(a, tf.slice(tf.slice(w, [16, 0], [48, 16]), [8, 0], [32, 16])).dataSync());
    expect(readCounters()).toMatchObject({ quantizedProducts: 1, floatProducts: 0 });
    for (const model of models) model.dispose();
    w.dispose();
    a.dispose();
    expect(cache.size).toBe(0);
    expect(tf.memory().numTensors).toBe(0);
  });

  it('a piece of a weight that lives on the other fp4kit backend is cached here under that weight, and released when the weight is', async () => {
    tf.env().set('FP4KIT_WEIGHTS', 'nvfp4');
    const cache = weightCacheOf(tf.backend());
    const x = tf.tensor2d(values(2 * 16, 63), [2, 16]);
    const other = backendName === FP4KIT_BACKEND ? FP4KIT_CPU_BACKEND : FP4KIT_BACKEND;
    for (let i = 0; i < 5; i++) {
      const { w, pieces } = await on(other, () => {
        const init = tf.tensor2d(values(16 * 32, 64 + i), [16, 32]);
        const v = tf.variable(init);
        init.dispose(); // the variable holds the data now
        return { w: v, pieces: tf.split(v, 2, 1) };
      });
      resetCounters();
      tf.tidy(() => tf.matMul(x, pieces[0]).dataSync());
      expect(readCounters()).toMatchObject({ quantizedProducts: 1, weightsPrepared: 1 });
      expect(cache.size).toBe(1);
      await on(other, () => {
        tf.dispose(pieces);
        w.dispose();
      });
      expect(cache.size).toBe(0);
      expect(readCounters().weightsReleased).toBe(1);
    }
    // The weight itself moving here keeps the piece's entry (the same values, on this backend now).
    const { w, pieces } = await on(other, () => {
      const v = tf.tidy(() => tf.variable(tf.tensor2d(values(16 * 32, 70), [16, 32])));
      return { w: v, pieces: tf.split(v, 2, 1) };
    });
    const first = tf.tidy(() => tf.matMul(x, pieces[0]).dataSync() as Float32Array);
    tf.tidy(() => tf.matMul(x, w).dataSync()); // moves w here
    await Promise.resolve();
    resetCounters();
    expect(tf.tidy(() => tf.matMul(x, pieces[0]).dataSync() as Float32Array)).toEqual(first);
    expect(readCounters()).toMatchObject({ weightsPrepared: 0, weightCacheHits: 1, weightsReleased: 0 });
    tf.dispose([...pieces, w, x]);
    expect(cache.size).toBe(0);
  });

  it(`at most MAX_CACHED_PIECES pieces of one weight stay cached, the least recently used released first`, () => {
    tf.env().set('FP4KIT_WEIGHTS', 'nvfp4');
    const cache = weightCacheOf(tf.backend());
    const w = tf.tidy(() => tf.variable(tf.tensor2d(values(64 * 16, 80), [64, 16])));
    const a = tf.tensor2d(values(3 * 16, 81), [3, 16]);
    // 48 distinct cuts, as a table sliced to each sequence's length would make.
    const product = (begin: number) => tf.tidy(() => tf.matMul(a, tf.slice(w, [begin, 0], [16, 16])).dataSync() as Float32Array);
    resetCounters();
    const first = Array.from({ length: 48 }, (_, begin) => product(begin));
    const live = () => readCounters().weightsPrepared - readCounters().weightsReleased;
    expect(readCounters()).toMatchObject({ quantizedProducts: 48, floatProducts: 0, weightsPrepared: 48, weightsReleased: 48 - MAX_CACHED_PIECES });
    expect(live()).toBe(MAX_CACHED_PIECES);
    // The newest are kept; using one makes it the most recently used.
    expect(product(47)).toEqual(first[47]);
    expect(product(16)).toEqual(first[16]);
    expect(readCounters()).toMatchObject({ weightsPrepared: 48, weightCacheHits: 2 });
    // The oldest was released and is made again, with the same bits; the least recently used one
    // (17, as 16 was just used) goes in its place.
    expect(product(0)).toEqual(first[0]);
    expect(readCounters()).toMatchObject({ weightsPrepared: 49, weightsReleased: 48 - MAX_CACHED_PIECES + 1 });
    expect(product(16)).toEqual(first[16]);
    expect(readCounters()).toMatchObject({ weightsPrepared: 49, weightCacheHits: 3 });
    expect(product(17)).toEqual(first[17]);
    expect(readCounters()).toMatchObject({ weightsPrepared: 50 });
    // The weight itself is no piece: it stays cached however many pieces come and go.
    const whole = tf.tidy(() => tf.matMul(a, w, false, true).dataSync() as Float32Array);
    for (let begin = 0; begin < 48; begin++) product(begin);
    resetCounters();
    expect(tf.tidy(() => tf.matMul(a, w, false, true).dataSync() as Float32Array)).toEqual(whole);
    expect(readCounters()).toMatchObject({ weightsPrepared: 0, weightCacheHits: 1 });
    tf.dispose([w, a]);
    expect(cache.size).toBe(0);
  });

  it('a piece is known by the shape it was cut from: slices of one variable seen as [16, 16] and [32, 8] are different weights', async () => {
    for (const mode of ['none', 'nvfp4'] as const) {
      tf.env().set('FP4KIT_WEIGHTS', mode);
      const v = tf.tidy(() => tf.variable(tf.tensor2d(values(256, 70), [16, 16])));
      const x = tf.tensor2d(values(16, 71), [2, 8]);
      const viaSquare = tf.tidy(() => tf.matMul(x, tf.slice(v, [0, 0], [8, 4])).dataSync() as Float32Array);
      // Same data (a reshape shares it), same begin and size, other values.
      const viaReshape = tf.tidy(() => tf.matMul(x, tf.slice(tf.reshape(v, [32, 8]), [0, 0], [8, 4])).dataSync() as Float32Array);
      const fresh = tf.tidy(() => tf.variable(tf.slice(tf.reshape(v, [32, 8]), [0, 0], [8, 4]).clone()));
      const wantReshape = tf.tidy(() => tf.matMul(x, fresh).dataSync() as Float32Array);
      expect(Array.from(viaReshape), mode).toEqual(Array.from(wantReshape));
      expect(Array.from(viaReshape)).not.toEqual(Array.from(viaSquare));
      for (const t of [v, x, fresh]) t.dispose();
    }
    expect(tf.memory().numTensors).toBe(0);
    expect(weightCacheOf(tf.backend()).size).toBe(0);
  });

  it('a variable made from a slice of a weight stays a weight after that weight is assigned or disposed', async () => {
    tf.env().set('FP4KIT_WEIGHTS', 'nvfp4');
    const w = tf.tidy(() => tf.variable(tf.tensor2d(values(64 * 16, 72), [64, 16])));
    // head's data is the slice's (a piece of w); twin's is a copy of it.
    const head = tf.tidy(() => tf.variable(tf.slice(w, [0, 0], [32, 16])));
    const twin = tf.tidy(() => tf.variable(tf.slice(w, [0, 0], [32, 16]).clone()));
    const a = tf.tensor2d(values(3 * 32, 73), [3, 32]);
    const want = tf.tidy(() => tf.matMul(a, twin).dataSync() as Float32Array);
    for (const change of ['assign', 'dispose'] as const) {
      if (change === 'assign') tf.tidy(() => w.assign(tf.zerosLike(w)));
      else w.dispose();
      resetCounters();
      const got = tf.tidy(() => tf.matMul(a, head).dataSync() as Float32Array);
      expect(readCounters(), change).toMatchObject({ quantizedProducts: 1, floatProducts: 0 });
      expect(Array.from(got), change).toEqual(Array.from(want));
    }
    for (const t of [head, twin, a]) t.dispose();
    expect(tf.memory().numTensors).toBe(0);
    expect(weightCacheOf(tf.backend()).size).toBe(0);
  });

  it('conv2d\'s gradients with dimRoundingMode \'ceil\' (a dY larger than the convolution\'s output) give cpu\'s', async () => {
    const x = tf.tensor4d(values(2 * 6 * 6 * 2, 74), [2, 6, 6, 2]);
    const f = tf.tensor4d(values(3 * 3 * 2 * 3, 75), [3, 3, 2, 3]);
    const grads = () => tf.tidy(() => tf.grads((a: tf.Tensor4D, b: tf.Tensor4D) => {
      const y = tf.conv2d(a, b, 2, 1, 'NHWC', 1, 'ceil');
      return y.mul(tf.tensor(Float32Array.from({ length: y.size }, (_, i) => Math.cos(i)), y.shape)).sum();
    })([x, f]).map((g) => g.dataSync() as Float32Array));
    const got = grads();
    const want = await on('cpu', grads);
    for (let i = 0; i < 2; i++) {
      const worst = Math.max(...Array.from(got[i], (v, j) => Math.abs(v - want[i][j])));
      expect(worst, i === 0 ? 'dx' : 'dfilter').toBeLessThan(1e-5);
    }
    x.dispose();
    f.dispose();
  });

  // A 200 × 200 × 16 image with a 3 × 3 filter has 40 000 patches of 144 taps: ~5.8 M values, so
  // chunks of 2^22 patch values end inside images. Image B's results must not depend on where.
  it.each(['none', 'nvfp4'] as const)('FP4KIT_WEIGHTS=%s: conv2d and its input gradient do not depend on where the patch chunks end inside an image (NHWC and NCHW)', (mode) => {
    tf.env().set('FP4KIT_WEIGHTS', mode);
    const [h, w, cin, cout] = [200, 200, 16, 4];
    const imageA = values(h * w * cin, 51);
    const imageB = values(h * w * cin, 52);
    const filter = tf.variable(tf.tensor4d(values(3 * 3 * cin * cout, 53), [3, 3, cin, cout]));
    const run = (images: Float32Array[], format: 'NHWC' | 'NCHW') => tf.tidy(() => {
      const all = new Float32Array(images.length * h * w * cin);
      images.forEach((im, i) => all.set(im, i * im.length));
      const nhwc = tf.tensor4d(all, [images.length, h, w, cin]);
      const x = format === 'NHWC' ? nhwc : tf.transpose(nhwc, [0, 3, 1, 2]) as tf.Tensor4D;
      const f = (a: tf.Tensor4D) => {
        const y = tf.conv2d(a, filter as tf.Tensor4D, 1, 'same', format);
        // dY depends on the position within an image only: image B's dY is the same in both runs.
        return y.mul(tf.tensor(Float32Array.from({ length: y.size }, (_, i) => Math.cos((i % (h * w * cout)) % 1000)), y.shape)).sum();
      };
      const y = tf.conv2d(x, filter as tf.Tensor4D, 1, 'same', format);
      const toNhwc = (t: tf.Tensor4D) => (format === 'NHWC' ? t : tf.transpose(t, [0, 2, 3, 1]));
      return { y: toNhwc(y).dataSync() as Float32Array, dx: toNhwc(tf.grad(f)(x) as tf.Tensor4D).dataSync() as Float32Array };
    });
    const bitsOf = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
    for (const format of ['NHWC', 'NCHW'] as const) {
      const alone = run([imageB], format);
      const after = run([imageA, imageB], format); // image B starts 40 000 patches later: other chunk boundaries
      const outB = h * w * cout;
      expect(bitsOf(after.y.subarray(outB)), `${format} y`).toEqual(bitsOf(alone.y));
      expect(bitsOf(after.dx.subarray(h * w * cin)), `${format} dx`).toEqual(bitsOf(alone.dx));
    }
    filter.dispose();
  });

  // The filter gradient's reduction spans every pixel of the batch; chunks of ~2^22 patch values
  // (at least 8 × the carried columns) hand each other the running sums. Its bits are the
  // documented order's (float-product.ts), written out here as a plain loop over the patches (for
  // the channels listed: both sides of the carried columns' unit boundary at 32).
  it.each([
    { name: '3 × 3 × 1 → 2, NHWC, same: 3 chunks', x: [4, 512, 512, 1], f: [3, 3, 1, 2], strides: 1, pad: 'same', format: 'NHWC', scale: 1, channels: [0, 1], products: 3 },
    { name: '3 × 3 × 4 → 40 (2 carried units), NCHW, valid: 3 chunks', x: [2, 384, 384, 4], f: [3, 3, 4, 40], strides: 1, pad: 'valid', format: 'NCHW', scale: 1, channels: [0, 31, 32, 39], products: 3 },
    { name: 'sums that overflow to ±Inf in the first chunk: the product taken whole after it', x: [4, 512, 512, 1], f: [3, 3, 1, 2], strides: 1, pad: 'same', format: 'NHWC', scale: 1e20, channels: [0, 1], products: 2 },
  ] as const)('FP4KIT_WEIGHTS=none: the filter gradient over more pixels than one chunk has the documented order\'s bits: $name', ({ x: xShape, f: fShape, strides, pad, format, scale, channels, products }) => {
    tf.env().set('FP4KIT_WEIGHTS', 'none');
    const [batch, h, w, cin] = xShape;
    const [fh, fw, , cout] = fShape;
    const xValues = values(batch * h * w * cin, 81).map((v) => v * scale); // NHWC
    const info = tf.backend_util.computeConv2DInfo(xShape as never, fShape as never, strides, 1, pad);
    const { outHeight: oh, outWidth: ow } = info;
    const dyValues = values(batch * oh * ow * cout, 82).map((v) => v * scale); // NHWC
    const x = tf.tidy(() => (format === 'NHWC' ? tf.tensor4d(xValues, xShape as never) : tf.transpose(tf.tensor4d(xValues, xShape as never), [0, 3, 1, 2])));
    const dy = tf.tidy(() => (format === 'NHWC' ? tf.tensor4d(dyValues, [batch, oh, ow, cout]) : tf.transpose(tf.tensor4d(dyValues, [batch, oh, ow, cout]), [0, 3, 1, 2])));
    resetCounters();
    const got = tf.tidy(() => (tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides, pad, dataFormat: format, filterShape: fShape }) as tf.Tensor).dataSync() as Float32Array);
    expect(readCounters().floatProducts, 'chunk products').toBe(products);
    x.dispose();
    dy.dispose();
    // dF[(fr·fw + fc)·cin + ci, c] = Σ over units of 32 batch pixels p of f32(Σ_p tap(p)·dy[p, c] in float64), summed in float32.
    const pixels = batch * oh * ow;
    const tap = new Float64Array(pixels);
    let checked = 0;
    for (let fr = 0; fr < fh; fr++) for (let fc = 0; fc < fw; fc++) for (let ci = 0; ci < cin; ci++) {
      for (let p = 0; p < pixels; p++) {
        const b = Math.floor(p / (oh * ow)), oy = Math.floor(p / ow) % oh, ox = p % ow;
        const iy = oy * info.strideHeight - info.padInfo.top + fr, ix = ox * info.strideWidth - info.padInfo.left + fc;
        tap[p] = iy >= 0 && iy < h && ix >= 0 && ix < w ? xValues[((b * h + iy) * w + ix) * cin + ci] : 0;
      }
      for (const c of channels) {
        let acc = 0;
        for (let u = 0; u < pixels; u += 32) {
          let d = 0;
          for (let p = u; p < Math.min(pixels, u + 32); p++) d += tap[p] * dyValues[p * cout + c];
          acc = Math.fround(acc + Math.fround(d));
        }
        const i = ((fr * fw + fc) * cin + ci) * cout + c;
        // Bit for bit (NaN as tfjs reads it back: any NaN).
        if (Number.isNaN(acc)) expect(got[i], `dF[${i}]`).toBeNaN();
        else expect(Object.is(got[i], acc), `dF[${i}] = ${got[i]}, the order gives ${acc}`).toBe(true);
        checked += Number.isFinite(acc) ? 0 : 1;
      }
    }
    expect(checked > 0, 'the case overflows').toBe(scale > 1);
  });

  // 5 input channels take im2col's per-element loop, 20 its one-copy-per-tap path.
  it.each([['nvfp4', 5], ['none', 5], ['nvfp4', 20], ['none', 20]] as const)('FP4KIT_WEIGHTS=%s, %i input channels: Conv2D (NHWC and NCHW, strides, padding) is im2col × the weight, equal to cpu on the fake-quantized operands', async (mode, cin) => {
    tf.env().set('FP4KIT_WEIGHTS', mode);
    const [batch, h, w, fh, fw, cout] = [2, 7, 6, 3, 3, 8];
    const x = values(batch * h * w * cin, 41);
    const f = values(fh * fw * cin * cout, 42);
    const k = fh * fw * cin;
    for (const [stride, pad] of [[1, 'same'], [2, 'valid']] as const) {
      const filter = tf.variable(tf.tensor4d(f, [fh, fw, cin, cout]));
      const nhwc = tf.tensor4d(x, [batch, h, w, cin]);
      const got = tf.tidy(() => tf.conv2d(nhwc, filter, stride, pad).dataSync() as Float32Array);
      const gotNchw = tf.tidy(() => tf.transpose(tf.conv2d(tf.transpose(nhwc, [0, 3, 1, 2]), filter, stride, pad, 'NCHW'), [0, 2, 3, 1]).dataSync() as Float32Array);
      // Reference: patches built here (independently of lib/tfjs/im2col.ts), fake-quantized
      // rows, times the fake-quantized filter, on the cpu backend.
      const info = tf.backend_util.computeConv2DInfo([batch, h, w, cin], [fh, fw, cin, cout], stride, 1, pad);
      const rows = batch * info.outHeight * info.outWidth;
      const patches = new Float32Array(rows * k);
      let r = 0;
      for (let b = 0; b < batch; b++) for (let oy = 0; oy < info.outHeight; oy++) for (let ox = 0; ox < info.outWidth; ox++, r++) {
        for (let i = 0; i < fh; i++) for (let j = 0; j < fw; j++) for (let c = 0; c < cin; c++) {
          const iy = oy * stride - info.padInfo.top + i;
          const ix = ox * stride - info.padInfo.left + j;
          if (iy >= 0 && iy < h && ix >= 0 && ix < w) patches[r * k + (i * fw + j) * cin + c] = x[((b * h + iy) * w + ix) * cin + c];
        }
      }
      const fNK = transpose(f, k, cout);
      const ref = await on('cpu', () => mode === 'none'
        ? cpuProduct(patches, fNK, rows, k, cout)
        : cpuProduct(fakeQuant(patches, rows, k, 'mxint8'), fakeQuant(fNK, cout, k, mode), rows, k, cout));
      expectWithinReassociation(got, ref.product, ref.magnitudes, k);
      expectWithinReassociation(gotNchw, ref.product, ref.magnitudes, k);
      filter.dispose();
      nhwc.dispose();
    }
    expect(readCounters()[mode === 'none' ? 'floatProducts' : 'quantizedProducts']).toBeGreaterThanOrEqual(4);
  });

  it('operands that live on another backend move in before the product reads them (the heap may grow meanwhile)', async () => {
    tf.env().set('FP4KIT_WEIGHTS', 'nvfp4');
    const [m, k, n] = [64, 1024, 4096];
    const a = tf.tensor2d(values(m * k, 91), [m, k]);
    // 16 MB made on the cpu backend: moving it into the wasm heap grows the heap.
    await tf.setBackend('cpu');
    const w = tf.tidy(() => tf.variable(tf.tensor2d(values(k * n, 92), [k, n])));
    await tf.setBackend(backendName);
    const got = tf.tidy(() => tf.matMul(a, w).dataSync() as Float32Array);
    const ref = await on('cpu', () => cpuProduct(fakeQuant(values(m * k, 91), m, k, 'mxint8'), fakeQuant(transpose(values(k * n, 92), k, n), n, k, 'nvfp4'), m, k, n));
    expectWithinReassociation(got, ref.product, ref.magnitudes, k);
    tf.dispose([a, w]);
  });

  it('a weight is quantized once and cached; an assign re-quantizes and releases the old entry; dispose releases it', async () => {
    tf.env().set('FP4KIT_WEIGHTS', 'nvfp4');
    const cache = weightCacheOf(tf.backend());
    // As tfjs-layers makes its weights: the initial value is disposed, the variable holds the data.
    const w = tf.tidy(() => tf.variable(tf.tensor2d(values(64 * 16, 51), [64, 16])));
    const x = tf.tensor2d(values(4 * 64, 52), [4, 64]);
    const first = tf.tidy(() => tf.matMul(x, w).dataSync() as Float32Array);
    for (let i = 0; i < 3; i++) expect(tf.tidy(() => tf.matMul(x, w).dataSync())).toEqual(first);
    expect(readCounters()).toMatchObject({ weightsPrepared: 1, weightCacheHits: 3, quantizedProducts: 4 });
    expect(cache.size).toBe(1);
    // The backward product dX = dY · Wᵀ uses the same tensor in the other layout: a second entry.
    tf.tidy(() => tf.matMul(tf.ones([4, 16]), w, false, true).dataSync());
    expect(readCounters().weightsPrepared).toBe(2);
    expect(cache.size).toBe(1);
    // A new value: its own quantization, and the old value's entries go with the old data.
    tf.tidy(() => w.assign(tf.mul(w, 2) as tf.Tensor2D));
    const doubled = tf.tidy(() => tf.matMul(x, w).dataSync() as Float32Array);
    expect(readCounters().weightsReleased).toBe(2);
    expect(readCounters().weightsPrepared).toBe(3);
    // NVFP4 scales are per tensor and per block: twice the weights quantize to exactly twice.
    for (let i = 0; i < first.length; i++) expect(doubled[i]).toBe(2 * first[i]);
    // The flag changes: the next product quantizes in the new format.
    tf.env().set('FP4KIT_WEIGHTS', 'mxfp4');
    tf.tidy(() => tf.matMul(x, w).dataSync());
    expect(readCounters().weightsPrepared).toBe(4);
    w.dispose();
    expect(cache.size).toBe(0);
    x.dispose();
  });

  it('FP4KIT_WEIGHTS refuses an unknown value at the set call and keeps the previous one', () => {
    tf.env().set('FP4KIT_WEIGHTS', 'mxfp4');
    expect(() => tf.env().set('FP4KIT_WEIGHTS', 'fp3')).toThrow("tf.env().set('FP4KIT_WEIGHTS'): the value must be one of 'nvfp4', 'mxfp4', 'mxfp8_e4m3', 'fgmp', 'none', got 'fp3'");
    expect(tf.env().get('FP4KIT_WEIGHTS')).toBe('mxfp4');
    expect(() => tf.env().set('FP4KIT_WEIGHT_TENSORS', true)).toThrow("tf.env().set('FP4KIT_WEIGHT_TENSORS'): the value must be one of 'variables', 'all', got true");
    expect(() => tf.env().set('FP4KIT_WEIGHT_TENSORS', true)).toThrow(TypeError); // not a name at all: the README's rule
    expect(tf.env().get('FP4KIT_WEIGHT_TENSORS')).toBe('variables');
    // setFlags calls no hook: the value is refused where a product reads it, naming the call that set it.
    const x = tf.tensor2d([1, 2], [1, 2]);
    const w = tf.variable(tf.tensor2d([1, 2, 3, 4], [2, 2]));
    tf.env().setFlags({ ...tf.env().getFlags(), FP4KIT_WEIGHTS: 'bogus' });
    expect(() => tf.matMul(x, w)).toThrow("the FP4KIT_WEIGHTS flag (set by tf.env().setFlags(), which checks no value): the value must be one of 'nvfp4', 'mxfp4', 'mxfp8_e4m3', 'fgmp', 'none', got 'bogus'");
    tf.env().set('FP4KIT_WEIGHTS', 'nvfp4');
    tf.dispose([x, w]);
  });
});

describe('importing fp4kit/tfjs', () => {
  const run = (imports: string) => spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `
    import * as tf from '@tensorflow/tfjs';
    ${imports}
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3] })] }); // before any await
    const before = tf.getBackend();
    await tf.ready();
    await tf.setBackend('fp4kit');
    const y = model.predict(tf.ones([1, 3]));
    console.log(JSON.stringify({ before, shape: y.shape, after: tf.getBackend() }));`], { cwd: join(import.meta.dirname, '..'), encoding: 'utf8' });

  it('leaves the default backend as it was: a model built before the first await works (tfjs-backend-wasm alone would make it wasm)', () => {
    const ours = run("import './lib/tfjs/index.ts';");
    expect(ours.status, ours.stderr).toBe(0);
    expect(JSON.parse(ours.stdout)).toEqual({ before: 'cpu', shape: [1, 2], after: 'fp4kit' });
    // A program that imported tfjs-backend-wasm itself, first, keeps it as its default (and the
    // model built before any await meets tfjs's own error, as without fp4kit).
    const theirs = run("import '@tensorflow/tfjs-backend-wasm'; import './lib/tfjs/index.ts';");
    expect(theirs.status).not.toBe(0);
    expect(theirs.stderr).toContain("The highest priority backend 'wasm' has not yet been initialized");
  });
});

describe('bit-identical across fp4kit backends (native, wasm, js)', () => {
  const fp4kitBackends = availableBackends().filter((b) => b.available).map((b) => b.name);
  const initial = getFp4kitBackend().name;
  afterAll(() => setFp4kitBackend(initial));

  it.each(['none', 'nvfp4', 'mxfp8_e4m3'] as const)('FP4KIT_WEIGHTS=%s: the same bytes from every fp4kit backend, through tfjs', async (mode) => {
    tf.engine().reset();
    await tf.setBackend(FP4KIT_BACKEND);
    tf.env().set('FP4KIT_WEIGHTS', mode);
    const outputs: Uint8Array[] = [];
    for (const name of fp4kitBackends) {
      setFp4kitBackend(name);
      const w = tf.variable(tf.tensor2d(values(75 * 33, 61), [75, 33]));
      const x = tf.tensor2d(values(19 * 75, 62), [19, 75]);
      // Forward, dX-like (transposeB) and dW-like (transposeA, no weight: float32) products.
      const y = tf.tidy(() => tf.concat([tf.matMul(x, w).flatten(), tf.matMul(tf.ones([19, 33]), w, false, true).flatten(), tf.matMul(x, x.slice([0, 0], [19, 8]), true, false).flatten()]));
      outputs.push(new Uint8Array((y.dataSync() as Float32Array).slice().buffer));
      tf.dispose([w, x, y]);
    }
    expect(fp4kitBackends.length).toBeGreaterThanOrEqual(2);
    for (const out of outputs.slice(1)) expect(out).toEqual(outputs[0]);
  });
});

// ---------------------------------------------------------------------------------------------
// tfjs-layers models.

/** A 3-class problem a small MLP learns: the label is the argmax of a fixed linear map of x. */
function mlpData(count: number): { x: tf.Tensor2D; y: tf.Tensor2D } {
  const features = values(count * 8, 71);
  const map = values(8 * 3, 72);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    let best = 0;
    let bestScore = -Infinity;
    for (let c = 0; c < 3; c++) {
      let score = 0;
      for (let j = 0; j < 8; j++) score += features[i * 8 + j] * map[j * 3 + c];
      if (score > bestScore) [best, bestScore] = [c, score];
    }
    labels[i] = best;
  }
  return { x: tf.tensor2d(features, [count, 8]), y: tf.oneHot(tf.tensor1d(labels, 'int32'), 3) as tf.Tensor2D };
}

/** 8×8 one-channel images with a bright 3×3 square in the left (class 0) or right (class 1) half. */
function cnnData(count: number): { x: tf.Tensor4D; y: tf.Tensor2D } {
  const noise = values(count * 64, 81);
  const images = new Float32Array(count * 64);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    labels[i] = i % 2;
    const top = Math.floor(((noise[i * 64] + 1) / 2) * 6);
    const left = labels[i] === 0 ? Math.floor(((noise[i * 64 + 1] + 1) / 2) * 2) : 4 + Math.floor(((noise[i * 64 + 1] + 1) / 2) * 2);
    for (let p = 0; p < 64; p++) images[i * 64 + p] = 0.1 * noise[i * 64 + p];
    for (let r = top; r < top + 3; r++) for (let c = left; c < left + 3; c++) images[i * 64 + r * 8 + c] += 1;
  }
  return { x: tf.tensor4d(images, [count, 8, 8, 1]), y: tf.oneHot(tf.tensor1d(labels, 'int32'), 2) as tf.Tensor2D };
}

const seeded = (seed: number) => tf.initializers.glorotUniform({ seed });

function mlp(): tf.Sequential {
  return tf.sequential({ layers: [
    tf.layers.dense({ units: 32, activation: 'relu', inputShape: [8], kernelInitializer: seeded(1) }),
    tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: seeded(2) }),
  ] });
}

/** A depthwise-separable CNN: a depthwise conv (channel multiplier 2), a separable conv, pooling, dense. */
function separableCnn(): tf.Sequential {
  return tf.sequential({ layers: [
    tf.layers.conv2d({ filters: 3, kernelSize: 1, inputShape: [8, 8, 1], kernelInitializer: seeded(6) }),
    tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same', activation: 'relu', depthwiseInitializer: seeded(7) }),
    tf.layers.separableConv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'valid', activation: 'relu', depthwiseInitializer: seeded(8), pointwiseInitializer: seeded(9) }),
    tf.layers.flatten(),
    tf.layers.dense({ units: 2, activation: 'softmax', kernelInitializer: seeded(10) }),
  ] });
}

function cnn(): tf.Sequential {
  return tf.sequential({ layers: [
    tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', inputShape: [8, 8, 1], kernelInitializer: seeded(3) }),
    tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: seeded(4) }),
    tf.layers.maxPooling2d({ poolSize: 2 }),
    tf.layers.flatten(),
    tf.layers.dense({ units: 2, activation: 'softmax', kernelInitializer: seeded(5) }),
  ] });
}

function accuracy(model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor): number {
  return tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(model.predict(x) as tf.Tensor, -1), tf.argMax(y, -1)), 'float32')).dataSync()[0]);
}

describe.each([
  [FP4KIT_BACKEND, 'nvfp4'], [FP4KIT_BACKEND, 'none'], [FP4KIT_BACKEND, 'mxfp8_e4m3'], [FP4KIT_CPU_BACKEND, 'mxfp4'],
] as const)('tfjs-layers models on %s, FP4KIT_WEIGHTS=%s', (backendName, mode) => {
  beforeEach(async () => {
    tf.engine().reset();
    expect(await tf.setBackend(backendName)).toBe(true);
    tf.env().set('FP4KIT_WEIGHTS', mode);
    // tfjs's per-kernel leak check, on every kernel the models run.
    tf.env().set('IS_TEST', true);
    resetCounters();
  });

  it('an MLP trains (loss falls), predicts, leaks no tensors, and releases its cached weights', async () => {
    const { x, y } = mlpData(256);
    const model = mlp();
    model.compile({ optimizer: tf.train.adam(0.02), loss: 'categoricalCrossentropy' });
    const history = await model.fit(x, y, { epochs: 12, batchSize: 32, shuffle: false, verbose: 0 });
    const losses = history.history.loss as number[];
    expect(losses[losses.length - 1]).toBeLessThan(0.6 * losses[0]);
    expect(accuracy(model, x, y)).toBeGreaterThan(0.85);
    // Training ran its weight products on fp4kit's matmul: quantized unless 'none'.
    const c = readCounters();
    expect(mode === 'none' ? c.floatProducts : c.quantizedProducts).toBeGreaterThan(8 * 12 * 2);
    // After the first fit (which creates the optimizer's slots), predict and fit keep the count.
    const tensors = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) tf.dispose(model.predict(x));
    await model.fit(x, y, { epochs: 1, batchSize: 64, verbose: 0 });
    expect(tf.memory().numTensors).toBe(tensors);
    // Each kernel is cached in at most the forward and the dX layout; all released on dispose.
    const cache = weightCacheOf(tf.backend());
    expect(cache.size).toBeLessThanOrEqual(2);
    model.dispose();
    tf.dispose([x, y]);
    expect(cache.size).toBe(0);
  });

  /** Trains `model` on cnnData: the loss halves, accuracy > 90 %, and predict and fit then leak no tensors. */
  async function trainsWithoutLeaks(model: tf.Sequential): Promise<void> {
    const { x, y } = cnnData(128);
    model.compile({ optimizer: tf.train.adam(0.02), loss: 'categoricalCrossentropy' });
    const history = await model.fit(x, y, { epochs: 10, batchSize: 32, shuffle: false, verbose: 0 });
    const losses = history.history.loss as number[];
    expect(losses[losses.length - 1]).toBeLessThan(0.5 * losses[0]);
    expect(accuracy(model, x, y)).toBeGreaterThan(0.9);
    const tensors = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) tf.dispose(model.predict(x));
    await model.fit(x, y, { epochs: 1, batchSize: 64, verbose: 0 });
    expect(tf.memory().numTensors).toBe(tensors);
    model.dispose();
    tf.dispose([x, y]);
  }

  it('a small CNN (two conv layers, pooling, dense) trains and predicts, and leaks no tensors', async () => {
    await trainsWithoutLeaks(cnn());
  });

  it('a depthwise-separable CNN trains (the depthwise gradients the wasm base lacks) and leaks no tensors', async () => {
    await trainsWithoutLeaks(separableCnn());
  });
});

/** A depthwise filter [fH, fW, C, M] with (d − 1) zero rows and columns between its taps. */
function dilatedFilter(filter: Float32Array, [fH, fW, c, m]: number[], d: [number, number]): { values: Float32Array; shape: number[] } {
  const bigH = (fH - 1) * d[0] + 1, bigW = (fW - 1) * d[1] + 1, taps = c * m;
  const values = new Float32Array(bigH * bigW * taps);
  for (let r = 0; r < fH; r++) for (let col = 0; col < fW; col++)
    values.set(filter.subarray((r * fW + col) * taps, (r * fW + col + 1) * taps), (r * d[0] * bigW + col * d[1]) * taps);
  return { values, shape: [bigH, bigW, c, m] };
}

describe.each(BACKENDS)('depthwise-convolution gradients on %s', (backendName) => {
  beforeEach(async () => {
    tf.engine().reset();
    expect(await tf.setBackend(backendName)).toBe(true);
  });

  /** The two gradients of depthwiseConv2d (their kernels called as tf.grads calls them), on the current backend. */
  function gradients(x: Float32Array, xShape: number[], f: Float32Array, fShape: number[], strides: [number, number], pad: 'same' | 'valid' | number,
    dilations: [number, number], dy: Float32Array, dyShape: number[]): { dx: Float32Array; df: Float32Array } {
    const attrs = { strides, pad, dilations, dimRoundingMode: undefined };
    return tf.tidy(() => {
      const [xt, ft, dyt] = [tf.tensor(x, xShape), tf.tensor(f, fShape), tf.tensor(dy, dyShape)];
      const dx = tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy: dyt, filter: ft }, { ...attrs, inputShape: xShape }) as tf.Tensor;
      const df = tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x: xt, dy: dyt }, { ...attrs, filterShape: fShape }) as tf.Tensor;
      return { dx: dx.dataSync() as Float32Array, df: df.dataSync() as Float32Array };
    });
  }

  it('give tfjs cpu\'s bits: strides, paddings, channel multipliers, batches, non-square images and filters', async () => {
    const configs: { x: number[]; f: [number, number]; m: number; strides: [number, number]; pad: 'same' | 'valid' | number }[] = [
      { x: [1, 5, 5, 1], f: [3, 3], m: 1, strides: [1, 1], pad: 'same' },
      { x: [2, 7, 6, 3], f: [3, 2], m: 2, strides: [2, 1], pad: 'valid' },
      { x: [3, 9, 8, 4], f: [5, 3], m: 3, strides: [2, 3], pad: 'same' },
      { x: [2, 6, 6, 2], f: [1, 1], m: 1, strides: [1, 1], pad: 1 },
      { x: [1, 11, 4, 5], f: [4, 4], m: 2, strides: [3, 2], pad: 2 },
    ];
    let seed = 100;
    for (const c of configs) {
      const fShape = [c.f[0], c.f[1], c.x[3], c.m];
      const x = values(c.x.reduce((p, v) => p * v), seed++), f = values(fShape.reduce((p, v) => p * v), seed++);
      const info = tf.backend_util.computeConv2DInfo(c.x as [number, number, number, number], fShape as [number, number, number, number], c.strides, 1, c.pad, undefined, true);
      const dy = values(info.outShape.reduce((p, v) => p * v), seed++);
      const got = gradients(x, c.x, f, fShape, c.strides, c.pad, [1, 1], dy, info.outShape);
      await tf.setBackend('cpu');
      const want = gradients(x, c.x, f, fShape, c.strides, c.pad, [1, 1], dy, info.outShape);
      await tf.setBackend(backendName);
      expect(Array.from(got.dx), JSON.stringify(c)).toEqual(Array.from(want.dx));
      expect(Array.from(got.df), JSON.stringify(c)).toEqual(Array.from(want.df));
    }
  });

  it('with dilations, equal the undilated gradients of the filter with zeros between its taps', async () => {
    const configs: { x: number[]; f: [number, number]; m: number; strides: [number, number]; pad: 'same' | 'valid'; d: [number, number] }[] = [
      { x: [2, 9, 9, 2], f: [3, 3], m: 2, strides: [1, 1], pad: 'same', d: [2, 2] },
      { x: [1, 12, 10, 3], f: [2, 3], m: 1, strides: [1, 1], pad: 'valid', d: [3, 2] },
    ];
    let seed = 200;
    for (const c of configs) {
      const fShape = [c.f[0], c.f[1], c.x[3], c.m];
      const x = values(c.x.reduce((p, v) => p * v), seed++), f = values(fShape.reduce((p, v) => p * v), seed++);
      const info = tf.backend_util.computeConv2DInfo(c.x as [number, number, number, number], fShape as [number, number, number, number], c.strides, c.d, c.pad, undefined, true);
      const dy = values(info.outShape.reduce((p, v) => p * v), seed++);
      const got = gradients(x, c.x, f, fShape, c.strides, c.pad, c.d, dy, info.outShape);
      const big = dilatedFilter(f, fShape, c.d);
      await tf.setBackend('cpu');
      const want = gradients(x, c.x, big.values, big.shape, c.strides, c.pad, [1, 1], dy, info.outShape);
      await tf.setBackend(backendName);
      expect(Array.from(got.dx), JSON.stringify(c)).toEqual(Array.from(want.dx));
      // The dilated filter's gradient is the big filter's at the taps.
      const taps = c.x[3] * c.m;
      for (let r = 0; r < c.f[0]; r++) for (let col = 0; col < c.f[1]; col++)
        expect(Array.from(got.df.subarray((r * c.f[1] + col) * taps, (r * c.f[1] + col + 1) * taps)))
          .toEqual(Array.from(want.df.subarray((r * c.d[0] * big.shape[1] + col * c.d[1]) * taps, (r * c.d[0] * big.shape[1] + col * c.d[1] + 1) * taps)));
    }
  });
});

describe.each(BACKENDS)('max pooling\'s gradient on %s', (backendName) => {
  beforeEach(async () => {
    tf.engine().reset();
    expect(await tf.setBackend(backendName)).toBe(true);
  });

  it('gives tfjs cpu\'s bits: negative maxima, ties, NaN, padded edges, strides, windows larger than the stride', async () => {
    const configs: { x: number[]; f: number | [number, number]; strides: number | [number, number]; pad: 'same' | 'valid' | number }[] = [
      { x: [1, 2, 2, 1], f: 2, strides: 2, pad: 'valid' },
      { x: [2, 7, 6, 3], f: 3, strides: 2, pad: 'same' },
      { x: [1, 9, 7, 2], f: [3, 2], strides: [2, 1], pad: 'same' },
      { x: [3, 5, 5, 4], f: 3, strides: 1, pad: 1 },
      { x: [1, 4, 6, 1], f: 2, strides: 2, pad: 'valid' },
    ];
    let seed = 300;
    for (const c of configs) {
      const count = c.x.reduce((p, v) => p * v);
      // Shifted below zero (the wasm base's fault), with ties and a NaN.
      const x = values(count, seed++).map((v, i) => (i % 5 === 0 ? -0.75 : v - 1.5));
      x[count >> 1] = NaN;
      const info = tf.backend_util.computePool2DInfo(c.x as [number, number, number, number], c.f, c.strides, 1, c.pad);
      const dy = values(info.outShape.reduce((p, v) => p * v), seed++);
      const attrs = { filterSize: c.f, strides: c.strides, pad: c.pad, dimRoundingMode: undefined };
      const run = () => tf.tidy(() => {
        const xt = tf.tensor(x, c.x);
        const y = tf.maxPool(xt as tf.Tensor4D, c.f, c.strides, c.pad);
        return (tf.engine().runKernel('MaxPoolGrad', { dy: tf.tensor(dy, info.outShape), input: xt, output: y }, attrs) as tf.Tensor).dataSync() as Float32Array;
      });
      const got = run();
      await tf.setBackend('cpu');
      const want = run();
      await tf.setBackend(backendName);
      expect(Array.from(got), JSON.stringify(c)).toEqual(Array.from(want));
    }
  });

  it('with dimRoundingMode \'ceil\' (a dY larger than the pooling\'s output: tf.grad drops the mode) gives cpu\'s bits', async () => {
    const x = tf.tensor4d(values(2 * 6 * 6 * 2, 310), [2, 6, 6, 2]);
    const grad = () => tf.tidy(() => tf.grad((a: tf.Tensor4D) => {
      const y = tf.maxPool(a, 3, 2, 1, 'ceil');
      return y.mul(tf.tensor(Float32Array.from({ length: y.size }, (_, i) => Math.cos(i)), y.shape)).sum();
    })(x).dataSync() as Float32Array);
    const got = grad();
    await tf.setBackend('cpu');
    const want = grad();
    await tf.setBackend(backendName);
    expect(Array.from(got)).toEqual(Array.from(want));
    x.dispose();
  });
});

describe.each(BACKENDS)('nearest-neighbour resizing\'s gradient on %s', (backendName) => {
  beforeEach(async () => {
    tf.engine().reset();
    expect(await tf.setBackend(backendName)).toBe(true);
  });

  it('is the adjoint of tfjs cpu\'s forward resize: batches, up and down, alignCorners, halfPixelCenters', async () => {
    const configs: [number[], [number, number], boolean, boolean][] = [
      [[2, 4, 4, 1], [7, 5], false, false], // tfjs cpu's own gradient is wrong here (batch > 1)
      [[3, 5, 6, 3], [3, 11], true, false],
      [[2, 6, 5, 2], [9, 4], false, true],
      [[1, 7, 3, 2], [2, 8], false, false],
    ];
    let seed = 400;
    for (const [shape, size, alignCorners, halfPixelCenters] of configs) {
      const count = shape.reduce((p, v) => p * v);
      const dyShape = [shape[0], size[0], size[1], shape[3]];
      const dy = values(dyShape.reduce((p, v) => p * v), seed++);
      // Which input element each output element copies: the forward resize of the indices, on cpu.
      const source = await on('cpu', () => tf.tidy(() => tf.image.resizeNearestNeighbor(tf.range(0, count).reshape(shape) as tf.Tensor4D, size, alignCorners, halfPixelCenters).dataSync()));
      const sums = new Float64Array(count);
      source.forEach((from, i) => (sums[from] += dy[i]));
      const got = tf.tidy(() => tf.grad((x: tf.Tensor4D) => tf.sum(tf.mul(tf.image.resizeNearestNeighbor(x, size, alignCorners, halfPixelCenters), tf.tensor(dy, dyShape))))(tf.tensor4d(values(count, seed++), shape as [number, number, number, number])).dataSync());
      expect(Array.from(got), JSON.stringify([shape, size, alignCorners, halfPixelCenters])).toEqual(Array.from(Float32Array.from(sums)));
    }
  });
});

describe('Sum over leading axes on the wasm base', () => {
  beforeEach(async () => {
    tf.engine().reset();
    expect(await tf.setBackend(FP4KIT_BACKEND)).toBe(true);
  });

  it('gives tfjs wasm\'s bits (its float32 loop over a transposed copy), for every axis list and keepDims; empty sums 0', async () => {
    const cases: [number[], number | number[] | undefined][] = [
      [[64, 64, 128], [0, 1]], [[4096, 80], 0], [[4096, 80], [0]], [[3, 5, 7], [0]], [[2, 3, 4, 5], [0, 1, 2]],
      [[2, 3, 4, 5], [1, 0]], [[7, 9], [1]], [[7, 9], undefined], [[5, 1, 6], [0, 1]], [[0, 4], [0]], [[4, 0], [0]], [[6], [0]],
    ];
    let seed = 900;
    for (const [shape, axis] of cases) {
      for (const keepDims of [false, true]) {
        const x = values(shape.reduce((p, v) => p * v, 1), seed++);
        // Large and small magnitudes, so a different order of additions would show in the bits.
        for (let i = 0; i < x.length; i += 7) x[i] *= 1e4;
        // An empty sum is 0, as on tfjs cpu: tfjs wasm returns whatever its heap held there.
        const peer = x.length === 0 ? 'cpu' : 'wasm';
        const want = await on(peer, () => tf.tidy(() => { const s = tf.sum(tf.tensor(x, shape), axis, keepDims); return { shape: s.shape, data: s.dataSync() }; }));
        const got = tf.tidy(() => { const s = tf.sum(tf.tensor(x, shape), axis, keepDims); return { shape: s.shape, data: s.dataSync() }; });
        const where = JSON.stringify([shape, axis, keepDims]);
        expect(got.shape, where).toEqual(want.shape);
        expect(Buffer.from(new Float32Array(got.data).buffer).equals(Buffer.from(new Float32Array(want.data).buffer)), where).toBe(true);
      }
    }
    // The leading-axes sum is the float32 sum in row order, written out here.
    const x = values(6 * 5, 3);
    const plain = new Float32Array(5);
    for (let r = 0; r < 6; r++) for (let n = 0; n < 5; n++) plain[n] = Math.fround(plain[n] + x[r * 5 + n]);
    expect(Array.from(tf.tidy(() => tf.sum(tf.tensor(x, [2, 3, 5]), [0, 1]).dataSync()))).toEqual(Array.from(plain));
    expect(tf.memory().numTensors).toBe(0);
  });

  it('the addon\'s loop (native/sum.h) gives the JavaScript loop\'s bits, ±0, ±Inf and NaN columns included; bad arguments refused in C++', () => {
    const native = availableBackends().some((b) => b.name === 'native' && b.available);
    const kernel = native ? withFp4kitBackend('native', () => getKernels().sumLeadingRows) : undefined;
    if (kernel === undefined) return;  // no addon here: the JavaScript loop is all there is
    for (const [rows, n] of [[4096, 80], [3, 5000], [1, 4096], [700, 37], [64, 128]]) {
      const x = values(rows * n, rows + n);
      for (let i = 0; i < x.length; i += 11) x[i] *= 1e6;
      x[3] = Infinity; x[n + 4] = -Infinity; x[5] = NaN; for (let r = 0; r < rows; r++) x[r * n + 6] = -0;
      const want = new Float32Array(n);
      for (let r = 0; r < rows; r++) for (let i = 0; i < n; i++) want[i] = Math.fround(want[i] + x[r * n + i]);
      const got = new Float32Array(n).fill(7);
      kernel(x, rows, n, got);
      const same = (a: number, b: number) => (Number.isNaN(a) ? Number.isNaN(b) : Object.is(a, b));
      expect(Array.from(got).every((v, i) => same(v, want[i])), `${rows}×${n}`).toBe(true);
    }
    const x = new Float32Array(100);
    expect(() => kernel(x, 10, 10, x.subarray(95) as Float32Array)).toThrow(/out holds 5 values, 10 needed/);
    expect(() => kernel(x, 10, 10, x.subarray(90))).toThrow(/overlap/);
    expect(() => kernel(x, 11, 10, new Float32Array(10))).toThrow(/x holds 100 values, 110 needed/);
    expect(() => kernel(new Float64Array(100) as unknown as Float32Array, 10, 10, new Float32Array(10))).toThrow(/Float32Array/);
    expect(() => kernel(x, 2 ** 40, 2 ** 40, new Float32Array(10))).toThrow(/too large/);
  });

  it('int32 and bool sums stay with the base (their dtypes, their values)', () => {
    expect(Array.from(tf.tidy(() => tf.sum(tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32'), 0).dataSync()))).toEqual([4, 6]);
    const b = tf.tidy(() => tf.sum(tf.tensor2d([true, false, true, true], [2, 2], 'bool'), 0));
    expect(b.dtype).toBe('int32');
    expect(Array.from(b.dataSync())).toEqual([2, 1]);
    b.dispose();
  });
});

describe.each(BACKENDS)('Transpose on %s', (backendName) => {
  it('gives tfjs wasm\'s bits for every permutation of rank 2–5 shapes (swaps of adjacent axis groups run on fp4kit, the rest on the base)', async () => {
    const shapes = [[64, 96], [16, 64, 4, 32], [8, 16, 4, 32], [3, 130, 65], [2, 3, 4, 5, 6], [1, 4096, 2], [33, 1, 129]];
    const permutations = (n: number): number[][] => (n === 1 ? [[0]] : permutations(n - 1).flatMap((p) => Array.from({ length: n }, (_v, i) => [...p.slice(0, i), n - 1, ...p.slice(i)])));
    const cases = shapes.flatMap((shape, i) => {
      const x = values(shape.reduce((a, b) => a * b, 1), 1200 + i);
      x[0] = NaN; x[1] = -0; x[2] = Infinity;
      return permutations(shape.length).map((perm) => ({ shape, perm, x }));
    });
    const all = async (backend: string) => {
      await tf.setBackend(backend);
      return cases.map(({ shape, perm, x }) => tf.tidy(() => Buffer.from((tf.transpose(tf.tensor(x, shape), perm).dataSync() as Float32Array).buffer)));
    };
    const want = await all('wasm');
    const got = await all(backendName);
    cases.forEach(({ shape, perm }, i) => expect(got[i].equals(want[i]), JSON.stringify([shape, perm])).toBe(true));
    expect(tf.memory().numTensors).toBe(0);
  });
});

describe('Pow by 2 or 3 on the wasm base', () => {
  beforeEach(async () => {
    tf.engine().reset();
    expect(await tf.setBackend(FP4KIT_BACKEND)).toBe(true);
  });

  it('is f32(x·x) and f32(x·x·x in float64), never further from the exact power than tfjs wasm\'s powf', async () => {
    const x = values(1 << 16, 77);
    for (let i = 0; i < x.length; i += 5) x[i] *= 1e3;
    for (let i = 2; i < x.length; i += 11) x[i] *= 1e-4;
    x.set([0, -0, NaN, Infinity, -Infinity, 3.4e38, -1e-30, 1e13], 0);
    for (const e of [2, 3]) {
      const got = tf.tidy(() => tf.pow(tf.tensor1d(x), e).dataSync());
      const base = await on('wasm', () => tf.tidy(() => tf.pow(tf.tensor1d(x), e).dataSync()));
      let differ = 0;
      for (let i = 0; i < x.length; i++) {
        const exact = e === 2 ? x[i] * x[i] : x[i] * x[i] * x[i];
        expect(Object.is(got[i], Math.fround(exact)), `x = ${x[i]}, e = ${e}`).toBe(true);
        if (!Object.is(got[i], base[i])) {
          differ++;
          expect(Math.abs(got[i] - exact), `x = ${x[i]}, e = ${e}`).toBeLessThanOrEqual(Math.abs(base[i] - exact));
        }
      }
      expect(differ).toBeLessThan(x.length / 100); // the last bit now and then, where powf rounds the other way
    }
    expect(tf.memory().numTensors).toBe(0);
  });

  it('the addon\'s loop (native/pow.h) gives the formula\'s bits, in place too; bad arguments refused in C++', () => {
    const native = availableBackends().some((b) => b.name === 'native' && b.available);
    const kernel = native ? withFp4kitBackend('native', () => getKernels().powerFloat32) : undefined;
    if (kernel === undefined) return;  // no addon here: the JavaScript loop is all there is
    const x = values(70001, 78);
    for (let i = 0; i < x.length; i += 3) x[i] *= 1e13;
    x.set([0, -0, NaN, Infinity, -Infinity, 1e-40, -3e-39, 2 ** 43, 2 ** 42.6], 0);
    for (const e of [2, 3] as const) {
      const got = new Float32Array(x.length).fill(7);
      kernel(x, e, x.length - 1, got);
      for (let i = 0; i < x.length - 1; i++) expect(Object.is(got[i], Math.fround(e === 2 ? x[i] * x[i] : x[i] * x[i] * x[i])), `x = ${x[i]}, e = ${e}`).toBe(true);
      expect(got[x.length - 1]).toBe(7); // n elements written, no more
      const inPlace = x.slice(0, 5000);
      kernel(inPlace, e, inPlace.length, inPlace);
      expect(Array.from(inPlace)).toEqual(Array.from(got.subarray(0, 5000)));
    }
    const y = new Float32Array(100);
    for (const e of [1, 4, 2.5, '3']) expect(() => kernel(y, e as 2, 10, new Float32Array(10)), String(e)).toThrow(/exponent must be/);
    expect(() => kernel(y, 2, 101, new Float32Array(101))).toThrow(/x holds 100 values, 101 needed/);
    expect(() => kernel(y, 2, 10, new Float32Array(9))).toThrow(/out holds 9 values, 10 needed/);
    expect(() => kernel(y, 2, 10, y.subarray(5))).toThrow(/overlap/);
    expect(() => kernel(new Int32Array(10) as unknown as Float32Array, 2, 10, new Float32Array(10))).toThrow(/Float32Array/);
    expect(() => kernel(y, 2, -1, y)).toThrow(/n must be/);
  });

  it('other exponents, non-scalar exponents and int32 bases stay with the base', async () => {
    for (const [e, shape] of [[2.5, []], [-1, []], [0.5, []], [2, [1]], [3, [4]]] as const) {
      const a = tf.tensor1d([0.5, 2, 3, 7]);
      const b = tf.tensor(shape.length === 0 ? e : new Array(shape[0]).fill(e), [...shape]);
      const got = tf.pow(a, b).dataSync();
      const want = await on('wasm', () => tf.pow(tf.tensor1d([0.5, 2, 3, 7]), tf.tensor(shape.length === 0 ? e : new Array(shape[0]).fill(e), [...shape])).dataSync());
      expect(Array.from(got), JSON.stringify([e, shape])).toEqual(Array.from(want));
      tf.dispose([a, b]);
    }
    expect(Array.from(tf.tidy(() => tf.pow(tf.tensor1d([2, -3], 'int32'), tf.scalar(3, 'int32')).dataSync()))).toEqual([8, -27]);
  });
});

describe('FP4KIT_WEIGHTS=none predicts what the cpu backend predicts (same model, same weights)', () => {
  it('MLP and CNN outputs agree within float32 reassociation error', async () => {
    tf.engine().reset();
    await tf.setBackend('cpu');
    const models = [mlp(), cnn()];
    const inputs = [mlpData(64).x, cnnData(32).x];
    const reference = models.map((m, i) => (m.predict(inputs[i]) as tf.Tensor).dataSync() as Float32Array);
    const weights = models.map((m) => m.getWeights().map((w) => w.dataSync().slice()));
    const shapes = models.map((m) => m.getWeights().map((w) => w.shape));
    await tf.setBackend(FP4KIT_BACKEND);
    tf.env().set('FP4KIT_WEIGHTS', 'none');
    for (let i = 0; i < models.length; i++) {
      const model = i === 0 ? mlp() : cnn();
      model.setWeights(weights[i].map((w, j) => tf.tensor(w, shapes[i][j])));
      const input = tf.tensor(inputs[i].dataSync(), inputs[i].shape);
      const got = (model.predict(input) as tf.Tensor).dataSync() as Float32Array;
      expect(got.length).toBe(reference[i].length);
      for (let j = 0; j < got.length; j++) expect(Math.abs(got[j] - reference[i][j])).toBeLessThan(1e-5);
    }
  });
});
