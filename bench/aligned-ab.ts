// A/B of two (or more) builds of the addon on the FP8 × FP8 product (fp4Dense's backward operands,
// as bench/fp8-product.bench.ts makes them), loaded into one process and called in turn, best of
// ROUNDS rounds each: the host's speed drifts by ±20 % within minutes here, which separate runs
// cannot tell from a change. Times the addon's matmulDecoded call only (operands decoded once, the
// codes passed along). Keep a copy of the build before a change, then:
//
//   cp build/Release/fp4kit.node /tmp/before.node   # … change, rebuild …
//   FP4KIT_THREADS=1 ADDONS=/tmp/before.node,build/Release/fp4kit.node node --import tsx bench/aligned-ab.ts
//
// SHAPES="m,n,k;…" (default: the three of bench:fp8-product); the last column is the second addon's
// speed over the first's.
import { createRequire } from 'node:module';
import path from 'node:path';
import { decodeOperand } from '../lib/core/matmul.js';
import { setBackend } from '../lib/index.js';
import { castFp8Rows } from '../lib/training/fp8-product.js';
import { gaussian } from '../test/helpers/data.js';
const require = createRequire(import.meta.url);
setBackend('js');
if (!process.env.ADDONS) throw new Error('ADDONS: a comma-separated list of fp4kit.node paths');
const addons = process.env.ADDONS.split(',').map((p) => [p, require(path.resolve(p))] as const);
const E2M1 = [0, 0.5, 1, 1.5, 2, 3, 4, 6];
function fp4Sim(n: number, k: number, seed: number) {
  const w = gaussian(n * k, seed, 0.05);
  for (let r = 0; r < n; r++) { let amax = 0; for (let c = 0; c < k; c++) amax = Math.max(amax, Math.abs(w[r * k + c]));
    const gamma = amax / 6 || 1; for (let c = 0; c < k; c++) { const x = Math.abs(w[r * k + c]) / gamma;
      const q = E2M1.reduce((best, v) => (Math.abs(v - x) < Math.abs(best - x) ? v : best), 0); w[r * k + c] = Math.sign(w[r * k + c]) * q * gamma; } }
  return castFp8Rows(w, n, k, 'e4m3', 'per-tensor')!;
}
function grad(m: number, k: number, seed: number) {
  const g = gaussian(m * k, seed); const spread = gaussian(m, seed + 1);
  for (let r = 0; r < m; r++) for (let c = 0; c < k; c++) g[r * k + c] *= Math.exp(3 * Math.tanh(spread[r])) * 1e-3;
  return castFp8Rows(g, m, k, 'e5m2', 'per-tensor')!;
}
const op = (x: any) => ({ format: x.element === 'e4m3' ? 'mxfp8_e4m3' : 'mxfp8_e5m2', blockSize: 32, shape: [x.rows, x.cols], data: x.codes, scales: new Uint8Array(x.rows * Math.ceil(x.cols / 32)).fill(127) });
for (const shape of (process.env.SHAPES ?? '512,4096,4096;4096,128,512;128,512,4096').split(';')) {
  const [m, n, k] = shape.split(',').map(Number);
  const a = decodeOperand('a', op(grad(m, k, 5)) as any), b = decodeOperand('b', op(fp4Sim(n, k, 6)) as any);
  const out = new Float32Array(m * n);
  const call = (x: any) => x.matmulDecoded(a.values, a.blockScales, m, 32, b.values, b.blockScales, n, 32, k, null, out, a.codes, a.codeElement, b.codes, b.codeElement);
  const best = addons.map(() => Infinity);
  const reps = Math.max(3, Math.round(2e9 / (2 * m * n * k)));
  for (const [, x] of addons) call(x);
  const rounds = Number(process.env.ROUNDS ?? 15);
  for (let round = 0; round < rounds; round++) {
    addons.forEach(([, x], i) => {
      const t0 = performance.now();
      for (let r = 0; r < reps; r++) call(x);
      best[i] = Math.min(best[i], (performance.now() - t0) / reps);
    });
  }
  console.log(`${m}×${n}×${k}: ` + addons.map(([name], i) => `${name} ${(2 * m * n * k / best[i] / 1e6).toFixed(0)} GFLOP/s`).join(', ') + (addons.length > 1 ? `; second ÷ first (speed) ${(best[0] / best[1]).toFixed(2)}×` : ''));
}
