// The tfjs-layers models the browser test runs on the 'fp4kit' backend, in headless Chromium
// (test/browser/tfjs-page.ts, bundled with tfjs's browser builds) and in Node (for the expected
// bytes). Fixed weights, inputs and labels; every result is the hex of a Float32Array, so it crosses
// the page boundary unchanged.
import * as tf from '@tensorflow/tfjs';

export const TFJS_WEIGHT_MODES = ['nvfp4', 'mxfp4', 'mxfp8_e4m3', 'fgmp', 'none'] as const;
export type TfjsWeightMode = (typeof TFJS_WEIGHT_MODES)[number];

export interface TfjsResult {
  /** tfjs's backend and fp4kit's kernel backend the models ran on. */
  tfjsBackend: string;
  fp4kitKernels: string;
  /** `${model}/${mode}/${what}` → hex bytes. */
  outputs: Record<string, string>;
  /** What fp4kit's kernels did over all runs (readCounters()), to show the products ran on fp4kit. */
  quantizedProducts: number;
  floatProducts: number;
  /** tf.memory().numTensors after every model was disposed, minus before. */
  leakedTensors: number;
}

function hex(x: Float32Array): string {
  const bytes = new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** Uniform values in [-scale, scale) from a 32-bit LCG, with every 37th value 8× larger (block outliers). */
function values(n: number, seed: number, scale: number): Float32Array {
  const x = new Float32Array(n);
  let a = (seed * 2654435761) >>> 0;
  for (let i = 0; i < n; i++) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    x[i] = (a / 4294967296 - 0.5) * 2 * scale * (i % 37 === 5 ? 8 : 1);
  }
  return x;
}

/** A dense MLP: K = 50 (not a whole number of blocks), 64 and 40. */
function mlp(): tf.Sequential {
  const m = tf.sequential();
  m.add(tf.layers.dense({ inputShape: [50], units: 64, activation: 'relu' }));
  m.add(tf.layers.dense({ units: 40, activation: 'tanh' }));
  m.add(tf.layers.dense({ units: 10, activation: 'softmax' }));
  return m;
}

/** A small CNN: two convolutions (K = 27 and 72), max pooling, a dense head. */
function cnn(): tf.Sequential {
  const m = tf.sequential();
  m.add(tf.layers.conv2d({ inputShape: [10, 10, 3], filters: 8, kernelSize: 3, padding: 'same', activation: 'relu' }));
  m.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  m.add(tf.layers.conv2d({ filters: 12, kernelSize: 3, padding: 'valid', activation: 'relu' }));
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 10, activation: 'softmax' }));
  return m;
}

const MODELS = {
  mlp: { make: mlp, input: [6, 50] },
  cnn: { make: cnn, input: [4, 10, 10, 3] },
} as const;

/** Weights of a fixed distribution (scaled to each tensor's fan-in), the same on every platform. */
function setFixedWeights(model: tf.LayersModel): void {
  const weights = model.getWeights().map((w, i) => {
    const fanIn = w.shape.length > 1 ? w.shape.slice(0, -1).reduce((p, d) => p * d, 1) : 16;
    return tf.tensor(values(w.size, 100 + i, Math.sqrt(3 / fanIn)), w.shape, 'float32');
  });
  model.setWeights(weights);
  tf.dispose(weights);
}

/** One-hot labels over 10 classes. */
function labels(rows: number): tf.Tensor {
  const y = new Float32Array(rows * 10);
  for (let r = 0; r < rows; r++) y[r * 10 + ((r * 7 + 3) % 10)] = 1;
  return tf.tensor2d(y, [rows, 10]);
}

/**
 * For each weight mode and model: predict, then one training step (trainOnBatch, Adam), then the
 * updated weights and a second predict. Runs on whatever backend is active.
 */
export async function runTfjsCases(readCounters: () => { quantizedProducts: number; floatProducts: number }, fp4kitKernels: string,
  modes: readonly TfjsWeightMode[] = TFJS_WEIGHT_MODES): Promise<TfjsResult> {
  const outputs: Record<string, string> = {};
  const before = tf.memory().numTensors;
  const counted = readCounters();
  for (const mode of modes) {
    tf.env().set('FP4KIT_WEIGHTS', mode);
    for (const [name, spec] of Object.entries(MODELS)) {
      const model = spec.make();
      setFixedWeights(model);
      const rows = spec.input[0];
      const x = tf.tensor(values(spec.input.reduce((p, d) => p * d, 1), 7, 1), [...spec.input]);
      const y = labels(rows);
      const key = `${name}/${mode}`;
      const predicted = model.predict(x) as tf.Tensor;
      outputs[`${key}/predict`] = hex(predicted.dataSync() as Float32Array);
      predicted.dispose();
      const optimizer = tf.train.adam(0.01);
      model.compile({ optimizer, loss: 'categoricalCrossentropy' });
      const loss = (await model.trainOnBatch(x, y)) as number;
      outputs[`${key}/train/loss`] = hex(new Float32Array([loss]));
      model.weights.forEach((w, i) => (outputs[`${key}/train/weight${i}`] = hex(w.read().dataSync() as Float32Array)));
      const after = model.predict(x) as tf.Tensor;
      outputs[`${key}/train/predict`] = hex(after.dataSync() as Float32Array);
      after.dispose();
      tf.dispose([x, y]);
      optimizer.dispose();
      model.dispose();
    }
  }
  // What the 'fp4kit' backend's wasm base cannot do runs on tfjs's cpu kernels (lib/tfjs/cpu-fallback.ts):
  // complex tensors and an FFT, and a string comparison.
  tf.tidy(() => {
    const spectrum = tf.spectral.fft(tf.complex(tf.tensor2d(values(24, 11, 1), [2, 12]), tf.tensor2d(values(24, 12, 1), [2, 12])));
    outputs['fallback/fft/real'] = hex(tf.real(spectrum).dataSync() as Float32Array);
    outputs['fallback/fft/imag'] = hex(tf.imag(spectrum).dataSync() as Float32Array);
    outputs['fallback/fft/abs'] = hex(tf.abs(spectrum).dataSync() as Float32Array);
    outputs['fallback/string-less'] = hex(tf.cast(tf.less(tf.tensor(['ab', 'b', 'a']), tf.tensor(['b', 'ab', 'a'])), 'float32').dataSync() as Float32Array);
  });
  const counts = readCounters();
  return {
    tfjsBackend: tf.getBackend(),
    fp4kitKernels,
    outputs,
    quantizedProducts: counts.quantizedProducts - counted.quantizedProducts,
    floatProducts: counts.floatProducts - counted.floatProducts,
    leakedTensors: tf.memory().numTensors - before,
  };
}
