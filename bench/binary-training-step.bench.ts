// A whole training step of a binary network (1-bit FQT) against the same network in float32, one
// and two threads, in the same run (issue 11's "whole training step"):
//   input [16, 16, 16, 256] → binaryConv2d 256, 3×3, same → BN → binaryConv2d 256 → BN
//   → global average pool → dense 10 (softmax), Adam, cross-entropy
// The binary layers use SCQ with AGP at b = 4 (one bit per element on average): forward and both
// backward products on fp4kit's bit-plane kernels. The float32 twin has tf.layers.conv2d in their
// place. Both run on the 'fp4kit' TensorFlow.js backend (FP4KIT_WEIGHTS = 'none').
//
// The float32 network's convolution products run on fp4kit's float32 kernel, which is slow (a
// decoded reference loop, a few GFLOP/s; docs/tfjs.md), so its measured step is not a fair peer.
// The table therefore also gives a composite float32 step: the measured float32 step minus the
// measured time of its convolution products (forward, ∇X, ∇W of both layers, timed alone on the
// same backend) plus onnxruntime-node's MLAS float32 MatMul time for the same products in im2col
// form (both inputs dynamic, output reused), measured in this run. That is the float32 step with
// the fastest float32 GEMM available to Node.
//
//   npm run bench:binary-step
//   npm run bench:binary-step -- --batch=2 --channels=32 --budget=0.1    (a quick check, seconds)
// Settings (a flag or FP4KIT_BENCH_BATCH etc.; bench/settings.ts): --batch=16 samples of 16 × 16,
// --channels=256 (both conv layers), --threads=1,2 (one child process each), --budget= seconds per
// figure (default 4 for a step, 2 for each MLAS product; bench/timing.ts).

import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import '../lib/tfjs/index.js';
import { layers as fp4layers } from '../lib/tfjs/index.js';
import { gaussian } from '../test/helpers/data.js';
import { DataType, encodeModel } from './peers/onnx-model.js';
import { loadOrt, sessionOptions } from './peers/onnxruntime-matmulnbits.js';
import { integerSetting, listSetting, setting } from './settings.js';
import { medianSeconds, medianSecondsAsync } from './timing.js';

const BATCH = integerSetting('batch', 16), SIZE = 16, CH = integerSetting('channels', 256), CLASSES = 10;
const THREADS = listSetting('threads', '1,2').map(Number);
const ROWS = BATCH * SIZE * SIZE, TAPS = 9 * CH;

interface Row {
  threads: number;
  binaryStep: number;
  floatStep: number;
  floatProducts: number;
  mlasProducts: number | null;
}

function network(binary: boolean): tf.LayersModel {
  const conv = (seed: number) => binary
    ? fp4layers.binaryConv2d({ filters: CH, kernelSize: 3, padding: 'same', useBias: false, gradients: 'scq', bits: 4, prune: 'agp', seed, kernelInitializer: tf.initializers.glorotUniform({ seed }) })
    : tf.layers.conv2d({ filters: CH, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: tf.initializers.glorotUniform({ seed }) });
  const model = tf.sequential({
    layers: [
      tf.layers.inputLayer({ inputShape: [SIZE, SIZE, CH] }),
      conv(1), tf.layers.batchNormalization(),
      conv(2), tf.layers.batchNormalization(),
      tf.layers.globalAveragePooling2d({}),
      tf.layers.dense({ units: CLASSES, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
  return model;
}

function stepSeconds(model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor): Promise<number> {
  return medianSecondsAsync(async () => { await model.trainOnBatch(x, y); }, 4);
}

function twoInputMatmul(m: number, k: number, n: number): Uint8Array {
  return encodeModel({
    irVersion: 9, opsets: [{ domain: '', version: 17 }],
    nodes: [{ opType: 'MatMul', inputs: ['A', 'B'], outputs: ['Y'] }],
    inputs: [{ name: 'A', elemType: DataType.FLOAT, shape: [m, k] }, { name: 'B', elemType: DataType.FLOAT, shape: [k, n] }],
    outputs: [{ name: 'Y', elemType: DataType.FLOAT, shape: [m, n] }], initializers: [],
  });
}

async function measure(threads: number): Promise<Row> {
  await tf.setBackend('fp4kit');
  tf.env().set('FP4KIT_WEIGHTS', 'none');
  const x = tf.tensor4d(gaussian(BATCH * SIZE * SIZE * CH, 1), [BATCH, SIZE, SIZE, CH]);
  const y = tf.oneHot(tf.tensor1d(Array.from({ length: BATCH }, (_, i) => i % CLASSES), 'int32'), CLASSES);
  const binaryStep = await stepSeconds(network(true), x, y);
  const floatStep = await stepSeconds(network(false), x, y);
  // The float32 network's convolution products alone: forward, ∇X and ∇W of one layer, × 2 layers.
  const w = tf.variable(tf.tensor4d(gaussian(9 * CH * CH, 2, 0.05), [3, 3, CH, CH]));
  const dy = tf.tensor4d(gaussian(BATCH * SIZE * SIZE * CH, 3), [BATCH, SIZE, SIZE, CH]);
  const products = 2 * medianSeconds(() => tf.tidy(() => {
    const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'), dy)))([x, w]);
    gx.dataSync();
    gw.dataSync();
  }), 4);
  // MLAS: the same three products in im2col form, per layer.
  let mlas: number | null = null;
  const ort = await loadOrt();
  if (ort) {
    mlas = 0;
    for (const [m, k, n] of [[ROWS, TAPS, CH], [ROWS, CH, TAPS], [TAPS, ROWS, CH]]) {
      const session = await ort.InferenceSession.create(twoInputMatmul(m, k, n), sessionOptions(threads));
      const a = new ort.Tensor('float32', gaussian(m * k, 5), [m, k]);
      const b = new ort.Tensor('float32', gaussian(k * n, 6), [k, n]);
      const out = new ort.Tensor('float32', new Float32Array(m * n), [m, n]);
      mlas += 2 * (await medianSecondsAsync(async () => { await session.run({ A: a, B: b }, { Y: out }); }, 2));
      await session.release();
    }
  }
  return { threads, binaryStep, floatStep, floatProducts: products, mlasProducts: mlas };
}

const child = setting('child-threads');
if (child !== undefined) {
  console.log(JSON.stringify(await measure(Number(child))));
} else {
  const self = fileURLToPath(import.meta.url);
  const rows: Row[] = [];
  for (const threads of THREADS) {
    const out = execFileSync(process.execPath, ['--import', 'tsx', self], {
      env: { ...process.env, FP4KIT_BENCH_CHILD_THREADS: String(threads), FP4KIT_THREADS: String(threads) }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
    });
    rows.push(JSON.parse(out.trim().split('\n').pop()!) as Row);
  }
  console.log(`${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}; 'fp4kit' tfjs backend (FP4KIT_WEIGHTS none), FP4KIT_THREADS = threads (tfjs's own ops: one thread); onnxruntime intraOpNumThreads = threads`);
  console.log(`Network: [${BATCH}, ${SIZE}, ${SIZE}, ${CH}] → 2 × (3×3 conv ${CH} + BN) → pool → dense ${CLASSES}; Adam; median step.`);
  console.log('');
  console.log('| threads | binary step (SCQ + AGP, b = 4) | float32 step (fp4kit float kernel) | its conv products | MLAS time for them | composite float32 step (MLAS GEMMs) | binary vs composite | binary vs measured float32 |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const composite = r.mlasProducts === null ? null : r.floatStep - r.floatProducts + r.mlasProducts;
    const ms = (s: number | null) => (s === null ? '–' : `${(s * 1e3).toFixed(0)} ms`);
    console.log(`| ${r.threads} | ${ms(r.binaryStep)} | ${ms(r.floatStep)} | ${ms(r.floatProducts)} | ${ms(r.mlasProducts)} | ${ms(composite)} | ${composite === null ? '–' : (composite / r.binaryStep).toFixed(2) + '×'} | ${(r.floatStep / r.binaryStep).toFixed(2)}× |`);
  }
}
