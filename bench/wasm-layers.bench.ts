// The wasm backend's matmul over a model's layers called in turn (L distinct prepared weights, one
// product each, round after round), with the module's resident budget (initWasm residentBytes /
// FP4KIT_WASM_RESIDENT_MB, default 256 MiB) against a budget of 0 — every call copies its weights
// into the module, as every layer switch did before 2026-12-04. Same process, same weights,
// fresh module per budget; ms per product (median of rounds), and the ratio.
//
//   npm run bench:wasm-layers
//   npm run bench:wasm-layers -- --layers=4 --n=2048 --k=2048 --m=1,16 --formats=mxfp4,nvfp4,fgmp,mxfp8_e4m3
import { readFileSync } from 'node:fs';
import { quantize } from '../lib/core/quantize.js';
import type { MatmulKernels } from '../lib/kernels/contract.js';
import { matmulFast, repackWeights } from '../lib/kernels/matmul-glue.js';
import { wasmKernels } from '../lib/kernels/wasm.js';
import { DEFAULT_RESIDENT_BYTES, instantiateWasmModule } from '../lib/kernels/wasm-memory.js';
import { gaussian } from '../test/helpers/data.js';
import { integerSetting, listSetting } from './settings.js';
import { medianSeconds } from './timing.js';

// Each a flag or an FP4KIT_BENCH_ variable (bench/settings.ts); --budget= seconds per figure (bench/timing.ts).
const LAYERS = integerSetting('layers', 4);
const N = integerSetting('n', 2048);
const K = integerSetting('k', 2048);
const MS = listSetting('m', '1,16').map(Number);
const FORMATS = listSetting('formats', 'mxfp4,nvfp4,fgmp,mxfp8_e4m3') as Array<'mxfp4' | 'nvfp4' | 'fgmp' | 'mxfp8_e4m3'>;
const wasmBytes = readFileSync(new URL('../build-wasm/fp4kit.wasm', import.meta.url));

console.log(`wasm matmul, ${LAYERS} layers of ${N} × ${K} weights called in turn; ms per product (median over rounds of all layers)`);
console.log(`resident: budget ${DEFAULT_RESIDENT_BYTES / 2 ** 20} MiB (the default); copied: budget 0 (every call copies its weights in)`);
console.log('');
console.log('| weights | M | resident ms | copied ms | copied ÷ resident |');
console.log('|---|---:|---:|---:|---:|');
for (const format of FORMATS) {
  const weights = Array.from({ length: LAYERS }, (_, i) => {
    const w = gaussian(N * K, 10 + i, 0.05);
    return format === 'fgmp' ? quantize(w, { format: 'fgmp', shape: [N, K] } as never) : quantize(w, { format, shape: [N, K] });
  });
  for (const m of MS) {
    const a = quantize(gaussian(m * K, 99), { format: 'mxint8', shape: [m, K] });
    const perProduct = (residentBytes: number) => {
      const kernels = wasmKernels(instantiateWasmModule(wasmBytes, { residentBytes })).matmul as MatmulKernels;
      const packed = weights.map((b) => repackWeights(kernels, b as never));
      return medianSeconds(() => {
        for (const p of packed) matmulFast(kernels, a, p, N, undefined);
      }, 2.0) / LAYERS;
    };
    const resident = perProduct(DEFAULT_RESIDENT_BYTES);
    const copied = perProduct(0);
    console.log(`| ${format} | ${m} | ${(resident * 1e3).toFixed(2)} | ${(copied * 1e3).toFixed(2)} | ${(copied / resident).toFixed(2)}× |`);
  }
}
