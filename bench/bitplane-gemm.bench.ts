// The backward products of a binary 3×3 conv layer (1-bit FQT, issue 11's speed target): 256 → 256
// channels on 16×16 maps, batch 64, in im2col form, with fp4kit's bit-plane kernels against
// onnxruntime-node's float32 MatMul (MLAS sgemm, both inputs dynamic as in a training step, output
// pre-allocated and reused), one
// and two threads, in the same run.
//
//   ∇X  dPatches[S·P, 9·C] = Ĝ[S·P, C] · Wᵀ        Ĝ per sample (SCQ's ∇X path), W binary
//   ∇W  dWᵀ[C, 9·C]        = Ĝᵀ[C, S·P] · patches  Ĝ per channel (SCQ's ∇W path), patches binary
//
// Each bit-plane row is timed three ways: the product alone (operands packed: the binary ones
// come packed from the forward pass), + packing the gradient's codes into planes (per step), and
// + quantizing the float gradient (quantizeGradient, per step). Buffers are made once and reused
// (first-touch page faults cost ~12 µs per 4 KiB here). Gradient rows are Gaussian scaled by
// 2^(4·U(−1, 1)) per sample and per channel, so AGP's keep probabilities are not all equal.
//
//   npm run bench:bitplane            (both thread counts; each runs in its own process because
//                                      the addon reads FP4KIT_THREADS once)
//   npm run bench:bitplane -- --batch=4 --channels=64 --budget=0.1     (a quick check)
// Settings (a flag or FP4KIT_BENCH_BATCH etc.; bench/settings.ts): --batch=64 samples S of 16 × 16,
// --channels=256 (C, in and out), --threads=1,2, --budget= seconds per figure (default 2 for the
// bit-plane rows, 3 for the peer; bench/timing.ts).

import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  bitplaneMatmul, getBackend, packGradient, packSigns, quantizeGradient, setBackend,
  type GradientGroups, type GradientPrune, type PackedSigns,
} from '../lib/index.js';
import { gaussian, rng } from '../test/helpers/data.js';
import { DataType, encodeModel } from './peers/onnx-model.js';
import { loadOrt, ortLoadError, sessionOptions } from './peers/onnxruntime-matmulnbits.js';
import { integerSetting, listSetting, setting } from './settings.js';
import { medianSeconds, medianSecondsAsync } from './timing.js';

const S = integerSetting('batch', 64), P = 16 * 16, C = integerSetting('channels', 256), KK = 9 * C;
const ROWS = S * P;
const THREADS = listSetting('threads', '1,2').map(Number);
// The two products, named with their shapes.
const DX = `∇X [${ROWS}×${C}]·[${C}×${KK}]`;
const DW = `∇W [${C}×${ROWS}]·[${ROWS}×${KK}]`;

interface Row {
  product: string;
  impl: string;
  threads: number;
  seconds: number;
  withPack?: number;
  withQuantize?: number;
  bitsPerElement?: number;
  peer?: boolean;
}

function twoInputMatmul(m: number, k: number, n: number): Uint8Array {
  return encodeModel({
    irVersion: 9,
    opsets: [{ domain: '', version: 17 }],
    nodes: [{ opType: 'MatMul', inputs: ['A', 'B'], outputs: ['Y'] }],
    inputs: [{ name: 'A', elemType: DataType.FLOAT, shape: [m, k] }, { name: 'B', elemType: DataType.FLOAT, shape: [k, n] }],
    outputs: [{ name: 'Y', elemType: DataType.FLOAT, shape: [m, n] }],
    initializers: [],
  });
}

/** A gradient [S·P, C] with per-sample and per-channel magnitudes spread over 2^±4. */
function gradient(): Float32Array {
  const g = gaussian(ROWS * C, 1);
  const next = rng(2);
  const sample = Array.from({ length: S }, () => 2 ** (4 * (2 * next() - 1)));
  const channel = Array.from({ length: C }, () => 2 ** (4 * (2 * next() - 1)));
  for (let r = 0; r < ROWS; r++) for (let c = 0; c < C; c++) g[r * C + c] *= sample[Math.floor(r / P)] * channel[c];
  return g;
}

function signsData(count: number, seed: number): Float32Array {
  const next = rng(seed);
  const x = new Float32Array(count);
  for (let i = 0; i < count; i++) x[i] = next() < 0.5 ? -1 : 1;
  return x;
}

async function measure(threads: number): Promise<Row[]> {
  const rows: Row[] = [];
  setBackend('native');
  const g = gradient();
  const w = signsData(KK * C, 3); // W as [9·C rows, C]: each row one patch column, reduced over C
  const patches = signsData(ROWS * KK, 4); // patches [S·P, 9·C]
  const wSigns = packSigns(w, { shape: [KK, C] });
  const patchSigns: PackedSigns = packSigns(patches, { shape: [ROWS, KK], transpose: true });
  const dx = new Float32Array(ROWS * KK);
  const dwT = new Float32Array(C * KK);

  const variants: Array<{ label: string; bits: number; prune: GradientPrune }> = [
    { label: 'b = 4, AGP', bits: 4, prune: 'agp' },
    { label: 'b = 1', bits: 1, prune: 'none' },
    { label: 'b = 8', bits: 8, prune: 'none' },
  ];
  for (const v of variants) {
    for (const [product, groups, reduce, signs, out] of [
      [DX, 'sample', 'columns', wSigns, dx],
      [DW, 'channel', 'rows', patchSigns, dwT],
    ] as Array<[string, GradientGroups, 'columns' | 'rows', PackedSigns, Float32Array]>) {
      const quantize = () => quantizeGradient(g, { shape: [ROWS, C], bits: v.bits, groups, prune: v.prune, seed: 7 });
      const q = quantize();
      const kept = q.mask.reduce((a, b) => a + b, 0) / q.mask.length;
      const packed = packGradient(q, { reduce });
      const seconds = medianSeconds(() => bitplaneMatmul(packed, signs, { out }), 2);
      const withPack = medianSeconds(() => bitplaneMatmul(packGradient(q, { reduce }), signs, { out }), 2);
      const withQuantize = medianSeconds(() => bitplaneMatmul(packGradient(quantize(), { reduce }), signs, { out }), 2);
      rows.push({ product, impl: `bit planes, ${v.label} (${(100 * kept).toFixed(0)} % of groups kept)`, threads, seconds, withPack, withQuantize, bitsPerElement: v.bits * kept });
    }
  }

  const ort = await loadOrt();
  if (!ort) {
    console.error(`onnxruntime-node not loadable (${ortLoadError()}): no peer rows`);
    return rows;
  }
  const peerShapes: Array<[string, number, number, number]> = [
    [DX, ROWS, C, KK],
    [DW, C, ROWS, KK],
  ];
  for (const [product, m, k, n] of peerShapes) {
    const session = await ort.InferenceSession.create(twoInputMatmul(m, k, n), sessionOptions(threads));
    const a = new ort.Tensor('float32', gaussian(m * k, 5), [m, k]);
    const b = new ort.Tensor('float32', gaussian(k * n, 6), [k, n]);
    // A pre-allocated output, reused: without it every run faults in a fresh 151 MB result.
    const y = new ort.Tensor('float32', new Float32Array(m * n), [m, n]);
    const seconds = await medianSecondsAsync(async () => { await session.run({ A: a, B: b }, { Y: y }); }, 3);
    rows.push({ product, impl: 'onnxruntime MatMul fp32 (MLAS sgemm)', threads, seconds, peer: true });
    await session.release();
  }
  return rows;
}

function table(rows: Row[]): void {
  const gflop = (2 * ROWS * C * KK) / 1e9; // either product: 2·(S·P)·C·9C
  console.log(`${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}; fp4kit native (${getBackend().simd}), FP4KIT_THREADS = threads; onnxruntime intraOpNumThreads = threads, spinning off`);
  console.log('Effective GFLOP/s = 2·M·N·K of the float product / time. Ratio = onnxruntime fp32 time / ours (higher is better).');
  console.log('');
  console.log('| product | implementation | threads | bits/element | product ms | × fp32 | + pack codes ms | × fp32 | + quantize ms | × fp32 |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const peer = rows.find((p) => p.peer && p.product === r.product && p.threads === r.threads);
    const ratio = (s?: number) => (peer && s ? `${(peer.seconds / s).toFixed(1)}×` : '');
    const ms = (s?: number) => (s === undefined ? '' : (s * 1e3).toFixed(2));
    if (r.peer) {
      console.log(`| ${r.product} | ${r.impl} | ${r.threads} | 32 | ${ms(r.seconds)} (${(gflop / r.seconds).toFixed(0)} GFLOP/s) | 1× | | | | |`);
    } else {
      console.log(`| ${r.product} | ${r.impl} | ${r.threads} | ${r.bitsPerElement!.toFixed(2)} | ${ms(r.seconds)} (${(gflop / r.seconds).toFixed(0)}) | ${ratio(r.seconds)} | ${ms(r.withPack)} | ${ratio(r.withPack)} | ${ms(r.withQuantize)} | ${ratio(r.withQuantize)} |`);
    }
  }
}

const childThreads = setting('child-threads');
if (childThreads !== undefined) {
  console.log(JSON.stringify(await measure(Number(childThreads))));
} else {
  const self = fileURLToPath(import.meta.url);
  const rows: Row[] = [];
  for (const threads of THREADS) {
    const out = execFileSync(process.execPath, ['--import', 'tsx', self], {
      env: { ...process.env, FP4KIT_BENCH_CHILD_THREADS: String(threads), FP4KIT_THREADS: String(threads) }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26,
    });
    rows.push(...(JSON.parse(out.trim().split('\n').pop()!) as Row[]));
  }
  setBackend('native');
  table(rows);
}
