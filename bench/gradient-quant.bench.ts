// Gradient quantizers (1-bit FQT): throughput per backend on a 4096×1024 float32 gradient, beside
// two peers measured in the same run on the same data — a plain Float32Array copy and the same
// backend's stochastic MXINT8 quantize (also one random draw per element). Kernels write into
// buffers allocated once. The native rows run once per thread count (FP4KIT_THREADS=1 and 2, in
// child processes, since the addon reads it at load). Then the estimator's variance
// E‖ĝ − g‖² of 1-bit PSQ against AGP at b = 2, 4, 8 (one bit per element on average) on
// gradients whose per-sample scale spreads over 2^±s (measured over seeds, native backend).
//
// Run: npm run bench:gradient-quant   (FP4KIT_BENCH_ROWS=1024 for a smaller gradient)
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { availableBackends, dequantizeGradient, quantizeGradient, setBackend } from '../lib/index.js';
import { kernelsFor } from '../lib/kernels/registry.js';
import { BLOCK_FORMATS, DtypeId, RoundingId, ScaleRuleId } from '../lib/core/formats.js';
import { GradientGroupsId, GradientPruneId } from '../lib/kernels/ref/gradient-quant.js';
import { gaussian, rng } from '../test/helpers/data.js';
import { cpus, loadavg } from 'node:os';
import { medianSeconds } from './timing.js';

const ROWS = Number(process.env.FP4KIT_BENCH_ROWS ?? 4096);
const COLS = 1024;
const CHILD = process.env.FP4KIT_BENCH_CHILD === '1';

const time = medianSeconds;

const x = gaussian(ROWS * COLS, 1, 0.01);
const MODES: Array<[string, number, number]> = [
  ['sample, none', GradientGroupsId.sample, GradientPruneId.none],
  ['sample, agp', GradientGroupsId.sample, GradientPruneId.agp],
  ['channel, agp', GradientGroupsId.channel, GradientPruneId.agp],
  ['tensor, topk', GradientGroupsId.tensor, GradientPruneId.topk],
];

function rows(names: Array<'native' | 'wasm' | 'js'>, threads: string): void {
  const copyTarget = new Float32Array(x.length);
  const copy = time(() => copyTarget.set(x));
  for (const b of availableBackends()) {
    if (!names.includes(b.name) || !b.available) continue;
    const k = kernelsFor(b.name)!;
    // the js reference is slow: a quarter of the rows keeps the run short (figures are per element)
    const r = b.name === 'js' ? ROWS / 4 : ROWS;
    const src = x.subarray(0, r * COLS);
    const n = r * COLS;
    const codes = new Uint8Array(n);
    const G = Math.max(r, COLS);
    const scales = new Float32Array(G), zeros = new Float32Array(G), mask = new Uint8Array(G), keep = new Float32Array(G);
    const out = new Float32Array(n);
    const mx = BLOCK_FORMATS.mxint8;
    const data = new Uint8Array(n), blockScales = new Uint8Array(n / 32);
    const peer = time(() => k.quantizeBlocks({
      format: mx.id, src, dtype: DtypeId.f32, rows: r, cols: COLS, scaleRule: ScaleRuleId.floor, rounding: RoundingId.stochastic, seed: 1,
      data, scales: blockScales, tensorScale: 0, firstIndex: 0,
    }));
    for (const [name, groups, prune] of MODES) {
      const t = time(() => k.quantizeGradient({ src, rows: r, cols: COLS, bits: 4, groups, prune, seed: 1, codes, scales, zeros, mask, keepProbability: keep }));
      const d = time(() => k.dequantizeGradient({ codes, scales, zeros, mask, rows: r, cols: COLS, groups, out }));
      console.log(`| ${b.name} (${b.simd}) | ${threads} | ${name} | ${(n / t / 1e9).toFixed(3)} | ${(n / d / 1e9).toFixed(3)} | ${(n / peer / 1e9).toFixed(3)} | ${(peer / t).toFixed(2)}× | ${(copy / t).toFixed(3)}× |`);
    }
  }
}

if (CHILD) {
  rows(['native'], process.env.FP4KIT_THREADS ?? '');
} else {
  console.log(`gradient ${ROWS}×${COLS} float32, b = 4; load average ${loadavg().map((v) => v.toFixed(2)).join(' ')} on ${cpus().length} CPUs`);
  console.log('throughput in G elements/s; "vs MXINT8" = quantizeGradient speed ÷ the same backend\'s stochastic MXINT8 quantize; "vs copy" = ÷ a Float32Array copy\n');
  console.log('| backend | threads | groups, prune | quantize | dequantize | MXINT8 peer | vs MXINT8 | vs copy |');
  console.log('|---|---|---|---|---|---|---|---|');
  const self = fileURLToPath(import.meta.url);
  for (const threads of ['1', '2']) {
    if (!availableBackends().find((b) => b.name === 'native')?.available) break;
    process.stdout.write(execFileSync(process.execPath, ['--import', 'tsx', self], { env: { ...process.env, FP4KIT_BENCH_CHILD: '1', FP4KIT_THREADS: threads }, encoding: 'utf8' }));
  }
  rows(['wasm', 'js'], '1');

  console.log('\nvariance E‖ĝ − g‖² (mean over 100 seeds) of a 128×256 gradient whose row scales spread over 2^±s; one bit per element on average for all but the last column');
  console.log('| spread s | 1-bit PSQ | AGP b = 2 | AGP b = 4 | AGP b = 8 | AGP b=4 ÷ PSQ | 4-bit PSQ (4 bits) |');
  console.log('|---|---|---|---|---|---|---|');
  setBackend(availableBackends().find((b) => b.name === 'native')?.available ? 'native' : 'wasm');
  const [R, C, S] = [128, 256, 100];
  for (const spread of [0, 2, 4, 6]) {
    const g = gaussian(R * C, 3);
    const u = rng(4);
    for (let i = 0; i < R; i++) {
      const s = 2 ** (spread * (2 * u() - 1));
      for (let c = 0; c < C; c++) g[i * C + c] *= s;
    }
    const est = new Float32Array(g.length);
    const v = (bits: number, prune: 'none' | 'agp') => {
      let t = 0;
      for (let s = 0; s < S; s++) {
        dequantizeGradient(quantizeGradient(g, { shape: [R, C], bits, prune, seed: s }), { out: est });
        for (let i = 0; i < g.length; i++) t += (est[i] - g[i]) ** 2;
      }
      return t / S;
    };
    const psq1 = v(1, 'none');
    const [a2, a4, a8] = [v(2, 'agp'), v(4, 'agp'), v(8, 'agp')];
    const f = (y: number) => y.toPrecision(3);
    console.log(`| ${spread} | ${f(psq1)} | ${f(a2)} | ${f(a4)} | ${f(a8)} | ${(a4 / psq1).toFixed(3)} | ${f(v(4, 'none'))} |`);
  }
}
