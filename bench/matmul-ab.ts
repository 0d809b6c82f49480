// A/B of two (or more) builds of the addon on block matmul (the integer kernels: FP4 tiles, byte
// planes, FGMP), loaded into one process and called in turn, best of ROUNDS rounds each: the host's
// speed drifts by up to 40 % within minutes here, which separate runs cannot tell from a change.
// Each addon repacks the same quantized weights itself; the timed call is its matmulFp4Int8 on
// MXINT8 activations into a reused output (no JavaScript quantize, no allocation). Every addon
// must give the same bits (the run stops if not). Keep a copy of the build before a change, then:
//
//   cp build/Release/fp4kit.node /tmp/before.node   # … change, rebuild …
//   FP4KIT_THREADS=1 ADDONS=/tmp/before.node,build/Release/fp4kit.node node --import tsx bench/matmul-ab.ts
//
// M=1 (rows), N=4096, K=4096, FORMATS=fgmp,mxfp8_e4m3,mxfp4 (any of mxfp4, nvfp4, fgmp, mxfp8_e4m3,
// mxfp6_e3m2, mxfp6_e2m3, mxint8), ROUNDS=15, MS=60 (milliseconds per timing). The last column is the
// last addon's speed over the first's.
import { createRequire } from 'node:module';
import path from 'node:path';
import { quantize, type MatmulOperand } from '../lib/index.js';
import { e8m0Multipliers, repackWeights } from '../lib/kernels/matmul-glue.js';
import type { MatmulKernels } from '../lib/kernels/contract.js';
import { gaussian } from '../test/helpers/data.js';

const require = createRequire(import.meta.url);
if (!process.env.ADDONS) throw new Error('ADDONS: a comma-separated list of fp4kit.node paths');
const addons = process.env.ADDONS.split(',').map((p) => [p, require(path.resolve(p)) as MatmulKernels] as const);
const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const M = env('M', 1), N = env('N', 4096), K = env('K', 4096), ROUNDS = env('ROUNDS', 15), MS = env('MS', 60);
const formats = (process.env.FORMATS ?? 'fgmp,mxfp8_e4m3,mxfp4').split(',');

const w = gaussian(N * K, 1, 0.05);
const qa = quantize(gaussian(M * K, 2), { format: 'mxint8', shape: [M, K] });
const aScales = e8m0Multipliers(qa.scales);
const weights = formats.map((f): MatmulOperand =>
  f === 'fgmp' ? quantize(w, { format: 'fgmp', shape: [N, K], fp4Fraction: 0.7 }) : quantize(w, { format: f as 'mxfp4', shape: [N, K] }));
const packed = addons.map(([, addon]) => weights.map((b) => repackWeights(addon, b)));
const outs = addons.map(() => new Float32Array(M * N));

function gflops(addon: MatmulKernels, b: unknown, out: Float32Array): number {
  const t0 = performance.now();
  let calls = 0;
  while (performance.now() - t0 < MS) {
    addon.matmulFp4Int8(b, qa.data, aScales, M, null, out);
    calls++;
  }
  return (2 * M * N * K * calls) / ((performance.now() - t0) / 1e3) / 1e9;
}

const best = addons.map(() => formats.map(() => 0));
for (let round = 0; round < ROUNDS; round++)
  for (let f = 0; f < formats.length; f++)
    for (let i = 0; i < addons.length; i++) best[i][f] = Math.max(best[i][f], gflops(addons[i][1], packed[i][f], outs[i]));

console.log(`matmul ${M} × ${N} × ${K}, FP4KIT_THREADS=${process.env.FP4KIT_THREADS ?? '(default)'}, best of ${ROUNDS}, GFLOP/s`);
console.log(`| format | ${addons.map(([p]) => p).join(' | ')} | last ÷ first |`);
console.log(`|---|${addons.map(() => '---:').join('|')}|---:|`);
for (let f = 0; f < formats.length; f++) {
  for (let i = 1; i < addons.length; i++) {
    outs[0].fill(0);
    outs[i].fill(0);
    addons[0][1].matmulFp4Int8(packed[0][f], qa.data, aScales, M, null, outs[0]);
    addons[i][1].matmulFp4Int8(packed[i][f], qa.data, aScales, M, null, outs[i]);
    if (Buffer.compare(Buffer.from(outs[0].buffer), Buffer.from(outs[i].buffer)) !== 0) throw new Error(`${formats[f]}: ${addons[i][0]} gives other bits than ${addons[0][0]}`);
  }
  const row = best.map((b) => b[f].toFixed(1));
  console.log(`| ${formats[f]} | ${row.join(' | ')} | ${(best[best.length - 1][f] / best[0][f]).toFixed(2)}× |`);
}
