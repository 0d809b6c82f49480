// A tfjs-converter GraphModel on the 'fp4kit' backend: the format `tensorflowjs_converter` writes
// for a TensorFlow SavedModel (a GraphDef's nodes in model.json, its constants as weights), built
// here in memory with the fused ops the converter emits (_FusedConv2D with BiasAdd + Relu,
// _FusedMatMul with BiasAdd), loaded by tfjs's own loader. A GraphModel's weights are constant
// tensors, not variables: FP4KIT_WEIGHT_TENSORS=all makes them weights (quantized once, cached,
// released with the model); the default 'variables' leaves its products in float32.

import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { FP4KIT_BACKEND, readCounters, resetCounters } from '../lib/tfjs/index.js';
import { lcgUniform } from './helpers/data.js';

const rnd = (n: number, seed: number) => lcgUniform(n, seed, 0.25);

const dims = (shape: number[]) => ({ dim: shape.map((size) => ({ size: String(size) })) });
const FLOAT = { type: 'DT_FLOAT' };
const constant = (name: string, dtype = 'DT_FLOAT') => ({ name, op: 'Const', attr: { dtype: { type: dtype }, value: { tensor: { dtype, tensorShape: {} } } } });
const ascii = (s: string) => Buffer.from(s).toString('base64');

/** x [n, 16, 16, 3] → 3×3 conv (stride 2, same, bias, relu) → flatten → dense 512 → 16 (bias) → softmax. */
function artifacts(): tf.io.ModelArtifacts {
  const floats: [string, number[], Float32Array][] = [
    ['conv/filter', [3, 3, 3, 8], rnd(216, 1)], ['conv/bias', [8], rnd(8, 2)], ['dense/kernel', [512, 16], rnd(512 * 16, 3)], ['dense/bias', [16], rnd(16, 4)],
  ];
  const node = [
    { name: 'x', op: 'Placeholder', attr: { dtype: FLOAT, shape: { shape: dims([-1, 16, 16, 3]) } } },
    ...floats.map(([name]) => constant(name)),
    constant('flat/shape', 'DT_INT32'),
    { name: 'conv', op: '_FusedConv2D', input: ['x', 'conv/filter', 'conv/bias'], attr: { T: FLOAT, strides: { list: { i: ['1', '2', '2', '1'] } }, padding: { s: ascii('SAME') },
      data_format: { s: ascii('NHWC') }, dilations: { list: { i: ['1', '1', '1', '1'] } }, fused_ops: { list: { s: [ascii('BiasAdd'), ascii('Relu')] } }, num_args: { i: '1' }, epsilon: { f: 0 } } },
    { name: 'flat', op: 'Reshape', input: ['conv', 'flat/shape'], attr: { T: FLOAT } },
    { name: 'dense', op: '_FusedMatMul', input: ['flat', 'dense/kernel', 'dense/bias'], attr: { T: FLOAT, transpose_a: { b: false }, transpose_b: { b: false },
      fused_ops: { list: { s: [ascii('BiasAdd')] } }, num_args: { i: '1' }, epsilon: { f: 0 } } },
    { name: 'probabilities', op: 'Softmax', input: ['dense'], attr: { T: FLOAT } },
  ];
  const bytes = floats.reduce((n, [, , v]) => n + v.byteLength, 0);
  const weightData = new ArrayBuffer(bytes + 8);
  let at = 0;
  for (const [, , v] of floats) { new Float32Array(weightData, at, v.length).set(v); at += v.byteLength; }
  new Int32Array(weightData, at, 2).set([-1, 512]);
  return {
    format: 'graph-model', modelTopology: { node, versions: { producer: 1 } }, weightData,
    weightSpecs: [...floats.map(([name, shape]) => ({ name, shape, dtype: 'float32' as const })), { name: 'flat/shape', shape: [2], dtype: 'int32' as const }],
  };
}

async function predictTwice(backend: string, flags: Record<string, string> = {}) {
  await tf.setBackend(backend);
  for (const [k, v] of Object.entries(flags)) tf.env().set(k, v);
  const model = await tf.loadGraphModel(tf.io.fromMemory(artifacts()));
  const x = tf.tensor4d(rnd(2 * 16 * 16 * 3, 9), [2, 16, 16, 3]);
  resetCounters();
  const first = tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync() as Float32Array);
  const afterFirst = readCounters();
  const second = tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync() as Float32Array);
  const afterSecond = readCounters();
  x.dispose();
  model.dispose();
  const afterDispose = readCounters();
  tf.env().set('FP4KIT_WEIGHT_TENSORS', 'variables');
  return { first, second, afterFirst, afterSecond, afterDispose };
}

const farthest = (a: Float32Array, b: Float32Array) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));

describe("a converter GraphModel on the 'fp4kit' backend", () => {
  it('FP4KIT_WEIGHT_TENSORS=all: its constant weights are quantized once, cached across predicts, released with the model', async () => {
    const cpu = await predictTwice('cpu');
    for (const weights of ['nvfp4', 'mxfp4', 'fgmp', 'none']) {
      const r = await predictTwice(FP4KIT_BACKEND, { FP4KIT_WEIGHTS: weights, FP4KIT_WEIGHT_TENSORS: 'all' });
      expect(r.afterFirst.weightsPrepared, weights).toBe(2); // the conv filter and the dense kernel
      expect(r.afterSecond.weightsPrepared, weights).toBe(2);
      expect(r.afterSecond.weightCacheHits - r.afterFirst.weightCacheHits, weights).toBe(2);
      expect(r.afterSecond.baseKernelCalls, weights).toBe(0);
      expect(r.afterSecond[weights === 'none' ? 'floatProducts' : 'quantizedProducts'], weights).toBe(4);
      expect(r.afterDispose.weightsReleased, weights).toBe(2);
      expect(Array.from(r.second)).toEqual(Array.from(r.first));
      expect(farthest(r.first, cpu.first), weights).toBeLessThan(weights === 'none' ? 1e-6 : 0.02);
      expect(farthest(r.first, cpu.first), weights).toBeGreaterThan(weights === 'none' ? -1 : 1e-5); // quantized: not the float32 result
    }
  });

  it("with the default 'variables', a GraphModel's constants are not weights: float32 products, nothing cached", async () => {
    const cpu = await predictTwice('cpu');
    const r = await predictTwice(FP4KIT_BACKEND, { FP4KIT_WEIGHTS: 'nvfp4' });
    expect(r.afterSecond.weightsPrepared).toBe(0);
    expect(r.afterSecond.quantizedProducts).toBe(0);
    expect(r.afterSecond.floatProducts).toBe(4);
    expect(farthest(r.first, cpu.first)).toBeLessThan(1e-6);
  });
});
