// Quantize / dequantize throughput per backend and format on a 4096×4096 float32 matrix, beside a
// plain Float32Array copy of the same bytes measured in the same run. Run: npm run bench
// (FP4KIT_BENCH_N=2048 for a smaller matrix, FP4KIT_BENCH_FORMATS=mxfp4,nvfp4 to pick formats).
import { availableBackends, dequantize, quantize, setBackend, type BlockFormatName } from '../lib/index.js';
import { gaussian } from '../test/helpers/data.js';

const N = Number(process.env.FP4KIT_BENCH_N ?? 4096);
const FORMATS = (process.env.FP4KIT_BENCH_FORMATS?.split(',') ?? ['mxfp4', 'nvfp4', 'mxfp6_e2m3', 'mxfp6_e3m2', 'mxfp8_e4m3', 'mxfp8_e5m2', 'mxint8']) as BlockFormatName[];
const x = gaussian(N * N, 1, 0.02);
const elements = N * N;

/** Median seconds of `fn` over enough repetitions to fill ~`budget` seconds (at least 3). */
function time(fn: () => void, budget = 1.5): number {
  fn(); // warm up
  const times: number[] = [];
  const start = performance.now();
  while (times.length < 3 || (performance.now() - start < budget * 1000 && times.length < 50)) {
    const t0 = performance.now();
    fn();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

const copyTarget = new Float32Array(elements);
const copySeconds = time(() => copyTarget.set(x));
const copyGBs = (elements * 4 * 2) / copySeconds / 1e9; // read + write
console.log(`matrix ${N}×${N} float32 (${((elements * 4) / 2 ** 20).toFixed(0)} MiB)`);
console.log(`baseline Float32Array copy: ${(copySeconds * 1000).toFixed(2)} ms = ${copyGBs.toFixed(1)} GB/s (read+write), ${(elements / copySeconds / 1e9).toFixed(2)} G elements/s`);
console.log('');
console.log('| backend | simd | format | quantize G el/s | dequantize G el/s | quantize vs copy time |');
console.log('|---|---|---|---|---|---|');
for (const b of availableBackends()) {
  if (!b.available) { console.log(`| ${b.name} | — | (not loaded: ${b.error}) | | | |`); continue; }
  setBackend(b.name);
  for (const format of b.name === 'js' ? FORMATS.slice(0, 2) : FORMATS) {
    // The js reference is slow: time it on a slice so the run stays short, and say so.
    const n = b.name === 'js' ? Math.min(elements, 1 << 20) : elements;
    const src = x.subarray(0, n);
    const shape = [n / N, N];
    const q = quantize(src, { format, shape });
    const tq = time(() => quantize(src, { format, shape }), b.name === 'js' ? 0.5 : 1.5);
    const td = time(() => dequantize(q), b.name === 'js' ? 0.5 : 1.5);
    const copyEquivalent = copySeconds * (n / elements);
    console.log(`| ${b.name} | ${b.simd} | ${format}${n < elements ? ` (${n} el)` : ''} | ${(n / tq / 1e9).toFixed(3)} | ${(n / td / 1e9).toFixed(3)} | ${(tq / copyEquivalent).toFixed(2)}× |`);
  }
}
