// TensorFlow.js predict (and a training step) on fp4kit's tfjs backend against tfjs's own cpu and
// wasm backends, same model weights and inputs, one process:
//
//   predict:  a stack of LAYERS dense layers WIDTH × WIDTH (relu between, linear last) at batch
//             BATCH, model.predict(x, { batchSize: BATCH }) + dataSync; fp4kit in every weight mode.
//             GFLOP/s = 2 · BATCH · WIDTH² · LAYERS / t
//   train:    one model.trainOnBatch step (Adam, mean squared error) of a smaller dense stack and of
//             a small CNN: which base makes whole models fast ('fp4kit' on tfjs wasm vs
//             'fp4kit-cpu' on tfjs cpu).
//
// Each figure is the median of REPS timed calls after one warm-up call; the warm-up is timed too
// ("first"): for fp4kit it includes quantizing every weight once (cached afterwards). Outputs are
// compared with the cpu backend's (relative RMSE ‖y − y_cpu‖ / ‖y_cpu‖).
//
// Run:  npm run bench:tfjs
// Env:  FP4KIT_BENCH_WIDTH=4096 FP4KIT_BENCH_LAYERS=4 FP4KIT_BENCH_BATCH=64 FP4KIT_BENCH_REPS=5
//       FP4KIT_BENCH_CPU_REPS=1 (the cpu backend takes ~15 s per predict at 4096)
//       FP4KIT_BENCH_MODES=nvfp4,mxfp4,mxfp8_e4m3,fgmp,none  FP4KIT_BENCH_TRAIN=0 (skip the training table)
//       FP4KIT_THREADS=1 (fp4kit's addon threads; tfjs's cpu and wasm backends use one thread in Node)
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { releaseBackend } from './tfjs-release.js';
import { availableBackends } from '../lib/index.js';
import { FP4KIT_BACKEND, FP4KIT_CPU_BACKEND, WEIGHT_MODES, type WeightMode } from '../lib/tfjs/index.js';
import { lcgUniform } from '../test/helpers/data.js';

const env = (name: string, fallback: string) => process.env[name] ?? fallback;
const WIDTH = Number(env('FP4KIT_BENCH_WIDTH', '4096'));
const LAYERS = Number(env('FP4KIT_BENCH_LAYERS', '4'));
const BATCH = Number(env('FP4KIT_BENCH_BATCH', '64'));
const REPS = Number(env('FP4KIT_BENCH_REPS', '5'));
const CPU_REPS = Number(env('FP4KIT_BENCH_CPU_REPS', '1'));
const MODES = env('FP4KIT_BENCH_MODES', 'nvfp4,mxfp4,mxfp8_e4m3,fgmp,none').split(',') as WeightMode[];
const TRAIN = env('FP4KIT_BENCH_TRAIN', '1') !== '0';
for (const m of MODES) if (!(WEIGHT_MODES as readonly string[]).includes(m)) throw new RangeError(`FP4KIT_BENCH_MODES: unknown mode ${m}`);

/** Deterministic values in [-scale, scale). */
const values = (count: number, seed: number, scale: number) => lcgUniform(count, seed, scale);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);

async function use(backend: string, mode?: WeightMode): Promise<void> {
  // setBackend also makes a fresh instance when releaseBackend() freed the last one.
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} did not initialise`);
  if (mode) tf.env().set('FP4KIT_WEIGHTS', mode);
}

// ---- predict ------------------------------------------------------------------------------------

const kernels = Array.from({ length: LAYERS }, (_, i) => values(WIDTH * WIDTH, 100 + i, Math.sqrt(3 / WIDTH)));
const biases = Array.from({ length: LAYERS }, (_, i) => values(WIDTH, 200 + i, 0.01));
const input = values(BATCH * WIDTH, 7, 1);

function denseStack(width: number, layers: number): tf.Sequential {
  return tf.sequential({ layers: Array.from({ length: layers }, (_, i) => tf.layers.dense({ units: width, activation: i < layers - 1 ? 'relu' : 'linear', inputShape: i === 0 ? [width] : undefined })) });
}

interface PredictRow { backend: string; mode: string; first: number; ms: number; relErr: number }

let reference: Float32Array | undefined;

function relErr(y: Float32Array): number {
  if (!reference) return 0;
  let num = 0;
  let den = 0;
  for (let i = 0; i < y.length; i++) {
    num += (y[i] - reference[i]) ** 2;
    den += reference[i] ** 2;
  }
  return Math.sqrt(num / den);
}

async function predictRows(backend: string, modes: (WeightMode | undefined)[], reps: number): Promise<PredictRow[]> {
  await use(backend);
  const model = denseStack(WIDTH, LAYERS);
  model.setWeights(kernels.flatMap((k, i) => [tf.tensor2d(k, [WIDTH, WIDTH]), tf.tensor1d(biases[i])]));
  const x = tf.tensor2d(input, [BATCH, WIDTH]);
  const rows: PredictRow[] = [];
  for (const mode of modes) {
    if (mode) tf.env().set('FP4KIT_WEIGHTS', mode);
    const run = () => {
      const t0 = performance.now();
      // The whole batch in one call (predict's default batchSize is 32).
      const y = model.predict(x, { batchSize: BATCH }) as tf.Tensor;
      const out = y.dataSync() as Float32Array;
      const ms = performance.now() - t0;
      y.dispose();
      return { ms, out };
    };
    const first = run();
    // reps = 0 (FP4KIT_BENCH_CPU_REPS=0: the slow cpu backend once): the first call's time is the figure.
    const times = reps > 0 ? Array.from({ length: reps }, () => run().ms) : [first.ms];
    if (!reference) reference = first.out.slice();
    rows.push({ backend, mode: mode ?? 'float32', first: first.ms, ms: median(times), relErr: relErr(first.out) });
    console.error(`  ${backend} ${mode ?? ''}: ${fmt(median(times))}`);
  }
  model.dispose();
  x.dispose();
  releaseBackend(backend);
  return rows;
}

// ---- training step ------------------------------------------------------------------------------

function cnn(): tf.Sequential {
  return tf.sequential({ layers: [
    tf.layers.conv2d({ filters: 32, kernelSize: 3, activation: 'relu', inputShape: [28, 28, 1] }),
    tf.layers.maxPooling2d({ poolSize: 2 }),
    tf.layers.conv2d({ filters: 64, kernelSize: 3, activation: 'relu' }),
    tf.layers.maxPooling2d({ poolSize: 2 }),
    tf.layers.flatten(),
    tf.layers.dense({ units: 128, activation: 'relu' }),
    tf.layers.dense({ units: 10 }),
  ] });
}

const TRAIN_WIDTH = 1024;
const CNN_BATCH = 32;

async function trainStep(backend: string, mode: WeightMode | undefined, which: 'dense' | 'cnn', reps: number): Promise<number | string> {
  await use(backend, mode);
  const model = which === 'dense' ? denseStack(TRAIN_WIDTH, 4) : cnn();
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'meanSquaredError' });
  const x = which === 'dense' ? tf.tensor2d(values(BATCH * TRAIN_WIDTH, 9, 1), [BATCH, TRAIN_WIDTH]) : tf.tensor4d(values(CNN_BATCH * 784, 9, 1), [CNN_BATCH, 28, 28, 1]);
  const y = which === 'dense' ? tf.tensor2d(values(BATCH * TRAIN_WIDTH, 10, 1), [BATCH, TRAIN_WIDTH]) : tf.tensor2d(values(CNN_BATCH * 10, 10, 1), [CNN_BATCH, 10]);
  const step = async () => {
    const t0 = performance.now();
    await model.trainOnBatch(x, y);
    return performance.now() - t0;
  };
  try {
    const first = await step();
    const times: number[] = [];
    for (let i = 0; i < reps; i++) times.push(await step());
    if (reps === 0) times.push(first); // FP4KIT_BENCH_CPU_REPS=0: the first step's time is the figure, as for predict
    console.error(`  train ${which} ${backend} ${mode ?? ''}: ${fmt(median(times))}`);
    return median(times);
  } catch (err) {
    return `fails: ${(err as Error).message.split('\n')[0]}`;
  } finally {
    model.dispose();
    tf.dispose([x, y]);
    releaseBackend(backend);
  }
}

// ---- main ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const native = availableBackends().find((b) => b.name === 'native');
  const flop = 2 * BATCH * WIDTH * WIDTH * LAYERS;
  console.log(`# tfjs ${tf.version_core}: predict, ${LAYERS} dense layers ${WIDTH}×${WIDTH}, batch ${BATCH}`);
  console.log(`machine: ${os.cpus()[0]?.model} × ${os.cpus().length}, Node ${process.version}; fp4kit native ${native?.available ? native.matmulSimd : 'not loaded'}, FP4KIT_THREADS=${process.env.FP4KIT_THREADS ?? 'default (CPU count, ≤ 8)'}; tfjs cpu and wasm run one thread in Node (wasm: SIMD, XNNPACK); load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.error('predict:');
  const rows = [
    ...(await predictRows('cpu', [undefined], CPU_REPS)),
    ...(await predictRows('wasm', [undefined], REPS)),
    ...(await predictRows(FP4KIT_BACKEND, MODES, REPS)),
  ];
  const peer = Math.min(rows[0].ms, rows[1].ms);
  const peerName = rows[0].ms < rows[1].ms ? 'cpu' : 'wasm';
  console.log(`\n| backend | FP4KIT_WEIGHTS | first predict | predict | GFLOP/s | vs tfjs ${peerName} (faster tfjs) | vs tfjs cpu | rel. RMSE vs cpu |`);
  console.log('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.backend} | ${r.backend.startsWith('fp4kit') ? r.mode : '—'} | ${fmt(r.first)} | ${fmt(r.ms)} | ${(flop / r.ms / 1e6).toFixed(1)} | ${(peer / r.ms).toFixed(1)}× | ${(rows[0].ms / r.ms).toFixed(1)}× | ${r.relErr.toExponential(2)} |`);
  }
  console.log(`\nload average after the predict table: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  if (!TRAIN) return;
  console.error('train:');
  console.log(`\n## one training step (trainOnBatch, Adam): dense 4 × ${TRAIN_WIDTH}² at batch ${BATCH}; CNN conv3×3×32–pool–conv3×3×64–pool–dense128–dense10 on 28×28 at batch ${CNN_BATCH}\n`);
  // Each step also as a ratio to the faster tfjs backend that ran it in this run (tfjs wasm has no
  // Conv2DBackpropFilter: the CNN's peer is cpu): × = its time ÷ this one's.
  console.log('| backend | base | FP4KIT_WEIGHTS | dense step | × faster tfjs | CNN step | × faster tfjs |');
  console.log('|---|---|---|---:|---:|---:|---:|');
  const configs: [string, string, WeightMode | undefined][] = [
    ['wasm', '—', undefined], ['cpu', '—', undefined],
    [FP4KIT_BACKEND, 'wasm', 'nvfp4'], [FP4KIT_BACKEND, 'wasm', 'none'],
    [FP4KIT_CPU_BACKEND, 'cpu', 'nvfp4'], [FP4KIT_CPU_BACKEND, 'cpu', 'none'],
  ];
  const steps: Array<{ backend: string; base: string; mode: WeightMode | undefined; dense: number | string; conv: number | string }> = [];
  for (const [backend, base, mode] of configs) {
    const dense = await trainStep(backend, mode, 'dense', backend === 'cpu' ? CPU_REPS : REPS);
    const conv = await trainStep(backend, mode, 'cnn', backend === 'cpu' ? CPU_REPS : REPS);
    steps.push({ backend, base, mode, dense, conv });
  }
  const fastest = (which: 'dense' | 'conv') => Math.min(...steps.filter((r) => r.base === '—' && typeof r[which] === 'number').map((r) => r[which] as number));
  const stepPeer = { dense: fastest('dense'), conv: fastest('conv') };
  const cell = (v: number | string) => (typeof v === 'number' ? fmt(v) : v);
  const ratio = (v: number | string, p: number) => (typeof v === 'number' && Number.isFinite(p) ? `${(p / v).toFixed(2)}×` : '—');
  for (const r of steps) console.log(`| ${r.backend} | ${r.base} | ${r.mode ?? '—'} | ${cell(r.dense)} | ${ratio(r.dense, stepPeer.dense)} | ${cell(r.conv)} | ${ratio(r.conv, stepPeer.conv)} |`);
  // A failing fp4kit step (a "fails:" cell) fails the run; tfjs's own may fail (wasm cannot train the CNN).
  if (steps.some((r) => r.base !== '—' && (typeof r.dense !== 'number' || typeof r.conv !== 'number'))) process.exitCode = 1;
}

await main();
