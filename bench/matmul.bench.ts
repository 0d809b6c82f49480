// Block matmul throughput: fp4kit's matmul() (FP4 weights × float activations quantized on the fly
// to MXINT8) against onnxruntime-node's MatMulNBits (4-bit weights, blocks of 32, accuracy_level 4
// = int8 activations) and onnxruntime's fp32 MatMul (MLAS sgemm), all measured in the same run,
// plus a plain memory copy of the FP4 weight bytes (what an M=1 product must at least read).
//
//   y[M,N] = a[M,K] · w[N,K]ᵀ,  K = N = 4096,  M ∈ {1, 16, 512},  GFLOP/s = 2·M·N·K / t
//
// Every configuration runs once per thread count in a child process of this script (the addon
// reads FP4KIT_THREADS once; onnxruntime gets intraOpNumThreads = threads, interOpNumThreads = 1,
// spinning off). Each figure is the median of several timed calls after a warm-up call (the
// warm-up also pays fp4kit's one-time weight repacking and onnxruntime's prepacking is done at
// session creation). Each product is checked against a float64 reference over dequantized
// weights (column "rel err": ‖y − ref‖/‖ref‖ over a few rows; the int8 activations alone cost ~0.5%).
//
// fp4kit's timed calls write into one reused output array (options.out).
//
// Run:  npm run bench:matmul
//       npm run bench:matmul -- --k=128 --n=512 --m=64,4096   small K (a d = 128 model's layers)
//       npm run bench:matmul -- --quick            M = 1,512, mxfp4 only, short timings
//       npm run bench:matmul -- --m=1,512 --threads=1
// Env:  FP4KIT_BENCH_M=1,16,512  FP4KIT_BENCH_THREADS=1,2  FP4KIT_BENCH_FORMATS=mxfp4,nvfp4,fgmp
//       FP4KIT_BENCH_N=4096 FP4KIT_BENCH_K=4096  FP4KIT_BENCH_QUICK=1  FP4KIT_BENCH_BUDGET=0.6 (s per figure)
//       FP4KIT_BENCH_ASYNC=0 (skip matmulAsync rows)  FP4KIT_BENCH_JS=1 (time the js reference too)
//       FP4KIT_BENCH_FP32=0 (skip the onnxruntime fp32 MatMul baseline)
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { availableBackends, dequantize, matmul, matmulAsync, prepareWeights, quantize, setBackend, type BackendName, type MatmulOperand } from '../lib/index.js';
import { kernelsFor } from '../lib/kernels/registry.js';
import { hasFastPath } from '../lib/kernels/matmul-glue.js';
import { gaussian } from '../test/helpers/data.js';
import { createOrtMatmul, dequantInt4Row, loadOrt, matmulFp32Model, matmulNBitsModel, ortLoadError, quantizeInt4, type OrtMatmul } from './peers/onnxruntime-matmulnbits.js';
import { flagSetting, integerSetting, listSetting, numberSetting, setting } from './settings.js';
import { medianSecondsAsync } from './timing.js';

// ---- configuration (bench/settings.ts: each a flag or an FP4KIT_BENCH_ variable) ---------------

const QUICK = flagSetting('quick', false);
const N = integerSetting('n', 4096);
const K = integerSetting('k', 4096);
const MS = listSetting('m', QUICK ? '1,512' : '1,16,512').map(Number);
const THREADS = listSetting('threads', '1,2').map(Number);
/** Weight formats: FP4 (mxfp4, nvfp4, fgmp) and, by default, the byte-plane ones the native backend
 *  runs on its integer kernels too (mxfp8_e4m3, mxint8; also mxfp6_e2m3, mxfp6_e3m2 on request). */
const FORMATS = listSetting('formats', QUICK ? 'mxfp4' : 'mxfp4,nvfp4,fgmp,mxfp8_e4m3,mxint8') as Array<'mxfp4' | 'nvfp4' | 'fgmp' | 'mxfp8_e4m3' | 'mxint8' | 'mxfp6_e2m3' | 'mxfp6_e3m2'>;
const BUDGET = numberSetting('budget', QUICK ? 0.25 : 0.6);
const ASYNC = !QUICK && flagSetting('async', true);
const FP32 = flagSetting('fp32', true);
const COLD = flagSetting('cold', !QUICK);
const WITH_JS = flagSetting('js', false);
const CHILD = setting('child') === '1';
/** Size the pure-TS reference runs at when it is timed (it manages ~1 GFLOP/s). */
const JS_N = Math.min(N, 1024);

for (const v of [N, K, ...MS, ...THREADS]) if (!(Number.isInteger(v) && v > 0)) throw new RangeError(`bad size/thread count ${v}`);
if (K % 32 !== 0) throw new RangeError('K must be a multiple of 32 (MatMulNBits block_size 32)');

// ---- rows -------------------------------------------------------------------------------------

interface Row {
  op: string;
  impl: string;
  m: number;
  n: number;
  threads: number;
  seconds: number;
  gflops: number;
  relErr?: number;
  /** The onnxruntime MatMulNBits row this one is compared with (same M, threads and cold). */
  peer?: boolean;
  /** M = 1 cycling over copies of the weights that together exceed the last-level cache. */
  cold?: boolean;
  note?: string;
}

const ROW = '@@row ';
const NOTE = '@@note ';
function emit(r: Row): void {
  process.stdout.write(ROW + JSON.stringify(r) + '\n');
  process.stderr.write(`  ${r.op} [${r.impl}] M=${r.m}${r.cold ? " cold" : ""} threads=${r.threads}: ${r.gflops.toFixed(1)} GFLOP/s${r.relErr !== undefined ? `, rel err ${r.relErr.toExponential(1)}` : ''}\n`);
}
function note(s: string): void {
  process.stdout.write(NOTE + s + '\n');
}

// ---- timing -------------------------------------------------------------------------------------

/** Median seconds per call (bench/timing.ts: short calls are timed in batches, warm). */
const time = (fn: () => unknown, budget = BUDGET, warm = 1) => medianSecondsAsync(fn, budget, warm);

const gflops = (m: number, n: number, k: number, s: number) => (2 * m * n * k) / s / 1e9;

/** ‖y − a·wᵀ‖/‖a·wᵀ‖ over rows `rows` of y, with weight row r given by `wRow(r)`. */
function relError(y: Float32Array, a: Float32Array, rows: number[], n: number, k: number, wRow: (r: number) => Float32Array): number {
  let num = 0;
  let den = 0;
  for (let c = 0; c < n; c++) {
    const w = wRow(c);
    for (const m of rows) {
      let ref = 0;
      for (let i = 0; i < k; i++) ref += a[m * k + i] * w[i];
      num += (y[m * n + c] - ref) ** 2;
      den += ref * ref;
    }
  }
  return Math.sqrt(num / den);
}
const checkRows = (m: number) => (m === 1 ? [0] : [0, m - 1]);
const MAX_REL_ERR = 0.05;

/** Last-level cache size in bytes (Linux sysfs; 32 MiB when unknown). */
function llcBytes(): number {
  for (const index of [3, 2]) {
    try {
      const t = readFileSync(`/sys/devices/system/cpu/cpu0/cache/index${index}/size`, 'utf8').trim();
      const v = parseInt(t, 10) * (/M$/i.test(t) ? 2 ** 20 : /K$/i.test(t) ? 2 ** 10 : 1);
      if (v > 0) return v;
    } catch {
      // not Linux, or no such cache level
    }
  }
  return 32 * 2 ** 20;
}
/** How many distinct copies of `bytes` of weights exceed the last-level cache three times over. */
const coldCopies = (bytes: number) => Math.min(32, Math.max(2, Math.ceil((3 * llcBytes()) / bytes)));
const coldNote = (copies: number, bytes: number) => `cycling over ${copies} weight copies (${((copies * bytes) / 2 ** 20).toFixed(0)} MiB > 3× LLC ${(llcBytes() / 2 ** 20).toFixed(0)} MiB)`;

/** A quantized tensor with its own copies of every typed array (so fp4kit repacks it separately). */
function cloneTensor<T extends object>(t: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(t)) out[k] = ArrayBuffer.isView(v) ? (v as Uint8Array).slice() : Array.isArray(v) ? [...v] : v;
  return out as T;
}
const tensorBytes = (t: object) => Object.values(t).reduce((s: number, v) => s + (ArrayBuffer.isView(v) ? v.byteLength : 0), 0);

// ---- child: one thread count ------------------------------------------------------------------

async function child(threads: number): Promise<void> {
  const mMax = Math.max(...MS);
  const w = gaussian(N * K, 1, 0.02);
  const aAll = gaussian(mMax * K, 2, 1);
  const act = (m: number) => aAll.subarray(0, m * K);
  const cold = COLD && MS.includes(1);

  // Memory-copy baseline (1 JS thread, Uint8Array.set = memcpy): the bytes of mxfp4 weights
  // (codes + E8M0 scales), which an M=1 product has to stream once.
  if (threads === THREADS[0]) {
    const bytes = (N * K) / 2 + (N * K) / 32;
    const src = new Uint8Array(bytes).fill(7);
    const dst = new Uint8Array(bytes);
    const s = await time(() => dst.set(src));
    emit({ op: 'memcpy of the mxfp4 weight bytes', impl: `${(bytes / 2 ** 20).toFixed(1)} MiB, ${((2 * bytes) / s / 1e9).toFixed(1)} GB/s r+w`, m: 1, n: N, threads: 1, seconds: s, gflops: gflops(1, N, K, s), note: 'GFLOP/s an M=1 product would reach at copy speed' });
    if (cold) {
      const copies = coldCopies(bytes);
      const srcs = Array.from({ length: copies }, () => new Uint8Array(bytes).fill(7));
      let i = 0;
      const sc = await time(() => dst.set(srcs[i++ % copies]), BUDGET, copies);
      emit({ op: 'memcpy of the mxfp4 weight bytes', impl: `${(bytes / 2 ** 20).toFixed(1)} MiB, ${((2 * bytes) / sc / 1e9).toFixed(1)} GB/s r+w`, m: 1, n: N, threads: 1, seconds: sc, gflops: gflops(1, N, K, sc), cold: true, note: `cold: ${coldNote(copies, bytes)}` });
    }
  }

  // ---- setup: the onnxruntime sessions and fp4kit's quantized weights, made once --------------

  const ort = await loadOrt();
  if (!ort) note(`onnxruntime-node not loadable (${ortLoadError()}): peer rows missing. Install it with ONNXRUNTIME_NODE_INSTALL=skip npm i -D onnxruntime-node`);
  const q4 = ort ? quantizeInt4(w, N, K, 32) : null;
  const fp32M = MS.includes(512) ? 512 : mMax;
  const f32 = ort && FP32 ? await createOrtMatmul(ort, matmulFp32Model(w, N, K), K, threads) : null;

  // fp4kit, per backend that has the fast matmul kernel (native: every thread count; wasm: its
  // one thread; js: only when asked for or when nothing else runs the product).
  const backends = availableBackends();
  const fast = (name: BackendName) => backends.some((b) => b.name === name && b.available) && kernelsFor(name)?.matmul !== undefined;
  interface Planned {
    name: BackendName;
    impl: string;
    n: number;
    threads: number;
    weights: Array<{ format: string; b: MatmulOperand; wRow: (r: number) => Float32Array }>;
  }
  const plan: Planned[] = [];
  for (const b of backends) {
    if (!b.available) {
      if (threads === THREADS[0] && b.name !== 'js') note(`fp4kit ${b.name} backend not loaded: ${b.error}`);
      continue;
    }
    if (b.name === 'native' && fast('native')) plan.push({ name: 'native', impl: `native ${kernelsFor('native')!.matmul!.matmulSimd}`, n: N, threads, weights: [] });
    else if (b.name === 'wasm' && fast('wasm') && threads === THREADS[0]) plan.push({ name: 'wasm', impl: `wasm ${kernelsFor('wasm')!.matmul!.matmulSimd}`, n: N, threads: 1, weights: [] });
    else if (b.name === 'js' && threads === THREADS[0] && MS.includes(1) && (WITH_JS || (!fast('native') && !fast('wasm')))) {
      plan.push({ name: 'js', impl: 'js reference', n: JS_N, threads: 1, weights: [] });
      note(`fp4kit js reference (~1 GFLOP/s) timed at M=1 and N=${JS_N} only, to keep the run short`);
    } else if (b.name === 'native' && threads === THREADS[0]) note('fp4kit native addon loaded but has no matmul kernel: native rows missing');
  }
  // The peer at this child's thread count and, when a row of this child runs on another count (wasm:
  // one thread, whatever the child's) and the run has no child of that count, at that count too, so
  // every row has a peer of its own thread count to be read against.
  const peerThreads = [threads, ...new Set(plan.map((p) => p.threads).filter((t) => t !== threads && !THREADS.includes(t)))];
  const nbits = new Map<number, OrtMatmul>();
  if (ort && q4) for (const t of peerThreads) nbits.set(t, await createOrtMatmul(ort, matmulNBitsModel(q4, 4), K, t));
  const peerNote = (t: number, what: string) => (t === threads ? what : `${what}; a ${t}-thread peer timed in the threads=${threads} run for its ${t}-thread fp4kit rows (this run has no threads=${t} child)`);
  for (const p of plan) {
    setBackend(p.name);
    const wn = w.subarray(0, p.n * K);
    for (const format of FORMATS) {
      // Quantized once per backend (fresh tensor objects, so each backend repacks its own).
      const t0 = performance.now();
      const b: MatmulOperand = format === 'fgmp'
        ? quantize(wn, { format: 'fgmp', shape: [p.n, K], fisher: new Float32Array(K).fill(1), fp4Fraction: 0.7 })
        : quantize(wn, { format, shape: [p.n, K] });
      // Formats a backend has no integer kernel for would time its reference loop: not a figure.
      if (p.name !== 'js' && !hasFastPath(b)) {
        note(`fp4kit ${p.name}: no integer kernel for ${format} weights (its rows are missing)`);
        continue;
      }
      process.stderr.write(`  (${p.name}: quantize ${format} ${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
      const wq = dequantize(b);
      p.weights.push({ format, b, wRow: (r: number) => wq.subarray(r * K, (r + 1) * K) });
    }
  }

  // ---- per M: the peer, fp4kit's rows, the peer again (the faster peer figure is kept) --------

  const deq = new Float32Array(K);
  const int4Row = (r: number) => dequantInt4Row(q4!, r, deq);
  for (const m of MS) {
    const a = act(m);
    const peerSeconds = new Map<number, number>();
    let peerErr = NaN;
    const timePeer = async () => {
      for (const [t, session] of nbits) {
        if (Number.isNaN(peerErr)) {
          peerErr = relError(await session.run(a, m), a, checkRows(m), N, K, int4Row);
          if (!(peerErr < MAX_REL_ERR)) throw new Error(`onnxruntime MatMulNBits M=${m}: relative error ${peerErr} against the float reference`);
        }
        peerSeconds.set(t, Math.min(peerSeconds.get(t) ?? Infinity, await time(() => session.run(a, m))));
      }
    };
    await timePeer();
    if (f32 && m === fp32M) {
      const relErr = relError(await f32.run(a, m), a, checkRows(m), N, K, (r) => w.subarray(r * K, (r + 1) * K));
      if (!(relErr < 1e-4)) throw new Error(`onnxruntime fp32 MatMul M=${m}: relative error ${relErr}`);
      const s = await time(() => f32.run(a, m));
      emit({ op: 'onnxruntime MatMul fp32', impl: 'MLAS sgemm', m, n: N, threads, seconds: s, gflops: gflops(m, N, K, s), relErr });
    }
    for (const p of plan) {
      if (p.name === 'js' && m !== 1) continue;
      setBackend(p.name);
      const isJs = p.name === 'js';
      for (const { format, b, wRow } of p.weights) {
        const pb = prepareWeights(b); // repacked once, as a server multiplying by fixed weights would
        const y = matmul(a, pb);
        const relErr = relError(y, a, checkRows(m), p.n, K, wRow);
        if (!(relErr < MAX_REL_ERR)) throw new Error(`fp4kit ${p.name} ${format} M=${m}: relative error ${relErr} against the float reference`);
        // Into one reused output, as onnxruntime's arena reuses its own: a fresh M×N array costs a
        // page fault per 4 KiB here, more than the product itself at small K.
        const out = new Float32Array(m * p.n);
        const s = await time(() => matmul(a, pb, { out }), isJs ? 0.1 : BUDGET);
        emit({ op: `fp4kit matmul ${format}`, impl: p.impl, m, n: p.n, threads: p.threads, seconds: s, gflops: gflops(m, p.n, K, s), relErr });
        if (ASYNC && !isJs) {
          const ya = await matmulAsync(a, pb);
          if (!ya.every((v, i) => Object.is(v, y[i]))) throw new Error(`fp4kit ${p.name} ${format} M=${m}: matmulAsync differs from matmul`);
          const sa = await time(() => matmulAsync(a, pb));
          emit({ op: `fp4kit matmulAsync ${format}`, impl: p.impl, m, n: p.n, threads: p.threads, seconds: sa, gflops: gflops(m, p.n, K, sa), relErr });
        }
      }
    }
    await timePeer();
    for (const [t, seconds] of peerSeconds) {
      emit({ op: 'onnxruntime MatMulNBits', impl: 'int4 bs32, accuracy_level 4', m, n: N, threads: t, seconds, gflops: gflops(m, N, K, seconds), relErr: peerErr, peer: true, note: peerNote(t, 'timed before and after the fp4kit rows of the same M; the faster figure is kept') });
    }
  }
  await f32?.release();

  // ---- M = 1 with the weights out of the last-level cache -------------------------------------

  if (cold) {
    const a = act(1);
    const peerSeconds = new Map<number, number>();
    let coldNoteText = '';
    const sessions = new Map<number, OrtMatmul[]>(); // per thread count, as above
    const timePeer = async () => {
      for (const [t, copies] of sessions) {
        let i = 0;
        peerSeconds.set(t, Math.min(peerSeconds.get(t) ?? Infinity, await time(() => copies[i++ % copies.length].run(a, 1), BUDGET, copies.length)));
      }
    };
    if (ort && q4) {
      const bytes = q4.packed.byteLength + q4.scales.byteLength;
      const copies = coldCopies(bytes);
      const model = matmulNBitsModel(q4, 4);
      for (const t of peerThreads) {
        const list: OrtMatmul[] = [];
        for (let c = 0; c < copies; c++) list.push(await createOrtMatmul(ort, model, K, t));
        sessions.set(t, list);
      }
      coldNoteText = `cold: ${coldNote(copies, bytes)}`;
    }
    await timePeer();
    for (const p of plan) {
      if (p.name === 'js') continue;
      setBackend(p.name);
      for (const { format, b } of p.weights) {
        const bytes = tensorBytes(b);
        const copies = coldCopies(bytes);
        const bs = [b, ...Array.from({ length: copies - 1 }, () => cloneTensor(b))].map(prepareWeights);
        let i = 0;
        const s = await time(() => matmul(a, bs[i++ % copies]), BUDGET, copies);
        emit({ op: `fp4kit matmul ${format}`, impl: p.impl, m: 1, n: p.n, threads: p.threads, seconds: s, gflops: gflops(1, p.n, K, s), cold: true, note: `cold: ${coldNote(copies, bytes)}` });
      }
    }
    await timePeer();
    for (const [t, seconds] of peerSeconds) {
      emit({ op: 'onnxruntime MatMulNBits', impl: 'int4 bs32, accuracy_level 4', m: 1, n: N, threads: t, seconds, gflops: gflops(1, N, K, seconds), peer: true, cold: true, note: peerNote(t, coldNoteText) });
    }
    for (const list of sessions.values()) for (const x of list) await x.release();
  }
  for (const session of nbits.values()) await session.release();
}

// ---- parent: one child per thread count, then the table ---------------------------------------

function parent(): void {
  const started = performance.now();
  const rows: Row[] = [];
  const notes = new Set<string>();
  const script = fileURLToPath(import.meta.url);
  for (const threads of THREADS) {
    process.stderr.write(`threads = ${threads}\n`);
    const r = spawnSync(process.execPath, [...process.execArgv, script, ...process.argv.slice(2)], {
      env: { ...process.env, FP4KIT_BENCH_CHILD: '1', FP4KIT_BENCH_CHILD_THREADS: String(threads), FP4KIT_THREADS: String(threads) },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 64 << 20,
    });
    for (const line of (r.stdout ?? '').split('\n')) {
      if (line.startsWith(ROW)) rows.push(JSON.parse(line.slice(ROW.length)) as Row);
      else if (line.startsWith(NOTE)) notes.add(line.slice(NOTE.length));
      else if (line.trim()) process.stderr.write(line + '\n');
    }
    if (r.status !== 0) {
      notes.add(`the threads=${threads} run failed (exit ${r.status ?? r.signal}${r.error ? `: ${r.error.message}` : ''}); its rows are missing`);
      process.exitCode = 1; // the table is still printed; the run fails (a check failed, or the child crashed)
    }
  }

  const peer = (r: Row) => rows.find((p) => p.peer && p.m === r.m && p.threads === r.threads && !!p.cold === !!r.cold);
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  console.log(`block matmul y[M,N] = a[M,K]·w[N,K]ᵀ, K = ${K}, N = ${N}; GFLOP/s = 2·M·N·K / t (median per call over samples; a call shorter than the sample is timed in a batch of calls, warm)`);
  console.log(`${cpu}, ${os.cpus().length} logical CPUs, node ${process.version}; onnxruntime: intraOpNumThreads = threads, interOpNumThreads = 1, spinning off; fp4kit: FP4KIT_THREADS = threads`);
  console.log('');
  console.log('| op | implementation | M | threads | GFLOP/s | ms/call | × onnxruntime MatMulNBits | × fp4kit mxfp4 | rel err |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|');
  // The FP4 path of the same backend, call kind, M and threads: what the issue's "half the FP4 path" is read against.
  const fp4Row = (r: Row) => rows.find((x) => x.op === r.op.replace(/ [a-z0-9_]+$/, ' mxfp4') && x.impl === r.impl && x.m === r.m && x.threads === r.threads && !!x.cold === !!r.cold);
  const rank = (r: Row) => (r.peer ? 0 : r.op.startsWith('fp4kit') ? 2 : 1); // peer, other baselines, fp4kit
  const ordered = [...rows].sort((a, b) => a.m - b.m || Number(!!a.cold) - Number(!!b.cold) || a.threads - b.threads || rank(a) - rank(b));
  for (const r of ordered) {
    const p = peer(r);
    const ratio = p && !r.peer && r.n === p.n ? `${(r.gflops / p.gflops).toFixed(2)}×` : r.peer ? '1.00×' : '—';
    const err = r.relErr === undefined ? '' : r.relErr.toExponential(1);
    const f = r.op.startsWith('fp4kit matmul') ? fp4Row(r) : undefined;
    const vsFp4 = f ? `${(r.gflops / f.gflops).toFixed(2)}×` : '—';
    console.log(`| ${r.op}${r.n !== N ? ` (N=${r.n})` : ''} | ${r.impl} | ${r.m}${r.cold ? ' cold' : ''} | ${r.threads} | ${r.gflops.toFixed(1)} | ${(r.seconds * 1000).toFixed(2)} | ${ratio} | ${vsFp4} | ${err} |`);
  }
  console.log('');
  for (const r of rows) if (r.note && !r.cold) notes.add(`${r.op}: ${r.note}`);
  if (rows.some((r) => r.cold)) notes.add(`"1 cold" rows: each implementation cycles over enough distinct copies of its weights (${[...new Set(rows.filter((r) => r.cold).map((r) => r.note?.match(/over (\d+) weight copies/)?.[1]))].join('/')} copies) to read more than 3× the last-level cache (${(llcBytes() / 2 ** 20).toFixed(0)} MiB) per round: weights streamed from DRAM`);
  for (const n of notes) console.log(`note: ${n}`);
  console.log(`note: total ${((performance.now() - started) / 1000).toFixed(0)} s. Shared or busy machines give noisy figures; compare rows of the same run.`);
}

if (CHILD) {
  await child(Number(setting('child-threads') ?? THREADS[0]));
} else {
  parent();
}
