// WebAssembly vs pure-TS kernels on a 4096×4096 float32 matrix: mxfp4 and nvfp4 quantize and
// dequantize, in G elements/s (best of several runs, copies into and out of wasm memory included).
// Run: npm run bench:wasm-quantize
//      npm run bench:wasm-quantize -- --n=512 --reps=2     (a quick check)
// Settings (a flag or FP4KIT_BENCH_N etc.; bench/settings.ts): --n=4096 (an N × N matrix, N a
// multiple of 32), --reps=7 runs per wasm figure (the best is kept; the js reference, ~20× slower,
// gets 2, or --reps when fewer).
import { mxArgs, mxOutArgs, nvfp4Args, nvfp4OutArgs } from '../test/helpers/block-args.js';
import { jsKernels } from '../lib/kernels/ref/index.js';
import type { Kernels } from '../lib/kernels/contract.js';
import { loadWasmKernels } from '../lib/kernels/wasm.js';
import { nvfp4TensorScale } from '../lib/kernels/ref/block-scale.js';
import { DtypeId, ElementId, RoundingId, ScaleRuleId } from '../lib/core/formats.js';
import { integerSetting } from './settings.js';

const ROWS = integerSetting('n', 4096);
const COLS = ROWS;
if (COLS % 32 !== 0) throw new RangeError(`--n=${COLS}: a multiple of 32 (whole MX blocks)`);
const N = ROWS * COLS;
const REPS = integerSetting('reps', 7);

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

const wasm = cases(loadWasmKernels(), REPS);
const js = cases(jsKernels, Math.min(2, REPS));
console.log(`${ROWS}×${COLS} float32, best of ${REPS} runs (js: ${Math.min(2, REPS)}), G elements/s`);
console.log(`${'kernel'.padEnd(30)}${'wasm'.padStart(8)}${'js'.padStart(8)}${'wasm/js'.padStart(9)}`);
for (const name of Object.keys(wasm)) {
  const gw = N / wasm[name] / 1e9;
  const gj = N / js[name] / 1e9;
  console.log(`${name.padEnd(30)}${gw.toFixed(3).padStart(8)}${gj.toFixed(3).padStart(8)}${(gw / gj).toFixed(1).padStart(8)}×`);
}
