// FGMP quantization of one weight matrix (default 4096 × 4096, Gaussian, no Fisher weights, the
// sensitivity-weighted clipping on): quantize(x, { format: 'fgmp' }) through the public API, and
// the per-block candidates kernel alone (both encodings, the clipping search and the impacts;
// native/fgmp_simd.h, native/fgmp.cc, assembly/fgmp.ts) into buffers allocated once. Each native
// configuration runs in a child process (the addon reads FP4KIT_THREADS and FP4KIT_SIMD once): the
// vectorised kernel at the CPU's level and, as the peer, the scalar kernel (FP4KIT_SIMD=scalar,
// what every level ran before 2026-12-05), on 1 and 2 threads; then the wasm module and the js
// reference (its quantize() on a slice of 64 rows, scaled up to the whole matrix, and said so). The
// last column: prepareWeights + the first one-row product, which repacks the weights for the fast
// kernel (FP4 tiles and byte planes).
//
// Run: npm run bench:fgmp-quantize   (FP4KIT_BENCH_N=2048 for a smaller matrix)
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { matmul, prepareWeights, quantize, setBackend } from '../lib/index.js';
import { getKernels } from '../lib/kernels/registry.js';
import { DtypeId } from '../lib/core/formats.js';
import { nvfp4TensorScale } from '../lib/kernels/ref/block-scale.js';
import { gaussian } from '../test/helpers/data.js';
import { medianSeconds } from './timing.js';

const N = Number(process.env.FP4KIT_BENCH_N ?? 4096);
const CHILD = process.env.FP4KIT_BENCH_CHILD;

function row(label: string, threads: string, rowsTimed: number) {
  const x = gaussian(N * N, 1, 0.02);
  const blocks = N * (N / 16);
  const kernel = getKernels().fgmpCandidates;
  // The candidates kernel into buffers allocated once (what repeated quantization reuses).
  let candidates = NaN;
  if (kernel) {
    let amax = 0;
    for (let i = 0; i < x.length; i++) amax = Math.max(amax, Math.abs(x[i]));
    const tensorScale = nvfp4TensorScale(amax);
    const impacts = new Float64Array(blocks), fp4Codes = new Uint8Array(blocks * 16), fp4Scales = new Uint8Array(blocks), fp8Codes = new Uint8Array(blocks * 16);
    const rows = Math.min(N, rowsTimed);
    const run = () => kernel(x.subarray(0, rows * N), DtypeId.f32, rows, N, null, false, tensorScale, amax / 448, true, impacts.subarray(0, rows * N / 16),
      fp4Codes.subarray(0, rows * N), fp4Scales.subarray(0, rows * N / 16), fp8Codes.subarray(0, rows * N));
    candidates = medianSeconds(run, 1) * (N / rows);
  }
  const apiRows = Math.min(N, rowsTimed);
  const api = medianSeconds(() => quantize(x.subarray(0, apiRows * N), { format: 'fgmp', shape: [apiRows, N] }), 1) * (N / apiRows);
  // The weights' repack for the fast kernel (both forms: FP4 tiles and byte planes), which the first
  // product after prepareWeights pays: a one-row product on a fresh handle each time.
  let repack = NaN;
  if (rowsTimed >= N) {
    const q = quantize(x, { format: 'fgmp', shape: [N, N] });
    const a = gaussian(N, 2), out = new Float32Array(N);
    repack = medianSeconds(() => {
      const w = prepareWeights(q);
      matmul(a, w, { out });
      w.dispose();
    }, 1);
  }
  const f = (t: number) => (Number.isNaN(t) ? '—' : `${(t * 1e3).toFixed(0)} ms`);
  console.log(`| ${label} | ${threads} | ${f(candidates)} | ${f(api)} | ${Number.isNaN(candidates) ? '—' : (blocks / candidates / 1e6).toFixed(1)} | ${f(repack)} |`);
  return candidates;
}

if (CHILD) {
  setBackend(CHILD as 'native' | 'wasm' | 'js');
  const label = CHILD === 'native' ? `native ${getKernels().simd}` : CHILD === 'js' ? `js (${Math.min(N, 64)} rows, scaled)` : CHILD;
  const seconds = row(label, process.env.FP4KIT_THREADS ?? '—', CHILD === 'js' ? 64 : N);
  process.stdout.write(`@@${seconds}\n`);
} else {
  console.log(`FGMP quantization of a ${N} × ${N} float32 matrix (clipping on, no Fisher weights): the candidates kernel into reused`);
  console.log('buffers, and quantize(x, { format: "fgmp" }) (allocates its outputs; adds the selection and the packing). Median of runs.\n');
  console.log('| backend | threads | candidates kernel | quantize() | M blocks/s (kernel) | repack (first product) |');
  console.log('|---|---|---:|---:|---:|---:|');
  const child = (backend: string, env: Record<string, string>) => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
      env: { ...process.env, FP4KIT_BENCH_CHILD: backend, ...env }, encoding: 'utf8',
    });
    const [table, seconds] = out.split('@@');
    process.stdout.write(table);
    return Number(seconds);
  };
  const ratios: string[] = [];
  for (const threads of ['1', '2']) {
    const simd = child('native', { FP4KIT_THREADS: threads });
    const scalar = child('native', { FP4KIT_THREADS: threads, FP4KIT_SIMD: 'scalar' });
    ratios.push(`${threads} thread${threads === '1' ? '' : 's'}: ${(scalar / simd).toFixed(1)}× the scalar kernel`);
  }
  child('wasm', {});
  child('js', {});
  console.log(`\nCandidates kernel, vectorised vs scalar (same run): ${ratios.join('; ')}.`);
}
