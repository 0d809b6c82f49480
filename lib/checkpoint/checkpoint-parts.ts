// Distributed checkpoint quantization, the plan: a checkpoint's input shards split into parts
// balanced by bytes, each part writing complete output shards under the names a single run uses
// into its run's folder `<out>.parts/run-<key>/` beside the output (one folder per run, so runs for
// the same output never touch each other's files), and a merge that, once every part is present,
// writes the index, config, side files and summary and publishes the whole output folder in one
// step as a single run does (lib/checkpoint/safetensors/output-folder.ts): the shards are hard-linked, not
// copied, into its staging folder (renamed where links are not possible), so a merge killed half
// way leaves every part in place for the next merge.
// The merged folder is byte-identical to a single-machine run (the summary's `seconds` and
// `backend` fields excepted, see docs/distributed.md). Used by `fp4kit quantize --shard i/n`,
// `fp4kit merge` and the BullMQ jobs of lib/checkpoint/queue.ts.
//
// Every machine must see the input (and the output folder) at the same path; parts and the merge
// compare what they see (lib/checkpoint/input-fingerprint.ts), so a different file under the same path is
// detected rather than silently mixed in.
//
// A run is planned once — by the queue's producer, or by the first --shard part, each leaving
// plan.json in the run's folder — with every shard's header read; a part that finds its run's plan
// opens only its own shards and the neighbours it reads for fused-group scales, and checks them
// against the plan (so a run reads O(shards) headers, not O(shards²)). The merge reads every header
// again and makes the checks of the whole input.

import { createHash } from 'node:crypto';
import { link, lstat, mkdir, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { makeFolders } from './safetensors/make-folders.js';
import { hostname } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { getBackend } from '../kernels/registry.js';
import { packageVersion } from '../core/package-manifest.js';
import {
  checkpointSideFiles, filesRead, filesToCopy, isFolderInput, quantizeCheckpoint, SUMMARY_NAME,
  type CheckpointOptions, type CheckpointProgress, type CheckpointSummary, type TensorSummary,
} from './quantize-checkpoint.js';
import { layoutByName, type Layout, type LayoutName } from './layouts/index.js';
import { closeCheckpoint, openCheckpoint, type CheckpointFiles } from './safetensors/checkpoint-files.js';
import { SafetensorsFile } from './safetensors/read.js';
import { checkNotQuantized, fusedGroupPartners, planWholeInput } from './plan.js';
import { isPlainFileName, isRealFolder } from './real-folder.js';
import { finishKilledMerges, forgetPublishing, recordPublishing } from './killed-merge.js';
import { checkedHistogram } from './error-histogram.js';
import { writeFileAtomic } from './safetensors/atomic-file.js';
import { OutputFolder } from './safetensors/output-folder.js';
import { checkNotAliasingInput } from './safetensors/output-aliasing.js';
import { copyRegularFile, fileKind, readRegularTextFile } from './safetensors/regular-file.js';
import { readModelConfig, type ModelConfig } from './model-config.js';
import { SafetensorsError } from './safetensors/header.js';
import { checkCheckpointOptions, checkPath } from './checkpoint-options.js';
import { checkCount, describe, isAbortSignal, isObjectArgument, readFields } from '../core/validate.js';
import { dataSamples, fingerprintDifference, inputFingerprint, isInputFingerprint, sampleDifference, type DataSamples, type InputFingerprint } from './input-fingerprint.js';

/** The parts folder of an output: one folder per run (runFolder). */
export function partsFolder(outDir: string): string {
  return `${resolve(outDir)}.parts`;
}

/** The folder of one run in the parts folder: its parts' shards, one record per finished part, the
 *  queued run's plan and the merge lock. The merge moves the shards into the output and removes it. */
export function runFolder(outDir: string, run: string): string {
  // A run key is lowercase hex (planRun): anything else (a '..', a '/') would name a path outside the parts folder.
  if (typeof run !== 'string' || !RUN_KEY.test(run)) throw new RangeError(`not a run key (lowercase hex): ${describe(run)}`);
  return join(partsFolder(outDir), `run-${run}`);
}

const RUN_KEY = /^[0-9a-f]{1,64}$/;

/** An optional run key argument: lowercase hex, as planRun makes them. */
function checkRunKey(fn: string, argument: string, run: unknown): string | undefined {
  if (run === undefined) return undefined;
  if (typeof run !== 'string') throw new TypeError(`${fn}: ${argument} must be a run key (a lowercase hex string), got ${describe(run)}`);
  if (!RUN_KEY.test(run)) throw new RangeError(`${fn}: ${argument} must be a run key (a lowercase hex string), got ${describe(run)}`);
  return run;
}

/** The most parts a run may have (--shard, --parts, a request, a record). */
export const MAX_PARTS = 100000;

/** runCheckpointPart's request, each field read once and checked before anything is opened. */
function checkPartRequest(fn: string, req: unknown): PartRequest {
  if (!isObjectArgument(req)) throw new TypeError(`${fn}: the request must be an object { input, output, options, part, parts, run? }, got ${describe(req)}`);
  const r = readFields(req, ['input', 'output', 'options', 'part', 'parts', 'run', 'fingerprint', 'samples']);
  const input = checkPath(fn, 'input', r.input);
  const output = checkPath(fn, 'output', r.output);
  if (!isObjectArgument(r.options)) throw new TypeError(`${fn}: options must be an object (serializeOptions), got ${describe(r.options)}`);
  // A copy of the options (plain JSON, as serializeOptions makes them): read once, here.
  let options: SerializedOptions;
  try {
    options = JSON.parse(JSON.stringify(r.options)) as SerializedOptions;
  } catch (err) {
    throw new TypeError(`${fn}: options must be plain JSON (serializeOptions): ${(err as Error).message}`);
  }
  const parts = checkCount(fn, 'parts', r.parts);
  if (parts < 1 || parts > MAX_PARTS) throw new RangeError(`${fn}: parts must be 1..${MAX_PARTS}, got ${parts}`);
  const part = checkCount(fn, 'part', r.part);
  if (part >= parts) throw new RangeError(`${fn}: part ${part} does not exist in ${parts} parts (parts are numbered 0..${parts - 1})`);
  if (r.fingerprint !== undefined && !isInputFingerprint(r.fingerprint)) throw new TypeError(`${fn}: fingerprint must be { digest, files: [{ name, bytes, sha256 }] } (from the run's plan), got ${describe(r.fingerprint)}`);
  if (r.samples !== undefined && !isObjectArgument(r.samples)) throw new TypeError(`${fn}: samples must be an object (from the run's plan), got ${describe(r.samples)}`);
  return {
    input, output, options, part, parts, run: checkRunKey(fn, 'run', r.run),
    fingerprint: r.fingerprint as InputFingerprint | undefined, samples: r.samples as DataSamples | undefined,
  };
}

/** mergeCheckpointParts' options, each read once and checked. */
function checkMergeOptions(fn: string, mo: unknown): MergeOptions {
  if (mo === undefined) return {};
  if (!isObjectArgument(mo)) throw new TypeError(`${fn}: options must be an object { ifUnlocked?, unlock?, run?, plannedAt? }, got ${describe(mo)}`);
  const o = readFields(mo, ['ifUnlocked', 'unlock', 'run', 'plannedAt', 'signal']);
  if (o.signal !== undefined && !isAbortSignal(o.signal)) throw new TypeError(`${fn}: options.signal must be an AbortSignal, got ${describe(o.signal)}`);
  for (const key of ['ifUnlocked', 'unlock'] as const) {
    if (o[key] !== undefined && typeof o[key] !== 'boolean') throw new TypeError(`${fn}: options.${key} must be a boolean, got ${describe(o[key])}`);
  }
  if (o.plannedAt !== undefined) {
    if (typeof o.plannedAt !== 'number') throw new TypeError(`${fn}: options.plannedAt must be a time in epoch ms (a Number), got ${describe(o.plannedAt)}`);
    if (!Number.isFinite(o.plannedAt)) throw new RangeError(`${fn}: options.plannedAt must be a finite time in epoch ms, got ${describe(o.plannedAt)}`);
  }
  return {
    ifUnlocked: o.ifUnlocked as boolean | undefined, unlock: o.unlock as boolean | undefined,
    run: checkRunKey(fn, 'options.run', o.run), plannedAt: o.plannedAt as number | undefined, signal: o.signal as AbortSignal | undefined,
  };
}

/** What fp4kit writes in a parts folder (run folders) and in a run folder (shards, records, the plan,
 *  the lock, and their temporary files). */
const RUN_FOLDER = /^run-[0-9a-f]{1,64}$/;
const IN_RUN_FOLDER = /^(?:.+\.safetensors|part-\d+-of-\d+\.json|plan\.json|merging)(?:\.tmp-\d+-[0-9a-f]{8})?$/;

/** Create the run's folder (and the parts folder), or check that an existing parts folder holds only
 *  run folders: a folder that happens to be named `<out>.parts` is never written into, nor removed
 *  by the merge. */
async function prepareRunFolder(outDir: string, run: string): Promise<string> {
  const dir = partsFolder(outDir);
  const entries = (await isRealFolder(dir)) ? await readdir(dir) : null;
  if (entries === null) await makeFolders(dir); // not Node's recursive mkdir, which spins under /proc
  const foreign = (entries ?? []).filter((n) => !RUN_FOLDER.test(n)).sort();
  if (foreign.length > 0 && foreign.every((n) => IN_RUN_FOLDER.test(n))) {
    // An fp4kit from before run folders kept one run's parts directly in the parts folder.
    throw new SafetensorsError(dir, `holds a run in the layout of an older fp4kit (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', …' : ''} directly in it, `
      + 'not in a run-<key> folder): merge it with that version (fp4kit merge), or delete the folder and rerun the parts');
  }
  if (foreign.length > 0) {
    throw new SafetensorsError(dir, `holds files fp4kit did not write (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', …' : ''}); it is the parts folder of the output: move it away or choose another -o`);
  }
  const folder = runFolder(outDir, run);
  await mkdir(folder).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
    await isRealFolder(folder); // an existing one must be a real folder
  });
  return folder;
}

/** Remove a merged run's folder (leftover records, the plan, the lock, temporary files of killed
 *  copies of its parts), then the parts folder if no other run is in it. `shards`: the run's shard
 *  names (a single-file input need not end in .safetensors; its shard keeps the input's name). */
async function removeRunFolder(outDir: string, run: string, shards: readonly string[] = []): Promise<void> {
  const folder = runFolder(outDir, run);
  if (!(await isRealFolder(partsFolder(outDir)).catch(() => false)) || !(await isRealFolder(folder).catch(() => false))) return; // never through a link
  const mine = new Set(shards);
  const ours = (await readdir(folder).catch(() => [] as string[])).filter((name) => IN_RUN_FOLDER.test(name) || mine.has(name.replace(/\.tmp-\d+-[0-9a-f]{8}$/, '')));
  // The records and the lock last: a merge killed while it cleans up leaves records, and the next
  // merge finds the published summary naming the run, and finishes.
  const last = (name: string) => (/^part-\d+-of-\d+\.json$/.test(name) ? 1 : name === LOCK_NAME ? 2 : 0);
  for (const name of ours.sort((a, b) => last(a) - last(b))) await rm(join(folder, name), { recursive: true, force: true });
  await rmdir(folder).catch(() => {});
  await rmdir(partsFolder(outDir)).catch(() => {}); // fails while another run has its folder there
}

/** Test-only: milliseconds to wait before each tensor of a part, so a test can kill a worker mid-job. */
export const TEST_DELAY_ENV = 'FP4KIT_TEST_TENSOR_DELAY_MS';

/** Test-only: the fp4kit version this process says it runs (tests of a run's parts on two versions). */
export const TEST_VERSION_ENV = 'FP4KIT_TEST_VERSION';

/** The fp4kit version a plan, a part record and a merge made here carry (the run key hashes it). */
export function runningVersion(): string {
  return process.env[TEST_VERSION_ENV] ?? packageVersion();
}

/** This machine cannot do the jobs of a run: it does not see the input or output folder the run
 *  was planned on (a job of another fp4kit version is the job's problem: queue.ts). A setup problem of the
 *  machine, not of the job (a queue worker stops taking jobs when it meets one, and another worker
 *  retries the job). */
export class MachineSetupError extends SafetensorsError {
  constructor(file: string, problem: string) {
    super(file, problem);
    this.name = 'MachineSetupError';
  }
}

/** The plan the queue producer leaves in the run's folder; a worker that cannot see it is not on the shared filesystem. */
export function runPlanPath(outDir: string, run: string): string {
  return join(runFolder(outDir, run), 'plan.json');
}

export interface ShardSpec {
  /** 0-based part number (Kubernetes JOB_COMPLETION_INDEX, a 0-based Slurm array index). */
  index: number;
  count: number;
}

/** "i/n" with 0 <= i < n, as `--shard` takes it. */
export function parseShardSpec(text: string): ShardSpec {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!m) throw new RangeError(`--shard: expected i/n (part i of n, 0 <= i < n), got ${JSON.stringify(text)}`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || count > MAX_PARTS) throw new RangeError(`--shard: the number of parts must be 1..${MAX_PARTS}, got ${count}`);
  if (index >= count) throw new RangeError(`--shard: part ${index} does not exist in ${count} parts (parts are numbered 0..${count - 1})`);
  return { index, count };
}

/**
 * Split shards into `count` parts balanced by bytes: largest shard first (ties by name) into the
 * part holding the fewest bytes so far (ties to the lowest part number). Deterministic, so every
 * machine computes the same split. Returns each part's shard indexes in ascending order.
 */
export function partitionShards(shards: ReadonlyArray<{ name: string; bytes: number }>, count: number): number[][] {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`partitionShards: count must be a positive integer, got ${count}`);
  const order = shards.map((s, i) => i).sort((a, b) => shards[b].bytes - shards[a].bytes || (shards[a].name < shards[b].name ? -1 : shards[a].name > shards[b].name ? 1 : 0));
  const parts: number[][] = Array.from({ length: count }, () => []);
  const load = new Array<number>(count).fill(0);
  // The lightest part (ties: the lowest number) from a binary min-heap of part numbers: every part
  // checks the split of its run, and a linear search made that O(shards × parts) each.
  const lighter = (a: number, b: number) => load[a] < load[b] || (load[a] === load[b] && a < b);
  const heap = Array.from({ length: count }, (_v, p) => p); // loads all 0: already a heap
  for (const i of order) {
    const best = heap[0];
    parts[best].push(i);
    load[best] += shards[i].bytes;
    for (let at = 0; ;) { // sift the heavier part down
      const l = 2 * at + 1;
      const r = l + 1;
      let least = at;
      if (l < count && lighter(heap[l], heap[least])) least = l;
      if (r < count && lighter(heap[r], heap[least])) least = r;
      if (least === at) break;
      [heap[at], heap[least]] = [heap[least], heap[at]];
      at = least;
    }
  }
  return parts.map((p) => p.sort((a, b) => a - b));
}

/** CheckpointOptions as JSON (regular expressions as source and flags), for job data and part records. */
export interface SerializedOptions extends Omit<CheckpointOptions, 'only' | 'skip'> {
  only?: { source: string; flags: string };
  skip?: { source: string; flags: string };
}

/** `fn`: the public call whose options these are (its name heads a refusal). */
export function serializeOptions(options: CheckpointOptions, fn = 'quantizeCheckpoint'): SerializedOptions {
  const o = checkCheckpointOptions(fn, options); // read once, checked, only/skip as RegExps
  const re = (r: RegExp | undefined) => r && { source: r.source, flags: r.flags };
  // A fixed key order and no undefined values: the run key hashes this text.
  const out: Record<string, unknown> = {
    format: o.format, layout: o.layout, only: re(o.only), skip: re(o.skip), rounding: o.rounding, seed: o.seed,
    scaleRule: o.scaleRule, fisher: o.fisher === undefined ? undefined : resolve(o.fisher), fp4Fraction: o.fp4Fraction,
    inputScale: o.inputScale, measureError: o.measureError ?? true, overwrite: o.overwrite,
  };
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out as unknown as SerializedOptions;
}

export function deserializeOptions(s: SerializedOptions): CheckpointOptions {
  const regex = (name: string, r: { source: string; flags: string } | undefined) => {
    if (r === undefined) return undefined;
    try {
      return new RegExp(r.source, r.flags);
    } catch (err) {
      throw new RangeError(`options.${name}: not a regular expression (${(err as Error).message})`);
    }
  };
  return { ...s, only: regex('only', s.only), skip: regex('skip', s.skip) };
}

/** The plan every machine derives alike: fingerprint, the parts, and the run key naming this run. */
export interface RunPlan {
  input: string;
  output: string;
  options: SerializedOptions;
  fingerprint: InputFingerprint;
  /** Every input shard, in input order: its name, tensor data bytes and tensor count (what the split balances). */
  shards: Array<{ name: string; bytes: number; tensors: number }>;
  /** Shard names of every part (input order within a part). */
  parts: string[][];
  /** For every part, the other shards it reads (fused-group members, for their shared scale). */
  partners: string[][];
  /** Input bytes and tensors of every part. */
  partBytes: number[];
  partTensors: number[];
  tensorCount: number;
  inputBytes: number;
  /** The fp4kit version that planned the run (every machine of a queued run must run it: another
   *  version may write other bytes). */
  fp4kit: string;
  /** Hash of the input fingerprint, the options, the split, the output and the fp4kit version: parts
   *  of one run carry the same key. */
  run: string;
  /** Data samples of every shard (a queued run's producer takes them; workers compare theirs). */
  samples?: DataSamples;
}

/** The plan of a run in `count` parts (default one per input shard; with `perShardAtMost`, never more). */
export async function planRun(
  input: string, outDir: string, options: CheckpointOptions, count?: number, how: { perShardAtMost?: boolean; samples?: boolean; fn?: string } = {},
): Promise<RunPlan> {
  const serialized = serializeOptions(options, how.fn); // checked before the input is opened
  const ckpt = await openInput(input, false);
  try {
    const shards = ckpt.shards.length;
    const n = count === undefined ? shards : how.perShardAtMost ? Math.min(count, shards) : count;
    const plan = await planFromOpen(ckpt, input, outDir, serialized, n);
    if (how.samples) plan.samples = await dataSamples(ckpt);
    return plan;
  } finally {
    await closeCheckpoint(ckpt);
  }
}

/** A shard's name, tensor data bytes and tensor count, as the split balances them. */
function shardSize(s: SafetensorsFile): RunPlan['shards'][number] {
  return { name: basename(s.path), bytes: s.tensors.reduce((a, t) => a + (t.end - t.begin), 0), tensors: s.tensors.length };
}

/** The shard names of each part. */
function splitNames(shards: RunPlan['shards'], count: number): string[][] {
  return partitionShards(shards, count).map((p) => p.map((i) => shards[i].name));
}

/** The key of a run: the input fingerprint's digest, the options, the split, the output path, the fp4kit version. */
function runKey(fingerprint: string, options: SerializedOptions, parts: string[][], output: string, fp4kit: string): string {
  return createHash('sha256').update(JSON.stringify({ fingerprint, options, parts, output, fp4kit })).digest('hex').slice(0, 24);
}

/** Plan a run over every shard of the open input (the planner, a --shard part that finds no plan, the merge):
 *  the checks of the whole input are made here, since a part that has the plan opens only its own shards. */
async function planFromOpen(ckpt: CheckpointFiles, input: string, outDir: string, options: SerializedOptions, count: number): Promise<RunPlan> {
  const fingerprint = await inputFingerprint(ckpt, options.fisher);
  const shards = ckpt.shards.map(shardSize);
  const split = partitionShards(shards, count);
  const parts = split.map((p) => p.map((i) => shards[i].name));
  const partBytes = split.map((p) => p.reduce((a, i) => a + shards[i].bytes, 0));
  const partTensors = split.map((p) => p.reduce((a, i) => a + shards[i].tensors, 0));
  const checked = checkCheckpointOptions('planRun', deserializeOptions(options));
  const layout = layoutByName(checked.layout ?? 'fp4kit', { inputScale: checked.inputScale });
  const config = await readModelConfig(ckpt.dir);
  checkNotQuantized(ckpt, config); // refused before anything is queued
  const fisher = checked.fisher === undefined ? undefined : await SafetensorsFile.open(checked.fisher);
  let partners: string[][];
  try {
    partners = fusedGroupPartners(ckpt, planWholeInput(ckpt, layout, checked, config, fisher), config, split);
  } finally {
    await fisher?.close();
  }
  const output = resolve(outDir);
  const fp4kit = runningVersion();
  return {
    input: resolve(input), output, options, fingerprint, shards, parts, partners, partBytes, partTensors, fp4kit,
    tensorCount: shards.reduce((a, s) => a + s.tensors, 0), inputBytes: shards.reduce((a, s) => a + s.bytes, 0),
    run: runKey(fingerprint.digest, options, parts, output, fp4kit),
  };
}

/** A run plan read from a plan.json (written by fp4kit, or by anyone who can write to the shared folder). */
function isRunPlan(v: unknown): v is RunPlan {
  if (v === null || typeof v !== 'object') return false;
  const p = v as Partial<RunPlan>;
  const names = (a: unknown): a is string[][] => Array.isArray(a) && a.every((x) => Array.isArray(x) && x.every((n) => typeof n === 'string'));
  return typeof p.input === 'string' && typeof p.output === 'string' && p.options !== null && typeof p.options === 'object'
    && isInputFingerprint(p.fingerprint) && typeof p.fp4kit === 'string' && typeof p.run === 'string' && RUN_KEY.test(p.run)
    && names(p.parts) && names(p.partners) && p.partners.length === p.parts.length
    && Array.isArray(p.shards) && p.shards.every((s) => s !== null && typeof s === 'object' && typeof s.name === 'string' && Number.isSafeInteger(s.bytes) && Number.isSafeInteger(s.tensors));
}

/** Leave the plan in the run's folder (queued runs): workers check they see it, so they know they share
 *  the producer's folder; a human can read it. Removed with the part records by the merge. */
export async function writeRunPlan(plan: RunPlan): Promise<{ withdraw(): Promise<void> }> {
  const existed = await isRealFolder(runFolder(plan.output, plan.run));
  await prepareRunFolder(plan.output, plan.run);
  await writeFileAtomic(runPlanPath(plan.output, plan.run), `${JSON.stringify(plan, null, 2)}\n`);
  // A producer that could not enqueue takes back the folder it made (one from an earlier
  // producer of the same run may have jobs in the queue: it stays).
  return { withdraw: async () => { if (!existed) await removeRunFolder(plan.output, plan.run); } };
}

/** Open the input (with `only`, just those shards), saying what a worker needs when it cannot see
 *  it. `queued`: the run's producer opened this input, so one that does not open here (an empty
 *  folder where the share is not mounted, a shard missing) is this machine's problem, not the job's. */
async function openInput(input: string, queued: boolean, only?: ReadonlySet<string>): Promise<CheckpointFiles> {
  const unseen = (what: string) =>
    new MachineSetupError(input, `${what} on ${hostname()}: every machine of a distributed run must see the input at the same path (a shared filesystem mounted at the same place; docs/distributed.md)`);
  try {
    await stat(input);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw unseen('not found');
    throw err;
  }
  try {
    return await openCheckpoint(input, only);
  } catch (err) {
    if (queued && err instanceof SafetensorsError) throw unseen(`not the checkpoint the producer opened (${err.message})`);
    throw err;
  }
}

/** One finished part, recorded in <out>.parts/part-<i>-of-<n>.json. */
export interface PartRecord {
  tool: 'fp4kit';
  kind: 'checkpoint-part';
  version: 1;
  /** The fp4kit version the part ran (absent in records of fp4kit before 2026-12: named "an older fp4kit"). */
  fp4kit?: string;
  run: string;
  part: number;
  parts: number;
  input: string;
  fingerprint: string;
  options: SerializedOptions;
  host: string;
  backend: string;
  /** Epoch milliseconds. */
  startedAt: number;
  finishedAt: number;
  /** Output shards this part wrote, with their sizes (the merge checks them). */
  files: Array<{ name: string; bytes: number }>;
  /** The other input shards it read (fused-group members; the merge checks them against its own plan). */
  partners?: string[];
  /** Data samples of the input shards this part read (the merge compares its own). */
  samples: DataSamples;
  tensors: TensorSummary[];
}

export function partRecordName(part: number, parts: number): string {
  return `part-${part}-of-${parts}.json`;
}

export interface PartRequest {
  input: string;
  output: string;
  options: SerializedOptions;
  part: number;
  parts: number;
  /** The run key, input fingerprint and this part's data samples the producer planned (queue jobs): a worker that
   *  sees a different input refuses. */
  run?: string;
  fingerprint?: InputFingerprint;
  samples?: DataSamples;
}

export interface PartResult {
  record: PartRecord;
  /** Present when this part was the last one and merged the output. */
  merged?: CheckpointSummary;
}

/**
 * Quantize one part: its output shards are written into the parts folder under the names a single run
 * gives them (temp file + rename, never torn), then its record. With `autoMerge`, the part that finds
 * every record present merges.
 */
export async function runCheckpointPart(
  request: PartRequest,
  onProgress?: (p: CheckpointProgress) => void,
  signal?: AbortSignal,
  opts: { autoMerge?: boolean } = {},
): Promise<PartResult> {
  const fn = 'runCheckpointPart';
  const req = checkPartRequest(fn, request); // read once: the part uses this copy
  if (onProgress !== undefined && typeof onProgress !== 'function') throw new TypeError(`${fn}: onProgress must be a function, got ${describe(onProgress)}`);
  if (signal !== undefined && !isAbortSignal(signal)) throw new TypeError(`${fn}: signal must be an AbortSignal, got ${describe(signal)}`);
  if (!isObjectArgument(opts)) throw new TypeError(`${fn}: opts must be an object { autoMerge? }, got ${describe(opts)}`);
  const { autoMerge } = readFields(opts, ['autoMerge']);
  if (autoMerge !== undefined && typeof autoMerge !== 'boolean') throw new TypeError(`${fn}: opts.autoMerge must be a boolean, got ${describe(autoMerge)}`);
  opts = { autoMerge };
  const startedAt = Date.now();
  const planned: { run?: string; samples?: DataSamples } = {};
  try {
    return await runPart(req, startedAt, planned, onProgress, signal, opts);
  } catch (err) {
    // A second copy of a part (a retry, a slow machine thought dead) may lose its files to the merge
    // that the first copy's record completed: the run is done, and this copy's work is not needed.
    // An aborted copy (its lock lost, a shutdown) is abandoned whatever happened meanwhile: its caller says so.
    if (planned.run !== undefined && !signal?.aborted && !(err instanceof MachineSetupError) && (await runMerged(req.output, planned.run, planned.samples))) {
      throw new PartAlreadyMergedError(req.output, `part ${req.part}/${req.parts}: another copy of this part finished first and the run is merged; this copy's work was not needed`);
    }
    throw err;
  }
}

/** Another copy of the part completed the run while this one worked (runCheckpointPart). */
export class PartAlreadyMergedError extends SafetensorsError {
  constructor(file: string, problem: string) {
    super(file, problem);
    this.name = 'PartAlreadyMergedError';
  }
}

/** The clock skew between machines allowed where a summary's time is compared with a plan's. */
const CLOCK_SKEW_MS = 3600_000;

/** The summary published in outDir, or null when there is none (a regular file only). */
async function publishedSummary(outDir: string): Promise<CheckpointSummary | null> {
  const text = await readRegularTextFile(join(outDir, SUMMARY_NAME));
  return text === null ? null : (JSON.parse(text) as CheckpointSummary);
}

/**
 * Whether the summary published in outDir was written by the merge of `run` over the data sampled
 * in `samples` (a part's own shards; every one must be in the summary, with the same digest). A
 * merge writes its run key and every shard's data samples into the summary. The key hashes the
 * input's headers, config and the options, not its data: a checkpoint replaced by another of the
 * same architecture (a new fine-tune saved over the old) has the same key and other samples. A
 * single run's summary, or another run's merged into the same output, names none or another; a
 * summary that cannot be read names nothing.
 */
async function summaryNamesRun(outDir: string, run: string, samples: DataSamples | undefined): Promise<boolean> {
  const summary = await publishedSummary(outDir).catch(() => null);
  const named = summary !== null && typeof summary === 'object' ? summary.run : undefined;
  if (named === null || typeof named !== 'object' || named.key !== run || named.samples === null || typeof named.samples !== 'object') return false;
  if (samples === undefined) return true;
  const entries = Object.entries(samples);
  // No data sampled (a part with no shard) proves nothing about the data merged.
  return entries.length > 0 && entries.every(([shard, digest]) => Object.hasOwn(named.samples, shard) && named.samples[shard] === digest);
}

/** Whether `run` was merged into outDir over the data sampled in `samples`: its folder is gone and
 *  the published summary names it (summaryNamesRun). */
async function runMerged(outDir: string, run: string, samples: DataSamples | undefined): Promise<boolean> {
  if (await lstat(runFolder(outDir, run)).then(() => true, () => false)) return false;
  return summaryNamesRun(outDir, run, samples);
}

/** A part whose run is merged already: a late copy (a retry of a part that had in fact finished, a
 *  queued job handed over) or the same command run again. Nothing is written. */
function alreadyMerged(req: PartRequest, run: string): PartAlreadyMergedError {
  return new PartAlreadyMergedError(req.output, `part ${req.part}/${req.parts}: its run (${run}) is already merged into this output (its ${SUMMARY_NAME} names the run); this copy's work was not needed. To quantize it again, delete or move ${req.output} first`);
}

/**
 * A queued part's job against the plan its producer left in the run's folder. Without the plan,
 * this worker does not see the producer's folder (it would write to a folder of its own that no
 * merge ever reads) or the job is stale. With it: the same run, input, output, number of parts,
 * options and fingerprint — a job that differs (written by hand, or by anyone who can write to the
 * Redis) would quantize another checkpoint into this run's folder, or fail three times with a
 * misleading message. All before anything is opened. Returns the plan (a job carries only the
 * fingerprint's digest: the whole fingerprint in every job made Redis hold O(shards²) bytes a run).
 */
async function checkAgainstPlan(req: PartRequest): Promise<RunPlan> {
  const planPath = runPlanPath(req.output, req.run!);
  // A symbolic link for the run folder is refused; an absent one has no plan.
  const text = (await isRealFolder(runFolder(req.output, req.run!))) ? await readRegularTextFile(planPath) : null;
  if (text === null) {
    // The run's merge removed its folder: a job handed over late, or retried after its part finished
    // (the job's samples, the producer's, must be the merged data's).
    if (req.samples !== undefined && (await runMerged(req.output, req.run!, req.samples))) throw alreadyMerged(req, req.run!);
    // This machine sees the output's parts folder but not the run's folder in it: a stale job (its
    // run folder was deleted after its producer stopped, or a job written by hand), not a machine
    // without the shared filesystem. The job fails; the worker goes on taking jobs.
    if (await isRealFolder(partsFolder(req.output)).catch(() => false)) {
      throw new SafetensorsError(planPath, `no such file, although this machine sees ${partsFolder(req.output)}: the run's folder is gone (deleted after its producer stopped?) — a stale job, not run`);
    }
    throw new MachineSetupError(req.output, `on ${hostname()} this is not the output the producer prepared (no ${planPath}): every machine must see the output's folder at the same path (docs/distributed.md)`);
  }
  let plan: Partial<RunPlan> | null = null;
  try {
    plan = JSON.parse(text) as Partial<RunPlan>;
  } catch { /* named below */ }
  if (plan === null || typeof plan !== 'object') throw new SafetensorsError(planPath, 'not a run plan fp4kit wrote');
  const differs = plan.run !== req.run ? 'run key'
    : plan.input !== resolve(req.input) ? 'input'
      : plan.output !== resolve(req.output) ? 'output'
        : !Array.isArray(plan.parts) || plan.parts.length !== req.parts ? 'number of parts'
          : JSON.stringify(plan.options) !== JSON.stringify(req.options) ? 'options'
            : plan.fingerprint?.digest !== req.fingerprint?.digest ? 'fingerprint'
              : req.samples !== undefined && !samplesAsPlanned(req.samples, plan, req.part) ? 'data samples' : null;
  if (differs !== null) throw new SafetensorsError(planPath, `the job's ${differs} differs from its run's plan: not a job this run's producer wrote; not run`);
  if (!isRunPlan(plan)) throw new SafetensorsError(planPath, 'not a run plan fp4kit wrote (a field is missing or of the wrong kind)');
  return plan;
}

/**
 * The plans an earlier --shard part of this run may have left: plan.json in a run folder of the
 * parts folder, for the same input, output, options, number of parts and fp4kit version (one,
 * unless the input changed between two runs of the same command). Anything else there is not
 * this part's run, and is passed over.
 */
async function earlierPlans(req: PartRequest, options: SerializedOptions): Promise<RunPlan[]> {
  const dir = partsFolder(req.output);
  if (!(await isRealFolder(dir).catch(() => false))) return [];
  const plans: RunPlan[] = [];
  for (const name of (await readdir(dir)).filter((n) => RUN_FOLDER.test(n)).sort()) {
    const run = name.slice('run-'.length);
    if (!(await isRealFolder(runFolder(req.output, run)).catch(() => false))) continue;
    const text = await readRegularTextFile(runPlanPath(req.output, run)).catch(() => null);
    let plan: unknown = null;
    try {
      plan = text === null ? null : JSON.parse(text);
    } catch { /* not a plan */ }
    if (isRunPlan(plan) && plan.run === run && plan.fp4kit === runningVersion() && plan.input === resolve(req.input) && plan.output === resolve(req.output)
      && plan.parts.length === req.parts && JSON.stringify(plan.options) === JSON.stringify(options)) plans.push(plan);
  }
  return plans;
}

/** What a part opened and the plan it works to: `run` is the key computed here (a queued part
 *  compares it with its producer's). */
interface OpenedPart {
  ckpt: CheckpointFiles;
  plan: RunPlan;
  run: string;
  /** The run was planned here (no plan was found, or none could be used): every shard is open. */
  plannedHere: boolean;
  /** Run keys of damaged plans passed over (planDamage): a plan planned here replaces its run's. */
  damaged: Set<string>;
}

/**
 * What makes a plan read from plan.json (isRunPlan) one fp4kit cannot have written, or null: its
 * parts must be the split of its own shard sizes (the split the run key hashes), and each part's
 * partners input shards outside the part. A part works to `plan.parts` and opens
 * `plan.partners`: edited, they would make it quantize other shards, or take fused-group scales
 * from other neighbours (the merge refuses the result, after the work).
 */
function planDamage(plan: RunPlan, count: number): string | null {
  const split = splitNames(plan.shards, count);
  const differs = split.findIndex((names, i) => names.join('\n') !== plan.parts[i]?.join('\n'));
  if (plan.parts.length !== count || differs >= 0) {
    return `its parts are not the split of its shards' sizes${differs >= 0 ? ` (part ${differs}: ${plan.parts[differs]?.join(', ') || 'none'}, the split gives ${split[differs].join(', ') || 'none'})` : ''}`;
  }
  const shards = new Set(plan.shards.map((sh) => sh.name));
  for (const [i, partners] of plan.partners.entries()) {
    const own = new Set(plan.parts[i]);
    const odd = partners.find((n) => !shards.has(n) || own.has(n));
    if (odd !== undefined) return `part ${i} reads ${JSON.stringify(odd)} for fused-group scales, ${own.has(odd) ? 'one of its own shards' : 'not a shard of the input'}`;
  }
  return null;
}

/**
 * Open what this part reads, and its run's plan. With a plan (a queued run's producer's, or one an
 * earlier --shard part left), only the part's own shards and the neighbours it reads for
 * fused-group scales are opened: their headers, every shard's size, the index and config must be
 * the plan's (the input's fingerprint), and the split and run key computed here its own. Without
 * one, every shard is opened and the run is planned here. So is a part with no shard of its own
 * (it compares every shard's data with a merged run's) and an fgmp run with a Fisher file
 * (quantizeCheckpoint checks the file against every shard's plan). A queued part whose input is
 * not the plan's is refused; a --shard part plans its own run then (the input changed since).
 */
async function openPart(req: PartRequest, plans: RunPlan[], options: SerializedOptions, queued: boolean): Promise<OpenedPart> {
  const output = resolve(req.output);
  const damaged = new Set<string>();
  for (const plan of plans) {
    const damage = planDamage(plan, req.parts);
    if (damage !== null) {
      // The producer's plan: every part of the run would work to it. A --shard part plans the run
      // itself, and its plan takes the damaged one's place.
      if (queued) throw new SafetensorsError(runPlanPath(output, plan.run), `a damaged run plan (${damage}): not a plan fp4kit wrote; not run. Run the command again (its producer writes the plan anew)`);
      damaged.add(plan.run);
      continue;
    }
    const own = plan.parts[req.part];
    if (own.length === 0 || options.fisher !== undefined) break;
    const ckpt = await openInput(req.input, queued, new Set([...own, ...plan.partners[req.part]]));
    try {
      const here = await inputFingerprint(ckpt, undefined, plan.fingerprint);
      if (here.digest !== plan.fingerprint.digest) {
        if (queued) throw notPlannedInput(req.input, fingerprintDifference(here, plan.fingerprint));
        await closeCheckpoint(ckpt);
        continue;
      }
      // The split, computed here from the plan's shard sizes (this part's own are the ones just read).
      const sizes = new Map(ckpt.shards.map((s) => [basename(s.path), shardSize(s)]));
      const shards = plan.shards.map((s) => sizes.get(s.name) ?? s);
      const run = runKey(plan.fingerprint.digest, options, splitNames(shards, req.parts), output, runningVersion());
      if (queued || run === plan.run) return { ckpt, plan, run, plannedHere: false, damaged };
      await closeCheckpoint(ckpt);
    } catch (err) {
      await closeCheckpoint(ckpt);
      throw err;
    }
  }
  const ckpt = await openInput(req.input, queued);
  try {
    const plan = await planFromOpen(ckpt, req.input, req.output, options, req.parts);
    if (queued && plan.fingerprint.digest !== plans[0].fingerprint.digest) throw notPlannedInput(req.input, fingerprintDifference(plan.fingerprint, plans[0].fingerprint));
    return { ckpt, plan, run: plan.run, plannedHere: true, damaged };
  } catch (err) {
    await closeCheckpoint(ckpt);
    throw err;
  }
}

/** This machine sees another input at the planned path. */
function notPlannedInput(input: string, what: string): MachineSetupError {
  return new MachineSetupError(input, `on ${hostname()} this is not the input the run was planned on (${what}): every machine must see the same files at the same path`);
}

/** A part job's samples are its shards' samples in the run's plan (a job edited in Redis is
 *  refused as a job; it would otherwise look like a machine that sees other data, and stop it). */
function samplesAsPlanned(samples: DataSamples, plan: Partial<RunPlan>, part: number): boolean {
  const names = plan.parts?.[part];
  if (!Array.isArray(names) || plan.samples === undefined || plan.samples === null) return false;
  const keys = Object.keys(samples);
  return keys.length === names.length && names.every((n) => Object.hasOwn(samples, n) && samples[n] === plan.samples![n]);
}

async function runPart(
  req: PartRequest, startedAt: number, planned: { run?: string; samples?: DataSamples },
  onProgress?: (p: CheckpointProgress) => void, signal?: AbortSignal, opts: { autoMerge?: boolean } = {},
): Promise<PartResult> {
  const queued = req.run !== undefined;
  let dir!: string;
  const options = deserializeOptions(req.options);
  const serialized = serializeOptions(options);
  // The run's plan: a queued run's producer left it in the run's folder; a --shard part looks for
  // one an earlier part of its run left there.
  const plans = queued ? [await checkAgainstPlan(req)] : await earlierPlans(req, serialized);
  const opened = await openPart(req, plans, serialized, queued);
  const { ckpt, plan } = opened;
  let samples: DataSamples;
  let summary: CheckpointSummary;
  try {
    // A caller's fingerprint (runCheckpointPart's request without a run key): the input planned elsewhere.
    if (!queued && req.fingerprint !== undefined && req.fingerprint.digest !== plan.fingerprint.digest) throw notPlannedInput(req.input, fingerprintDifference(plan.fingerprint, req.fingerprint));
    if (queued && req.run !== opened.run) {
      throw new MachineSetupError(req.input, `the run key computed on ${hostname()} (${opened.run}) differs from the producer's (${req.run}): this machine plans the run otherwise (the versions match: other files at the input's path, or a modified build?)`);
    }
    const mine = new Set(plan.parts[req.part]);
    const shards = new Set(ckpt.shards.map((s, i) => (mine.has(basename(s.path)) ? i : -1)).filter((i) => i >= 0));
    samples = await dataSamples(ckpt, mine);
    const differs = req.samples ? sampleDifference(samples, req.samples) : null;
    if (differs !== null) throw notPlannedInput(req.input, `${differs} has other data here (sampled) than in the planned input`);
    const delay = Number(process.env[TEST_DELAY_ENV] ?? 0);
    const beforeTensor = delay > 0 ? () => new Promise<void>((r) => setTimeout(r, delay)) : undefined;
    // A copy that comes after its run's merge (a retried --shard part that had in fact finished, a
    // job handed over late) makes no run folder again: the merged summary names its run.
    // (A part with no shard compares every shard's samples: it has none of its own.)
    const merged = mine.size > 0 ? samples : await dataSamples(ckpt);
    if (await runMerged(req.output, plan.run, merged)) throw alreadyMerged(req, plan.run);
    // A queued part's folder is the producer's: it is never made here (gone, the run was deleted meanwhile).
    if (queued && !(await isRealFolder(runFolder(req.output, plan.run)))) {
      throw new SafetensorsError(runFolder(req.output, plan.run), 'gone while this part was checking its input: the run was merged or deleted meanwhile; not run');
    }
    // The files just checked are the files quantized: the open checkpoint is handed over.
    dir = await prepareRunFolder(req.output, plan.run);
    // A merge that published between the check above and the folder: the folder just made is empty
    // (its parts' files went with the merge), and is removed again. (A queued run's folder holds the
    // producer's plan: its merge job removes it.) Also the same data re-run after its merge.
    if (await summaryNamesRun(req.output, plan.run, merged)) {
      await rmdir(dir).catch(() => {});
      await rmdir(partsFolder(req.output)).catch(() => {});
      throw alreadyMerged(req, plan.run);
    }
    // The first --shard part of a run leaves its plan, so the others need not read every shard's header
    // (and one that found its run's plan damaged replaces it).
    if (opened.plannedHere && !queued && (opened.damaged.has(plan.run) || !(await lstat(runPlanPath(req.output, plan.run)).then(() => true, () => false)))) {
      await writeFileAtomic(runPlanPath(req.output, plan.run), `${JSON.stringify(plan, null, 2)}\n`);
    }
    // From here a failure may be this copy losing its files to a merge another copy's record started.
    planned.run = plan.run;
    planned.samples = merged;
    summary = await quantizeCheckpoint(req.input, req.output, options, onProgress, signal, { shards, dir, beforeTensor, files: ckpt });
  } finally {
    await closeCheckpoint(ckpt);
  }
  const files = await Promise.all(summary.files.map(async (name) => ({ name, bytes: (await stat(join(dir, name))).size })));
  const record: PartRecord = {
    tool: 'fp4kit', kind: 'checkpoint-part', version: 1, fp4kit: runningVersion(), run: plan.run, part: req.part, parts: req.parts, input: plan.input,
    fingerprint: plan.fingerprint.digest, options: serialized, host: hostname(), backend: summary.backend, startedAt,
    finishedAt: Date.now(), files, partners: plan.partners[req.part], samples, tensors: summary.tensors,
  };
  await writeFileAtomic(join(dir, partRecordName(req.part, req.parts)), `${JSON.stringify(record)}\n`);
  if (!opts.autoMerge) return { record };
  // Counted by name (the merge reads and checks them): reading every record in every part was O(parts²).
  const names = await readdir(dir).catch(() => [] as string[]);
  const done = new Set(names.map((n) => /^part-(\d+)-of-(\d+)\.json$/.exec(n)).filter((m) => m !== null && Number(m[2]) === req.parts).map((m) => m![1]));
  if (done.size < req.parts) return { record };
  const merged = await mergeCheckpointParts(req.output, { ifUnlocked: true, run: plan.run });
  return merged ? { record, merged } : { record };
}

/** The runs with a folder in the parts folder, how many part records each holds, and the fp4kit
 *  version its parts ran (versionOf). */
async function runsInPartsFolder(outDir: string): Promise<Array<{ run: string; records: number; parts: number; fp4kit: string }>> {
  const names = (await isRealFolder(partsFolder(outDir))) ? await readdir(partsFolder(outDir)) : [];
  const runs: Array<{ run: string; records: number; parts: number; fp4kit: string }> = [];
  for (const name of names.filter((n) => RUN_FOLDER.test(n)).sort()) {
    const run = name.slice('run-'.length);
    const records = await readRecords(runFolder(outDir, run));
    runs.push({ run, records: new Set(records.map((r) => r.part)).size, parts: records[0]?.parts ?? 0, fp4kit: records[0] === undefined ? '' : versionOf(records[0]) });
  }
  return runs;
}

/** The fp4kit a part record names, in words. */
function versionOf(r: PartRecord): string {
  return r.fp4kit === undefined ? 'an older fp4kit (its records name no version)' : `fp4kit ${r.fp4kit}`;
}

async function readRecords(dir: string): Promise<PartRecord[]> {
  if (!(await isRealFolder(dir))) return [];
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  const records: PartRecord[] = [];
  for (const name of names.filter((n) => /^part-\d+-of-\d+\.json$/.test(n)).sort()) {
    const path = join(dir, name);
    let r: PartRecord;
    // A regular file only: a FIFO under a record's name would block the merge forever.
    const text = await readRegularTextFile(path);
    if (text === null) continue; // removed meanwhile
    try {
      r = JSON.parse(text) as PartRecord;
    } catch (err) {
      throw new SafetensorsError(path, `part record is not JSON (${(err as Error).message})`);
    }
    if (r === null || typeof r !== 'object' || r.tool !== 'fp4kit' || r.kind !== 'checkpoint-part' || r.version !== 1
      || !Number.isSafeInteger(r.parts) || r.parts < 1 || r.parts > MAX_PARTS || !Number.isSafeInteger(r.part) || r.part < 0 || r.part >= r.parts
      || name !== partRecordName(r.part, r.parts)) {
      throw new SafetensorsError(path, 'not an fp4kit part record');
    }
    // A damaged record is named, not met later as "Cannot read properties of undefined".
    const fine = typeof r.run === 'string' && typeof r.input === 'string' && typeof r.fingerprint === 'string' && typeof r.host === 'string'
      && (r.fp4kit === undefined || typeof r.fp4kit === 'string') && (r.partners === undefined || (Array.isArray(r.partners) && r.partners.every((n) => typeof n === 'string')))
      && typeof r.backend === 'string' && Number.isFinite(r.startedAt) && r.options !== null && typeof r.options === 'object'
      && Array.isArray(r.files) && r.files.every((f) => f !== null && typeof f === 'object' && typeof f.name === 'string' && Number.isSafeInteger(f.bytes))
      && r.samples !== null && typeof r.samples === 'object' && Array.isArray(r.tensors)
      && r.tensors.every((t) => t !== null && typeof t === 'object' && typeof t.name === 'string' && typeof t.file === 'string'
        && Array.isArray(t.outputs) && t.outputs.every((o) => typeof o === 'string'));
    if (!fine) throw new SafetensorsError(path, 'a damaged fp4kit part record (a field is missing or of the wrong kind); run that part again');
    // Every name is joined to the run folder (and to a killed merge's staging folder, whose files
    // are moved back: killed-merge.ts): a `../x` would reach a file outside them. Refused here,
    // before any of them is used.
    const odd = [...r.files.map((f) => f.name), ...r.tensors.map((t) => t.file), ...(r.partners ?? [])].find((n) => !isPlainFileName(n));
    if (odd !== undefined) throw new SafetensorsError(path, `names ${JSON.stringify(odd)} as a shard: not a plain file name (a damaged or hostile record); delete it and run that part again`);
    // Each tensor's error histogram as the merge adds them up: a bad one is this record's, named.
    for (const t of r.tensors) {
      if (t.errorHistogram === undefined) continue;
      try {
        checkedHistogram(t);
      } catch (err) {
        throw new SafetensorsError(path, `a damaged fp4kit part record (${(err as Error).message}); run that part again`);
      }
    }
    records.push(r);
  }
  return records;
}

const LOCK_NAME = 'merging';

export interface MergeOptions {
  /** Merge only if no other merge holds the lock (the last finisher of --shard runs); returns null otherwise. */
  ifUnlocked?: boolean;
  /** Take over the lock of a merge that died (`merge --unlock`; the queue's merge job, which BullMQ runs once at a time). */
  unlock?: boolean;
  /** Refuse records of any other run (the queue's merge job knows its run). */
  run?: string;
  /** Epoch ms the run was planned (the queue's merge job): with no records left and a summary written since
   *  (less an hour of clock skew between machines), an earlier attempt published the output; return its summary. */
  plannedAt?: number;
  /** Stops the merge at its next step (the queue's merge job whose worker lost its lock: another
   *  worker merges now, and two merges must not work on one run folder at once). */
  signal?: AbortSignal;
}

/**
 * Once every part is present: check that the input is still the one planned (fingerprint and every
 * part's data samples) and every part's shards have their recorded sizes; write the index, config,
 * side files and summary into a staging folder beside the output, move the shards there, and
 * publish it as a single run does. Returns the summary (with the copied extra files listed, as
 * quantizeCheckpoint returns it), or null with `ifUnlocked` when another merge holds the lock.
 */
export async function mergeCheckpointParts(outDir: string, options?: MergeOptions): Promise<CheckpointSummary | null> {
  const fn = 'mergeCheckpointParts';
  checkPath(fn, 'outDir', outDir);
  const mo = checkMergeOptions(fn, options); // read once
  // The run to merge: the one named, else the one run with records in the parts folder.
  let chosen = mo.run;
  if (chosen === undefined) {
    // Several runs (a rerun with other options, another coordinator): the one whose parts are all
    // done, if exactly one is; the others' folders are left as they are (they may still be running).
    const withRecords = (await runsInPartsFolder(outDir)).filter((r) => r.records > 0);
    const complete = withRecords.filter((r) => r.records === r.parts);
    if (withRecords.length > 1 && complete.length !== 1) {
      // Parts of one command run with two fp4kit versions make two runs (the run key hashes the version).
      const versions = new Set(withRecords.map((r) => r.fp4kit));
      if (versions.size > 1) {
        throw new SafetensorsError(partsFolder(outDir), `records of ${withRecords.length} different runs, made by ${versions.size} fp4kit versions (${withRecords.map((r) => `run-${r.run}: ${r.records} of ${r.parts} parts, ${r.fp4kit}`).join('; ')}): `
          + 'every part of a run must run one fp4kit version (another may write other bytes); run the missing parts with the version of the run to keep, delete the other run folder and merge again');
      }
      throw new SafetensorsError(partsFolder(outDir), `records of ${withRecords.length} different runs (${withRecords.map((r) => `run-${r.run}: ${r.records} of ${r.parts} parts`).join(', ')}; other input, options or number of parts); delete the stale run folder and merge again`);
    }
    chosen = (withRecords.length > 1 ? complete[0] : withRecords[0])?.run;
  }
  const partsDir = chosen === undefined ? partsFolder(outDir) : runFolder(outDir, chosen);
  const records = chosen === undefined ? [] : await readRecords(partsDir);
  if (records.length === 0) {
    const summaryPath = join(outDir, SUMMARY_NAME);
    const written = await stat(summaryPath).then((st) => st.mtimeMs, () => null);
    // Merged already (a queued merge retried after its first attempt published, or every part of a
    // queued re-run found its data merged): the run named is the one the summary names (its parts
    // compared their data with it); without a run, a summary published since the run was planned.
    const mergedAlready = written !== null && (mo.run !== undefined ? await summaryNamesRun(outDir, mo.run, undefined) : mo.plannedAt !== undefined && written >= mo.plannedAt - CLOCK_SKEW_MS);
    if (mergedAlready) {
      const summary = await publishedSummary(outDir);
      if (summary !== null) {
        if (mo.run !== undefined) await removeRunFolder(outDir, mo.run); // a queued re-run's plan.json
        return summary;
      }
    }
    if (written !== null && mo.run !== undefined) {
      // A run that is not the published one (another run merged into this output since): say whose it is.
      const published = await publishedSummary(outDir).catch(() => null);
      const holds = typeof published?.run?.key === 'string' ? `run ${published.run.key}` : 'another output (a single run\'s, or an older fp4kit\'s)';
      throw new SafetensorsError(outDir, `no part records in ${partsDir}: nothing to merge; run ${mo.run} is not the output's run (${outDir} holds ${holds})`);
    }
    throw new SafetensorsError(outDir, written !== null ? `no part records in ${partsDir}: already merged` : `no part records in ${partsDir}: run \`fp4kit quantize ... --shard i/n\` for every part first`);
  }
  const run = chosen!;
  const strangers = records.filter((r) => r.run !== run);
  if (strangers.length > 0) throw new SafetensorsError(join(partsDir, partRecordName(strangers[0].part, strangers[0].parts)), `belongs to run ${strangers[0].run}, not to the run of its folder (${run})`);
  // Every record names the options and fingerprint of its run (what the run key hashes; the input
  // path may be spelled differently on different machines) before any path a record names is opened.
  const same = (r: PartRecord) => r.fingerprint === records[0].fingerprint && JSON.stringify(r.options) === JSON.stringify(records[0].options);
  const odd = records.find((r) => !same(r));
  if (odd) throw new SafetensorsError(join(partsDir, partRecordName(odd.part, odd.parts)), `names other options or another fingerprint than ${partRecordName(records[0].part, records[0].parts)}: one of them is damaged or stale; delete it and run that part again`);
  // Another version may write other bytes (and plans otherwise): the merge runs the parts' version.
  if (records[0].fp4kit !== runningVersion()) {
    throw new SafetensorsError(partsDir, `the parts of this run ran ${versionOf(records[0])}, this merge runs fp4kit ${runningVersion()}: merge with the parts' version (another may write other bytes)`);
  }
  const count = records[0].parts;
  const other = records.find((r) => r.parts !== count);
  if (other) throw new SafetensorsError(partsDir, `holds records of ${count} and of ${other.parts} parts (${partRecordName(records[0].part, count)}, ${partRecordName(other.part, other.parts)}): one of them is damaged or stale; delete it and run that part again`);
  const byPart = new Map(records.map((r) => [r.part, r]));
  const missing = Array.from({ length: count }, (_v, i) => i).filter((i) => !byPart.has(i));
  if (missing.length > 0) {
    // A list of at most 20: 99999 missing parts are not a message.
    const listed = missing.length > 20 ? `${missing.slice(0, 20).join(', ')}, … (${missing.length} in all)` : missing.join(', ');
    throw new SafetensorsError(outDir, `part${missing.length > 1 ? 's' : ''} ${listed} of ${count} ${missing.length > 1 ? 'are' : 'is'} not finished (no ${join(partsDir, partRecordName(missing[0], count))}); run ${missing.length > 1 ? 'them' : 'it'}, then merge again`);
  }

  const lock = join(partsDir, LOCK_NAME);
  mo.signal?.throwIfAborted();
  try {
    await mkdir(lock);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    if (mo.ifUnlocked) return null;
    if (!mo.unlock) throw new SafetensorsError(lock, 'another merge is running (or one died); if none is running, merge again with --unlock');
  }
  let folder: OutputFolder | undefined;
  let publishing: string | undefined; // this merge's record of its staging folder's name (killed-merge.ts)
  const moved: string[] = [];
  const allSamples = Object.assign({}, ...records.map((r) => r.samples)) as DataSamples;
  const partShards = records.flatMap((r) => r.files.map((f) => f.name)); // the output shards the parts wrote
  try {
    // What an earlier merge of this run left when it was killed: its staging folder, the previous output moved aside.
    await finishKilledMerges(outDir, lock, run, partsDir, partShards);
    // Killed after it published (before its cleanup): the output is this run's; only the run folder is left to remove.
    if (await summaryNamesRun(outDir, run, allSamples)) {
      const summary = await publishedSummary(outDir).catch(() => null);
      if (summary !== null) {
        await removeRunFolder(outDir, run, partShards);
        return summary;
      }
    }
    const first = records[0];
    const ckpt = await openInput(first.input, mo.run !== undefined);
    try {
      const plan = await planFromOpen(ckpt, first.input, outDir, first.options, count);
      if (plan.fingerprint.digest !== first.fingerprint) throw new SafetensorsError(first.input, `changed since the parts were written: every machine must see the same input`);
      if (plan.run !== run) throw new SafetensorsError(partsDir, `the records do not match the input and options they name (run ${plan.run}, records ${run})`);
      // Each part read its own shards, maybe on another machine: the data there must be the data here.
      const here = await dataSamples(ckpt);
      for (const r of records) {
        const differs = sampleDifference(here, r.samples);
        if (differs !== null) throw new SafetensorsError(join(first.input, differs), `other data (sampled) here than part ${r.part}/${count} read on ${r.host}: every machine must see the same input`);
      }
      // Every output shard is present with the size its part recorded (a part rewritten by a later run, or lost, is caught).
      for (const r of records) {
        const expected = plan.parts[r.part];
        if (r.files.map((f) => f.name).join('\n') !== expected.join('\n')) throw new SafetensorsError(join(partsDir, partRecordName(r.part, count)), `lists ${r.files.map((f) => f.name).join(', ') || 'no files'}, expected ${expected.join(', ') || 'none'}`);
        // The neighbours it read for fused-group scales were the ones a plan of the whole input gives (a part with the plan opens just those).
        const partners = plan.partners[r.part];
        if (JSON.stringify(r.partners) !== JSON.stringify(partners)) {
          throw new SafetensorsError(join(partsDir, partRecordName(r.part, count)), `says it read ${r.partners === undefined ? 'no record of the' : r.partners.join(', ') || 'no'} other shards for fused-group scales, its run's plan ${partners.join(', ') || 'none'}: run part ${r.part}/${count} again`);
        }
        for (const f of r.files) {
          const path = join(partsDir, f.name);
          // lstat: a shard that is a symbolic link would publish a link to a file elsewhere.
          const st = await lstat(path).catch(() => null);
          if (st !== null && !st.isFile()) throw new SafetensorsError(path, `is ${st.isSymbolicLink() ? 'a symbolic link' : fileKind(st)}, not the shard its part wrote; run part ${r.part}/${count} again`);
          const size = st === null ? -1 : st.size;
          if (size !== f.bytes) throw new SafetensorsError(path, `${size < 0 ? 'missing' : `${size} bytes`}, but part ${r.part}/${count} wrote ${f.bytes}; run that part again`);
        }
      }
      const shardIndex = new Map(ckpt.shards.map((sh, i) => [basename(sh.path), i]));
      // Each part lists each tensor of its input shards once, under its own shard: the index and
      // summary are built from these lists, so a damaged one must not be published.
      for (const r of records) {
        const path = join(partsDir, partRecordName(r.part, count));
        const mine = new Set(r.files.map((f) => f.name));
        const expected = ckpt.shards.filter((sh) => mine.has(basename(sh.path))).flatMap((sh) => sh.tensors.map((t) => `${basename(sh.path)}\n${t.name}`)).sort();
        const listed = r.tensors.map((t) => `${t.file}\n${t.name}`).sort();
        if (listed.join('\0') !== expected.join('\0')) throw new SafetensorsError(path, `lists ${listed.length} tensors, but its shards hold ${expected.length} (other names or files): a damaged record; run part ${r.part}/${count} again`);
      }
      const tensors = records.flatMap((r) => r.tensors).sort((a, b) => shardIndex.get(a.file)! - shardIndex.get(b.file)!); // stable: input order within a shard
      const options = deserializeOptions(first.options);
      const layoutName = (options.layout ?? 'fp4kit') as LayoutName;
      const backends = [...new Set(records.map((r) => r.backend))].sort();
      const startedAt = Math.min(...records.map((r) => r.startedAt));
      const { copied, notCopied } = await filesToCopy(ckpt, first.input);
      const inFolder = await isFolderInput(ckpt, first.input);
      const { outputs, summary, extras } = await checkpointSideFiles({
        ckpt, input: first.input, outDir, format: options.format, layoutName, layout: layoutByName(layoutName, { inputScale: options.inputScale }),
        tensors, copied, notCopied, inFolder, backend: backends.join('+') || getBackend().name, seconds: (Date.now() - startedAt) / 1000, run: { key: run, samples: here },
      });
      // The output is published as a single run publishes it: a staging folder, complete, renamed into place.
      const inputFiles = filesRead(ckpt, await readModelConfig(ckpt.dir), copied, options.fisher);
      checkNotAliasingInput(outDir, inFolder ? ckpt.dir : null, inputFiles);
      folder = await OutputFolder.create(outDir, {
        overwrite: options.overwrite, inputs: inFolder ? [ckpt.dir, ...inputFiles] : inputFiles,
        // Recorded in the lock's folder before the staging folder exists: killed from here on, the next merge of the run finds them.
        beforeStaging: async (names) => { publishing = await recordPublishing(lock, run, names); },
      });
      for (const [name, text] of outputs) await writeFileAtomic(join(folder.staging, name), text);
      for (const name of extras) await copyRegularFile(join(ckpt.dir, name), join(folder.staging, name));
      for (const name of plan.parts.flat()) {
        mo.signal?.throwIfAborted();
        // A hard link: if this merge dies before publishing, the part's shard is still here for the
        // next merge (a rename would leave it only in a staging folder the next run removes).
        const linked = await link(join(partsDir, name), join(folder.staging, name)).then(() => true, (err: NodeJS.ErrnoException) => {
          if (!['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK', 'ENOSYS'].includes(err.code ?? '')) throw err;
          return false; // a filesystem without hard links: moved, and put back if the merge fails
        });
        if (!linked) {
          await rename(join(partsDir, name), join(folder.staging, name));
          moved.push(name);
        }
      }
      mo.signal?.throwIfAborted();
      // Every file checked to be in the staging folder just before it is renamed into place: a
      // merge of this run that took the lock over (this one stalled past it) moves it away.
      await folder.publish([...outputs.map(([name]) => name), ...extras, ...plan.parts.flat()]);
      await removeRunFolder(outDir, run, plan.parts.flat()); // the shards' other names, records, the lock, temporary files of killed parts
      if (publishing !== undefined) await forgetPublishing(publishing); // removed with the lock
      return summary;
    } finally {
      await closeCheckpoint(ckpt);
    }
  } catch (err) {
    // Put the parts' shards back before the staging folder goes, so a merge again needs no part rerun.
    if (folder) for (const name of moved) await rename(join(folder.staging, name), join(partsDir, name)).catch(() => {});
    await folder?.abort();
    if (publishing !== undefined) await forgetPublishing(publishing, folder?.staging).catch(() => {}); // its staging folder is gone
    if (mo.signal?.aborted) throw err; // its lock went to another merge: that one's lock is not ours to remove
    await rmdir(lock).catch(() => {});
    // Another merge of this run (a second `merge --unlock`, a queue merge job handed over) published
    // it meanwhile and took the records and shards this one was reading: the run is done.
    if (await runMerged(outDir, run, allSamples)) {
      const summary = await publishedSummary(outDir).catch(() => null);
      if (summary !== null) return summary;
    }
    throw err;
  }
}
