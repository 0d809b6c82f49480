// Quantize / dequantize throughput per backend and format on a 4096×4096 float32 matrix, beside a
// plain Float32Array copy of the same bytes measured in the same run. Two figures per operation:
// the public API (which allocates its outputs) and the backend kernel writing into buffers
// allocated once (what a server reusing buffers gets). The native rows run once per thread count
// (FP4KIT_THREADS=1 and 2, each in a child process since the addon reads it at load).
//
// Run: npm run bench   (FP4KIT_BENCH_N=2048 for a smaller matrix, FP4KIT_BENCH_FORMATS=mxfp4,nvfp4)
import { mxArgs, mxOutArgs, nvfp4Args, nvfp4OutArgs } from '../test/helpers/block-args.js';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { availableBackends, dequantize, quantize, setBackend, type BlockFormatName } from '../lib/index.js';
import { kernelsFor } from '../lib/kernels/registry.js';
import { nvfp4TensorScale } from '../lib/kernels/ref/block-scale.js';
import { BLOCK_FORMATS, DtypeId, ScaleRuleId, RoundingId, packedRowBytes } from '../lib/core/formats.js';
import { gaussian } from '../test/helpers/data.js';
import { medianSeconds } from './timing.js';

const N = Number(process.env.FP4KIT_BENCH_N ?? 4096);
const FORMATS = (process.env.FP4KIT_BENCH_FORMATS?.split(',') ?? ['mxfp4', 'nvfp4', 'mxfp6_e2m3', 'mxfp6_e3m2', 'mxfp8_e4m3', 'mxfp8_e5m2', 'mxint8']) as BlockFormatName[];
const CHILD = process.env.FP4KIT_BENCH_CHILD === '1';

const time = medianSeconds;

const x = gaussian(N * N, 1, 0.02);
const elements = N * N;
const copyTarget = new Float32Array(elements);
const copySeconds = time(() => copyTarget.set(x));
const g = (n: number, t: number) => (n / t / 1e9).toFixed(3);

function rows(names: Array<'native' | 'wasm' | 'js'>, threads: string): void {
  for (const b of availableBackends()) {
    if (!names.includes(b.name)) continue;
    if (!b.available) {
      console.log(`| ${b.name} | — | — | (not loaded: ${b.error}) | | | | | |`);
      continue;
    }
    setBackend(b.name);
    const k = kernelsFor(b.name)!;
    for (const format of b.name === 'js' ? FORMATS.slice(0, 2) : FORMATS) {
      // The js reference is slow: time it on a slice so the run stays short, and say so.
      const n = b.name === 'js' ? Math.min(elements, Math.floor((1 << 20) / N) * N || N) : elements; // whole rows of N
      const src = x.subarray(0, n);
      const r = n / N;
      const f = BLOCK_FORMATS[format];
      const q = quantize(src, { format, shape: [r, N] });
      const budget = b.name === 'js' ? 0.3 : 1.0;
      const apiQ = time(() => quantize(src, { format, shape: [r, N] }), budget);
      const reused = { data: new Uint8Array(q.data.length), scales: new Uint8Array(q.scales.length) };
      const apiOutQ = time(() => quantize(src, { format, shape: [r, N], out: reused }), budget);
      const reuse = new Float32Array(n);
      const apiD = time(() => dequantize(q, { out: reuse }), budget);
      const data = new Uint8Array(r * packedRowBytes(f, N));
      const scales = new Uint8Array(r * Math.ceil(N / f.blockSize));
      const out = new Float32Array(n);
      let kQ: number;
      let kD: number;
      if (format === 'nvfp4') {
        const t = nvfp4TensorScale(k.absMax(src, DtypeId.f32));
        kQ = time(() => k.quantizeBlocks(nvfp4Args(src, DtypeId.f32, r, N, t, RoundingId.nearest, 0, data, scales)), budget);
        kD = time(() => k.dequantizeBlocks(nvfp4OutArgs(data, scales, r, N, t, out)), budget);
      } else {
        kQ = time(() => k.quantizeBlocks(mxArgs(src, DtypeId.f32, r, N, f.element.id, ScaleRuleId.floor, RoundingId.nearest, 0, data, scales)), budget);
        kD = time(() => k.dequantizeBlocks(mxOutArgs(data, scales, r, N, f.element.id, out)), budget);
      }
      const copyEquivalent = copySeconds * (n / elements);
      console.log(`| ${b.name} | ${b.simd} | ${threads} | ${format}${n < elements ? ` (${n} el)` : ''} | ${g(n, apiQ)} | ${g(n, apiOutQ)} | ${g(n, kQ)} | ${g(n, apiD)} | ${g(n, kD)} | ${(kQ / copyEquivalent).toFixed(2)}× |`);
    }
  }
}

if (CHILD) {
  rows(['native'], process.env.FP4KIT_THREADS ?? 'default');
} else {
  console.log(`matrix ${N}×${N} float32 (${((elements * 4) / 2 ** 20).toFixed(0)} MiB)`);
  console.log(`baseline Float32Array copy: ${(copySeconds * 1000).toFixed(2)} ms = ${((elements * 8) / copySeconds / 1e9).toFixed(1)} GB/s (read+write), ${g(elements, copySeconds)} G elements/s`);
  console.log('');
  console.log('G elements/s; "api": quantize() allocating its outputs; "api, out": quantize(x, { out }) into reused buffers; dequantize(q, { out }) into a reused buffer; "kernel": the backend kernel with buffers allocated once.');
  console.log('');
  console.log('| backend | simd | threads | format | quantize api | quantize api, out | quantize kernel | dequantize api | dequantize kernel | kernel quantize time vs copy |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const threads of ['1', '2']) {
    const script = fileURLToPath(import.meta.url);
    process.stdout.write(execFileSync(process.execPath, ['--import', 'tsx', script], {
      env: { ...process.env, FP4KIT_BENCH_CHILD: '1', FP4KIT_THREADS: threads },
      encoding: 'utf8',
    }));
  }
  rows(['wasm', 'js'], '1');
}
