// Runs in headless Chromium for bench/wasm-browser.bench.ts: fp4kit's matmul on each build of its
// WebAssembly module (lib/kernels/wasm-builds.ts), and the peer, tfjs-backend-wasm's float32
// matMul (XNNPACK, SIMD, one thread: the page is not cross-origin isolated), same shapes, same page.
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { getBackend, initWasm, matmul, prepareWeights, quantize, type WasmBuild } from '../../lib/browser.js';
import { gaussian } from '../../test/helpers/data.js';
import { medianSecondsAsync } from '../timing.js';

export interface Shape {
  m: number;
  n: number;
  k: number;
}

export interface Timing {
  /** 'mxfp4', 'nvfp4', … or 'tfjs-wasm f32'. */
  what: string;
  shape: Shape;
  ms: number;
  /** FNV-1a of the output's bytes (fp4kit only): the builds must agree. */
  digest?: string;
}

declare global {
  interface Window {
    benchFp4kit(build: WasmBuild, shapes: Shape[], formats: string[], seconds: number): Promise<{ kernels: string; timings: Timing[] }>;
    benchTfjs(shapes: Shape[], seconds: number): Promise<{ backend: string; timings: Timing[] }>;
  }
}

/** Median ms of `fn` (bench/timing.ts: one warm-up call, then ~`seconds` of calls). */
async function medianMs(fn: () => void | Promise<void>, seconds: number): Promise<number> {
  return (await medianSecondsAsync(async () => fn(), seconds)) * 1e3;
}

function digest(y: Float32Array): string {
  const bytes = new Uint8Array(y.buffer, y.byteOffset, y.byteLength);
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

window.benchFp4kit = async (build, shapes, formats, seconds) => {
  await initWasm(new URL(build === 'relaxed' ? '/fp4kit-relaxed.wasm' : '/fp4kit.wasm', location.href), { build });
  const timings: Timing[] = [];
  for (const format of formats) {
    for (const shape of shapes) {
      const { m, n, k } = shape;
      const w = prepareWeights(quantize(gaussian(n * k, 10, 0.05), { format, shape: [n, k] } as never));
      const x = gaussian(m * k, 11);
      let y: Float32Array = new Float32Array(0); // matmul's type: any ArrayBuffer kind
      const ms = await medianMs(() => {
        y = matmul(x, w);
      }, seconds);
      timings.push({ what: format, shape, ms, digest: digest(y) });
      w.dispose();
    }
  }
  const b = getBackend();
  return { kernels: `${b.name}/${b.matmulSimd}`, timings };
};

window.benchTfjs = async (shapes, seconds) => {
  setWasmPaths('/');
  await tf.setBackend('wasm');
  const timings: Timing[] = [];
  for (const shape of shapes) {
    const { m, n, k } = shape;
    // [k, n] as a dense layer's kernel: transposeB would run tfjs's Transpose kernel on every call.
    const w = tf.tensor2d(gaussian(n * k, 10, 0.05), [k, n]);
    const x = tf.tensor2d(gaussian(m * k, 11), [m, k]);
    const ms = await medianMs(() => {
      const y = tf.matMul(x, w);
      y.dataSync();
      y.dispose();
    }, seconds);
    timings.push({ what: 'tfjs-wasm f32', shape, ms });
    w.dispose();
    x.dispose();
  }
  return { backend: tf.getBackend(), timings };
};
