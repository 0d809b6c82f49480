// The elementwise kernels the 'fp4kit' tfjs backend runs natively on its wasm base (Tanh, Sum over
// leading axes, Pow by 2 and 3, attention's head transposes), each against stock tfjs wasm in the same run, on
// the char-GPT's GELU-sized tensor [64, 64, 512] (2 M float32): median ms per call over reused
// input tensors (the outputs are fresh tensors, as in a model), ns per element, and the ratio. The
// bits are the base's in every case (test/tfjs-tanh.test.ts, test/tfjs-backend.test.ts).
//
// Run: npm run bench:tfjs-elementwise
//      npm run bench:tfjs-elementwise -- --batch=4 --reps=3     (a quick check)
// Settings (a flag or FP4KIT_BENCH_REPS etc.; bench/settings.ts): --reps=15 calls per figure,
// --batch=64 (the tensor's first dimension: [batch, 64, 512]).
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { getBackend } from '../lib/index.js';
import { FP4KIT_BACKEND } from '../lib/tfjs/index.js';
import { lcgUniform } from '../test/helpers/data.js';
import { integerSetting } from './settings.js';

const REPS = integerSetting('reps', 15);
const BATCH = integerSetting('batch', 64);
const SHAPE = [BATCH, 64, 512];
const x = lcgUniform(SHAPE.reduce((a, b) => a * b, 1), 7, 4);

const CASES: [string, (t: tf.Tensor) => tf.Tensor][] = [
  ['tanh', (t) => tf.tanh(t)],
  ['sum over axes [0, 1]', (t) => tf.sum(t, [0, 1])],
  ['pow(x, 3)', (t) => tf.pow(t, 3)],
  [`transpose [${BATCH}, 64, 16, 32] by [0, 2, 1, 3]`, (t) => tf.transpose(tf.reshape(t, [BATCH, 64, 16, 32]), [0, 2, 1, 3])],
];

async function time(backend: string, f: (t: tf.Tensor) => tf.Tensor): Promise<number> {
  await tf.setBackend(backend);
  const t = tf.tensor(x, SHAPE);
  f(t).dispose();
  const ms: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const start = performance.now();
    const y = f(t);
    ms.push(performance.now() - start);
    y.dispose();
  }
  t.dispose();
  return ms.sort((a, b) => a - b)[Math.floor(ms.length / 2)];
}

console.log(`${os.cpus()[0]?.model.trim()}, ${os.cpus().length} logical CPUs, node ${process.version}; fp4kit kernels ${getBackend().name}/${getBackend().simd}`);
console.log(`x [${SHAPE.join(', ')}] float32; median of ${REPS} calls\n`);
console.log('| op | tfjs wasm ms | fp4kit ms | tfjs wasm ns/element | fp4kit ns/element | × tfjs wasm |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const [name, f] of CASES) {
  const wasm = await time('wasm', f);
  const fp4kit = await time(FP4KIT_BACKEND, f);
  const per = (ms: number) => ((ms * 1e6) / x.length).toFixed(2);
  console.log(`| ${name} | ${wasm.toFixed(2)} | ${fp4kit.toFixed(2)} | ${per(wasm)} | ${per(fp4kit)} | ${(wasm / fp4kit).toFixed(2)}× |`);
}
