// More kinds of tfjs-layers model on fp4kit's tfjs backends than test/tfjs-backend.test.ts's MLPs
// and CNNs: recurrent layers over embeddings (LSTM, GRU: their products, the gathers' gradient
// UnsortedSegmentSum, split recurrent kernels), conv1d with pooling into a SimpleRNN, batch norm
// with conv2dTranspose, and a functional attention block (dot layers, layer norm, time-distributed
// dense). Each trains five Adam steps from the same weights on tfjs's cpu backend and on every
// fp4kit configuration. FP4KIT_WEIGHTS=none must follow the cpu backend's losses within float32
// reassociation error; each quantizing mode must train (finite losses that fall), predict finite
// values near the cpu backend's, and leave exactly the tensors the cpu run leaves (the optimizer's).

import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { FP4KIT_BACKEND, FP4KIT_CPU_BACKEND } from '../lib/tfjs/index.js';
import { lcgUniform } from './helpers/data.js';

const L = tf.layers;

/** Deterministic values in [-0.5, 0.5). */
const rnd = (n: number, seed: number) => lcgUniform(n, seed, 0.5);

type Built = { model: tf.LayersModel; x: () => tf.Tensor; y: () => tf.Tensor; loss: string };

const MODELS: Record<string, () => Built> = {
  'embedding → LSTM → GRU → softmax': () => ({
    model: tf.sequential({ layers: [L.embedding({ inputDim: 50, outputDim: 32, inputLength: 12 }), L.lstm({ units: 48, returnSequences: true }), L.gru({ units: 24 }), L.dense({ units: 5, activation: 'softmax' })] }),
    x: () => tf.tensor2d(Array.from({ length: 8 * 12 }, (_, i) => (i * 7) % 50), [8, 12]),
    y: () => tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 0, 1, 2], 'int32'), 5),
    loss: 'categoricalCrossentropy',
  }),
  'conv2d + batch norm → separable → depthwise → conv2dTranspose': () => ({
    model: tf.sequential({ layers: [L.conv2d({ filters: 8, kernelSize: 3, inputShape: [16, 16, 3], padding: 'same' }), L.batchNormalization(), L.activation({ activation: 'relu' }),
      L.separableConv2d({ filters: 16, kernelSize: 3, strides: 2 }), L.depthwiseConv2d({ kernelSize: 3, padding: 'same' }), L.conv2dTranspose({ filters: 4, kernelSize: 2, strides: 2 }),
      L.globalAveragePooling2d({}), L.dense({ units: 3 })] }),
    x: () => tf.tensor4d(rnd(4 * 16 * 16 * 3, 1), [4, 16, 16, 3]),
    y: () => tf.tensor2d(rnd(12, 2), [4, 3]),
    loss: 'meanSquaredError',
  }),
  'conv1d → maxPooling1d → SimpleRNN': () => ({
    model: tf.sequential({ layers: [L.conv1d({ filters: 8, kernelSize: 3, inputShape: [20, 4], activation: 'elu' }), L.maxPooling1d({ poolSize: 2 }), L.simpleRNN({ units: 10 }), L.dense({ units: 2, activation: 'sigmoid' })] }),
    x: () => tf.tensor3d(rnd(6 * 20 * 4, 3), [6, 20, 4]),
    y: () => tf.tensor2d([0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0], [6, 2]),
    loss: 'binaryCrossentropy',
  }),
  'attention block (dot, softmax, layer norm, time-distributed dense)': () => {
    const inp = tf.input({ shape: [10, 16] });
    const q = L.dense({ units: 16 }).apply(inp) as tf.SymbolicTensor;
    const k = L.dense({ units: 16 }).apply(inp) as tf.SymbolicTensor;
    const scores = L.activation({ activation: 'softmax' }).apply(L.dot({ axes: [2, 2] }).apply([q, k]) as tf.SymbolicTensor) as tf.SymbolicTensor;
    const attended = L.dot({ axes: [2, 1] }).apply([scores, inp]) as tf.SymbolicTensor;
    const normed = L.layerNormalization().apply(L.add().apply([attended, inp]) as tf.SymbolicTensor) as tf.SymbolicTensor;
    const out = L.timeDistributed({ layer: L.dense({ units: 4 }) }).apply(normed) as tf.SymbolicTensor;
    return { model: tf.model({ inputs: inp, outputs: out }), x: () => tf.tensor3d(rnd(3 * 10 * 16, 4), [3, 10, 16]), y: () => tf.tensor3d(rnd(3 * 10 * 4, 5), [3, 10, 4]), loss: 'meanSquaredError' };
  },
};

type Run = { losses: number[]; prediction: Float32Array; leftTensors: number };

/** Five Adam steps from fixed weights (variances positive), then a prediction. */
async function train(name: string, backend: string, weights?: string): Promise<Run> {
  await tf.setBackend(backend);
  if (weights) tf.env().set('FP4KIT_WEIGHTS', weights);
  const before = tf.memory().numTensors;
  const built = MODELS[name]();
  const { model } = built;
  model.setWeights(model.weights.map((w, i) => {
    const v = rnd(w.shape.reduce((a, b) => a * b, 1), 100 + i).map((e) => e * 0.3);
    return tf.tensor(/moving_variance|gamma/.test(w.originalName) ? v.map((e) => 1 + Math.abs(e)) : v, w.shape);
  }));
  model.compile({ optimizer: tf.train.adam(0.01), loss: built.loss });
  const [x, y] = [built.x(), built.y()];
  const losses: number[] = [];
  for (let step = 0; step < 5; step++) losses.push(Number(await model.trainOnBatch(x, y)));
  const p = model.predict(x) as tf.Tensor;
  const prediction = p.dataSync() as Float32Array;
  tf.dispose([x, y, p]);
  model.dispose();
  return { losses, prediction, leftTensors: tf.memory().numTensors - before };
}

const CONFIGS: [string, string | undefined][] = [
  [FP4KIT_BACKEND, 'none'], [FP4KIT_BACKEND, 'nvfp4'], [FP4KIT_BACKEND, 'mxfp4'], [FP4KIT_BACKEND, 'mxfp8_e4m3'], [FP4KIT_BACKEND, 'fgmp'],
  [FP4KIT_CPU_BACKEND, 'none'], [FP4KIT_CPU_BACKEND, 'nvfp4'],
];

/** The cpu backend's run of each model, made once. */
const cpuRuns = new Map<string, Run>();

describe.each(Object.keys(MODELS))('%s', (name) => {
  it.each(CONFIGS)('trains and predicts on %s with FP4KIT_WEIGHTS=%s as on tfjs cpu', async (backend, weights) => {
    if (!cpuRuns.has(name)) cpuRuns.set(name, await train(name, 'cpu'));
    const cpu = cpuRuns.get(name) as Run;
    expect(cpu.losses[4]).toBeLessThan(cpu.losses[0]);
    const run = await train(name, backend, weights);
    tf.env().set('FP4KIT_WEIGHTS', 'nvfp4');
    expect(run.leftTensors).toBe(cpu.leftTensors);
    expect(run.losses.every(Number.isFinite) && run.prediction.every(Number.isFinite)).toBe(true);
    const scale = Math.max(...cpu.prediction.map(Math.abs));
    const far = Math.max(...run.prediction.map((v, i) => Math.abs(v - cpu.prediction[i])));
    if (weights === 'none') {
      // float32 products in another order: reassociation error only
      for (let i = 0; i < 5; i++) expect(Math.abs(run.losses[i] - cpu.losses[i])).toBeLessThan(1e-4 * Math.max(1, cpu.losses[i]));
      expect(far).toBeLessThan(1e-3 * scale);
    } else {
      expect(run.losses[4]).toBeLessThan(run.losses[0]);
      // quantized weights and activations: the prediction moves, but stays the cpu's in shape
      expect(far).toBeLessThan(0.25 * scale);
    }
  });
});
