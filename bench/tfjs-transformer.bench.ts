// TensorFlow.js predict and one training step of a small GPT (experiments/char-gpt/model.ts: d = 128,
// 4 layers, 4 heads, context 64, every linear a tf.layers.dense) on fp4kit's tfjs backend in each
// weight mode against tfjs's wasm backend (the peer to beat) and its cpu backend, same weights and
// inputs, one process. tfjs wasm multiplies transposed operands (the backward products) on a slow
// path; the row "wasm + transposed fix" re-registers its BatchMatMul to transpose first
// (experiments/char-gpt/fast-transposed-matmul.ts), a stronger peer.
//
//   predict: logits of a batch of 64 × 64 characters (dataSync);  step: loss, gradients of every
//   variable, Adam update (dataSync of the loss). Median of REPS after one warm-up.
//   npm run bench:tfjs-transformer
//   npm run bench:tfjs-transformer -- --batch=4 --layers=1 --reps=1 --cpu=0 --modes=none,nvfp4   (a quick check)
// Settings (a flag or FP4KIT_BENCH_REPS etc.; bench/settings.ts): --reps=3, --modes=none,nvfp4,
// mxfp4,mxfp8_e4m3, --cpu=0 (skip tfjs cpu: ~25 s a predict, ~60 s a step), --batch=64 sequences of
// 64 characters, --layers=4, --width=128 (d, a multiple of the 4 heads).

import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { releaseBackend } from './tfjs-release.js';
import '@tensorflow/tfjs-backend-wasm';
import { FP4KIT_BACKEND, WEIGHT_MODES, type WeightMode } from '../lib/tfjs/index.js';
import { CharGpt } from '../experiments/char-gpt/model.js';
import { installFastTransposedMatMul } from '../experiments/char-gpt/fast-transposed-matmul.js';
import { flagSetting, integerSetting, listSetting } from './settings.js';

const REPS = integerSetting('reps', 3);
const MODES = listSetting('modes', 'none,nvfp4,mxfp4,mxfp8_e4m3') as WeightMode[];
for (const m of MODES) if (!(WEIGHT_MODES as readonly string[]).includes(m)) throw new RangeError(`FP4KIT_BENCH_MODES: unknown mode ${m}`);
const CONFIG = { vocab: 80, context: 64, width: integerSetting('width', 128), layers: integerSetting('layers', 4), heads: 4 };
if (CONFIG.width % CONFIG.heads !== 0) throw new RangeError(`--width=${CONFIG.width}: a multiple of ${CONFIG.heads} (the heads)`);
const BATCH = integerSetting('batch', 64);

function tokens(seed: number): Int32Array {
  let s = seed >>> 0;
  return Int32Array.from({ length: BATCH * CONFIG.context }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % CONFIG.vocab;
  });
}

function median(f: () => void): number {
  f();
  const times: number[] = [];
  for (let i = 0; i < REPS; i++) {
    const t = performance.now();
    f();
    times.push(performance.now() - t);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
}

interface Row { backend: string; predict: number; step: number }

async function measure(backend: string, label: string, mode?: WeightMode): Promise<Row> {
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} did not start`);
  if (mode) tf.env().set('FP4KIT_WEIGHTS', mode);
  const model = new CharGpt(CONFIG, 'fp32', 1);
  const vars = model.variables();
  // Typed as the base class: AdamOptimizer's declaration narrows applyGradients to variables, which
  // the gradients of tf.variableGrads (a NamedTensorMap) are not; the base class takes them.
  const optimizer: tf.Optimizer = tf.train.adam(1e-3);
  const x = tf.tensor2d(tokens(1), [BATCH, CONFIG.context], 'int32');
  const y = tf.tensor2d(tokens(2), [BATCH, CONFIG.context], 'int32');
  const predict = median(() => tf.tidy(() => { model.logits(x).dataSync(); }));
  const step = median(() => tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => model.loss(x, y), vars);
    optimizer.applyGradients(grads);
    value.dataSync();
  }));
  for (const v of vars) v.dispose();
  return { backend: label, predict, step };
}

const rows: Row[] = [];
if (flagSetting('cpu', true)) rows.push(await measure('cpu', 'tfjs cpu'));
rows.push(await measure('wasm', 'tfjs wasm'));
releaseBackend('wasm');
installFastTransposedMatMul();
rows.push(await measure('wasm', 'tfjs wasm + transposed fix'));
for (const mode of MODES) rows.push(await measure(FP4KIT_BACKEND, `fp4kit ${mode}`, mode));

const peer = rows.find((r) => r.backend === 'tfjs wasm')!;
console.log(`${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}; FP4KIT_THREADS=${process.env.FP4KIT_THREADS ?? 'default'}; tfjs cpu and wasm: one thread`);
console.log(`char-GPT d = ${CONFIG.width}, ${CONFIG.layers} layers, context ${CONFIG.context}, batch ${BATCH}; median of ${REPS}`);
console.log('');
console.log('| backend | predict | × tfjs wasm | training step | × tfjs wasm |');
console.log('|---|---:|---:|---:|---:|');
for (const r of rows) {
  console.log(`| ${r.backend} | ${r.predict.toFixed(0)} ms | ${(peer.predict / r.predict).toFixed(2)}× | ${r.step.toFixed(0)} ms | ${(peer.step / r.step).toFixed(2)}× |`);
}
