// One training run of the char-GPT experiment: a variant (fp32 | fp4-dge-occ | fp4-direct | fp4-dge |
// fp4-occ) and a seed, Adam with warm-up and cosine decay, gradient clipping at global norm 1,
// validation loss on fixed held-out windows every `--eval` steps; the log goes to
// results/<variant>-seed<seed>.json (written to a temporary name, then renamed).
//   node --import tsx experiments/char-gpt/run.ts --variant fp4-dge-occ --seed 1 --steps 300
//   node --import tsx experiments/char-gpt/run.ts --variant fp4-dge-occ --seed 1 --steps 1000 --out results-1000
// Backend: tfjs's wasm backend (XNNPACK; one thread in Node) unless --backend says otherwise, with
// its transposed products sped up (fast-transposed-matmul.ts).

import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { CharGpt, VARIANTS, type GptConfig, type Variant } from './model.js';
import { installFastTransposedMatMul } from './fast-transposed-matmul.js';
import { generator, mobyDick, windows } from './data.js';
import type { Fp4Dense } from '../../lib/tfjs/index.js';

export const RESULTS = join(dirname(fileURLToPath(import.meta.url)), 'results');

export interface RunLog {
  variant: Variant;
  seed: number;
  config: GptConfig & { batch: number; steps: number; learningRate: number; backend: string };
  /** Training loss of every step (nats per character; NaN once diverged). */
  train: number[];
  /** [step, validation loss]. */
  valid: Array<[number, number]>;
  secondsPerStep: number;
  /** OCC: the fraction of activations clamped in the last step's first query projection. */
  clampedFraction?: number;
  diverged: boolean;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

export async function train(variant: Variant, seed: number, steps: number, o: { batch?: number; context?: number; width?: number; layers?: number; heads?: number; evalEvery?: number; learningRate?: number; backend?: string; log?: boolean } = {}): Promise<RunLog> {
  const backend = o.backend ?? 'wasm';
  installFastTransposedMatMul();
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} did not start`);
  const corpus = mobyDick();
  const config: GptConfig = { vocab: corpus.vocab.length, context: o.context ?? 64, width: o.width ?? 128, layers: o.layers ?? 4, heads: o.heads ?? 4 };
  const batch = o.batch ?? 16;
  const evalEvery = o.evalEvery ?? 50;
  const peak = o.learningRate ?? 3e-3;
  const model = new CharGpt(config, variant, seed);
  const vars = model.variables();
  const optimizer = tf.train.adam(peak, 0.9, 0.95, 1e-8);
  const next = generator(seed);
  // Fixed validation windows: the same for every variant and seed.
  const validNext = generator(12345);
  const validBatches = Array.from({ length: 4 }, () => windows(corpus.valid, 32, config.context, validNext));
  const log: RunLog = { variant, seed, config: { ...config, batch, steps, learningRate: peak, backend }, train: [], valid: [], secondsPerStep: 0, diverged: false };
  const validLoss = () => {
    let sum = 0;
    for (const w of validBatches) {
      sum += tf.tidy(() => model.loss(tf.tensor2d(w.x, [32, config.context], 'int32'), tf.tensor2d(w.y, [32, config.context], 'int32')).dataSync()[0]);
    }
    return sum / validBatches.length;
  };
  const warmup = Math.max(1, Math.round(steps * 0.05));
  const started = performance.now();
  for (let step = 0; step < steps; step++) {
    const lr = step < warmup ? (peak * (step + 1)) / warmup : peak * (0.1 + 0.45 * (1 + Math.cos((Math.PI * (step - warmup)) / Math.max(1, steps - warmup))));
    (optimizer as unknown as { learningRate: number }).learningRate = lr;
    const w = windows(corpus.train, batch, config.context, next);
    const loss = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => model.loss(tf.tensor2d(w.x, [batch, config.context], 'int32'), tf.tensor2d(w.y, [batch, config.context], 'int32')), vars);
      const names = Object.keys(grads);
      const norm = Math.sqrt(tf.addN(names.map((n) => tf.sum(tf.square(grads[n])))).dataSync()[0]);
      const scale = Number.isFinite(norm) && norm > 1 ? 1 / norm : 1;
      if (Number.isFinite(norm)) optimizer.applyGradients(Object.fromEntries(names.map((n) => [n, tf.mul(grads[n], scale)])) as tf.NamedTensorMap);
      return value.dataSync()[0];
    });
    log.train.push(loss);
    if (!Number.isFinite(loss)) {
      log.diverged = true;
      break;
    }
    if ((step + 1) % evalEvery === 0 || step + 1 === steps) {
      log.valid.push([step + 1, validLoss()]);
      if (o.log !== false) console.log(`${variant} seed ${seed} step ${step + 1}: train ${loss.toFixed(3)} valid ${log.valid[log.valid.length - 1][1].toFixed(3)} (${((performance.now() - started) / 1000 / (step + 1)).toFixed(2)} s/step)`);
    }
  }
  log.secondsPerStep = (performance.now() - started) / 1000 / Math.max(1, log.train.length);
  const first = model.blocks[0].q as Fp4Dense;
  if (VARIANTS[variant] && 'lastForward' in first) log.clampedFraction = first.lastForward.clampedFraction;
  return log;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const variant = arg('variant', 'fp32') as Variant;
  if (!(variant in VARIANTS)) throw new RangeError(`--variant must be one of ${Object.keys(VARIANTS).join(', ')}`);
  const seed = Number(arg('seed', '1'));
  const steps = Number(arg('steps', '300'));
  const log = await train(variant, seed, steps, { batch: Number(arg('batch', '16')), backend: arg('backend', 'wasm') });
  // --out: another results folder beside this file (the 1000-step runs: results-1000).
  const dir = join(RESULTS, '..', arg('out', 'results'));
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${variant}-seed${seed}.json`);
  writeFileSync(`${file}.tmp`, JSON.stringify(log));
  renameSync(`${file}.tmp`, file);
}
