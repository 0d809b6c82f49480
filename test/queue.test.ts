// The BullMQ mode end to end, with a real redis-server (Debian package) started here on a free
// loopback port without persistence: three `fp4kit worker` processes and one `fp4kit quantize
// --queue` producer; one worker is killed with SIGKILL while it writes a shard. BullMQ's stalled-job
// check hands its job to another worker, the result equals a single-machine run byte for byte, and
// no file under a final name is ever partial. Also: a worker that cannot see the input stops with a
// clear error and its job is done elsewhere; an unreachable Redis is one clear error; a worker of
// another fp4kit version ignores the run (a queue per version); someone else's keys under the
// queue's names are refused by name, untouched, and --prefix runs beside them.
//
// Jobs are slowed by FP4KIT_TEST_TENSOR_DELAY_MS (test-only, lib/checkpoint/checkpoint-parts.ts) and locks are
// short (--lock-duration 2000 --stalled-interval 1000), so the retry happens within seconds.
// Without redis-server this file skips locally with a message, and fails under CI=true.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { quantizeCheckpoint, type CheckpointOptions } from '../lib/checkpoint/quantize-checkpoint.js';
import { partsFolder } from '../lib/checkpoint/checkpoint-parts.js';
import { writeShardedCheckpoint } from './helpers/sharded-checkpoint.js';
import { compareOutputFolders } from './helpers/compare-outputs.js';

const repo = join(__dirname, '..');
const cliPath = join(repo, 'lib', 'checkpoint', 'cli.ts');
const hasRedis = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).status === 0;
const inCi = process.env.CI === 'true';
if (!hasRedis && !inCi) console.warn('test/queue.test.ts: redis-server is not installed (apt-get install redis-server); skipping the BullMQ tests');

describe('redis-server for the queue tests', () => {
  it.runIf(inCi)('is installed (CI must run the BullMQ tests, not skip them)', () => {
    expect(hasRedis, 'redis-server is missing: add it to the apt-get line of .ci/run').toBe(true);
  });
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** The one run folder in the output's parts folder (checkpoint-parts.ts runFolder), or null before there is one. */
function runDir(out: string): string | null {
  const dirs = existsSync(partsFolder(out)) ? readdirSync(partsFolder(out)).filter((n) => n.startsWith('run-')) : [];
  if (dirs.length > 1) throw new Error(`more than one run folder in ${partsFolder(out)}: ${dirs.join(', ')}`);
  return dirs.length === 1 ? join(partsFolder(out), dirs[0]) : null;
}

/** A spawned process with its output collected, and a way to wait for a line. */
class Proc {
  readonly child: ChildProcess;
  out = '';
  err = '';
  readonly exited: Promise<number | null>;
  constructor(cmd: string, args: string[], env: Record<string, string> = {}) {
    this.child = spawn(cmd, args, { cwd: repo, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => { this.out += d.toString(); });
    this.child.stderr!.on('data', (d: Buffer) => { this.err += d.toString(); });
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }
  async waitFor(re: RegExp, ms: number, where: 'out' | 'err' = 'err'): Promise<RegExpMatchArray> {
    const end = Date.now() + ms;
    for (;;) {
      const m = (where === 'out' ? this.out : this.err).match(re);
      if (m) return m;
      if (Date.now() > end) throw new Error(`timed out waiting for ${re} in:\n${this.out}\n${this.err}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  kill(signal: NodeJS.Signals = 'SIGTERM') {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('which job errors are retried on another worker', () => {
  it('bad input fails for good; running out of memory is retried (another worker may have more)', async () => {
    const { failsEverywhere } = await import('../lib/checkpoint/queue.js');
    const { SafetensorsError } = await import('../lib/checkpoint/safetensors/header.js');
    expect(failsEverywhere(new SafetensorsError('/x', 'header length 9 is absurd'))).toBe(true);
    expect(failsEverywhere(new RangeError('quantizeAsync: nvfp4 input holds NaN or Inf'))).toBe(true);
    expect(failsEverywhere(new TypeError('runCheckpointPart: input must be a path'))).toBe(true);
    expect(failsEverywhere(new RangeError('quantizeAsync: out of memory (a native allocation failed)'))).toBe(false);
    expect(failsEverywhere(new RangeError('matmul: cannot allocate the output [4, 4] (16 elements)'))).toBe(false);
    expect(failsEverywhere(new RangeError('Array buffer allocation failed'))).toBe(false);
    expect(failsEverywhere(new Error('EIO: i/o error'))).toBe(false);
  });
});

// Found by an audit (twenty-fifth session): `waiting for jobs on redis://:secret@…` and every error
// naming the URL wrote the password into logs (the docs give that URL form).
describe('Redis URLs in logs and messages', () => {
  it('show the password as ***, and only the password', async () => {
    const { shownUrl, quantizeOnQueue } = await import('../lib/checkpoint/queue.js');
    expect(shownUrl('redis://:s3cret@node-a:6379/2')).toBe('redis://:***@node-a:6379/2');
    expect(shownUrl('rediss://user:p%40ss@[::1]:6380')).toBe('rediss://user:***@[::1]:6380');
    expect(shownUrl('redis://node-a:6379')).toBe('redis://node-a:6379');
    expect(shownUrl('redis://user@node-a')).toBe('redis://user@node-a');
    // A URL refused for its form names it without the password too.
    const { redisOptions } = await import('../lib/checkpoint/queue.js');
    expect(() => redisOptions('http://:s3cret@node-a:6379')).toThrow(new RangeError('--queue: expected a redis:// or rediss:// URL, got "http://:***@node-a:6379/"'));
    // An unreachable Redis (port 1): the message names the URL without its password.
    const err = await quantizeOnQueue('redis://:s3cret@127.0.0.1:1', '/nonexistent', '/tmp/x', { format: 'mxfp4' }).then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/^cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1 \(/);
    expect(err?.message).not.toMatch(/s3cret/);
  });
});

describe.runIf(hasRedis)('fp4kit quantize --queue with BullMQ workers', () => {
  const root = mkdtempSync(join(tmpdir(), 'fp4kit-queue-'));
  const input = join(root, 'in');
  let redis: Proc;
  let url = '';
  const procs: Proc[] = [];
  let shardNames: string[] = [];

  const worker = (env: Record<string, string> = {}) => {
    const p = new Proc(process.execPath, ['--import', 'tsx', cliPath, 'worker', '--queue', url, '--lock-duration', '2000', '--stalled-interval', '1000'], env);
    procs.push(p);
    return p;
  };
  const producer = (out: string, options: string[], env: Record<string, string> = {}) => {
    const p = new Proc(process.execPath, ['--import', 'tsx', cliPath, 'quantize', input, '-o', out, ...options, '--queue', url], env);
    procs.push(p);
    return p;
  };
  async function reference(out: string, options: CheckpointOptions): Promise<string> {
    await quantizeCheckpoint(input, out, options);
    renameSync(out, `${out}.single`);
    return `${out}.single`;
  }

  beforeAll(async () => {
    const port = await freePort();
    url = `redis://127.0.0.1:${port}`;
    redis = new Proc('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
    await redis.waitFor(/Ready to accept connections/, 10_000, 'out');
    // 12 shards of 2-5 tensors (~0.3 MB each).
    shardNames = await writeShardedCheckpoint(input, { layers: 4, hidden: 256, intermediate: 384, vocab: 512, maxShardBytes: 500_000, seed: 5 });
  });

  afterAll(async () => {
    for (const p of procs) p.kill('SIGKILL');
    redis?.kill('SIGKILL');
    await Promise.all([...procs.map((p) => p.exited), redis?.exited]);
    rmSync(root, { recursive: true, force: true });
  });

  it('three workers, one killed with SIGKILL mid-shard: the run completes with the single-machine bytes', async () => {
    const out = join(root, 'out');
    const single = await reference(out, { format: 'nvfp4', layout: 'compressed-tensors' });
    const workers = [0, 1, 2].map(() => worker({ FP4KIT_TEST_TENSOR_DELAY_MS: '60' }));
    await Promise.all(workers.map((w) => w.waitFor(/waiting for jobs/, 30_000)));
    const run = producer(out, ['--format', 'nvfp4', '--layout', 'compressed-tensors']);
    // Kill worker 0 while its temporary shard file exists (it is writing a shard).
    const victim = workers[0];
    const tempOfVictim = new RegExp(`\\.tmp-${victim.child.pid}-[0-9a-f]{8}$`);
    const killedPart = await whileWriting(victim, out);
    victim.kill('SIGKILL');
    await victim.exited;
    const parts = runDir(out);
    // Nothing under a final name is partial: the output is not published yet, and every shard the parts
    // have renamed into the parts folder equals the single run's.
    expect(existsSync(out)).toBe(false);
    const done = readdirSync(parts).filter((n) => n.endsWith('.safetensors'));
    for (const name of done) expect(readFileSync(join(parts, name)).equals(readFileSync(join(single, name))), name).toBe(true);
    expect(readdirSync(parts).some((n) => tempOfVictim.test(n))).toBe(true); // the torn file is only under its temporary name

    expect(await run.exited, run.err).toBe(0);
    expect(run.err).toMatch(`part ${killedPart}/${shardNames.length}: its worker stopped answering; BullMQ put the job back in the queue`);
    // The progress bar covered every worker's tensors.
    const tensorTotal = Object.keys(JSON.parse(readFileSync(join(input, 'model.safetensors.index.json'), 'utf8')).weight_map).length;
    expect(run.err).toMatch(new RegExp(`^fp4kit: 100% .* ${tensorTotal}/${tensorTotal} tensors`, 'm'));
    expect(run.out).toMatch(/tensors quantized to nvfp4 \(compressed-tensors layout/);
    // The killed part was done again by a surviving worker.
    const survivors = workers.slice(1).map((w) => w.err).join('\n');
    expect(survivors).toMatch(new RegExp(`part ${killedPart}/${shardNames.length} of .*: started`));
    // Byte-identical to the single run (summary `seconds` aside), no temporary file left, no part records.
    expect(compareOutputFolders(out, single)).toEqual({ differences: [], files: readdirSync(single).length });
    // SIGTERM: the survivors finish what they hold and exit 0.
    for (const w of workers.slice(1)) w.kill('SIGTERM');
    expect(await Promise.all(workers.slice(1).map((w) => w.exited))).toEqual([0, 0]);
  }, 120_000);

  // An empty folder at the input's path: a share not mounted where the model folder is the mount
  // point (found by an audit, twenty-fifth session: that failed the whole run at once, and the
  // worker went on failing every job it took).
  it.each([
    ['is not at its path', 'hidden', false],
    ['is an empty folder there', 'hidden-empty', true],
  ] as const)('a worker for which the input %s fails its job with a clear error and stops; another worker does the job', async (_case, name, emptyFolder) => {
    const out = join(root, name);
    const single = await reference(out, { format: 'mxfp4' });
    const run = producer(out, ['--format', 'mxfp4', '--parts', '3']);
    // The run is planned and queued (the plan is in the output folder), with no worker yet.
    const partsDir = partsFolder(out);
    while (!existsSync(partsDir) || !readdirSync(partsDir).some((n) => n.startsWith('run-'))) await sleep(20);
    await sleep(500);
    // A machine without the shared input: the input is not at its path.
    renameSync(input, `${input}.elsewhere`);
    if (emptyFolder) mkdirSync(input);
    let blind: Proc;
    try {
      blind = worker();
      expect(await blind.exited).toBe(1);
    } finally {
      if (emptyFolder) rmdirSync(input);
      renameSync(`${input}.elsewhere`, input);
    }
    const problem = emptyFolder ? 'not the checkpoint the producer opened \\(.*no \\.safetensors files.*\\) on .+' : 'not found on .+';
    expect(blind.err).toMatch(new RegExp(`fp4kit: ${input}: ${problem}: every machine of a distributed run must see the input at the same path`));
    expect(blind.err).toMatch(/this worker stops taking jobs/);
    const good = worker();
    expect(await run.exited, run.err).toBe(0);
    expect(run.err).toMatch(new RegExp(`part \\d/3 failed \\(attempt 1 of 3\\), retrying: .*${problem}: every machine of a distributed run must see the input at the same path`));
    expect(compareOutputFolders(out, single).differences).toEqual([]);
    good.kill('SIGTERM');
    expect(await good.exited).toBe(0);
  }, 120_000);

  // Found by an audit (twenty-fifth session): workers of another build wrote their parts with it, and
  // the merged output mixed two versions' bytes; nothing recorded the version. A run's jobs carry
  // the producer's version (also in the run key). Then (an audit, 2026-12-07) a worker of another
  // version took the run's jobs and stopped: producers of two versions on one Redis database
  // stopped each other's workers. Each version now has a queue of its own.
  it("a worker of another fp4kit version ignores the run (another queue) and keeps running; the producer names the version it waits for; a worker of the producer's version does the run", async () => {
    const { packageVersion } = await import('../lib/core/package-manifest.js');
    const out = join(root, 'versions');
    const single = await reference(out, { format: 'mxfp4' });
    const other = worker({ FP4KIT_TEST_VERSION: '0.0.0-other' });
    await other.waitFor(/waiting for jobs on redis:\/\/\S+ \(queue fp4kit-checkpoint@0\.0\.0-other\)/, 30_000);
    // A worker of a build from before the queue per version: BullMQ names its connection after the
    // one queue all versions shared (as CLIENT LIST shows it), and the notice says to upgrade it.
    const { Redis } = await import('ioredis');
    const { redisOptions } = await import('../lib/checkpoint/queue.js');
    const oldBuild = new Redis({ ...redisOptions(url), connectionName: `bull:${Buffer.from('fp4kit-checkpoint').toString('base64')}:w:old-build` });
    await oldBuild.ping();
    const run = producer(out, ['--format', 'mxfp4', '--parts', '3'], { FP4KIT_TEST_QUEUE_CHECK_MS: '300' });
    const v = packageVersion().replace(/\./g, '\\.');
    await run.waitFor(new RegExp(`no worker of fp4kit ${v} has been connected to Redis at redis://127\\.0\\.0\\.1:\\d+ for \\d+ s; the run waits for one \\(start \`fp4kit worker --queue …\` of fp4kit ${v} on a machine that sees the shared files\\); connected are workers of fp4kit 0\\.0\\.0-other, before 2026-12-07 \\(on the shared queue fp4kit-checkpoint: upgrade them\\), which take only their own version's runs`), 30_000);
    oldBuild.disconnect();
    expect(other.child.exitCode, other.err).toBeNull(); // not stopped by another version's run
    const good = worker();
    expect(await run.exited, run.err).toBe(0);
    expect(compareOutputFolders(out, single).differences).toEqual([]);
    expect(other.err).not.toMatch(/started|merged|failed/);
    for (const w of [good, other]) w.kill('SIGTERM');
    expect(await Promise.all([good.exited, other.exited])).toEqual([0, 0]);
  }, 120_000);

  /** Wait until `proc` is writing a shard (its temporary file exists in `out`); returns the part number it holds. */
  async function whileWriting(proc: Proc, out: string): Promise<number> {
    const temp = new RegExp(`\\.tmp-${proc.child.pid}-[0-9a-f]{8}$`);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const dir = runDir(out);
      if (dir !== null && readdirSync(dir).some((n) => temp.test(n))) {
        const started = [...proc.err.matchAll(/part (\d+)\/\d+ of .*: started/g)];
        return Number(started[started.length - 1][1]);
      }
      if (Date.now() > deadline) throw new Error(`worker ${proc.child.pid} never wrote a shard:\n${proc.err}`);
      await sleep(2);
    }
  }

  it('a worker paused past its lock (SIGSTOP) loses the job to another and, resumed, stays out of its way', async () => {
    const out = join(root, 'paused');
    const single = await reference(out, { format: 'mxfp8_e4m3' });
    const slow = worker({ FP4KIT_TEST_TENSOR_DELAY_MS: '60' });
    await slow.waitFor(/waiting for jobs/, 30_000);
    const run = producer(out, ['--format', 'mxfp8_e4m3']);
    const part = await whileWriting(slow, out);
    slow.child.kill('SIGSTOP');
    const other = worker();
    await run.waitFor(new RegExp(`part ${part}/\\d+: its worker stopped answering`), 30_000);
    slow.child.kill('SIGCONT');
    expect(await run.exited, run.err).toBe(0);
    expect(compareOutputFolders(out, single)).toEqual({ differences: [], files: readdirSync(single).length });
    // Resumed, it found its lock gone and abandoned its copy of the job (its temporary file removed) instead of racing.
    await slow.waitFor(new RegExp(`part ${part}/\\d+ of .*: abandoned \\(its lock was lost\\); another worker has it`), 10_000);
    expect(slow.child.exitCode).toBe(null); // alive, and still a worker
    for (const w of [slow, other]) w.kill('SIGTERM');
    expect(await Promise.all([slow.exited, other.exited])).toEqual([0, 0]);
  }, 120_000);

  it('SIGTERM twice puts the job a worker holds back in the queue without using an attempt', async () => {
    const out = join(root, 'twice');
    const single = await reference(out, { format: 'mxfp4' });
    const leaving = worker({ FP4KIT_TEST_TENSOR_DELAY_MS: '200' });
    await leaving.waitFor(/waiting for jobs/, 30_000);
    const run = producer(out, ['--format', 'mxfp4', '--parts', '2']);
    const part = await whileWriting(leaving, out);
    leaving.kill('SIGTERM');
    await leaving.waitFor(/stopping after the current job/, 10_000);
    leaving.kill('SIGTERM');
    expect(await leaving.exited).toBe(0);
    expect(readdirSync(runDir(out)!).filter((n) => n.includes('.tmp-'))).toEqual([]); // the aborted shard left no temporary file
    const stays = worker();
    expect(await run.exited, run.err).toBe(0);
    expect(run.err).not.toMatch(/failed/);
    expect(stays.err).toMatch(new RegExp(`part ${part}/2 of .*: started`));
    expect(compareOutputFolders(out, single).differences).toEqual([]);
    stays.kill('SIGTERM');
    expect(await stays.exited).toBe(0);
  }, 120_000);

  // Found by an audit (2026-12-06): anyone who can write to the Redis can queue a job. A job without
  // a run key skipped the plan check and made folders wherever it pointed; a stale job (its run
  // folder deleted) stopped every worker that took it; a TypeError or a bad regex was retried 3 times.
  it('hostile and stale jobs fail at once, one attempt each, and the worker goes on taking jobs', async () => {
    const { Queue } = await import('bullmq');
    const { queueNameOf, redisOptions } = await import('../lib/checkpoint/queue.js');
    const { serializeOptions, planRun, writeRunPlan } = await import('../lib/checkpoint/checkpoint-parts.js');
    const { packageVersion } = await import('../lib/core/package-manifest.js');
    const queue = new Queue(queueNameOf(packageVersion()), { connection: redisOptions(url) });
    const w = worker();
    // A planned run (its plan.json in the output's run folder) for a job whose samples were edited in Redis.
    const plan = await planRun(input, join(root, 'edited'), { format: 'mxfp4' }, 2, { samples: true });
    const written = await writeRunPlan(plan);
    try {
      const fingerprint = { digest: 'd', files: [] };
      const part = { kind: 'part', fp4kit: packageVersion(), input, options: serializeOptions({ format: 'mxfp4' }), part: 0, parts: 1, fingerprint, samples: {} };
      const edited = {
        kind: 'part', fp4kit: plan.fp4kit, input: plan.input, output: plan.output, options: plan.options, part: 0, parts: 2, run: plan.run, fingerprint: plan.fingerprint,
        samples: Object.fromEntries(plan.parts[0].map((n) => [n, '0'.repeat(64)])),
      };
      mkdirSync(partsFolder(join(root, 'stale'))); // the output's parts folder is here, the job's run folder is not
      const cases: Array<[string, unknown, RegExp]> = [
        ['null data', null, /not a job fp4kit's producer wrote: its data is null/],
        ['no run key', { ...part, output: join(root, 'hostile', 'new', 'deep', 'x') }, /a part job needs its run key, got undefined/],
        ['a run key that is a path', { ...part, output: join(root, 'hostile2'), run: '../../x' }, /run must be a run key \(a lowercase hex string\), got "\.\.\/\.\.\/x"/],
        ['a stale job (its run folder is gone, the input is here)', { ...part, output: join(root, 'stale'), run: 'abc123' }, /a stale job, not run/],
        ['a bad fingerprint', { ...part, output: join(root, 'stale'), run: 'abc123', fingerprint: { digest: 'x' } }, /fingerprint needs \{ digest, files/],
        ['an unknown kind', { kind: 'delete-everything', fp4kit: packageVersion() }, /kind "delete-everything"/],
        ['no fp4kit version', { ...part, fp4kit: undefined, output: join(root, 'stale'), run: 'abc123' }, /a job needs the producer's fp4kit version, got undefined/],
        // A stale job of another version (left from before an upgrade) fails as a stale job: it does not stop the worker.
        ['a stale job of another fp4kit version', { ...part, fp4kit: '0.0.0-old', output: join(root, 'stale'), run: 'abc123' }, /a job of fp4kit 0\.0\.0-old \(this worker runs \S+\) whose run folder is gone: a stale job, not run/],
        // Found by an audit (twenty-fifth session): an edited job looked like a machine that sees other data, and stopped 3 of 4 workers.
        ['samples edited in Redis', edited, /the job's data samples differs from its run's plan: not a job this run's producer wrote; not run/],
        // A live run's job of another version in this version's queue: no producer writes that (each version has a queue of its own).
        ['a job of another fp4kit version in this version\'s queue, its run folder here', { ...edited, fp4kit: '0.0.0-other', samples: Object.fromEntries(plan.parts[0].map((n) => [n, plan.samples![n]])) },
          /a job of fp4kit 0\.0\.0-other in the queue of fp4kit \S+ \(this worker's\): not a job this version's producer wrote \(every version has a queue of its own\); not run/],
      ];
      const jobs = [];
      for (const [label, data] of cases) jobs.push(await queue.add(label, data as never, { attempts: 3, backoff: { type: 'fixed', delay: 100 } }));
      for (let i = 0; i < jobs.length; i++) {
        const deadline = Date.now() + 30_000;
        let job = await queue.getJob(jobs[i].id!);
        while ((await job!.getState()) !== 'failed') {
          if (Date.now() > deadline) throw new Error(`${cases[i][0]}: not failed (${await job!.getState()}):\n${w.err}`);
          await sleep(50);
          job = await queue.getJob(jobs[i].id!);
        }
        job = await queue.getJob(jobs[i].id!); // as it is now failed (the one read before the state may predate it)
        expect(job!.failedReason, cases[i][0]).toMatch(cases[i][2]);
        expect(job!.attemptsMade, cases[i][0]).toBe(1);
      }
      expect(w.child.exitCode, w.err).toBeNull(); // still taking jobs
      expect(existsSync(join(root, 'hostile'))).toBe(false);
      expect(readdirSync(partsFolder(join(root, 'stale')))).toEqual([]);
      expect(w.err).not.toMatch(/undefined\/undefined/);
    } finally {
      await written.withdraw();
      await queue.obliterate({ force: true }).catch(() => {});
      await queue.close();
      w.kill('SIGTERM');
    }
    expect(await w.exited).toBe(0);
  }, 120_000);

  it('a producer stopped while planning enqueues nothing (it enqueued the run, then crashed on a closed connection)', async () => {
    const { Queue } = await import('bullmq');
    const { queueNameOf, redisOptions, quantizeOnQueue, NotQueuedError } = await import('../lib/checkpoint/queue.js');
    const { packageVersion } = await import('../lib/core/package-manifest.js');
    const queue = new Queue(queueNameOf(packageVersion()), { connection: redisOptions(url) });
    try {
      const before = await queue.getJobCountByTypes('waiting', 'waiting-children', 'delayed', 'active');
      const controller = new AbortController();
      controller.abort();
      await expect(quantizeOnQueue(url, input, join(root, 'not-queued'), { format: 'mxfp4' }, { signal: controller.signal })).rejects.toBeInstanceOf(NotQueuedError);
      expect(await queue.getJobCountByTypes('waiting', 'waiting-children', 'delayed', 'active')).toBe(before);
    } finally {
      await queue.close();
    }
  });

  it('bad input fails the run at once (no retries), naming the file and tensor', async () => {
    const bad = join(root, 'nan-model');
    await writeShardedCheckpoint(bad, { layers: 2, hidden: 64, intermediate: 128, vocab: 128, maxShardBytes: 40_000, seed: 1 });
    // A NaN in one quantized tensor: NVFP4 cannot hold it.
    const { SafetensorsFile } = await import('../lib/checkpoint/safetensors/read.js');
    const index = JSON.parse(readFileSync(join(bad, 'model.safetensors.index.json'), 'utf8')).weight_map as Record<string, string>;
    const shard = join(bad, index['model.layers.1.mlp.up_proj.weight']);
    const f = await SafetensorsFile.open(shard);
    const t = f.tensor('model.layers.1.mlp.up_proj.weight')!;
    await f.close();
    const { openSync, writeSync, closeSync } = await import('node:fs');
    const fd = openSync(shard, 'r+');
    writeSync(fd, new Uint8Array([0xc0, 0x7f]), 0, 2, f.dataStart + t.begin + 20); // bf16 NaN
    closeSync(fd);
    const w = worker();
    const out = join(root, 'nan-out');
    const p = new Proc(process.execPath, ['--import', 'tsx', cliPath, 'quantize', bad, '-o', out, '--format', 'nvfp4', '--queue', url]);
    procs.push(p);
    expect(await p.exited).toBe(1);
    expect(p.err).toMatch(new RegExp(`^fp4kit: the queued run failed: part \\d/\\d: ${shard}: tensor model\\.layers\\.1\\.mlp\\.up_proj\\.weight: quantizeAsync: nvfp4 input holds NaN or Inf`, 'm'));
    expect(p.err).not.toMatch(/retrying/);
    expect(w.err).not.toMatch(/attempt 2/);
    expect(existsSync(join(out, 'fp4kit-summary.json'))).toBe(false);
    w.kill('SIGTERM');
    expect(await w.exited).toBe(0);
  }, 120_000);
});

describe('fp4kit quantize --queue without a reachable Redis', () => {
  it('is one clear error, not a silent wait', async () => {
    const port = await freePort(); // nothing listens there
    const r = spawnSync(process.execPath, ['--import', 'tsx', cliPath, 'quantize', join(repo, 'examples', 'tiny-model'), '-o', join(tmpdir(), 'never'), '--format', 'mxfp4', '--queue', `redis://127.0.0.1:${port}`], { cwd: repo, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^fp4kit: cannot reach Redis at redis://127.0.0.1:${port} \\(.*ECONNREFUSED.*\\); start redis-server there or fix --queue`, 'm'));
  });
});

// A Redis of their own, stopped and restarted under the run: what happens to a producer and a
// worker when the queue goes away (found by an audit: both waited forever).
describe.runIf(hasRedis)('fp4kit --queue when Redis goes away', () => {
  const root = mkdtempSync(join(tmpdir(), 'fp4kit-queue-gone-'));
  let port = 0;
  const started: Proc[] = [];
  const redisUp = async () => {
    const r = new Proc('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
    started.push(r);
    await r.waitFor(/Ready to accept connections/, 10_000, 'out');
    return r;
  };
  const cli = (args: string[], env: Record<string, string> = {}) => {
    const p = new Proc(process.execPath, ['--import', 'tsx', cliPath, ...args], env);
    started.push(p);
    return p;
  };
  beforeAll(async () => {
    port = await freePort();
  });
  afterAll(async () => {
    for (const p of started) p.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  });

  it('a producer whose Redis restarts without its jobs says so and exits 1; an idle worker stops on SIGTERM without Redis', async () => {
    let redis = await redisUp();
    const url = `redis://127.0.0.1:${port}`;
    const w = cli(['worker', '--queue', url], { FP4KIT_TEST_TENSOR_DELAY_MS: '300' });
    await w.waitFor(/waiting for jobs/, 30_000);
    const out = join(root, 'lost');
    const p = cli(['quantize', join(repo, 'examples', 'tiny-model'), '-o', out, '--format', 'mxfp4', '--queue', url], { FP4KIT_TEST_QUEUE_CHECK_MS: '300' });
    await w.waitFor(/part 0\/\d+ of .*: started/, 30_000);
    redis.kill('SIGKILL'); // no persistence: the jobs are gone with it
    await redis.exited;
    redis = await redisUp();
    expect(await p.exited, p.err).toBe(1);
    expect(p.err).toMatch(new RegExp(`^fp4kit: Redis at ${url.replace(/\./g, '\\.')} no longer holds this run's jobs \\(restarted without persistence, or the queue was emptied\\); run the command again \\(it quantizes every part again; ${out.replace(/\./g, '\\.')}\\.parts/run-[0-9a-f]+ holds this run's folder until then\\)$`, 'm'));
    expect(existsSync(out)).toBe(false);
    // Redis gone for good: the worker, idle once its part is done, stops on one SIGTERM.
    await w.waitFor(/part 0\/\d+ of .*: \d+ shard\(s\) in/, 60_000);
    await sleep(1000);
    redis.kill('SIGKILL');
    await redis.exited;
    const t0 = Date.now();
    w.kill('SIGTERM');
    expect(await w.exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(20_000);
  }, 120_000);

  it('a producer whose Redis stops answering says so after 12 checks and exits 1', async () => {
    const redis = await redisUp();
    const url = `redis://127.0.0.1:${port}`;
    const out = join(root, 'silent');
    const p = cli(['quantize', join(repo, 'examples', 'tiny-model'), '-o', out, '--format', 'mxfp4', '--queue', url], { FP4KIT_TEST_QUEUE_CHECK_MS: '300' });
    await p.waitFor(/0%/, 30_000); // queued, no worker: waiting
    redis.child.kill('SIGSTOP'); // alive but silent
    try {
      expect(await p.exited).toBe(1);
    } finally {
      redis.child.kill('SIGCONT');
    }
    expect(p.err).toMatch(new RegExp(`^fp4kit: Redis at ${url.replace(/\./g, '\\.')} has not answered for \\d+ s \\(no answer\\); the queued jobs finish when it is back`, 'm'));
    redis.kill('SIGKILL');
  }, 120_000);

  // Found by an audit (twenty-fifth session): with Redis gone for good, closing the queue's
  // connections never settled, nothing kept the process alive, and it ended with exit code 0
  // and no message (no output either): a scheduler recorded success.
  it('a producer whose Redis goes away for good says so and exits 1 (not 0)', async () => {
    const redis = await redisUp();
    const url = `redis://127.0.0.1:${port}`;
    const out = join(root, 'gone');
    const p = cli(['quantize', join(repo, 'examples', 'tiny-model'), '-o', out, '--format', 'mxfp4', '--queue', url], { FP4KIT_TEST_QUEUE_CHECK_MS: '300' });
    await p.waitFor(/0%/, 30_000); // queued, no worker: waiting
    // With no worker for 12 checks, the producer says so once (workers stop on setup problems).
    await p.waitFor(/no worker of fp4kit \S+ has been connected to Redis at redis:\/\/127\.0\.0\.1:\d+ for \d+ s; the run waits for one/, 30_000);
    redis.kill('SIGKILL');
    await redis.exited;
    expect(await p.exited, p.err).toBe(1);
    expect(p.err).toMatch(new RegExp(`^fp4kit: Redis at ${url.replace(/\./g, '\\.')} has not answered for \\d+ s`, 'm'));
    expect(existsSync(out)).toBe(false);
  }, 120_000);

  it('a Redis user that may not run a command BullMQ loops on: the worker logs the repeated error once per 10 s, with its count', async () => {
    // A managed Redis may deny commands by ACL. BullMQ's worker loop repeats a refused BZPOPMIN
    // as fast as Redis answers; the worker logs it once per 10 s instead of thousands of times.
    const redis = await redisUp();
    const { Redis } = await import('ioredis');
    const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true });
    await client.connect();
    await client.call('ACL', 'SETUSER', 'limited', 'on', '>secret', '~*', '&*', '+@all', '-bzpopmin');
    client.disconnect();
    const w = cli(['worker', '--queue', `redis://limited:secret@127.0.0.1:${port}`]);
    await sleep(4000);
    w.kill('SIGKILL');
    await w.exited;
    const lines = w.err.split('\n').filter((l) => /BullMQ:.*NOPERM/.test(l));
    expect(lines.length, w.err.slice(0, 2000)).toBeGreaterThan(0); // the error is told…
    expect(lines.length, w.err.slice(0, 2000)).toBeLessThan(10); // …not thousands of times
    redis.kill('SIGKILL');
  }, 60_000);

  it('a database the Redis does not have is one clear error', async () => {
    const redis = await redisUp();
    const p = cli(['worker', '--queue', `redis://127.0.0.1:${port}/99`]);
    expect(await p.exited).toBe(1);
    expect(p.err).toMatch(/^fp4kit: Redis at redis:\/\/127\.0\.0\.1:\d+\/99 refuses database 99 \(ERR DB index is out of range\); fix the \/db part of --queue$/m);
    redis.kill('SIGKILL');
  }, 60_000);
});

// Found by audits (twenty-fifth session, 2026-12-07): someone else's key under the queue's names
// (here `meta`, a string where BullMQ keeps a hash) gave raw WRONGTYPE errors, logged once per
// 10 s, and the worker kept running; there was no way to give fp4kit keys of its own in a shared
// database. Each test has a Redis of its own.
describe.runIf(hasRedis)("someone else's keys under the queue's names, and --prefix", () => {
  const root = mkdtempSync(join(tmpdir(), 'fp4kit-queue-keys-'));
  const tiny = join(repo, 'examples', 'tiny-model');
  const started: Proc[] = [];
  let port = 0;
  let url = '';
  let redis: Proc;
  let client: import('ioredis').Redis;
  let queueName = '';
  const cli = (args: string[], env: Record<string, string> = {}) => {
    const p = new Proc(process.execPath, ['--import', 'tsx', cliPath, ...args], env);
    started.push(p);
    return p;
  };
  /** Every key of the database with its type and a dump of its value (to see that nothing of it changed). */
  async function snapshot(): Promise<Record<string, string>> {
    const all: Record<string, string> = {};
    for (const key of (await client.keys('*')).sort()) all[key] = `${await client.type(key)} ${(await client.dumpBuffer(key))?.toString('hex')} ttl ${await client.pttl(key)}`;
    return all;
  }
  beforeAll(async () => {
    const { queueNameOf } = await import('../lib/checkpoint/queue-keys.js');
    const { packageVersion } = await import('../lib/core/package-manifest.js');
    queueName = queueNameOf(packageVersion());
  });
  beforeEach(async () => {
    port = await freePort();
    url = `redis://127.0.0.1:${port}`;
    redis = new Proc('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
    started.push(redis);
    await redis.waitFor(/Ready to accept connections/, 10_000, 'out');
    const { Redis } = await import('ioredis');
    client = new Redis({ port, host: '127.0.0.1', lazyConnect: true });
    await client.connect();
  });
  afterEach(async () => {
    client.disconnect();
    for (const p of started) p.kill('SIGKILL');
    await Promise.all(started.map((p) => p.exited));
    started.length = 0;
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const advice = `Give fp4kit a key prefix of its own \\(--prefix fp4kit, on the producer and every worker\\) or another database \\(redis://127\\.0\\.0\\.1:\\d+/1\\)`;

  it.each([
    ['meta', 'a string', async (k: string) => { await client.set(k, 'not a hash'); }, 'a string, where BullMQ keeps a hash'],
    ['wait', 'a hash', async (k: string) => { await client.hset(k, 'owner', 'someone else'); }, 'a hash, where BullMQ keeps a list'],
    ['id', 'a string that is not a counter', async (k: string) => { await client.set(k, 'their-session-token'); }, 'a string that is not a number, where BullMQ keeps a counter or timestamp'],
    ['meta', 'a hash of theirs', async (k: string) => { await client.hset(k, 'version', '3.1', 'owner', 'someone else'); }, `a hash whose version is "3.1", not BullMQ's`],
  ] as const)('%s as %s: worker and producer exit 1 naming the key, and touch nothing', async (suffix, _what, make, problem) => {
    const key = `bull:${queueName}:${suffix}`;
    await make(key);
    const before = await snapshot();
    const w = cli(['worker', '--queue', url]);
    const p = cli(['quantize', tiny, '-o', join(root, `out-${suffix}`), '--format', 'mxfp4', '--queue', url]);
    expect(await w.exited, w.err).toBe(1);
    expect(await p.exited, p.err).toBe(1);
    const said = new RegExp(`^fp4kit: Redis at redis://127\\.0\\.0\\.1:\\d+ holds ${key.replace(/\./g, '\\.')}, ${problem.replace(/[.()]/g, '\\$&')}: not a key of fp4kit's queue \\(someone else's data under its names\\), and fp4kit leaves it alone\\. ${advice}\n$`);
    expect(w.err).toMatch(said); // one line, nothing else (no BullMQ error lines)
    expect(p.err).toMatch(said);
    expect(await snapshot()).toEqual(before); // theirs untouched, nothing of fp4kit's added
    expect(existsSync(join(root, `out-${suffix}.parts`))).toBe(false); // the producer stopped before planning
  }, 60_000);

  it('with --prefix, a run completes beside their key in the same database; their key is untouched', async () => {
    const theirs = `bull:${queueName}:meta`;
    await client.set(theirs, 'not a hash');
    const w = cli(['worker', '--queue', url, '--prefix', 'team-a']);
    await w.waitFor(/waiting for jobs on redis:\/\/\S+ \(queue fp4kit-checkpoint@\S+, prefix team-a\)/, 30_000);
    const out = join(root, 'prefixed');
    const p = cli(['quantize', tiny, '-o', out, '--format', 'mxfp4', '--queue', url, '--prefix', 'team-a']);
    expect(await p.exited, p.err).toBe(0);
    expect(existsSync(join(out, 'fp4kit-summary.json'))).toBe(true);
    expect(await client.get(theirs)).toBe('not a hash');
    const keys = await client.keys('*');
    expect(keys.filter((k) => k.startsWith('bull:'))).toEqual([theirs]); // nothing of the run under BullMQ's default prefix
    expect(keys.some((k) => k.startsWith(`team-a:${queueName}:`))).toBe(true);
    w.kill('SIGTERM');
    expect(await w.exited).toBe(0);
  }, 120_000);

  // Review 27: the key's paragraph was said twice, by the worker's log and as the exit error.
  it('a key of theirs made while a worker runs: the worker stops at its WRONGTYPE reply, naming the key (once), exit 1', async () => {
    const w = cli(['worker', '--queue', url]);
    await w.waitFor(/waiting for jobs/, 30_000);
    const key = `bull:${queueName}:marker`; // a sorted set, which the idle worker waits on
    await client.set(key, 'theirs');
    expect(await w.exited, w.err).toBe(1);
    const said = `Redis at ${url} holds ${key}, a string, where BullMQ keeps a zset: not a key of fp4kit's queue`;
    expect(w.err).toContain(`${said}`);
    expect(w.err.split(said).length - 1, w.err).toBe(1); // the exit's one line
    expect(w.err).toMatch(new RegExp(`^fp4kit: ${said.replace(/[.()]/g, '\\$&')}`, 'm'));
    expect(w.err).toMatch(/^fp4kit: worker \d+: someone else's key under the queue's names: this worker stops taking jobs \(the error it exits with names the key\)$/m);
    expect(w.err).not.toMatch(/BullMQ: .*WRONGTYPE/);
    expect(await client.get(key)).toBe('theirs');
  }, 60_000);

  // Review 27: the producer did not say that its run's jobs stay queued and its folder stays, as its other errors while it waits do.
  it('a key of theirs made while a producer waits: it stops at its WRONGTYPE reply, naming the key and what became of the run, exit 1', async () => {
    const out = join(root, 'waiting');
    const p = cli(['quantize', tiny, '-o', out, '--format', 'mxfp4', '--queue', url], { FP4KIT_TEST_QUEUE_CHECK_MS: '300' });
    await p.waitFor(/0%/, 30_000); // queued, no worker: waiting
    const key = `bull:${queueName}:completed`; // read by the producer's check on its run
    await client.hset(key, 'owner', 'someone else');
    expect(await p.exited, p.err).toBe(1);
    const where = `${out}.parts/run-[0-9a-f]+`;
    expect(p.err).toMatch(new RegExp(`^fp4kit: Redis at redis://127\\.0\\.0\\.1:\\d+ holds ${key.replace(/\./g, '\\.')}, a hash, where BullMQ keeps a zset: not a key of fp4kit's queue .*${advice}\\. `
      + `This run's jobs stay queued under bull:${queueName.replace(/[.@]/g, '\\$&')}, and ${where} holds its folder: once that key is gone, workers \\(started again\\) finish them and the output appears when the merge job has run; `
      + `to give the run up instead, delete ${where} \\(not the parts folder around it: a worker that takes one of the run's jobs then fails it as stale\\)$`, 'm'));
    expect(readdirSync(partsFolder(out)).filter((n) => n.startsWith('run-'))).toHaveLength(1); // the run's folder stays
    expect(await client.hgetall(key)).toEqual({ owner: 'someone else' });
  }, 60_000);
});
