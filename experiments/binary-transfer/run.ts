// One run of the transfer experiment (docs/binary-training-report.md):
//   pretrain: a binary CNN on MNIST with float32 gradients (QAT), weights saved as JSON;
//   finetune: from those weights, a new classifier, fine-tuned on Fashion-MNIST with one of the
//             gradient settings (model.ts VARIANTS), test accuracy logged along the way.
// Usage:
//   node --import tsx experiments/binary-transfer/run.ts pretrain [--steps 800]
//   node --import tsx experiments/binary-transfer/run.ts finetune --variant scq4 --seed 1 [--steps 400]
// Runs on fp4kit's TensorFlow.js backend with FP4KIT_WEIGHTS=none (float32 products in a defined order).

import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '../../lib/tfjs/index.js';
import { fashionMnist, mnist, type Dataset } from './data.js';
import { binaryCnn, variantByName, type Variant } from './model.js';
import { Rng } from '../fgmp-mnist/prng.js';

export const RESULTS = join(dirname(fileURLToPath(import.meta.url)), 'results');
const BATCH = 32;

export interface CurvePoint { step: number; loss: number; testAccuracy: number }
export interface RunLog {
  variant: string;
  label: string;
  seed: number;
  steps: number;
  curve: CurvePoint[];
  testAccuracy: number;
  secondsPerStep: number;
}

function batchTensors(d: Dataset, idx: Uint32Array): { x: tf.Tensor4D; y: tf.Tensor2D } {
  const x = new Float32Array(idx.length * 784);
  for (let i = 0; i < idx.length; i++) x.set(d.x.subarray(idx[i] * 784, (idx[i] + 1) * 784), i * 784);
  const labels = tf.tensor1d(Array.from(idx, (i) => d.y[i]), 'int32');
  const y = tf.oneHot(labels, 10) as tf.Tensor2D;
  labels.dispose();
  return { x: tf.tensor4d(x, [idx.length, 28, 28, 1]), y };
}

export function accuracy(model: tf.LayersModel, d: Dataset): number {
  let correct = 0;
  for (let s = 0; s < d.n; s += 500) {
    const idx = Uint32Array.from({ length: Math.min(500, d.n - s) }, (_, i) => s + i);
    const { x, y } = batchTensors(d, idx);
    const hit = tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(model.predict(x) as tf.Tensor, 1), tf.argMax(y, 1)), 'int32')).dataSync()[0]);
    correct += hit;
    x.dispose();
    y.dispose();
  }
  return correct / d.n;
}

/** `steps` Adam steps on random batches; test accuracy every `every` steps (and at the end). */
export async function train(model: tf.LayersModel, data: { train: Dataset; test: Dataset }, steps: number, every: number, seed: number, lr: number, log: (p: CurvePoint) => void): Promise<number> {
  model.compile({ optimizer: tf.train.adam(lr), loss: 'categoricalCrossentropy' });
  const rng = new Rng(seed * 7919 + 1);
  let loss = 0;
  let seen = 0;
  const t0 = performance.now();
  for (let step = 1; step <= steps; step++) {
    const idx = Uint32Array.from({ length: BATCH }, () => Math.floor(rng.next() * data.train.n));
    const { x, y } = batchTensors(data.train, idx);
    const l = (await model.trainOnBatch(x, y)) as number;
    x.dispose();
    y.dispose();
    loss += l;
    seen++;
    if (step % every === 0 || step === steps) {
      log({ step, loss: loss / seen, testAccuracy: accuracy(model, data.test) });
      loss = 0;
      seen = 0;
    }
  }
  return (performance.now() - t0) / 1000 / steps;
}

function saveWeights(model: tf.LayersModel, path: string): void {
  const weights = model.getWeights().map((w) => ({ shape: w.shape, data: Buffer.from((w.dataSync() as Float32Array).buffer).toString('base64') }));
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(`${path}.tmp`, JSON.stringify(weights));
  renameSync(`${path}.tmp`, path);
}

function loadWeights(path: string): tf.Tensor[] {
  const list = JSON.parse(readFileSync(path, 'utf8')) as Array<{ shape: number[]; data: string }>;
  return list.map((w) => {
    const b = Buffer.from(w.data, 'base64');
    return tf.tensor(new Float32Array(b.buffer, b.byteOffset, b.length / 4), w.shape);
  });
}

function writeLog(log: RunLog): void {
  mkdirSync(RESULTS, { recursive: true });
  const path = join(RESULTS, `${log.variant}-s${log.seed}.json`);
  writeFileSync(`${path}.tmp`, `${JSON.stringify(log)}\n`);
  renameSync(`${path}.tmp`, path);
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { steps: { type: 'string' }, variant: { type: 'string' }, seed: { type: 'string' }, every: { type: 'string' } },
  });
  await tf.setBackend('fp4kit');
  tf.env().set('FP4KIT_WEIGHTS', 'none');
  const pretrained = join(RESULTS, 'pretrained-mnist.json');
  if (positionals[0] === 'pretrain') {
    const steps = Number(values.steps ?? 800);
    const model = binaryCnn({ gradients: 'fp32' }, 0);
    const data = mnist(20000, 1000);
    const curve: CurvePoint[] = [];
    const sps = await train(model, data, steps, Number(values.every ?? 100), 0, 1e-3, (p) => {
      curve.push(p);
      console.log(`pretrain step ${p.step}/${steps}: loss ${p.loss.toFixed(3)}, MNIST test accuracy ${(100 * p.testAccuracy).toFixed(1)} %`);
    });
    saveWeights(model, pretrained);
    writeLog({ variant: 'pretrain', label: 'pretraining on MNIST (QAT)', seed: 0, steps, curve, testAccuracy: curve[curve.length - 1].testAccuracy, secondsPerStep: sps });
    return;
  }
  if (positionals[0] !== 'finetune') throw new Error('usage: run.ts pretrain | finetune --variant <qat|psq1|scq4|psq8> --seed <n>');
  const variant: Variant = variantByName(values.variant ?? '');
  const seed = Number(values.seed ?? 1);
  const steps = Number(values.steps ?? 400);
  const model = binaryCnn(variant.gradients, seed);
  // Every pretrained weight but the classifier's (a new head for the new classes, as in transfer learning).
  const weights = loadWeights(pretrained);
  const own = model.getWeights();
  model.setWeights(weights.map((w, i) => (i < weights.length - 2 ? w : own[i])));
  const data = fashionMnist(12000, 1000);
  const curve: CurvePoint[] = [];
  const before = accuracy(model, data.test);
  curve.push({ step: 0, loss: NaN, testAccuracy: before });
  const sps = await train(model, data, steps, Number(values.every ?? 50), seed, 1e-3, (p) => {
    curve.push(p);
    console.log(`${variant.name} seed ${seed} step ${p.step}/${steps}: loss ${p.loss.toFixed(3)}, test accuracy ${(100 * p.testAccuracy).toFixed(1)} %`);
  });
  writeLog({ variant: variant.name, label: variant.label, seed, steps, curve, testAccuracy: curve[curve.length - 1].testAccuracy, secondsPerStep: sps });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
