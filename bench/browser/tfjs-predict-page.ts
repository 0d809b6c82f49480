// Runs in headless Chromium for bench/wasm-browser.bench.ts: model.predict of a dense stack on
// fp4kit's tfjs backend in the browser (lib/tfjs/browser.ts: the relaxed-SIMD or SIMD128 module)
// against tfjs's own wasm backend (XNNPACK, one thread), same weights and input, one backend per page.
import * as tf from '@tensorflow/tfjs';
import { getBackend } from '../../lib/browser.js';
import { setWasmPaths } from '../../lib/tfjs/browser.js';
import { gaussian } from '../../test/helpers/data.js';

export interface PredictTiming {
  backend: string;
  /** FP4KIT_WEIGHTS on fp4kit; 'float32' on tfjs wasm. */
  mode: string;
  /** fp4kit's kernels ('wasm/relaxed-simd', …); '' on tfjs wasm. */
  kernels: string;
  /** The first predict (fp4kit: weights quantized and repacked then), and the median of the rest. */
  firstMs: number;
  ms: number;
}

declare global {
  interface Window {
    benchPredict(backend: string, modes: string[], width: number, layers: number, batch: number, reps: number): Promise<PredictTiming[]>;
  }
}

window.benchPredict = async (backend, modes, width, layers, batch, reps) => {
  setWasmPaths('/');
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} did not initialise`);
  const model = tf.sequential({
    layers: Array.from({ length: layers }, (_, i) =>
      tf.layers.dense({ units: width, activation: i < layers - 1 ? 'relu' : 'linear', inputShape: i === 0 ? [width] : undefined })),
  });
  model.setWeights(Array.from({ length: layers }, (_, i) => [tf.tensor2d(gaussian(width * width, 100 + i, Math.sqrt(1 / width)), [width, width]), tf.tensor1d(gaussian(width, 200 + i, 0.01))]).flat());
  const x = tf.tensor2d(gaussian(batch * width, 7), [batch, width]);
  const timings: PredictTiming[] = [];
  for (const mode of modes) {
    if (backend !== 'wasm') tf.env().set('FP4KIT_WEIGHTS', mode);
    const run = () => {
      const t0 = performance.now();
      const y = model.predict(x, { batchSize: batch }) as tf.Tensor;
      y.dataSync();
      y.dispose();
      return performance.now() - t0;
    };
    const firstMs = run();
    const times = Array.from({ length: reps }, run).sort((a, b) => a - b);
    const k = getBackend();
    timings.push({ backend, mode: backend === 'wasm' ? 'float32' : mode, kernels: backend === 'wasm' ? '' : `${k.name}/${k.matmulSimd}`, firstMs, ms: times[times.length >> 1] });
  }
  return timings;
};
