// FP8 × FP8 products (fp4Dense's backward: lib/training/fp8-product.ts) on the native addon, beside
// the FP4 path (MXFP4 weights × float32 activations quantized to MXINT8 on the fly) of the same shape
// measured in the same run. Two kinds of operands:
// - "gradient": ∇y cast to E5M2 with one per-tensor scale (rows whose magnitudes spread over e^±3)
//   times FP4-simulated weights (E2M1 × a per-row scale) cast to E4M3 — what fp4Dense multiplies;
// - "gaussian MX": Gaussian activations and weights quantized to MXFP8 E5M2 / E4M3 (blocks of 32).
// The addon runs each product on its aligned int16 kernel or its float64 loop (same bits); the
// path column says which (native/matmul_aligned.h). Each thread count runs in a child process
// (FP4KIT_THREADS is read once by the addon). Outputs and operands are allocated once.
//
// Run: npm run bench:fp8-product (FP4KIT_BENCH_BACKEND=wasm: the WebAssembly module, one thread, against
// its own FP4 path).
//      npm run bench:fp8-product -- --shapes=64x512x512 --budget=0.1      (a quick check)
// Settings (a flag or FP4KIT_BENCH_SHAPES etc.; bench/settings.ts): --shapes=MxNxK,… (default the
// three below), --threads=1,2 (one child process each), --backend=native|wasm, --budget= seconds
// per figure (default 0.6; bench/timing.ts).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { matmul, prepareWeights, quantize, setBackend } from '../lib/index.js';
import { decodeOperand } from '../lib/core/matmul.js';
import { getKernels } from '../lib/kernels/registry.js';
import { castFp8Rows, type Fp8Rows } from '../lib/training/fp8-product.js';
import { gaussian } from '../test/helpers/data.js';
import { listSetting, setting } from './settings.js';
import { medianSeconds } from './timing.js';

const CHILD = setting('child') === '1';
// [rows of the output, columns of the output, reduction]: the 4096² layer at 512 rows, and the
// char-GPT MLP's two backward products (4096 tokens, d = 128, 512 hidden): ∇x and ∇W.
const SHAPES = listSetting('shapes', '512x4096x4096,4096x128x512,128x512x4096').map((s) => {
  const dims = s.split('x').map(Number);
  if (dims.length !== 3 || !dims.every((d) => Number.isInteger(d) && d > 0)) throw new RangeError(`--shapes: ${s} is not MxNxK`);
  return dims as [number, number, number];
});

const E2M1 = [0, 0.5, 1, 1.5, 2, 3, 4, 6];

function gradientRows(m: number, k: number, seed: number): Fp8Rows {
  const g = gaussian(m * k, seed);
  const spread = gaussian(m, seed + 1);
  for (let r = 0; r < m; r++) for (let c = 0; c < k; c++) g[r * k + c] *= Math.exp(3 * Math.tanh(spread[r])) * 1e-3;
  return castFp8Rows(g, m, k, 'e5m2', 'per-tensor')!;
}

function fp4SimulatedRows(n: number, k: number, seed: number): Fp8Rows {
  const w = gaussian(n * k, seed, 0.05);
  for (let r = 0; r < n; r++) {
    let amax = 0;
    for (let c = 0; c < k; c++) amax = Math.max(amax, Math.abs(w[r * k + c]));
    const gamma = amax / 6 || 1;
    for (let c = 0; c < k; c++) {
      const x = Math.abs(w[r * k + c]) / gamma;
      const q = E2M1.reduce((best, v) => (Math.abs(v - x) < Math.abs(best - x) ? v : best), 0);
      w[r * k + c] = Math.sign(w[r * k + c]) * q * gamma;
    }
  }
  return castFp8Rows(w, n, k, 'e4m3', 'per-tensor')!;
}

function asOperand(x: Fp8Rows) {
  const blocks = Math.ceil(x.cols / 32);
  return {
    format: x.element === 'e4m3' ? ('mxfp8_e4m3' as const) : ('mxfp8_e5m2' as const), blockSize: 32, shape: [x.rows, x.cols] as [number, number],
    data: x.codes, scales: new Uint8Array(x.rows * blocks).fill(127),
  };
}

type Operand = ReturnType<typeof asOperand> | ReturnType<typeof quantize>;

function pathOf(a: Operand, b: Operand): string {
  const ad = decodeOperand('bench', a as never), bd = decodeOperand('bench', b as never);
  const out = new Float32Array(ad.rows * bd.rows);
  return getKernels().matmul!.matmulDecoded!(ad.values, ad.blockScales, ad.rows, ad.blockSize, bd.values, bd.blockScales, bd.rows, bd.blockSize, ad.cols, null, out);
}

const BACKEND = (setting('backend') ?? 'native') as 'native' | 'wasm';

function child(): void {
  setBackend(BACKEND);
  const threads = process.env.FP4KIT_THREADS ?? '2';
  for (const [m, n, k] of SHAPES) {
    const flop = 2 * m * n * k;
    const out = new Float32Array(m * n);
    // The peer: the FP4 path of the same shape.
    const w4 = prepareWeights(quantize(gaussian(n * k, 3, 0.05), { format: 'mxfp4', shape: [n, k] }));
    const x = gaussian(m * k, 4);
    const fp4 = medianSeconds(() => matmul(x, w4, { out }), 0.6);
    const kinds: Array<[string, Operand, Operand]> = [
      ['gradient (E5M2 per tensor) × FP4-simulated E4M3', asOperand(gradientRows(m, k, 5)), asOperand(fp4SimulatedRows(n, k, 6))],
      ['gaussian MX E5M2 × MX E4M3', quantize(gaussian(m * k, 7), { format: 'mxfp8_e5m2', shape: [m, k] }), quantize(gaussian(n * k, 8, 0.05), { format: 'mxfp8_e4m3', shape: [n, k] })],
    ];
    for (const [name, a, b] of kinds) {
      const prepared = prepareWeights(b as never);
      const t = medianSeconds(() => matmul(a as never, prepared, { out }), 0.6);
      console.log(`| ${m} × ${n} × ${k} | ${threads} | ${name} | ${pathOf(a, b)} | ${(flop / t / 1e9).toFixed(0)} | ${(flop / fp4 / 1e9).toFixed(0)} | ${(fp4 / t).toFixed(2)}× |`);
    }
  }
}

if (CHILD) {
  child();
} else {
  console.log(`FP8 × FP8 products (${BACKEND}), GFLOP/s = 2·M·N·K / t (median; the FP8 operands quantized once, the prepared`);
  console.log('weights decoded once; the time includes decoding the activations). "× FP4" = FP8 × FP8 ÷ the FP4 path, same shape, same process.\n');
  console.log('| M × N × K | threads | operands | path | FP8 × FP8 GFLOP/s | FP4 path GFLOP/s | × FP4 |');
  console.log('|---|---|---|---|---:|---:|---:|');
  for (const threads of listSetting('threads', '1,2')) {
    const output = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
      env: { ...process.env, FP4KIT_BENCH_CHILD: '1', FP4KIT_THREADS: threads }, encoding: 'utf8',
    });
    process.stdout.write(output);
  }
}
