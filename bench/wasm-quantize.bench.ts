// WebAssembly vs pure-TS kernels on a 4096×4096 float32 matrix: mxfp4 and nvfp4 quantize and
// dequantize, in G elements/s (best of several runs, copies into and out of wasm memory included).
// Run: node --import tsx bench/wasm-quantize.bench.ts
import { mxArgs, mxOutArgs, nvfp4Args, nvfp4OutArgs } from '../test/helpers/block-args.js';
import { jsKernels } from '../lib/kernels/ref/index.js';
import type { Kernels } from '../lib/kernels/contract.js';
import { loadWasmKernels } from '../lib/kernels/wasm.js';
import { nvfp4TensorScale } from '../lib/kernels/ref/block-scale.js';
import { DtypeId, ElementId, RoundingId, ScaleRuleId } from '../lib/core/formats.js';

const ROWS = 4096;
const COLS = 4096;
const N = ROWS * COLS;

function randomMatrix(): Float32Array {
  const x = new Float32Array(N);
  let s = 12345;
  for (let i = 0; i < N; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = ((s / 2 ** 32) - 0.5) * 4;
  }
  return x;
}

/** Best time in seconds over `runs` calls. */
function best(runs: number, f: () => void): number {
  let t = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    f();
    t = Math.min(t, (performance.now() - t0) / 1000);
  }
  return t;
}

const x = randomMatrix();
const mxData = new Uint8Array(N / 2);
const mxScales = new Uint8Array(N / 32);
const nvData = new Uint8Array(N / 2);
const nvScales = new Uint8Array(N / 16);
const out = new Float32Array(N);

function cases(k: Kernels, runs: number): Record<string, number> {
  const t = nvfp4TensorScale(k.absMax(x, DtypeId.f32));
  return {
    'mxfp4 quantize': best(runs, () => k.quantizeBlocks(mxArgs(x, DtypeId.f32, ROWS, COLS, ElementId.e2m1, ScaleRuleId.floor, RoundingId.nearest, 0, mxData, mxScales))),
    'mxfp4 dequantize': best(runs, () => k.dequantizeBlocks(mxOutArgs(mxData, mxScales, ROWS, COLS, ElementId.e2m1, out))),
    'nvfp4 quantize': best(runs, () => k.quantizeBlocks(nvfp4Args(x, DtypeId.f32, ROWS, COLS, t, RoundingId.nearest, 0, nvData, nvScales))),
    'nvfp4 dequantize': best(runs, () => k.dequantizeBlocks(nvfp4OutArgs(nvData, nvScales, ROWS, COLS, t, out))),
    'nvfp4 quantize (stochastic)': best(runs, () => k.quantizeBlocks(nvfp4Args(x, DtypeId.f32, ROWS, COLS, t, RoundingId.stochastic, 1, nvData, nvScales))),
  };
}

const wasm = cases(loadWasmKernels(), 7);
const js = cases(jsKernels, 2);
console.log(`4096×4096 float32, best of runs, G elements/s`);
console.log(`${'kernel'.padEnd(30)}${'wasm'.padStart(8)}${'js'.padStart(8)}${'wasm/js'.padStart(9)}`);
for (const name of Object.keys(wasm)) {
  const gw = N / wasm[name] / 1e9;
  const gj = N / js[name] / 1e9;
  console.log(`${name.padEnd(30)}${gw.toFixed(3).padStart(8)}${gj.toFixed(3).padStart(8)}${(gw / gj).toFixed(1).padStart(8)}×`);
}
