// Distributed checkpoint quantization on an existing job queue: BullMQ on Redis. The producer
// (`fp4kit quantize ... --queue redis://host:port`) plans the parts (lib/checkpoint/checkpoint-parts.ts) and
// adds one BullMQ flow: a `merge` job whose children are the `part` jobs, so BullMQ itself runs the
// merge once every part has completed. Workers (`fp4kit worker --queue ...`) take jobs, report
// progress with job.updateProgress, and BullMQ's stalled-job check hands the job of a worker that
// died to another one. A part writes its output shards to temporary names and renames them when
// complete, so a retried job never leaves a torn file under a final name. Each fp4kit version has
// a queue of its own, under BullMQ's key prefix (--prefix), checked for someone else's keys before
// BullMQ is let near them (queue-keys.ts).

import { FlowProducer, Job as BullJob, Queue, QueueEvents, UnrecoverableError, WaitingError, Worker, type Job, type RedisOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { SUMMARY_NAME, type CheckpointOptions, type CheckpointProgress, type CheckpointSummary } from './quantize-checkpoint.js';
import {
  MachineSetupError, mergeCheckpointParts, PartAlreadyMergedError, planRun, runCheckpointPart, runFolder, runningVersion, runPlanPath, serializeOptions,
  TEST_VERSION_ENV, writeRunPlan, type PartRequest,
} from './checkpoint-parts.js';
import { SafetensorsError } from './safetensors/header.js';
import { describe } from '../core/validate.js';
import { isInputFingerprint } from './input-fingerprint.js';
import { NotQueuedError, redisOptions, shownUrl } from './queue-url.js';
import {
  checkPrefix, DEFAULT_PREFIX, explainWrongType, findForeignKey, ForeignKeyError, isWrongType, otherVersionWorkers, queueNameOf, type QueuePlace,
} from './queue-keys.js';

export { NotQueuedError, redisOptions, shownUrl, queueNameOf, ForeignKeyError, DEFAULT_PREFIX, TEST_VERSION_ENV };

// The version a producer or worker runs is runningVersion() (checkpoint-parts.ts: FP4KIT_TEST_VERSION
// lets a test run two versions on one Redis), the one its plans and part records carry: its queue
// is that version's.

/** The queue of `version` at `url` under `prefix` (checked: the API takes it as --prefix does). */
function queuePlace(url: string, prefix: string | undefined, version: string): QueuePlace {
  return { shownUrl: shownUrl(url), prefix: checkPrefix(prefix ?? DEFAULT_PREFIX), name: queueNameOf(version) };
}

/** The flag that names a non-default prefix, for commands a message suggests. */
const prefixFlag = (place: QueuePlace) => (place.prefix === DEFAULT_PREFIX ? '' : ` --prefix ${place.prefix}`);

/** Tries of a job that throws (an I/O error, say); a worker that dies does not use one up (see maxStalledCount). */
const ATTEMPTS = 3;

interface PartJobData extends PartRequest {
  kind: 'part';
  /** The producer's fp4kit version: a worker running another refuses the run's jobs and stops. */
  fp4kit: string;
}
interface MergeJobData {
  kind: 'merge';
  fp4kit: string;
  output: string;
  run: string;
  /** Epoch ms of the plan: a retried merge whose earlier attempt published the output succeeds. */
  plannedAt: number;
}
type JobData = PartJobData | MergeJobData;

/**
 * A job's data as the producer writes it; anything else fails at once (UnrecoverableError, not
 * retried). A part job must carry its run key, fingerprint and samples: without the key a worker
 * could not check the run's plan, and would create folders wherever the job points.
 */
function checkJobData(data: unknown): JobData {
  const bad = (problem: string) => new UnrecoverableError(`not a job fp4kit's producer wrote: ${problem}`);
  if (data === null || typeof data !== 'object') throw bad(`its data is ${describe(data)}`);
  const d = data as Record<string, unknown>;
  if (typeof d.fp4kit !== 'string') throw bad(`a job needs the producer's fp4kit version, got ${describe(d.fp4kit)} (a producer of an older fp4kit?)`);
  if (d.kind === 'merge') {
    if (typeof d.output !== 'string' || typeof d.run !== 'string' || typeof d.plannedAt !== 'number') throw bad('a merge job needs output, run and plannedAt');
    return data as MergeJobData;
  }
  if (d.kind !== 'part') throw bad(`kind ${describe(d.kind)} (expected 'part' or 'merge')`);
  for (const key of ['fingerprint', 'samples', 'options'] as const) {
    if (d[key] === null || typeof d[key] !== 'object') throw bad(`a part job needs ${key} (an object), got ${describe(d[key])}`);
  }
  if (typeof d.run !== 'string') throw bad(`a part job needs its run key, got ${describe(d.run)}`);
  if (!isInputFingerprint(d.fingerprint)) throw bad('a part job\'s fingerprint needs { digest, files: [{ name, bytes, sha256 }] }');
  return data as PartJobData;
}

/** Progress a part job reports (job.updateProgress). */
interface PartProgress {
  bytesDone: number;
  tensorsDone: number;
}

/** A connection of its own that does not retry (for checks: a failure is an answer, not a wait). */
const probeOf = (options: RedisOptions) => new Redis({ ...options, lazyConnect: true, retryStrategy: () => null, connectTimeout: 5000, maxRetriesPerRequest: 1 });

/**
 * Connect once without retrying, so an unreachable Redis is one clear error instead of a silent
 * wait; then check, reading only, that no key under the queue's names is someone else's
 * (ForeignKeyError): before any BullMQ object exists, so nothing of theirs is written to.
 */
async function checkRedis(url: string, options: RedisOptions, place: QueuePlace): Promise<void> {
  const probe = probeOf(options);
  let cause: Error | null = null; // the socket error (ECONNREFUSED...) says more than connect()'s "Connection is closed"
  probe.on('error', (err: Error) => { cause ??= err; });
  try {
    await probe.connect();
    await probe.ping();
  } catch (err) {
    throw new Error(`cannot reach Redis at ${shownUrl(url)} (${(cause ?? (err as Error)).message}); start redis-server there or fix --queue`);
  }
  try {
    // ioredis selects the database on connect and only logs a failure: ask again, to hear it.
    await probe.select(options.db ?? 0);
  } catch (err) {
    probe.disconnect();
    throw new Error(`Redis at ${shownUrl(url)} refuses database ${options.db ?? 0} (${(err as Error).message}); fix the /db part of --queue`);
  }
  try {
    const foreign = await findForeignKey(probe, place);
    if (foreign) throw foreign;
  } finally {
    probe.disconnect();
  }
}

/** A WRONGTYPE reply traced to the key behind it (ForeignKeyError), on a connection of its own. */
async function traceWrongType(options: RedisOptions, place: QueuePlace, err: Error): Promise<ForeignKeyError> {
  const probe = probeOf(options);
  probe.on('error', () => {});
  await probe.connect().catch(() => {}); // no answer: the reply itself is said
  try {
    return await explainWrongType(probe, place, err);
  } finally {
    probe.disconnect();
  }
}

/** Test-only: milliseconds between the producer's checks that Redis still holds its run (default 5000;
 *  Redis silent for 12 checks in a row is an error). */
export const TEST_QUEUE_CHECK_ENV = 'FP4KIT_TEST_QUEUE_CHECK_MS';

/** What the producer's watch found (watchRun): said as it is, not as a failed part. */
class RunWatchError extends Error {}

interface RunWatch {
  queue: Queue;
  /** The merge job's id. */
  jobId: string;
  url: string;
  connection: RedisOptions;
  place: QueuePlace;
  /** The producer's fp4kit version: its workers are that version's. */
  version: string;
  /** The run's folder, for the message that asks for the command again. */
  where: string;
  interval: number;
  log?: (line: string) => void;
}

/**
 * The producer's watch on its run while it waits: every `interval` ms it asks Redis for the merge
 * job's state. A job Redis no longer knows (Redis restarted without persistence, the queue
 * emptied), a Redis that has not answered for 12 intervals and a WRONGTYPE reply (someone else's
 * key under the queue's names) are errors saying so — not a wait for events that will never come.
 */
function watchRun({ queue, jobId, url, connection, place, version, where, interval, log }: RunWatch): { failure: Promise<never>; stop(): void } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const failure = new Promise<never>((_resolve, reject) => {
    let lastAnswer = Date.now();
    let workerSeen = Date.now();
    let told = false;
    const tick = async () => {
      try {
        const answer = <T>(p: Promise<T>) => Promise.race([p, new Promise<never>((_r, fail) => setTimeout(() => fail(new Error('no answer')), interval).unref())]);
        const state = await answer(queue.getJobState(jobId));
        lastAnswer = Date.now();
        // Workers stop on a setup problem (not seeing the shared files), and take jobs of their own
        // fp4kit version only: with none of this version the run waits for one, which is said once
        // (the wait goes on: one may come). (CLIENT LIST may be refused by a managed Redis: then
        // nothing is said.)
        const workers = await answer(queue.getWorkersCount()).catch(() => 1);
        if (workers > 0) workerSeen = Date.now();
        else if (!told && Date.now() - workerSeen >= 12 * interval && !stopped) {
          told = true;
          const probe = probeOf(connection);
          probe.on('error', () => {});
          const others = await answer(probe.connect().then(() => otherVersionWorkers(probe, place.prefix, version))).catch(() => [] as string[]);
          probe.disconnect();
          log?.(`no worker of fp4kit ${version} has been connected to Redis at ${shownUrl(url)}${prefixFlag(place) ? ` under the prefix ${place.prefix}` : ''} for ${Math.round((Date.now() - workerSeen) / 1000)} s; the run waits for one ` +
            `(start \`fp4kit worker --queue …${prefixFlag(place)}\` of fp4kit ${version} on a machine that sees the shared files)` +
            (others.length > 0 ? `; connected are workers of fp4kit ${others.join(', ')}, which take only their own version's runs` : ''));
        }
        if (state === 'unknown' && !stopped) {
          reject(new RunWatchError(`Redis at ${shownUrl(url)} no longer holds this run's jobs (restarted without persistence, or the queue was emptied); run the command again (it quantizes every part again; ${where} holds this run's folder until then)`));
          return;
        }
      } catch (err) {
        if (isWrongType(err) && !stopped) {
          reject(await traceWrongType(connection, place, err as Error));
          return;
        }
        if (Date.now() - lastAnswer >= 12 * interval && !stopped) {
          reject(new RunWatchError(`Redis at ${shownUrl(url)} has not answered for ${Math.round((Date.now() - lastAnswer) / 1000)} s (${(err as Error).message}); the queued jobs finish when it is back, and the output appears when the merge job has run: run the command again to wait for it`));
          return;
        }
      }
      if (!stopped) timer = setTimeout(() => void tick(), interval);
    };
    timer = setTimeout(() => void tick(), interval);
  });
  failure.catch(() => {});
  return { failure, stop() { stopped = true; clearTimeout(timer); } };
}

/**
 * Settles when job `id` completes (or rejects when it fails), as BullMQ's Job.waitUntilFinished,
 * whose check of a job finished before its listeners were set runs in an async Promise executor:
 * an error there (a WRONGTYPE reply from someone else's key) was an unhandled rejection that ended
 * the producer with a raw stack trace. Here it rejects this Promise.
 */
function untilFinished(queue: Queue, events: QueueEvents, id: string): Promise<void> {
  const emitter = events as unknown as NodeJS.EventEmitter; // its per-job events are not in its typed names
  return new Promise<void>((resolve, reject) => {
    const stop = () => {
      emitter.off(`completed:${id}`, onCompleted);
      emitter.off(`failed:${id}`, onFailed);
    };
    const onCompleted = () => { stop(); resolve(); };
    const onFailed = ({ failedReason }: { failedReason?: string }) => { stop(); reject(new Error(failedReason ?? 'failed')); };
    emitter.on(`completed:${id}`, onCompleted);
    emitter.on(`failed:${id}`, onFailed);
    // A job that finished before the listeners were set: asked once, once the events are being read.
    events.waitUntilReady().then(() => queue.getJobState(id)).then(async (state) => {
      if (state === 'completed') onCompleted();
      else if (state === 'failed') onFailed({ failedReason: (await BullJob.fromId(queue, id))?.failedReason });
    }).catch((err: unknown) => { stop(); reject(err); });
  });
}

export interface EnqueueOptions {
  /** Number of parts (jobs); default one per input shard, at most one per input shard. */
  parts?: number;
  /** BullMQ's key prefix (--prefix); default 'bull'. Workers must be given the same. */
  prefix?: string;
  onProgress?: (p: CheckpointProgress) => void;
  /** One line per event worth telling (a stalled or failed part). */
  log?: (line: string) => void;
  signal?: AbortSignal;
}

/**
 * Plan the run, enqueue it as one BullMQ flow and wait for the merge. Every machine (this one and
 * the workers) must see `input` and `outDir` at the same paths. Returns the merged summary.
 */
export async function quantizeOnQueue(url: string, input: string, outDir: string, options: CheckpointOptions, eo: EnqueueOptions = {}): Promise<CheckpointSummary> {
  serializeOptions(options, 'quantizeOnQueue'); // the options are checked before Redis is asked
  const connection = redisOptions(url);
  const version = runningVersion(); // the plan's (planRun records it), and so the run's queue
  const place = queuePlace(url, eo.prefix, version);
  await checkRedis(url, connection, place);
  const started = performance.now();
  const plan = await planRun(input, outDir, options, eo.parts, { perShardAtMost: true, samples: true, fn: 'quantizeOnQueue' });
  const count = plan.parts.length;
  if (eo.signal?.aborted) throw new NotQueuedError(); // stopped while planning: nothing is enqueued
  const written = await writeRunPlan(plan);
  if (eo.signal?.aborted) {
    await written.withdraw();
    throw new NotQueuedError();
  }

  const bull = { connection, prefix: place.prefix };
  const events = new QueueEvents(place.name, bull);
  const flows = new FlowProducer(bull);
  const queue = new Queue(place.name, bull);
  // Connection errors surface through the calls below (ioredis reconnects); a WRONGTYPE reply
  // (someone else's key under the queue's names, made after the check) ends the wait, said.
  let foreign: (err: Error) => void = () => {};
  const foreignKey = new Promise<never>((_resolve, reject) => {
    let tracing = false;
    foreign = (err) => {
      if (tracing || !isWrongType(err)) return;
      tracing = true;
      void traceWrongType(connection, place, err).then(reject);
    };
  });
  foreignKey.catch(() => {});
  events.on('error', foreign);
  flows.on('error', foreign);
  queue.on('error', foreign);
  try {
    const tensorsOf = plan.partTensors;
    const keep = { removeOnComplete: { age: 7 * 24 * 3600 }, removeOnFail: { age: 7 * 24 * 3600 } };
    let tree: Awaited<ReturnType<FlowProducer['add']>>;
    try {
      await events.waitUntilReady();
      tree = await flows.add({
        name: 'merge', queueName: place.name, data: { kind: 'merge', fp4kit: plan.fp4kit, output: plan.output, run: plan.run, plannedAt: Date.now() } satisfies MergeJobData,
        opts: { attempts: ATTEMPTS, backoff: { type: 'fixed', delay: 1000 }, ...keep },
        children: plan.parts.map((_names, part) => ({
          name: 'part', queueName: place.name,
          data: {
            kind: 'part', fp4kit: plan.fp4kit, input: plan.input, output: plan.output, options: plan.options, part, parts: count, run: plan.run,
            // The digest alone: workers read the whole fingerprint from the run's plan.json.
            fingerprint: { digest: plan.fingerprint.digest, files: [] }, samples: Object.fromEntries(plan.parts[part].map((n) => [n, plan.samples![n]])),
          } satisfies PartJobData,
          opts: { attempts: ATTEMPTS, backoff: { type: 'fixed', delay: 1000 }, failParentOnFailure: true, ...keep },
        })),
      });
    } catch (err) {
      await written.withdraw().catch(() => {}); // nothing of this run is in the queue
      throw isWrongType(err) ? await traceWrongType(connection, place, err as Error) : err;
    }
    const parent = tree.job;
    const partOf = new Map((tree.children ?? []).map((c) => [c.job.id!, (c.job.data as PartJobData).part]));
    const done = new Map<string, PartProgress>();
    const report = () => {
      let bytesDone = 0;
      let tensorsDone = 0;
      for (const p of done.values()) {
        bytesDone += p.bytesDone;
        tensorsDone += p.tensorsDone;
      }
      eo.onProgress?.({ phase: 'tensors', sharedScaleBytesDone: 0, sharedScaleBytesTotal: 0, tensor: '', tensorsDone, tensorCount: plan.tensorCount, bytesDone, bytesTotal: plan.inputBytes, elapsedSeconds: (performance.now() - started) / 1000 });
    };
    const label = (id: string) => `part ${partOf.get(id)}/${count}`;
    events.on('progress', ({ jobId, data }) => {
      if (partOf.has(jobId) && typeof data === 'object' && data !== null) {
        done.set(jobId, data as PartProgress);
        report();
      }
    });
    events.on('completed', ({ jobId }) => {
      const part = partOf.get(jobId);
      if (part === undefined) return;
      done.set(jobId, { bytesDone: plan.partBytes[part], tensorsDone: tensorsOf[part] });
      report();
    });
    events.on('stalled', ({ jobId }) => {
      done.delete(jobId); // it starts again from zero
      if (partOf.has(jobId) || jobId === parent.id) eo.log?.(`${partOf.has(jobId) ? label(jobId) : 'merge'}: its worker stopped answering; BullMQ put the job back in the queue`);
    });
    let firstFailure: string | null = null; // the part that failed for good, which failed the merge
    events.on('failed', ({ jobId, failedReason }) => {
      if (!partOf.has(jobId)) return;
      firstFailure ??= `${label(jobId)}: ${failedReason}`;
      eo.log?.(`${label(jobId)} failed: ${failedReason}`);
    });
    // A failed attempt that BullMQ retries is announced as 'delayed' (the backoff); its reason is on the job.
    events.on('delayed', ({ jobId }) => {
      if (!partOf.has(jobId)) return;
      done.delete(jobId);
      BullJob.fromId(queue, jobId).then((job) => {
        if (job?.failedReason) eo.log?.(`${label(jobId)} failed (attempt ${job.attemptsMade} of ${ATTEMPTS}), retrying: ${job.failedReason}`);
      }, () => {});
    });
    report();
    const abort = new Promise<never>((_resolve, reject) => {
      if (eo.signal?.aborted) reject(eo.signal.reason);
      eo.signal?.addEventListener('abort', () => reject(eo.signal!.reason), { once: true });
    });
    abort.catch(() => {});
    const watch = watchRun({
      queue, jobId: parent.id!, url, connection, place, version: plan.fp4kit, where: runFolder(plan.output, plan.run),
      interval: Number(process.env[TEST_QUEUE_CHECK_ENV] ?? 5000), log: eo.log,
    });
    try {
      await Promise.race([untilFinished(queue, events, parent.id!), abort, watch.failure, foreignKey]);
    } catch (err) {
      if (eo.signal?.aborted) throw err;
      if (err instanceof RunWatchError) throw err; // said as it is
      const where = runFolder(plan.output, plan.run);
      if (err instanceof ForeignKeyError) throw stillQueued(err, place, where);
      if (isWrongType(err)) throw stillQueued(await traceWrongType(connection, place, err as Error), place, where);
      throw new Error(`the queued run failed: ${firstFailure ?? (await failureReason(queue, partOf, label, parent, err as Error))}`);
    } finally {
      watch.stop();
    }
    return JSON.parse(await readFile(join(plan.output, SUMMARY_NAME), 'utf8')) as CheckpointSummary;
  } finally {
    // Closing waits for Redis; one that is gone must not keep the process (the connections are
    // dropped instead, and not awaited: a disconnect from a Redis that is gone never settles, and
    // with no timer left the process ended there, exit code 0, before the error reached the CLI).
    const closing = Promise.allSettled([events.close(), flows.close(), queue.close()]);
    const gone = await Promise.race([closing.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 3000).unref())]);
    if (gone) void Promise.allSettled([events.disconnect(), flows.disconnect(), queue.disconnect()]);
  }
}

/**
 * Someone else's key met while the producer waits for its run: the run's jobs stay in the queue
 * (the producer cannot remove them from a queue that holds someone else's keys) and its folder
 * stays; said, with what to do, as the watch's errors say it.
 */
function stillQueued(foreign: ForeignKeyError, place: QueuePlace, where: string): ForeignKeyError {
  return Object.assign(new ForeignKeyError(place, ''), {
    message: `${foreign.message}. This run's jobs stay queued under ${place.prefix}:${place.name}, and ${where} holds its folder: `
      + 'once that key is gone, workers (started again) finish them and the output appears when the merge job has run; '
      + `to give the run up instead, delete ${where} (not the parts folder around it: a worker that takes one of the run's jobs then fails it as stale)`,
  });
}

/**
 * Whether a job's error would be the same on any machine, so retrying it elsewhere is pointless:
 * bad input (a malformed file, a bad option, a job of the wrong shape). Running out of memory is
 * not (another worker may have more, or less load): that is retried.
 */
export function failsEverywhere(err: unknown): boolean {
  if (err instanceof RangeError && /out of memory|cannot allocate|allocation failed/.test(err.message)) return false;
  return err instanceof SafetensorsError || err instanceof RangeError || err instanceof TypeError;
}


/**
 * The reason of the part that failed the merge. The parent's failure may come before the part's
 * 'failed' event (which names it), and getFailedChildrenValues holds nothing for a child that
 * fails its parent: the parts are asked one by one (the message was BullMQ's "child … failed").
 */
async function failureReason(queue: Queue, partOf: Map<string, number>, label: (id: string) => string, parent: Job, err: Error): Promise<string> {
  const search = async (): Promise<string> => {
    // All parts at once (one round trip each, in parallel: thousands of parts take one wait).
    const reasons = await Promise.all([...partOf.keys()].map(async (id) => {
      const job = await BullJob.fromId(queue, id);
      return job && (await job.getState()) === 'failed' && job.failedReason ? `${label(id)}: ${job.failedReason}` : null;
    }));
    const found = reasons.find((r) => r !== null);
    if (found) return found;
    const first = Object.values(await parent.getFailedChildrenValues())[0];
    return first ?? err.message;
  };
  // A Redis that stops answering now must not hold the producer: the parent's own reason then.
  const timeout = new Promise<string>((r) => setTimeout(() => r(err.message), 10_000).unref());
  return Promise.race([search().catch(() => err.message), timeout]);
}

/** How long an idle worker's stop waits for Redis before it stops without it. */
const IDLE_STOP_MS = 5000;

export interface WorkerSettings {
  /** Milliseconds a job's lock lives without renewal; a dead worker's job is retried after about this long. Default 30000. */
  lockDuration?: number;
  /** Milliseconds between checks for stalled jobs. Default 30000. */
  stalledInterval?: number;
  /** How many times a job may be taken back from a dead worker before it fails. Default 3. */
  maxStalledCount?: number;
  /** BullMQ's key prefix (--prefix); default 'bull'. The producer must be given the same. */
  prefix?: string;
  log?: (line: string) => void;
}

export interface QueueWorker {
  /** Resolves when the worker has stopped: after stop(), or when it met a machine setup problem (rejects then). */
  closed: Promise<void>;
  /** Stop taking jobs and finish the current one; with `now`, abort it and put it back in the queue. */
  stop(now?: boolean): Promise<void>;
  /** Whether it stopped without Redis (idle, Redis not answering): its connections may still be trying. */
  stoppedWithoutRedis(): boolean;
  /** The queue it takes jobs from (its fp4kit version's, under its prefix). */
  place: QueuePlace;
}

/** Start a worker that takes part and merge jobs until stopped. */
export async function startQueueWorker(url: string, settings: WorkerSettings = {}): Promise<QueueWorker> {
  const connection = redisOptions(url);
  const version = runningVersion();
  const place = queuePlace(url, settings.prefix, version);
  await checkRedis(url, connection, place);
  const log = settings.log ?? (() => {});
  let setupProblem: Error | null = null;
  let stopping: 'graceful' | 'now' | null = null;
  let active = 0; // jobs this worker holds
  let worker: Worker<JobData>;
  const processor = async (job: Job<JobData>, token?: string, signal?: AbortSignal): Promise<unknown> => {
    const data = checkJobData(job.data); // anyone with access to Redis can write a job: checked before it is logged or run
    active++;
    try {
      if (data.fp4kit !== version) {
        // Each version has a queue of its own, so a producer of this version did not write this
        // job (a hand-made or edited one): it fails at once and the worker goes on. Run by this
        // version, its run's output would mix two versions' bytes.
        if (!existsSync(runPlanPath(data.output, data.run!))) {
          throw new SafetensorsError(data.output, `a job of fp4kit ${data.fp4kit} (this worker runs ${version}) whose run folder is gone: a stale job, not run`);
        }
        throw new SafetensorsError(data.output, `a job of fp4kit ${data.fp4kit} in the queue of fp4kit ${version} (this worker's): not a job this version's producer wrote (every version has a queue of its own); not run`);
      }
      if (data.kind === 'merge') {
        const summary = await mergeCheckpointParts(data.output, { unlock: true, run: data.run, plannedAt: data.plannedAt, signal });
        log(`merged ${data.output}: ${summary!.quantized} tensors quantized, ${summary!.copied} copied`);
        return { output: data.output };
      }
      const t0 = performance.now();
      let last = 0;
      const onProgress = (p: CheckpointProgress) => {
        const now = performance.now();
        if (now - last < 250 && p.tensorsDone < p.tensorCount) return;
        last = now;
        job.updateProgress({ bytesDone: p.bytesDone, tensorsDone: p.tensorsDone } satisfies PartProgress).catch(() => {});
      };
      log(`part ${data.part}/${data.parts} of ${data.output}: started (job ${job.id}, attempt ${job.attemptsStarted})`);
      const done = await runCheckpointPart(data, onProgress, signal).catch((err: unknown) => {
        if (!(err instanceof PartAlreadyMergedError)) throw err;
        log(err.message);
        return null;
      });
      if (done === null) return { part: data.part, host: hostname(), files: [] };
      const { record } = done;
      log(`part ${data.part}/${data.parts} of ${data.output}: ${record.files.length} shard(s) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      return { part: data.part, host: record.host, files: record.files.map((f) => f.name) };
    } catch (err) {
      if (stopping === 'now' && signal?.aborted && token) {
        // Shutting down: the job goes back to the queue without using up one of its attempts.
        await job.moveToWait(token);
        throw new WaitingError();
      }
      if (signal?.aborted) {
        log(`${data.kind === 'part' ? `part ${data.part}/${data.parts}` : 'merge'} of ${data.output}: abandoned (${String(signal.reason)}); another worker has it`);
        throw err;
      }
      if (err instanceof MachineSetupError) {
        // This machine cannot do any job of this run: fail this attempt (another worker retries it) and stop.
        // The reason is said once, as the error the worker exits with.
        setupProblem = err;
        log(`${data.kind === 'part' ? `part ${data.part}/${data.parts}` : 'merge'} of ${data.output}: failed on this machine; this worker stops taking jobs (the error it exits with says why)`);
        void worker.close();
        throw err;
      }
      if (failsEverywhere(err)) throw new UnrecoverableError((err as Error).message);
      throw err;
    } finally {
      active--;
    }
  };
  worker = new Worker<JobData>(place.name, processor, {
    connection, prefix: place.prefix, concurrency: 1, name: `${hostname()}:${process.pid}`,
    lockDuration: settings.lockDuration ?? 30000, stalledInterval: settings.stalledInterval ?? 30000,
    maxStalledCount: settings.maxStalledCount ?? 3,
  });
  // Lost connections (ioredis reconnects), a lock lost to another worker... A message that repeats
  // is logged once per 10 s with its count: BullMQ's loop repeats a failing command thousands of
  // times a second (an audit counted 6,073 lines in 3 s, for someone else's key, now traced below).
  let lastError = '';
  let lastLogged = 0;
  let repeats = 0;
  let tracing = false;
  worker.on('error', (err) => {
    // A WRONGTYPE reply: someone else's key under the queue's names, made since the start's check.
    // Said once, naming the key, and the worker stops (it would only fail, or write over the key).
    if (isWrongType(err)) {
      if (tracing) return;
      tracing = true;
      void traceWrongType(connection, place, err).then((foreign) => {
        setupProblem = foreign;
        // Said once, as the error the worker exits with (after its current job, if it holds one).
        log(`someone else's key under the queue's names: this worker stops taking jobs${active > 0 ? ' once its current job ends' : ''} (the error it exits with names the key)`);
        void worker.close();
      });
      return;
    }
    const now = Date.now();
    if (err.message === lastError && now - lastLogged < 10_000) {
      repeats++;
      return;
    }
    if (repeats > 0) log(`BullMQ: ${lastError} (${repeats} more times)`);
    lastError = err.message;
    lastLogged = now;
    repeats = 0;
    log(`BullMQ: ${err.message}`);
  });
  // A lost lock means BullMQ will hand the job to another worker: stop ours rather than race it.
  worker.on('lockRenewalFailed', (ids) => {
    for (const id of ids) worker.cancelJob(id, 'its lock was lost');
  });
  let withoutRedis = false;
  let stoppedWithoutRedis: () => void = () => {};
  // Listened to before the wait for Redis: a worker may close as soon as it starts (a WRONGTYPE reply).
  const closed = new Promise<void>((resolve, reject) => {
    worker.on('closed', () => (setupProblem ? reject(setupProblem) : resolve()));
    stoppedWithoutRedis = () => {
      withoutRedis = true;
      resolve();
    };
  });
  closed.catch(() => {});
  await worker.waitUntilReady();
  return {
    closed,
    place,
    stoppedWithoutRedis: () => withoutRedis,
    async stop(now = false) {
      stopping = now ? 'now' : 'graceful';
      if (now) worker.cancelAllJobs('worker stopping');
      const closing = worker.close();
      if (active > 0) return closing; // its job finishes (or goes back) first
      // Idle: nothing to finish or hand back, so a Redis that does not answer must not keep it.
      const waited = await Promise.race([closing.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), IDLE_STOP_MS).unref())]);
      if (!waited) return;
      log(`Redis does not answer; stopping without it (this worker held no job)`);
      await Promise.race([worker.disconnect(), new Promise((r) => setTimeout(r, 1000).unref())]);
      stoppedWithoutRedis();
    },
  };
}
