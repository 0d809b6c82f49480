// The distributed commands of the fp4kit command line (docs/distributed.md): `quantize --shard i/n`
// (one part; the last part to finish merges), `quantize --queue redis://...` (enqueue every part on
// BullMQ and wait), `worker --queue redis://...` and `merge <out>`. lib/checkpoint/cli.ts parses the common
// quantize flags and hands over here.

import { parseArgs } from 'node:util';
import { setBackend, type BackendName } from '../index.js';
import type { CheckpointOptions, CheckpointProgress, CheckpointSummary } from './quantize-checkpoint.js';
import { MAX_PARTS, mergeCheckpointParts, parseShardSpec, PartAlreadyMergedError, runCheckpointPart, serializeOptions, type PartResult, type ShardSpec } from './checkpoint-parts.js';
import { redisOptions, shownUrl } from './queue-url.js';
import { checkPrefix, DEFAULT_PREFIX } from './queue-keys.js';
import { repeatedFlag } from './cli-flags.js';
// queue.js (BullMQ) is imported where a queue is used: loading it costs ~0.2 s of every command.
const queue = () => import('./queue.js');

/** A bad flag of `worker` or `merge` (lib/checkpoint/cli.ts prints it with the usage, exit code 2). */
export class FlagError extends Error {}

function flagErrors<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw new FlagError((err as Error).message);
  }
}

export interface DistributedFlags {
  shard?: ShardSpec;
  queue?: string;
  parts?: number;
  /** BullMQ's key prefix (--prefix), with --queue. */
  prefix?: string;
}

/** Check --shard, --queue, --parts and --prefix together; throws RangeError naming the flag. */
export function parseDistributedFlags(v: { shard?: string; queue?: string; parts?: string; prefix?: string }): DistributedFlags | null {
  if (v.queue === undefined && v.prefix !== undefined) throw new RangeError('--prefix applies to --queue only');
  if (v.shard === undefined && v.queue === undefined) {
    if (v.parts !== undefined) throw new RangeError('--parts applies to --queue only');
    return null;
  }
  if (v.shard !== undefined && v.queue !== undefined) throw new RangeError('--shard and --queue exclude each other: --queue splits the run into parts itself');
  if (v.shard !== undefined) {
    if (v.parts !== undefined) throw new RangeError('--parts applies to --queue only (with --shard, n in i/n is the number of parts)');
    return { shard: parseShardSpec(v.shard) };
  }
  redisOptions(v.queue!);
  if (v.prefix !== undefined) checkPrefix(v.prefix);
  let parts: number | undefined;
  if (v.parts !== undefined) {
    // Decimal digits only: Number() also takes '0x10', '1e3' and ' 8 '.
    parts = /^\d{1,6}$/.test(v.parts) ? Number(v.parts) : NaN;
    if (!(parts >= 1 && parts <= MAX_PARTS)) throw new RangeError(`--parts: expected a whole number of parts, 1..${MAX_PARTS}, got ${JSON.stringify(v.parts)}`);
  }
  return { queue: v.queue, parts, prefix: v.prefix };
}

const say = (line: string) => process.stderr.write(`fp4kit: ${line}\n`);

/**
 * Run the distributed form of `quantize`. Returns the merged summary, or null when this was a
 * --shard part and other parts are still to finish (a line says so).
 */
export async function quantizeDistributed(
  input: string, output: string, options: CheckpointOptions, flags: DistributedFlags,
  onProgress: (p: CheckpointProgress) => void, signal: AbortSignal,
): Promise<CheckpointSummary | null> {
  if (flags.queue !== undefined) return (await queue()).quantizeOnQueue(flags.queue, input, output, options, { parts: flags.parts, prefix: flags.prefix, onProgress, log: say, signal });
  const { index, count } = flags.shard!;
  let result: PartResult;
  try {
    result = await runCheckpointPart({ input, output, options: serializeOptions(options), part: index, parts: count }, onProgress, signal, { autoMerge: true });
  } catch (err) {
    if (!(err instanceof PartAlreadyMergedError)) throw err;
    // Status, not a result: stderr, so that stdout holds only results (the summary, --json).
    process.stderr.write(`fp4kit: ${err.message}\n`); // not a failure: the output is complete
    return null;
  }
  const { record, merged } = result;
  if (merged) return merged;
  const files = record.files.map((f) => f.name);
  process.stderr.write(
    `fp4kit: ${output}: part ${index}/${count} wrote ${files.length === 0 ? 'no shard (more parts than input shards)' : files.join(', ')}\n` +
      `  the last part to finish writes the index, config and summary; or run \`fp4kit merge ${output}\` once every part is done\n`,
  );
  return null;
}

/** What an interrupted producer tells: the queued jobs are the workers' now. */
export const QUEUE_DETACHED = 'interrupted; the queued jobs stay in the queue and the workers finish them (the output appears when the merge job has run)';

export async function runWorker(argv: string[]): Promise<number> {
  const { values: v, positionals, tokens } = flagErrors(() => parseArgs({
    args: argv, allowPositionals: true, tokens: true,
    options: { queue: { type: 'string' }, prefix: { type: 'string' }, 'lock-duration': { type: 'string' }, 'stalled-interval': { type: 'string' }, backend: { type: 'string' } },
  }));
  const repeated = repeatedFlag(tokens);
  if (repeated !== null) throw new FlagError(repeated);
  if (positionals.length > 0) throw new FlagError(`worker takes no positional argument, got ${positionals.join(' ')}`);
  if (typeof v.queue !== 'string') throw new FlagError('worker needs --queue redis://host:port');
  flagErrors(() => redisOptions(v.queue!));
  if (v.prefix !== undefined) flagErrors(() => checkPrefix(v.prefix as string));
  const ms = (flag: string, s: string | boolean | undefined) => {
    if (typeof s !== 'string') return undefined;
    // Decimal digits only, within what a Node timer holds (2^31 − 1 ms: a larger one fires after 1 ms,
    // and a worker would poll Redis ~1000 times a second).
    const x = /^\d{1,10}$/.test(s) ? Number(s) : NaN;
    if (!(x >= 100 && x <= 2 ** 31 - 1)) throw new FlagError(`${flag}: expected milliseconds (a whole number in 100..2147483647), got ${JSON.stringify(s)}`);
    return x;
  };
  const settings = { lockDuration: ms('--lock-duration', v['lock-duration']), stalledInterval: ms('--stalled-interval', v['stalled-interval']) };
  if (typeof v.backend === 'string') {
    if (!['native', 'wasm', 'js'].includes(v.backend)) throw new FlagError('--backend: expected native, wasm or js');
    setBackend(v.backend as BackendName);
  }
  const worker = await (await queue()).startQueueWorker(v.queue, { ...settings, prefix: v.prefix, log: (line) => say(`worker ${process.pid}: ${line}`) });
  const { name, prefix } = worker.place;
  // The queue named: workers take only their own fp4kit version's runs (docs/distributed.md).
  say(`worker ${process.pid}: waiting for jobs on ${shownUrl(v.queue)} (queue ${name}${prefix === DEFAULT_PREFIX ? '' : `, prefix ${prefix}`})`);
  let signals = 0;
  const onSignal = () => {
    signals++;
    if (signals === 1) {
      say(`worker ${process.pid}: stopping after the current job (again to put it back in the queue now)`);
      void worker.stop();
    } else if (signals === 2) {
      void worker.stop(true);
    } else {
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await worker.closed; // rejects when this machine cannot see a run's files (the message says what)
    // Stopped while Redis was gone: BullMQ's connections keep retrying and would keep the process alive.
    if (worker.stoppedWithoutRedis()) setTimeout(() => process.exit(0), 100);
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export async function runMerge(argv: string[], print: (s: CheckpointSummary) => void): Promise<number> {
  const { values: v, positionals } = flagErrors(() => parseArgs({ args: argv, allowPositionals: true, options: { unlock: { type: 'boolean' }, json: { type: 'boolean' } } }));
  if (positionals.length !== 1) throw new FlagError('merge takes one output folder');
  const summary = (await mergeCheckpointParts(positionals[0], { unlock: v.unlock === true }))!;
  if (v.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  else print(summary);
  return 0;
}
