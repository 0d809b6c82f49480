// Distributed checkpoint quantization on BullMQ (docs/distributed.md): throughput of 1, 2 and 3
// local `fp4kit worker` processes beside a single-process run of the same checkpoint, and the
// queue's overhead per job. On a two-core machine the point is correctness and overhead, not
// speed-up: every worker competes for the same cores and the same disk.
//   npm run bench:distributed               (~400 MB bf16 checkpoint in 16 shards; needs redis-server)
//   FP4KIT_BENCH_MB=800 FP4KIT_BENCH_SHARDS=32 npm run bench:distributed
//
// Each figure is the wall time of the whole run as a user sees it: for the queue, from the
// producer's call (plan, enqueue) until the merge job has written the summary. Workers are
// started (and have connected) before the clock starts. The overhead per job comes from a
// checkpoint of many tiny shards, quantized by one worker through the queue and by the same parts
// run in one process without a queue: (queue time − in-process time) / jobs.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getBackend } from '../lib/index.js';
import { quantizeCheckpoint, type CheckpointOptions } from '../lib/checkpoint.js';
import { mergeCheckpointParts, planRun, runCheckpointPart, serializeOptions } from '../lib/checkpoint-parts.js';
import { quantizeOnQueue } from '../lib/queue.js';
import { writeShardedCheckpoint } from '../test/helpers/sharded-checkpoint.js';
import { compareOutputFolders } from '../test/helpers/compare-outputs.js';

const MB = Number(process.env.FP4KIT_BENCH_MB ?? '400');
const SHARDS = Number(process.env.FP4KIT_BENCH_SHARDS ?? '16');
const TINY_JOBS = Number(process.env.FP4KIT_BENCH_TINY_JOBS ?? '120');
const options: CheckpointOptions = { format: 'nvfp4', layout: 'compressed-tensors' };

if (spawnSync('redis-server', ['--version']).status !== 0) {
  console.error('bench/distributed.bench.ts needs redis-server (apt-get install redis-server)');
  process.exit(1);
}
const root = mkdtempSync(join(tmpdir(), 'fp4kit-dist-bench-'));
const children: ChildProcess[] = [];
const stopAll = () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
};
process.on('exit', () => {
  stopAll();
  rmSync(root, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Spawn and resolve once `ready` appears in the output. */
function start(cmd: string, args: string[], ready: RegExp): Promise<ChildProcess> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let text = '';
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      text += d.toString();
      if (ready.test(text)) resolve(child);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`${cmd} exited (${code}) before it was ready:\n${text}`)));
  });
}

async function stopWorkers(workers: ChildProcess[]): Promise<void> {
  await Promise.all(workers.map((w) => new Promise<void>((resolve) => {
    w.once('exit', () => resolve());
    w.kill('SIGTERM');
  })));
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

// A Llama-like model scaled so the whole checkpoint is ~MB megabytes in ~SHARDS shards.
const hidden = 1024;
const layerBytes = 2 * (hidden * hidden * (1 + 0.5 + 0.5 + 1) + 3 * 2816 * hidden);
const layers = Math.max(1, Math.round((MB * 1e6) / layerBytes));
const input = join(root, 'in');
const names = await writeShardedCheckpoint(input, { layers, hidden, intermediate: 2816, vocab: 4096, maxShardBytes: Math.ceil((layers * layerBytes) / SHARDS) + 1, seed: 1 });
const plan = await planRun(input, join(root, 'x'), options, 1);
const gb = plan.inputBytes / 1e9;
console.log(`generated ${layers} layers, ${names.length} shards, ${(plan.inputBytes / 1e6).toFixed(0)} MB bf16 in ${root}`);

const port = await freePort();
const url = `redis://127.0.0.1:${port}`;
await start('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], /Ready to accept connections/);
const startWorkers = (n: number) =>
  Promise.all(Array.from({ length: n }, () => start(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', 'lib', 'cli.ts'), 'worker', '--queue', url], /waiting for jobs/)));

const rows: Array<{ label: string; seconds: number; jobs?: number }> = [];
// Every run writes to the same path (the summary records it), the single run's output kept aside for the byte comparison.
const out = join(root, 'out');
const single = join(root, 'out.single');
rows.push({ label: 'single process (quantizeCheckpoint)', seconds: await timed(() => quantizeCheckpoint(input, out, options)) });
renameSync(out, single);
for (const n of [1, 2, 3]) {
  const workers = await startWorkers(n);
  const seconds = await timed(() => quantizeOnQueue(url, input, out, options));
  await stopWorkers(workers);
  const diff = compareOutputFolders(out, single);
  if (diff.differences.length > 0) throw new Error(`${n} workers: output differs from the single run: ${diff.differences.join('; ')}`);
  rows.push({ label: `BullMQ, ${n} worker${n > 1 ? 's' : ''}`, seconds, jobs: plan.parts[0].length + 1 });
  rmSync(out, { recursive: true, force: true });
}
// The single run again, after, so page-cache warm-up does not favour either side.
rows.push({ label: 'single process (again)', seconds: await timed(() => quantizeCheckpoint(input, out, options)) });
const singleSeconds = Math.min(rows[0].seconds, rows[rows.length - 1].seconds);

// Queue overhead per job: many tiny shards (one ~40 kB shard per job).
const tiny = join(root, 'tiny');
await writeShardedCheckpoint(tiny, { layers: Math.ceil(TINY_JOBS / 4), hidden: 64, intermediate: 128, vocab: 256, maxShardBytes: 20_000, seed: 2 });
const tinyPlan = await planRun(tiny, join(root, 'tiny-x'), options);
const jobs = tinyPlan.parts.length;
const inProcess = await timed(async () => {
  const out = join(root, 'tiny-local');
  for (let part = 0; part < jobs; part++) await runCheckpointPart({ input: tiny, output: out, options: serializeOptions(options), part, parts: jobs });
  await mergeCheckpointParts(out);
});
const [oneWorker] = await startWorkers(1);
const viaQueue = await timed(() => quantizeOnQueue(url, tiny, join(root, 'tiny-queue'), options));
await stopWorkers([oneWorker]);

const backend = getBackend();
console.log(`\nbackend ${backend.name} (${backend.simd}); nvfp4, compressed-tensors layout, error statistics on; ${(plan.inputBytes / 1e6).toFixed(0)} MB bf16 in ${names.length} shards (${names.length} part jobs + 1 merge job)\n`);
console.log('| run | seconds | GB/s of bf16 input | vs single process |');
console.log('|---|---|---|---|');
for (const r of rows) console.log(`| ${r.label} | ${r.seconds.toFixed(2)} | ${(gb / r.seconds).toFixed(3)} | ${((singleSeconds / r.seconds) * 100).toFixed(0)} % |`);
console.log(`\nqueue overhead: ${jobs} tiny parts (+1 merge) in ${viaQueue.toFixed(2)} s through BullMQ with one worker, ${inProcess.toFixed(2)} s as the same parts in one process: ` +
  `${(((viaQueue - inProcess) / (jobs + 1)) * 1000).toFixed(1)} ms per job`);
stopAll();
