// Distributed checkpoint quantization on BullMQ (docs/distributed.md): throughput of 1, 2 and 3
// local `fp4kit worker` processes beside a single-process run of the same checkpoint, and the
// queue's overhead per job. On a two-core machine the point is correctness and overhead, not
// speed-up: every worker competes for the same cores and the same disk.
//   npm run bench:distributed               (~400 MB bf16 checkpoint in 16 shards; needs redis-server)
//   FP4KIT_BENCH_MB=800 FP4KIT_BENCH_SHARDS=32 npm run bench:distributed
//
// Each figure is the wall time of the whole run as a user sees it: for the queue, from the
// producer's call (plan, enqueue) until the merge job has written the summary; the best of
// FP4KIT_BENCH_REPS runs (default 3) after one unmeasured warm-up run. Workers are started (and
// have connected) before the clock starts. Queue overhead per job, two ways: the round trip of an
// empty BullMQ job (add → completed event, a worker in another process), and a checkpoint of many
// tiny shards quantized by one worker through the queue against the same parts run in one process
// without a queue: (queue time − in-process time) / jobs.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getBackend } from '../lib/index.js';
import { quantizeCheckpoint, type CheckpointOptions } from '../lib/checkpoint/quantize-checkpoint.js';
import { mergeCheckpointParts, planRun, runCheckpointPart, serializeOptions } from '../lib/checkpoint/checkpoint-parts.js';
import { quantizeOnQueue } from '../lib/checkpoint/queue.js';
import { Queue, QueueEvents } from 'bullmq';
import { writeShardedCheckpoint } from '../test/helpers/sharded-checkpoint.js';
import { compareOutputFolders } from '../test/helpers/compare-outputs.js';

const MB = Number(process.env.FP4KIT_BENCH_MB ?? '400');
const SHARDS = Number(process.env.FP4KIT_BENCH_SHARDS ?? '16');
const TINY_JOBS = Number(process.env.FP4KIT_BENCH_TINY_JOBS ?? '60');
const REPS = Number(process.env.FP4KIT_BENCH_REPS ?? '3');
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

/** The best of REPS timed runs; `after` cleans up between runs (untimed). */
async function best(fn: () => Promise<unknown>, after: () => void | Promise<void>): Promise<number> {
  let b = Infinity;
  for (let r = 0; r < REPS; r++) {
    b = Math.min(b, await timed(fn));
    await after();
  }
  return b;
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
  Promise.all(Array.from({ length: n }, () => start(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', 'lib', 'checkpoint', 'cli.ts'), 'worker', '--queue', url], /waiting for jobs/)));

const rows: Array<{ label: string; seconds: number }> = [];
// Every run writes to the same path (the summary records it), the single run's output kept aside for the byte comparison.
const out = join(root, 'out');
const single = join(root, 'out.single');
await quantizeCheckpoint(input, single, options); // warm-up: the addon's threads, the page cache, the JIT
const clean = () => rmSync(out, { recursive: true, force: true });
rows.push({ label: 'single process (quantizeCheckpoint)', seconds: await best(() => quantizeCheckpoint(input, out, options), clean) });
await quantizeCheckpoint(input, out, options);
rmSync(single, { recursive: true, force: true });
renameSync(out, single);
// The same parts one after another in this process, without a queue: the cost of splitting into parts by itself.
const checkAndClean = (label: string) => () => {
  const diff = compareOutputFolders(out, single);
  if (diff.differences.length > 0) throw new Error(`${label}: output differs from the single run: ${diff.differences.join('; ')}`);
  clean();
};
rows.push({
  label: `${plan.parts[0].length} parts in one process, no queue`,
  seconds: await best(async () => {
    const n = plan.parts[0].length;
    for (let part = 0; part < n; part++) await runCheckpointPart({ input, output: out, options: serializeOptions(options), part, parts: n });
    await mergeCheckpointParts(out);
  }, checkAndClean('parts in one process')),
});
for (const n of [1, 2, 3]) {
  const workers = await startWorkers(n);
  const seconds = await best(() => quantizeOnQueue(url, input, out, options), checkAndClean(`${n} workers`));
  await stopWorkers(workers);
  rows.push({ label: `BullMQ, ${n} worker${n > 1 ? 's' : ''}`, seconds });
}
// The single run again, after, so page-cache warm-up does not favour either side.
rows.push({ label: 'single process (again)', seconds: await best(() => quantizeCheckpoint(input, out, options), clean) });
const singleSeconds = Math.min(rows[0].seconds, rows[rows.length - 1].seconds);

// Queue overhead per job (1): the round trip of empty jobs, one at a time, through a worker process.
const emptyQueue = `fp4kit-bench-empty-${process.pid}`;
const echo = await start(process.execPath, ['--import', 'tsx', '-e', `
  import { Worker } from 'bullmq';
  const w = new Worker(${JSON.stringify(emptyQueue)}, async () => 1, { connection: { host: '127.0.0.1', port: ${port}, maxRetriesPerRequest: null } });
  await w.waitUntilReady(); console.log('echo ready');`], /echo ready/);
const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
const q = new Queue(emptyQueue, { connection });
const ev = new QueueEvents(emptyQueue, { connection });
await ev.waitUntilReady();
const trips: number[] = [];
for (let i = 0; i < 60; i++) {
  const t0 = performance.now();
  await (await q.add('empty', {})).waitUntilFinished(ev);
  if (i >= 10) trips.push(performance.now() - t0); // the first ones warm up connections and scripts
}
trips.sort((a, b) => a - b);
await Promise.all([q.close(), ev.close()]);
echo.kill('SIGKILL');

// Queue overhead per job (2): fp4kit parts of ~20 kB, through the queue and in one process.
const tiny = join(root, 'tiny');
await writeShardedCheckpoint(tiny, { layers: Math.ceil(TINY_JOBS / 5), hidden: 64, intermediate: 128, vocab: 256, maxShardBytes: 20_000, seed: 2 });
const tinyOut = join(root, 'tiny-out');
const tinyPlan = await planRun(tiny, tinyOut, options);
const jobs = tinyPlan.parts.length;
const cleanTiny = () => rmSync(tinyOut, { recursive: true, force: true });
const inProcess = await best(async () => {
  for (let part = 0; part < jobs; part++) await runCheckpointPart({ input: tiny, output: tinyOut, options: serializeOptions(options), part, parts: jobs });
  await mergeCheckpointParts(tinyOut);
}, cleanTiny);
const [oneWorker] = await startWorkers(1);
const viaQueue = await best(() => quantizeOnQueue(url, tiny, tinyOut, options), cleanTiny);
await stopWorkers([oneWorker]);

const backend = getBackend();
console.log(`\nbackend ${backend.name} (${backend.simd}); nvfp4, compressed-tensors layout, error statistics on; ${(plan.inputBytes / 1e6).toFixed(0)} MB bf16 in ${names.length} shards (${names.length} part jobs + 1 merge job)\n`);
console.log('| run | seconds | GB/s of bf16 input | vs single process |');
console.log('|---|---|---|---|');
for (const r of rows) console.log(`| ${r.label} | ${r.seconds.toFixed(2)} | ${(gb / r.seconds).toFixed(3)} | ${((singleSeconds / r.seconds) * 100).toFixed(0)} % |`);
console.log(`\nqueue overhead per job: an empty BullMQ job's round trip (add → completed, worker in another process) ` +
  `median ${trips[trips.length >> 1].toFixed(2)} ms, 90th percentile ${trips[Math.floor(trips.length * 0.9)].toFixed(2)} ms (${trips.length} jobs)`);
console.log(`  ${jobs} fp4kit parts of ~20 kB (+1 merge job): ${viaQueue.toFixed(2)} s through BullMQ with one worker, ${inProcess.toFixed(2)} s as the same parts in one process, ` +
  `${(((viaQueue - inProcess) / (jobs + 1)) * 1000).toFixed(1)} ms per job (each part alone costs ~${((inProcess / jobs) * 1000).toFixed(0)} ms: opening the checkpoint, fsync and rename of its shard and record)`);
stopAll();
