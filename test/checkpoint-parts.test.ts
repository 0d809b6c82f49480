// Distributed quantization without a queue (lib/checkpoint/checkpoint-parts.ts): the byte-balanced split, parts
// run in any order and merged give the bytes of a single-machine run (every file; the summary's
// `seconds` aside), the last finisher merges, and what the merge refuses (a missing part, a changed
// input, a damaged output shard, records of two runs or two fp4kit versions) and what a part refuses
// (an input it cannot see, a different input under the planned path). A part with its run's plan
// opens only the shards it reads; a merge killed at any step on another machine is finished or
// cleaned up by the next merge of its run (test/helpers/merge-kill-points.mjs).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, mkdtempSync, symlinkSync, truncateSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { quantizeCheckpoint, SUMMARY_NAME, type CheckpointOptions } from '../lib/checkpoint/quantize-checkpoint.js';
import {
  mergeCheckpointParts, partsFolder, parseShardSpec, runFolder, runPlanPath, partitionShards, planRun, runCheckpointPart, serializeOptions, writeRunPlan,
} from '../lib/checkpoint/checkpoint-parts.js';
import { SafetensorsFile } from '../lib/checkpoint/safetensors/read.js';
import { finishKilledMerges } from '../lib/checkpoint/killed-merge.js';
import { hostTag } from '../lib/checkpoint/safetensors/output-folder.js';
import { packageVersion } from '../lib/core/package-manifest.js';
import { writeShardedCheckpoint } from './helpers/sharded-checkpoint.js';
import { compareOutputFolders } from './helpers/compare-outputs.js';

const root = mkdtempSync(join(tmpdir(), 'fp4kit-parts-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const input = join(root, 'in');
let shardNames: string[] = [];

beforeAll(async () => {
  // 6 layers × ~200 kB in ~90 kB shards: about 14 shards of uneven size, with q/k/v and gate/up groups split across shards.
  shardNames = await writeShardedCheckpoint(input, { layers: 6, hidden: 128, intermediate: 192, vocab: 256, maxShardBytes: 90_000, seed: 7 });
});

describe('partitionShards', () => {
  it('puts the largest shard first into the lightest part, ties by name and by part number', () => {
    const shards = [
      { name: 'a', bytes: 10 }, { name: 'b', bytes: 40 }, { name: 'c', bytes: 30 }, { name: 'd', bytes: 30 }, { name: 'e', bytes: 5 },
    ];
    // b(40)→0, c(30)→1, d(30)→2, a(10)→1 (30 < 40, lowest of the two 30s), e(5)→2
    expect(partitionShards(shards, 3)).toEqual([[1], [0, 2], [3, 4]]);
    expect(partitionShards(shards, 1)).toEqual([[0, 1, 2, 3, 4]]);
    // More parts than shards: the extra parts are empty, none is dropped.
    expect(partitionShards(shards, 7).flat().sort()).toEqual([0, 1, 2, 3, 4]);
    expect(partitionShards(shards, 7).filter((p) => p.length === 0)).toHaveLength(2);
  });

  it('is the same for any input order and keeps parts within one shard of each other', () => {
    const shards = Array.from({ length: 40 }, (_v, i) => ({ name: `s${String(i).padStart(2, '0')}`, bytes: 1000 + ((i * 7919) % 997) * 13 }));
    const a = partitionShards(shards, 4).map((p) => p.map((i) => shards[i].name).sort());
    const reversed = [...shards].reverse();
    const b = partitionShards(reversed, 4).map((p) => p.map((i) => reversed[i].name).sort());
    expect(b).toEqual(a);
    const loads = partitionShards(shards, 4).map((p) => p.reduce((s, i) => s + shards[i].bytes, 0));
    const biggest = Math.max(...shards.map((s) => s.bytes));
    expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(biggest);
  });

  it('refuses a part count that is not a positive integer', () => {
    expect(() => partitionShards([], 0)).toThrow('partitionShards: count must be a positive integer, got 0');
  });
});

describe('parseShardSpec', () => {
  it('takes i/n with 0 <= i < n and says what is wrong otherwise', () => {
    expect(parseShardSpec('0/3')).toEqual({ index: 0, count: 3 });
    expect(parseShardSpec(' 2/3 ')).toEqual({ index: 2, count: 3 });
    expect(() => parseShardSpec('3/3')).toThrow('--shard: part 3 does not exist in 3 parts (parts are numbered 0..2)');
    expect(() => parseShardSpec('1/0')).toThrow('--shard: the number of parts must be 1..100000, got 0');
    expect(() => parseShardSpec('1-3')).toThrow('--shard: expected i/n (part i of n, 0 <= i < n), got "1-3"');
    expect(() => parseShardSpec('-1/3')).toThrow('--shard: expected i/n');
  });
});

describe('serializeOptions (the run key hashes it)', () => {
  it('keeps an option as given: an inputScale that is not a float32 is not rounded (the run key of a half-done run would change across versions)', () => {
    expect(serializeOptions({ format: 'nvfp4', layout: 'modelopt', inputScale: 0.1 }).inputScale).toBe(0.1);
    expect(JSON.stringify(serializeOptions({ format: 'mxfp4', only: /x/g, seed: 3, rounding: 'stochastic' })))
      .toBe('{"format":"mxfp4","layout":"fp4kit","only":{"source":"x","flags":""},"rounding":"stochastic","seed":3,"measureError":true}');
  });
});

/** A single run into `out`, moved aside to `<out>.single`: the reference for the same output path. */
async function singleRun(out: string, options: CheckpointOptions): Promise<string> {
  await quantizeCheckpoint(input, out, options);
  renameSync(out, `${out}.single`);
  return `${out}.single`;
}

async function runParts(out: string, options: CheckpointOptions, count: number, order: number[], autoMerge = false) {
  const results = [];
  for (const part of order) results.push(await runCheckpointPart({ input, output: out, options: serializeOptions(options), part, parts: count }, undefined, undefined, { autoMerge }));
  return results;
}

describe('runCheckpointPart and mergeCheckpointParts refuse bad arguments by name, before anything is read or written', () => {
  const named = async (call: () => Promise<unknown>): Promise<string> => call().then(() => 'no error', (e: Error) => `${e.constructor.name}: ${e.message}`);
  const request = { input, output: join(root, 'args-out'), options: serializeOptions({ format: 'mxfp4' }), part: 0, parts: 2 };

  it('runCheckpointPart', async () => {
    expect(await named(() => runCheckpointPart(null as never))).toBe('TypeError: runCheckpointPart: the request must be an object { input, output, options, part, parts, run? }, got null');
    expect(await named(() => runCheckpointPart({} as never))).toBe('TypeError: runCheckpointPart: input must be a path (a non-empty string), got undefined');
    expect(await named(() => runCheckpointPart({ ...request, output: '' }))).toBe('RangeError: runCheckpointPart: output must be a path (a non-empty string), got ""');
    expect(await named(() => runCheckpointPart({ ...request, options: null as never }))).toBe('TypeError: runCheckpointPart: options must be an object (serializeOptions), got null');
    expect(await named(() => runCheckpointPart({ ...request, part: 2n as never }))).toBe('TypeError: runCheckpointPart: part must be a non-negative integer (a Number), got 2n (a BigInt)');
    expect(await named(() => runCheckpointPart({ ...request, part: 2 }))).toBe('RangeError: runCheckpointPart: part 2 does not exist in 2 parts (parts are numbered 0..1)');
    expect(await named(() => runCheckpointPart({ ...request, part: -1 }))).toBe('RangeError: runCheckpointPart: part must be a non-negative integer, got -1');
    expect(await named(() => runCheckpointPart({ ...request, parts: 0 }))).toBe('RangeError: runCheckpointPart: parts must be 1..100000, got 0');
    expect(await named(() => runCheckpointPart({ ...request, run: '../../etc' }))).toBe('RangeError: runCheckpointPart: run must be a run key (a lowercase hex string), got "../../etc"');
    expect(await named(() => runCheckpointPart({ ...request, run: 42 as never }))).toBe('TypeError: runCheckpointPart: run must be a run key (a lowercase hex string), got 42');
    expect(await named(() => runCheckpointPart({ ...request, fingerprint: 'x' as never }))).toBe('TypeError: runCheckpointPart: fingerprint must be { digest, files: [{ name, bytes, sha256 }] } (from the run\'s plan), got "x"');
    expect(await named(() => runCheckpointPart({ ...request, fingerprint: {} as never }))).toBe('TypeError: runCheckpointPart: fingerprint must be { digest, files: [{ name, bytes, sha256 }] } (from the run\'s plan), got an object');
    // The options are copied once: a getter in them runs at the check, not later.
    let reads = 0;
    const counting = { ...request, options: { get format() { reads++; return 'mxfp4'; } } as never, part: 5 };
    await named(() => runCheckpointPart(counting));
    expect(reads).toBe(1);
    expect(await named(() => runCheckpointPart(request, 42 as never))).toBe('TypeError: runCheckpointPart: onProgress must be a function, got 42');
    expect(await named(() => runCheckpointPart(request, undefined, {} as never))).toBe('TypeError: runCheckpointPart: signal must be an AbortSignal, got an object');
    expect(await named(() => runCheckpointPart(request, undefined, undefined, { autoMerge: 'yes' as never }))).toBe('TypeError: runCheckpointPart: opts.autoMerge must be a boolean, got "yes"');
    expect(existsSync(partsFolder(request.output))).toBe(false);
  });

  it('mergeCheckpointParts; a run key never names a folder outside the parts folder', async () => {
    const out = join(root, 'args-merge');
    expect(await named(() => mergeCheckpointParts(42 as never))).toBe('TypeError: mergeCheckpointParts: outDir must be a path (a non-empty string), got 42');
    expect(await named(() => mergeCheckpointParts(out, null as never))).toBe('TypeError: mergeCheckpointParts: options must be an object { ifUnlocked?, unlock?, run?, plannedAt? }, got null');
    expect(await named(() => mergeCheckpointParts(out, { run: '../../etc' }))).toBe('RangeError: mergeCheckpointParts: options.run must be a run key (a lowercase hex string), got "../../etc"');
    expect(await named(() => mergeCheckpointParts(out, { run: 42 as never }))).toBe('TypeError: mergeCheckpointParts: options.run must be a run key (a lowercase hex string), got 42');
    expect(await named(() => mergeCheckpointParts(out, { unlock: 1 as never }))).toBe('TypeError: mergeCheckpointParts: options.unlock must be a boolean, got 1');
    expect(await named(() => mergeCheckpointParts(out, { plannedAt: NaN }))).toBe('RangeError: mergeCheckpointParts: options.plannedAt must be a finite time in epoch ms, got NaN');
    expect(() => runFolder(out, '../x')).toThrow('not a run key (lowercase hex): "../x"');
    expect(() => runFolder(out, 'ABC')).toThrow(RangeError);
    expect(existsSync(partsFolder(out))).toBe(false);
  });
});

describe('--shard parts and merge', () => {
  const cases: Array<[string, CheckpointOptions, number, number[]]> = [
    ['nvfp4 compressed-tensors (fused q/k/v and gate/up scales across shards), 3 parts in reverse', { format: 'nvfp4', layout: 'compressed-tensors' }, 3, [2, 1, 0]],
    ['mxfp4 fp4kit with stochastic rounding, 4 parts', { format: 'mxfp4', rounding: 'stochastic', seed: 11 }, 4, [1, 3, 0, 2]],
    ['nvfp4 modelopt, --skip, 2 parts', { format: 'nvfp4', layout: 'modelopt', skip: /down_proj/ }, 2, [0, 1]],
  ];
  it.each(cases)('%s: the merged folder is byte-identical to a single run', async (_label, options, count, order) => {
    const out = join(root, `out-${count}-${order.join('')}`);
    const single = await singleRun(out, options);
    const results = await runParts(out, options, count, order);
    // Parts cover every shard exactly once, in the parts folder; the output does not exist before the merge.
    expect(results.flatMap((r) => r.record.files.map((f) => f.name)).sort()).toEqual([...shardNames].sort());
    const run = results[0].record.run;
    expect(readdirSync(partsFolder(out))).toEqual([`run-${run}`]); // one folder per run
    // The first part planned the run and left its plan for the others.
    expect(readdirSync(runFolder(out, run)).sort()).toEqual([...shardNames, ...Array.from({ length: count }, (_v, i) => `part-${i}-of-${count}.json`), 'plan.json'].sort());
    expect(existsSync(out)).toBe(false);
    const summary = await mergeCheckpointParts(out);
    expect(summary!.tensors.length).toBe(JSON.parse(readFileSync(join(single, SUMMARY_NAME), 'utf8')).tensors.length);
    expect(compareOutputFolders(out, single)).toEqual({ differences: [], files: readdirSync(single).length });
    expect(existsSync(partsFolder(out))).toBe(false);
  });

  it('the last part to finish merges; an empty part (more parts than shards) is fine', async () => {
    const options: CheckpointOptions = { format: 'mxfp8_e4m3' };
    const out = join(root, 'auto');
    const single = await singleRun(out, options);
    const count = shardNames.length + 2;
    const order = Array.from({ length: count }, (_v, i) => i).sort((a, b) => (a % 3) - (b % 3) || b - a); // a scrambled order
    expect(shardNames.length).toBeGreaterThan(8);
    const results = await runParts(out, options, count, order.slice(0, -1), true);
    expect(results.every((r) => r.merged === undefined)).toBe(true);
    expect(existsSync(out)).toBe(false);
    const [last] = await runParts(out, options, count, order.slice(-1), true);
    expect(last.merged?.quantized).toBeGreaterThan(0);
    expect(compareOutputFolders(out, single).differences).toEqual([]);
    await expect(mergeCheckpointParts(out)).rejects.toThrow(`${out}: no part records in ${partsFolder(out)}: already merged`);
    // A queued merge retried after its first attempt published (the worker died before reporting): done, not failed.
    const published = JSON.parse(readFileSync(join(out, SUMMARY_NAME), 'utf8'));
    expect(await mergeCheckpointParts(out, { plannedAt: Date.now() - 60_000 })).toEqual(published);
    // ...but an output older than the run (by more than the allowed clock skew) is not taken for its result.
    await expect(mergeCheckpointParts(out, { plannedAt: Date.now() + 2 * 3600_000 })).rejects.toThrow('already merged');
  });

  it('merge names the parts that are missing', async () => {
    const out = join(root, 'missing');
    const [p0] = await runParts(out, { format: 'mxfp4' }, 4, [0, 2]);
    await expect(mergeCheckpointParts(out)).rejects.toThrow(`${out}: parts 1, 3 of 4 are not finished (no ${runFolder(out, p0.record.run)}/part-1-of-4.json); run them, then merge again`);
    await expect(mergeCheckpointParts(join(root, 'nothing-here'))).rejects.toThrow(`no part records in ${root}/nothing-here.parts: run \`fp4kit quantize ... --shard i/n\` for every part first`);
  });

  // Found by review 27 (2026-12-07): a record's file names reached the killed-merge recovery
  // before anything checked them, and `../../victim.txt` moved a file from outside the shared
  // folder into it (the recovery moves the parts' shards back out of a killed merge's staging folder).
  it('a record naming a file outside its folder (../../victim.txt) moves nothing: refused when read, and by the killed-merge recovery itself; a publish record whose host is not its name\'s is left alone', async () => {
    const share = join(root, 'share');
    mkdirSync(share);
    const out = join(share, 'o');
    const [p0] = await runParts(out, { format: 'mxfp4' }, 2, [0, 1]);
    const run = p0.record.run;
    const dir = runFolder(out, run);
    const victim = join(root, 'victim.txt'); // outside the shared folder
    writeFileSync(victim, 'secret of another user');
    // A merge of the run killed on another host: its record and its staging folder.
    const lock = join(dir, 'merging');
    mkdirSync(lock);
    writeFileSync(join(lock, 'publish-hostB-1234-deadbeef.json'), JSON.stringify({ run, host: 'hostB', pid: 1234, staging: 'o.tmp-hostB-1234-deadbeef', aside: 'o.old-hostB-1234-deadbeef' }));
    mkdirSync(join(share, 'o.tmp-hostB-1234-deadbeef'));
    const recordPath = join(dir, 'part-0-of-2.json');
    const original = readFileSync(recordPath, 'utf8');
    type Rec = { files: Array<{ name: string; bytes: number }>; tensors: Array<{ file: string }>; partners: string[] };
    const edits: Array<[string, (r: Rec) => void]> = [
      ['../../victim.txt', (r) => { r.files.push({ name: '../../victim.txt', bytes: 22 }); }],
      ['../../victim.txt', (r) => { r.tensors[0].file = '../../victim.txt'; }],
      ['..', (r) => { r.partners = ['..']; }],
      ['', (r) => { r.files[0].name = ''; }],
    ];
    for (const [name, edit] of edits) {
      const r = JSON.parse(original) as Rec;
      edit(r);
      writeFileSync(recordPath, JSON.stringify(r));
      const refused = await mergeCheckpointParts(out, { unlock: true }).then(() => null, (err: Error) => err.message);
      expect(readdirSync(share).sort()).toEqual(['o.parts', 'o.tmp-hostB-1234-deadbeef']); // nothing moved in
      expect(readFileSync(victim, 'utf8')).toBe('secret of another user');
      expect(refused).toBe(`${recordPath}: names ${JSON.stringify(name)} as a shard: not a plain file name (a damaged or hostile record); delete it and run that part again`);
    }
    // The recovery itself refuses such a name (it renames files): nothing is moved or removed.
    await expect(finishKilledMerges(out, lock, run, dir, [...p0.record.files.map((f) => f.name), '../../victim.txt']))
      .rejects.toThrow(`${dir}: a part record names "../../victim.txt" as a shard: not a plain file name; nothing was moved`);
    expect(existsSync(victim)).toBe(true);
    expect(existsSync(join(share, 'o.tmp-hostB-1234-deadbeef'))).toBe(true);
    // A publish record whose host is not the one its name (and so its folders' names) gives is not a merge's: its folder stays.
    writeFileSync(join(lock, 'publish-hostC-1234-deadbeef.json'), JSON.stringify({ run, host: 'hostB', pid: 1234, staging: 'o.tmp-hostC-1234-deadbeef', aside: 'o.old-hostC-1234-deadbeef' }));
    mkdirSync(join(share, 'o.tmp-hostC-1234-deadbeef'));
    writeFileSync(recordPath, original);
    expect((await mergeCheckpointParts(out, { unlock: true }))!.format).toBe('mxfp4');
    expect(readdirSync(share).sort()).toEqual(['o', 'o.tmp-hostC-1234-deadbeef']); // hostB's killed merge cleaned up; the parts folder gone
    expect(readFileSync(victim, 'utf8')).toBe('secret of another user');
  });

  // Review 27: a leftover named with this process's pid was taken for one of this process's, but a
  // process holds only the folders it made (a restarted container keeps its host name, and node
  // often gets the same small pid).
  it('a leftover staging folder named with this process\'s pid that this process did not make is removed by the next run here', async () => {
    const out = join(root, 'own-pid');
    await runParts(out, { format: 'mxfp4' }, 2, [0, 1]);
    const leftover = `${out}.tmp-${hostTag(hostname())}-${process.pid}-0badcafe`;
    mkdirSync(leftover);
    writeFileSync(join(leftover, 'half-written.safetensors'), 'x');
    expect((await mergeCheckpointParts(out))!.format).toBe('mxfp4');
    expect(existsSync(leftover)).toBe(false);
  });

  // Found by an audit of the distributed path (2026-12-06): the merge followed a symbolic link at
  // the run folder and removed *.safetensors and plan.json in its target; a FIFO record hung it; a
  // record's part numbers or tensor list were believed (raw errors, a heap-exhausting array, an
  // index that did not match the shards).
  it('the merge never works through a symbolic link: a linked run folder or shard is refused, the files behind it untouched', async () => {
    const out = join(root, 'linked');
    const [p0] = await runParts(out, { format: 'mxfp4' }, 2, [0, 1]);
    const run = p0.record.run;
    const elsewhere = join(root, 'linked-elsewhere');
    renameSync(runFolder(out, run), elsewhere);
    writeFileSync(join(elsewhere, 'weights-I-keep.safetensors'), 'mine');
    symlinkSync(elsewhere, runFolder(out, run));
    await expect(mergeCheckpointParts(out)).rejects.toThrow(`${runFolder(out, run)}: is a symbolic link`);
    expect(readdirSync(elsewhere)).toContain('weights-I-keep.safetensors');
    expect(existsSync(out)).toBe(false);
    // The real folder back, one shard replaced by a link to a file elsewhere: refused, not published as a link.
    rmSync(runFolder(out, run));
    renameSync(elsewhere, runFolder(out, run));
    const shard = join(runFolder(out, run), p0.record.files[0].name);
    const outside = join(root, 'linked-shard.safetensors');
    renameSync(shard, outside);
    symlinkSync(outside, shard);
    await expect(mergeCheckpointParts(out)).rejects.toThrow(`${shard}: is a symbolic link, not the shard its part wrote; run part 0/2 again`);
    rmSync(shard);
    renameSync(outside, shard);
    expect((await mergeCheckpointParts(out))!.format).toBe('mxfp4');
  });

  it('damaged or hostile part records are refused by name; a FIFO under a record\'s name does not block the merge', async () => {
    const out = join(root, 'records');
    const [p0] = await runParts(out, { format: 'mxfp4' }, 2, [0, 1]);
    const dir = runFolder(out, p0.record.run);
    const recordPath = join(dir, 'part-0-of-2.json');
    const original = readFileSync(recordPath, 'utf8');
    const rewrite = (edit: (r: Record<string, unknown>) => void) => { const r = JSON.parse(original); edit(r); writeFileSync(recordPath, JSON.stringify(r)); };
    rewrite((r) => { r.tensors = (r.tensors as unknown[]).slice(1); });
    await expect(mergeCheckpointParts(out)).rejects.toThrow(/part-0-of-2\.json: lists \d+ tensors, but its shards hold \d+ \(other names or files\): a damaged record; run part 0\/2 again/);
    rewrite((r) => { (r.tensors as Array<Record<string, unknown>>)[0].name = 'evil.injected.weight'; });
    await expect(mergeCheckpointParts(out)).rejects.toThrow(/a damaged record/);
    rewrite((r) => { r.tensors = [null]; });
    await expect(mergeCheckpointParts(out)).rejects.toThrow(`${recordPath}: a damaged fp4kit part record`);
    // A tensor's error histogram, which the merge adds up into the run's: the record is named.
    rewrite((r) => { (r.tensors as Array<Record<string, unknown>>).find((t) => t.action === 'quantized')!.errorHistogram = { firstBinade: 0, counts: 'oops' }; });
    await expect(mergeCheckpointParts(out)).rejects.toThrow(new RegExp(`^${recordPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: a damaged fp4kit part record \\(tensor "[^"]+": errorHistogram is not`));
    // A record naming other options (a Fisher file elsewhere) is refused before any path it names is opened.
    rewrite((r) => { (r.options as Record<string, unknown>).fisher = '/etc/passwd'; });
    await expect(mergeCheckpointParts(out)).rejects.toThrow(`${join(dir, 'part-1-of-2.json')}: names other options or another fingerprint than part-0-of-2.json`);
    rewrite((r) => { r.part = '0'; });
    await expect(mergeCheckpointParts(out)).rejects.toThrow(`${recordPath}: not an fp4kit part record`);
    writeFileSync(recordPath, original);
    // A record claiming 2^32 − 1 parts (its name made to match) is refused, not an array of that length.
    const huge = join(dir, `part-0-of-${2 ** 32 - 1}.json`);
    writeFileSync(huge, JSON.stringify({ ...JSON.parse(original), parts: 2 ** 32 - 1 }));
    await expect(mergeCheckpointParts(out)).rejects.toThrow(`${huge}: not an fp4kit part record`);
    rmSync(huge);
    const three = join(dir, 'part-2-of-3.json');
    writeFileSync(three, JSON.stringify({ ...JSON.parse(original), part: 2, parts: 3 }));
    await expect(mergeCheckpointParts(out)).rejects.toThrow(`${dir}: holds records of 2 and of 3 parts`);
    rmSync(three);
    const fifo = join(dir, 'part-5-of-9.json');
    execFileSync('mkfifo', [fifo]);
    const started = Date.now();
    await expect(mergeCheckpointParts(out)).rejects.toThrow(`${fifo}: not a regular file (a FIFO)`);
    expect(Date.now() - started).toBeLessThan(10_000);
    rmSync(fifo);
    expect((await mergeCheckpointParts(out))!.format).toBe('mxfp4');
  });

  it('a part refused before it starts is refused, not taken for a copy whose run another merged (a recent summary of another run is no proof)', async () => {
    const out = join(root, 'masked');
    await runParts(out, { format: 'nvfp4' }, 2, [0, 1], true); // merged: a fresh summary in out
    expect(existsSync(join(out, SUMMARY_NAME))).toBe(true);
    mkdirSync(partsFolder(out));
    writeFileSync(join(partsFolder(out), 'notes.txt'), 'mine');
    await expect(runCheckpointPart({ input, output: out, options: serializeOptions({ format: 'mxfp4' }), part: 0, parts: 2 }))
      .rejects.toThrow(`${partsFolder(out)}: holds files fp4kit did not write (notes.txt)`);
  });

  it('a copy of a part that starts after its run was merged (a retry of a part that had finished) writes nothing and says so; another run into the same output still runs', async () => {
    const out = join(root, 'late-copy');
    const single = await singleRun(out, { format: 'nvfp4' });
    await runParts(out, { format: 'nvfp4' }, 2, [0, 1], true);
    const plan = await planRun(input, out, { format: 'nvfp4' }, 2, { samples: true });
    const published = readFileSync(join(out, SUMMARY_NAME), 'utf8');
    expect(JSON.parse(published).run).toEqual({ key: plan.run, samples: plan.samples }); // the merge names its run and its data in the summary
    expect(compareOutputFolders(out, single).differences).toEqual([]);
    const late = runCheckpointPart({ input, output: out, options: serializeOptions({ format: 'nvfp4' }), part: 1, parts: 2 }, undefined, undefined, { autoMerge: true });
    await expect(late).rejects.toThrow(`${out}: part 1/2: its run (${plan.run}) is already merged into this output (its ${SUMMARY_NAME} names the run); this copy's work was not needed. To quantize it again, delete or move ${out} first`);
    await expect(late).rejects.toHaveProperty('name', 'PartAlreadyMergedError');
    expect(existsSync(partsFolder(out))).toBe(false); // no run folder made again, no stale record left
    // A queued job of the merged run handed over late (its plan went with the run folder): the same, not "stale".
    const queued = runCheckpointPart({
      input, output: out, options: serializeOptions({ format: 'nvfp4' }), part: 0, parts: 2, run: plan.run, fingerprint: plan.fingerprint,
      samples: Object.fromEntries(plan.parts[0].map((n) => [n, plan.samples![n]])),
    });
    await expect(queued).rejects.toHaveProperty('name', 'PartAlreadyMergedError');
    expect(existsSync(partsFolder(out))).toBe(false);
    // A queued merge of the run, retried after it published: the summary names its run, whenever it was planned.
    expect(await mergeCheckpointParts(out, { run: plan.run, plannedAt: Date.now() + 2 * 3600_000 })).toEqual(JSON.parse(published));
    // The same run queued again over the same data: the producer's plan.json is in the run folder, each
    // part ends as not needed, and the merge job returns the published summary and removes the folder.
    await writeRunPlan(plan);
    const again = runCheckpointPart({
      input, output: out, options: serializeOptions({ format: 'nvfp4' }), part: 1, parts: 2, run: plan.run, fingerprint: plan.fingerprint,
      samples: Object.fromEntries(plan.parts[1].map((n) => [n, plan.samples![n]])),
    });
    await expect(again).rejects.toHaveProperty('name', 'PartAlreadyMergedError');
    expect(readdirSync(runFolder(out, plan.run))).toEqual(['plan.json']);
    expect(await mergeCheckpointParts(out, { run: plan.run, plannedAt: Date.now() })).toEqual(JSON.parse(published));
    expect(existsSync(partsFolder(out))).toBe(false);
    // Another run (other options) into the same output is not taken for this one: its part runs.
    const other = await planRun(input, out, { format: 'mxfp4' }, 2);
    await expect(mergeCheckpointParts(out, { run: other.run })).rejects.toThrow(
      `${out}: no part records in ${runFolder(out, other.run)}: nothing to merge; run ${other.run} is not the output's run (${out} holds run ${plan.run})`);
    const [record] = await runParts(out, { format: 'mxfp4' }, 2, [0]);
    expect(record.record.run).toBe(other.run);
    expect(readdirSync(partsFolder(out))).toEqual([`run-${other.run}`]);
    expect(readFileSync(join(out, SUMMARY_NAME), 'utf8')).toBe(published); // the published output is untouched until that run merges
  });

  it('a checkpoint of the same architecture with other weights (a new fine-tune saved over the old, or at another path) has the same run key but is not taken for the merged run: its parts run and its merge publishes it', async () => {
    const out = join(root, 'new-weights');
    const newer = join(root, 'new-weights-input');
    await writeShardedCheckpoint(newer, { layers: 6, hidden: 128, intermediate: 192, vocab: 256, maxShardBytes: 90_000, seed: 9 });
    await quantizeCheckpoint(newer, out, { format: 'nvfp4' });
    const single = `${out}.single`;
    renameSync(out, single); // the new weights' single run, for the bytes
    await runParts(out, { format: 'nvfp4' }, 2, [0, 1], true);
    const [oldPlan, newPlan] = [await planRun(input, out, { format: 'nvfp4' }, 2), await planRun(newer, out, { format: 'nvfp4' }, 2)];
    expect(newPlan.run).toBe(oldPlan.run); // the key hashes headers, config and options, not the data
    const results = await runCheckpointPart({ input: newer, output: out, options: serializeOptions({ format: 'nvfp4' }), part: 0, parts: 2 }, undefined, undefined, { autoMerge: true })
      .then(async (first) => [first, await runCheckpointPart({ input: newer, output: out, options: serializeOptions({ format: 'nvfp4' }), part: 1, parts: 2 }, undefined, undefined, { autoMerge: true })]);
    expect(results[1].merged?.input).toBe(newer);
    expect(compareOutputFolders(out, single).differences).toEqual([]); // the new weights, published
    // A part with no shard of its own (more parts than shards) compares every shard's data: a late copy
    // over the merged data is not needed; over other data with the same key it runs.
    const count = shardNames.length + 1;
    const emptyOut = join(root, 'new-weights-empty');
    await runParts(emptyOut, { format: 'nvfp4' }, count, Array.from({ length: count }, (_v, i) => i), true);
    expect(existsSync(join(emptyOut, SUMMARY_NAME))).toBe(true);
    const emptyPart = (from: string) => runCheckpointPart({ input: from, output: emptyOut, options: serializeOptions({ format: 'nvfp4' }), part: count - 1, parts: count });
    await expect(emptyPart(input)).rejects.toHaveProperty('name', 'PartAlreadyMergedError');
    expect((await emptyPart(newer)).record.files).toEqual([]);
    // A queued job of the old run arriving now (the producer's samples are the old data's): not taken for merged.
    const oldSamples = (await planRun(input, out, { format: 'nvfp4' }, 2, { samples: true })).samples!;
    const stale = runCheckpointPart({ input: newer, output: out, options: serializeOptions({ format: 'nvfp4' }), part: 0, parts: 2, run: oldPlan.run, fingerprint: oldPlan.fingerprint,
      samples: Object.fromEntries(oldPlan.parts[0].map((n) => [n, oldSamples[n]])) });
    await expect(stale).rejects.toThrow(/a stale job, not run|not the output the producer prepared/);
  });

  it('two merges of one run at once (merge --unlock twice, a queue merge handed over): both end with the published summary; an aborted merge stops', async () => {
    const out = join(root, 'two-merges');
    const single = await singleRun(out, { format: 'mxfp4' });
    await runParts(out, { format: 'mxfp4' }, 3, [0, 1, 2]);
    const controller = new AbortController();
    controller.abort(new Error('its lock was lost'));
    await expect(mergeCheckpointParts(out, { unlock: true, signal: controller.signal })).rejects.toThrow('its lock was lost');
    const [a, b] = await Promise.all([mergeCheckpointParts(out, { unlock: true }), mergeCheckpointParts(out, { unlock: true })]);
    expect(a!.tensors.length).toBe(b!.tensors.length);
    expect(compareOutputFolders(out, single).differences).toEqual([]);
    expect(existsSync(partsFolder(out))).toBe(false);
  });

  it('a single-file input not named *.safetensors: the merge leaves no run folder behind', async () => {
    const file = join(root, 'weights.bin');
    const { writeSafetensors } = await import('../lib/checkpoint/safetensors/write.js');
    const w = new Uint8Array(64 * 64 * 2).map((_v, i) => (i * 37) & 0x3f); // bf16 bytes of small values
    await writeSafetensors(file, [{ name: 'model.layers.0.mlp.up_proj.weight', dtype: 'BF16', shape: [64, 64], data: w }]);
    const out = join(root, 'single-bin');
    for (const part of [0, 1]) await runCheckpointPart({ input: file, output: out, options: serializeOptions({ format: 'mxfp4' }), part, parts: 2 });
    expect((await mergeCheckpointParts(out))!.format).toBe('mxfp4');
    expect(readdirSync(out)).toContain('weights.bin');
    expect(existsSync(partsFolder(out))).toBe(false);
  });

  it('merge lists at most 20 of the parts that are missing', async () => {
    const out = join(root, 'many-missing');
    await runParts(out, { format: 'mxfp4' }, 40, [0]);
    await expect(mergeCheckpointParts(out)).rejects.toThrow(/parts 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, … \(39 in all\) of 40 are not finished/);
  });

  it('merge refuses a damaged output shard and an input that changed after the parts ran', async () => {
    const out = join(root, 'damaged');
    const [p0] = await runParts(out, { format: 'mxfp4' }, 2, [0, 1]);
    const victim = join(runFolder(out, p0.record.run), p0.record.files[0].name);
    const size = statSync(victim).size;
    truncateSync(victim, size - 1);
    await expect(mergeCheckpointParts(out)).rejects.toThrow(`${victim}: ${size - 1} bytes, but part 0/2 wrote ${size}; run that part again`);
    await runParts(out, { format: 'mxfp4' }, 2, [0]);
    const config = join(input, 'config.json');
    const original = readFileSync(config);
    writeFileSync(config, original.toString().replace('"llama"', '"mistral"'));
    try {
      await expect(mergeCheckpointParts(out)).rejects.toThrow(`${input}: changed since the parts were written: every machine must see the same input`);
    } finally {
      writeFileSync(config, original);
    }
    // The failed merges released their lock: a merge now succeeds.
    expect((await mergeCheckpointParts(out))!.format).toBe('mxfp4');
  });

  it('the merge publishes as a single run does: it replaces an earlier output, refuses a foreign folder and keeps the parts', async () => {
    const out = join(root, 'publish');
    await quantizeCheckpoint(input, out, { format: 'mxfp4' }); // an earlier output, replaced
    await runParts(out, { format: 'nvfp4', layout: 'compressed-tensors' }, 2, [0, 1]);
    expect((await mergeCheckpointParts(out))!.format).toBe('nvfp4');
    expect(JSON.parse(readFileSync(join(out, SUMMARY_NAME), 'utf8')).format).toBe('nvfp4');
    expect(readdirSync(root).filter((n) => n.startsWith('publish.'))).toEqual([]); // no staging, old or parts folder left
    const foreign = join(root, 'foreign');
    mkdirSync(foreign);
    writeFileSync(join(foreign, 'notes.txt'), 'mine');
    const [f0] = await runParts(foreign, { format: 'mxfp4' }, 2, [0, 1]);
    await expect(mergeCheckpointParts(foreign)).rejects.toThrow(`${foreign}: the output folder is not empty and holds no earlier fp4kit output`);
    expect(readdirSync(runFolder(foreign, f0.record.run)).filter((n) => n.endsWith('.safetensors')).sort()).toEqual([...shardNames].sort()); // nothing lost
    rmSync(join(foreign, 'notes.txt'));
    expect((await mergeCheckpointParts(foreign))!.format).toBe('mxfp4');
  });

  it('a folder that happens to be named <out>.parts is never written into or removed', async () => {
    const out = join(root, 'taken');
    mkdirSync(partsFolder(out));
    writeFileSync(join(partsFolder(out), 'holiday.jpg'), 'not ours');
    await expect(runParts(out, { format: 'mxfp4' }, 2, [0])).rejects.toThrow(
      `${partsFolder(out)}: holds files fp4kit did not write (holiday.jpg); it is the parts folder of the output: move it away or choose another -o`,
    );
    expect(readdirSync(partsFolder(out))).toEqual(['holiday.jpg']);
    // An older fp4kit's flat layout (one run's parts directly in the folder) is named as such, and kept.
    const old = join(root, 'old-layout');
    mkdirSync(partsFolder(old));
    writeFileSync(join(partsFolder(old), 'part-0-of-2.json'), '{}');
    writeFileSync(join(partsFolder(old), 'model-00001-of-00002.safetensors'), 'x');
    await expect(runParts(old, { format: 'mxfp4' }, 2, [0])).rejects.toThrow(
      `${partsFolder(old)}: holds a run in the layout of an older fp4kit (model-00001-of-00002.safetensors, part-0-of-2.json directly in it, not in a run-<key> folder): `
        + 'merge it with that version (fp4kit merge), or delete the folder and rerun the parts',
    );
    expect(readdirSync(partsFolder(old)).sort()).toEqual(['model-00001-of-00002.safetensors', 'part-0-of-2.json']);
  });

  it('runs for the same output keep to their own folders: a rerun with other options merges, the stale run is left alone', async () => {
    const out = join(root, 'rerun');
    const [stale] = await runParts(out, { format: 'mxfp4' }, 2, [0]);
    const [fresh] = await runParts(out, { format: 'mxfp6_e2m3' }, 2, [0, 1]);
    expect(readdirSync(partsFolder(out)).sort()).toEqual([`run-${stale.record.run}`, `run-${fresh.record.run}`].sort());
    expect((await mergeCheckpointParts(out))!.format).toBe('mxfp6_e2m3'); // the one run whose parts are all done
    // The stale run's part is untouched (it may be another machine's run still going): it can still finish and merge.
    expect(readdirSync(partsFolder(out))).toEqual([`run-${stale.record.run}`]);
    await runParts(out, { format: 'mxfp4' }, 2, [1]);
    expect((await mergeCheckpointParts(out))!.format).toBe('mxfp4');
    expect(existsSync(partsFolder(out))).toBe(false);
    // Two incomplete runs: the merge names both. (The mxfp4 run is merged: a part of it now ends as not needed.)
    await expect(runParts(out, { format: 'mxfp4' }, 2, [0])).rejects.toThrow('is already merged into this output');
    await runParts(out, { format: 'mxfp8_e4m3' }, 2, [0]);
    await runParts(out, { format: 'nvfp4' }, 2, [1]);
    await expect(mergeCheckpointParts(out)).rejects.toThrow(/records of 2 different runs \(run-[0-9a-f]+: 1 of 2 parts, run-[0-9a-f]+: 1 of 2 parts;/);
  });

  // Found by an audit (2026-12-07): parts of one --shard command run with two fp4kit versions make two
  // runs (the run key hashes the version), and `merge` said only "records of 2 different runs".
  it('parts run with two fp4kit versions: the merge names both versions; a run of another version is merged by that version only', async () => {
    const out = join(root, 'two-versions');
    const mine = packageVersion();
    const onVersion = async <T>(version: string, call: () => Promise<T>): Promise<T> => {
      process.env.FP4KIT_TEST_VERSION = version;
      try {
        return await call();
      } finally {
        delete process.env.FP4KIT_TEST_VERSION;
      }
    };
    const [old0] = await onVersion('0.0.0-old', () => runParts(out, { format: 'mxfp4' }, 2, [0]));
    expect(old0.record.fp4kit).toBe('0.0.0-old');
    const [new1] = await runParts(out, { format: 'mxfp4' }, 2, [1]);
    expect(new1.record.fp4kit).toBe(mine);
    const runs = [old0.record, new1.record].sort((a, b) => (a.run < b.run ? -1 : 1)).map((r) => `run-${r.run}: 1 of 2 parts, fp4kit ${r.fp4kit}`).join('; ');
    await expect(mergeCheckpointParts(out)).rejects.toThrow(`${partsFolder(out)}: records of 2 different runs, made by 2 fp4kit versions (${runs}): every part of a run must run one fp4kit version (another may write other bytes); run the missing parts with the version of the run to keep, delete the other run folder and merge again`);
    // Part 1 again on the old version: that run is complete, and this version does not merge it.
    await onVersion('0.0.0-old', () => runParts(out, { format: 'mxfp4' }, 2, [1]));
    const oldRun = runFolder(out, old0.record.run);
    await expect(mergeCheckpointParts(out)).rejects.toThrow(`${oldRun}: the parts of this run ran fp4kit 0.0.0-old, this merge runs fp4kit ${mine}: merge with the parts' version (another may write other bytes)`);
    // Records of an fp4kit from before records named their version.
    const records = ['part-0-of-2.json', 'part-1-of-2.json'].map((n) => join(oldRun, n));
    const texts = records.map((r) => readFileSync(r, 'utf8'));
    records.forEach((r, i) => writeFileSync(r, JSON.stringify({ ...JSON.parse(texts[i]), fp4kit: undefined })));
    await expect(mergeCheckpointParts(out)).rejects.toThrow(`the parts of this run ran an older fp4kit (its records name no version), this merge runs fp4kit ${mine}`);
    records.forEach((r, i) => writeFileSync(r, texts[i]));
    expect((await onVersion('0.0.0-old', () => mergeCheckpointParts(out)))!.format).toBe('mxfp4');
  });

  it('a merge that dies after taking the shards leaves them in the run folder: the next merge completes', async () => {
    const out = join(root, 'merge-dies');
    const [p0] = await runParts(out, { format: 'mxfp4' }, 2, [0, 1]);
    // What a killed merge leaves: the lock, a staging folder holding links to the shards.
    const folder = runFolder(out, p0.record.run);
    mkdirSync(join(folder, 'merging'));
    await expect(mergeCheckpointParts(out)).rejects.toThrow(/another merge is running \(or one died\)/);
    expect((await mergeCheckpointParts(out, { unlock: true }))!.format).toBe('mxfp4');
    expect(existsSync(partsFolder(out))).toBe(false);
  });

  it('a part refuses an input it cannot see, and one that differs from the planned input', async () => {
    const out = join(root, 'refused');
    const options = serializeOptions({ format: 'mxfp4' });
    const gone = join(root, 'not-mounted', 'model');
    await expect(runCheckpointPart({ input: gone, output: out, options, part: 0, parts: 2 })).rejects.toThrow(
      /not-mounted\/model: not found on .+: every machine of a distributed run must see the input at the same path/,
    );
    const plan = await planRun(input, out, { format: 'mxfp4' }, 2, { samples: true });
    // Another machine seeing another checkpoint at the input's path: `from` is moved to that path for the call.
    const queued = async (from: string, part: number) => {
      if (from !== input) { renameSync(input, `${input}.planned`); renameSync(from, input); }
      try {
        return await runCheckpointPart({
          input, output: out, options, part, parts: 2, run: plan.run, fingerprint: plan.fingerprint,
          samples: Object.fromEntries(plan.parts[part].map((n) => [n, plan.samples![n]])),
        });
      } finally {
        if (from !== input) { renameSync(input, from); renameSync(`${input}.planned`, input); }
      }
    };
    // A queued part checks that it sees the producer's parts folder (the plan the producer left there).
    await expect(queued(input, 0)).rejects.toThrow(
      `${out}: on ${hostname()} this is not the output the producer prepared (no ${runPlanPath(out, plan.run)}): every machine must see the output's folder at the same path`,
    );
    // With the parts folder visible but not the run's folder in it, the job is stale (its run folder deleted), not the machine.
    mkdirSync(partsFolder(out));
    await expect(queued(input, 0)).rejects.toThrow(`${runPlanPath(out, plan.run)}: no such file, although this machine sees ${partsFolder(out)}: the run's folder is gone (deleted after its producer stopped?) — a stale job, not run`);
    await writeRunPlan(plan);
    // The same architecture with other values (a second fine-tune): every header and size agrees, the sampled data does not.
    const other = join(root, 'other');
    await writeShardedCheckpoint(other, { layers: 6, hidden: 128, intermediate: 192, vocab: 256, maxShardBytes: 90_000, seed: 8 });
    expect((await planRun(other, out, { format: 'mxfp4' }, 2)).fingerprint).toEqual(plan.fingerprint);
    await expect(queued(other, 1)).rejects.toThrow(
      new RegExp(`${input}: on .+ this is not the input the run was planned on \\(${plan.parts[1][0]} has other data here \\(sampled\\) than in the planned input\\): every machine must see the same files at the same path`),
    );
    await writeShardedCheckpoint(other, { layers: 6, hidden: 128, intermediate: 192, vocab: 256, maxShardBytes: 90_000, seed: 7 });
    writeFileSync(join(other, 'config.json'), readFileSync(join(other, 'config.json'), 'utf8').replace('"llama"', '"llamb"')); // same size
    await expect(queued(other, 0)).rejects.toThrow(new RegExp(`${input}: on .+ this is not the input the run was planned on \\(config\\.json has different content here than in the planned input\\)`));
    rmSync(join(other, shardNames[1]));
    writeFileSync(join(other, 'config.json'), readFileSync(join(input, 'config.json')));
    await expect(queued(other, 0)).rejects.toThrow(`missing shard ${shardNames[1]}`);
    // A job naming another input than its run's plan is refused before anything is opened.
    await expect(runCheckpointPart({ input: other, output: out, options, part: 0, parts: 2, run: plan.run, fingerprint: plan.fingerprint, samples: {} }))
      .rejects.toThrow(`${runPlanPath(out, plan.run)}: the job's input differs from its run's plan: not a job this run's producer wrote; not run`);
    await expect(runCheckpointPart({ input, output: out, options, part: 0, parts: 3, run: plan.run, fingerprint: plan.fingerprint, samples: {} }))
      .rejects.toThrow(`${runPlanPath(out, plan.run)}: the job's number of parts differs from its run's plan`);
    // Both checks pass on the planned input.
    expect((await queued(input, 0)).record.samples).toEqual(Object.fromEntries(plan.parts[0].map((n) => [n, plan.samples![n]])));
  });

  it('planning reads config.json and the index as every run reads side files: a huge one is refused by its size, a FIFO is not waited on', async () => {
    const odd = join(root, 'odd-config');
    await writeShardedCheckpoint(odd, { layers: 1, hidden: 64, intermediate: 64, vocab: 64, maxShardBytes: 20_000, seed: 3 });
    const config = join(odd, 'config.json');
    truncateSync(config, 3 * 2 ** 30); // sparse: 3 GiB were allocated and read to hash it
    const started = Date.now();
    await expect(planRun(odd, join(root, 'odd-out'), { format: 'mxfp4' }, 1)).rejects.toThrow(`${config}: ${3 * 2 ** 30} bytes; a side file above ${256 * 2 ** 20} bytes is refused`);
    rmSync(config);
    execFileSync('mkfifo', [config]);
    await expect(planRun(odd, join(root, 'odd-out'), { format: 'mxfp4' }, 1)).rejects.toThrow(`${config}: not a regular file (a FIFO)`);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('merge refuses parts that read other data under the same path (two machines, two fine-tunes)', async () => {
    const out = join(root, 'two-machines');
    const elsewhere = join(root, 'fine-tune-b');
    await writeShardedCheckpoint(elsewhere, { layers: 6, hidden: 128, intermediate: 192, vocab: 256, maxShardBytes: 90_000, seed: 9 });
    await runParts(out, { format: 'mxfp4' }, 2, [0]);
    // "Machine B" sees fine-tune B at the input's path while it runs part 1.
    renameSync(input, `${input}.a`);
    renameSync(elsewhere, input);
    try {
      await runParts(out, { format: 'mxfp4' }, 2, [1]);
    } finally {
      renameSync(input, elsewhere);
      renameSync(`${input}.a`, input);
    }
    const plan = await planRun(input, out, { format: 'mxfp4' }, 2);
    await expect(mergeCheckpointParts(out)).rejects.toThrow(
      new RegExp(`${join(input, plan.parts[1][0])}: other data \\(sampled\\) here than part 1/2 read on .+: every machine must see the same input`),
    );
  });
});

// Found by an audit (2026-12-07): every part opened every shard's header to plan the run, so a run
// of n parts read n × shards headers (1.9 s a part at 500 shards, where the whole single run took
// 6.7 s). A part that finds its run's plan now opens its own shards and the neighbours it reads.
describe('a part with its run\'s plan opens only the shards it reads', () => {
  /** The shard names SafetensorsFile.open opens while `call` runs. */
  async function shardsOpenedBy<T>(call: () => Promise<T>): Promise<{ result: T; opened: string[] }> {
    const spy = vi.spyOn(SafetensorsFile, 'open');
    try {
      const result = await call();
      return { result, opened: [...new Set(spy.mock.calls.map(([path]) => basename(path)))].sort() };
    } finally {
      spy.mockRestore();
    }
  }
  const options: CheckpointOptions = { format: 'nvfp4', layout: 'compressed-tensors' };

  it('--shard: the first part plans the run and leaves plan.json; every later part opens its own shards and their fused-group neighbours; the merged output is the single run\'s', async () => {
    const out = join(root, 'planned-once');
    const single = await singleRun(out, options);
    const plan = await planRun(input, out, options, 4);
    // q/k/v and gate/up groups straddle shards in this model: some parts read a neighbour.
    expect(plan.partners.some((p) => p.length > 0)).toBe(true);
    const first = await shardsOpenedBy(() => runCheckpointPart({ input, output: out, options: serializeOptions(options), part: 2, parts: 4 }));
    expect(first.opened).toEqual([...shardNames].sort()); // it planned the run: every header
    expect(JSON.parse(readFileSync(runPlanPath(out, plan.run), 'utf8'))).toEqual(plan);
    for (const part of [0, 3, 1]) {
      const { result, opened } = await shardsOpenedBy(() => runCheckpointPart({ input, output: out, options: serializeOptions(options), part, parts: 4 }));
      const reads = [...plan.parts[part], ...plan.partners[part]].sort();
      expect(opened).toEqual(reads);
      expect(reads.length).toBeLessThan(shardNames.length);
      expect(result.record.partners).toEqual(plan.partners[part]);
    }
    expect((await shardsOpenedBy(() => mergeCheckpointParts(out))).opened).toEqual([...shardNames].sort()); // the merge reads every header again
    expect(compareOutputFolders(out, single)).toEqual({ differences: [], files: readdirSync(single).length });
    expect(existsSync(partsFolder(out))).toBe(false);
  });

  it('a queued part opens its shards and their neighbours only, and still refuses another input at the path (a shard of another size, a missing shard)', async () => {
    const out = join(root, 'queued-reads');
    const plan = await planRun(input, out, options, 4, { samples: true });
    await writeRunPlan(plan);
    const job = (part: number) => ({
      input, output: out, options: serializeOptions(options), part, parts: 4, run: plan.run, fingerprint: { digest: plan.fingerprint.digest, files: [] },
      samples: Object.fromEntries(plan.parts[part].map((n) => [n, plan.samples![n]])),
    });
    const { opened } = await shardsOpenedBy(() => runCheckpointPart(job(1)));
    expect(opened).toEqual([...plan.parts[1], ...plan.partners[1]].sort());
    // A shard that part 0 neither writes nor reads, of another size here than planned: its size is checked all the same.
    const reads = new Set([...plan.parts[0], ...plan.partners[0]]);
    const other = join(input, shardNames.find((n) => !reads.has(n))!);
    const original = readFileSync(other);
    writeFileSync(other, Buffer.concat([original, Buffer.alloc(8)]));
    try {
      await expect(runCheckpointPart(job(0))).rejects.toThrow(
        `${input}: on ${hostname()} this is not the input the run was planned on (${basename(other)} has ${original.length + 8} bytes here, ${original.length} in the planned input)`);
      rmSync(other);
      await expect(runCheckpointPart(job(0))).rejects.toThrow(`not the checkpoint the producer opened (${join(input, 'model.safetensors.index.json')}: missing shard ${basename(other)})`);
    } finally {
      writeFileSync(other, original);
    }
    expect((await runCheckpointPart(job(0))).record.partners).toEqual(plan.partners[0]);
  });

  it('a --shard part whose input changed since its run was planned plans a run of its own; the merge refuses a part that read other neighbours than the plan gives', async () => {
    const out = join(root, 'changed-since');
    const changed = join(root, 'changed-since-input');
    await writeShardedCheckpoint(changed, { layers: 6, hidden: 128, intermediate: 192, vocab: 256, maxShardBytes: 90_000, seed: 7 });
    const p0 = await runCheckpointPart({ input: changed, output: out, options: serializeOptions(options), part: 0, parts: 2 });
    // Another checkpoint saved over it (one more layer: other headers and sizes): the plan left is not this input's.
    await writeShardedCheckpoint(changed, { layers: 7, hidden: 128, intermediate: 192, vocab: 256, maxShardBytes: 90_000, seed: 7 });
    const p1 = await runCheckpointPart({ input: changed, output: out, options: serializeOptions(options), part: 1, parts: 2 });
    expect(p1.record.run).not.toBe(p0.record.run);
    expect(readdirSync(partsFolder(out)).sort()).toEqual([`run-${p0.record.run}`, `run-${p1.record.run}`].sort());
    expect(readdirSync(runFolder(out, p1.record.run))).toContain('plan.json');
    // A plan.json edited to give part 0 no neighbours: the part computes other shared scales, and the merge refuses it.
    const out2 = join(root, 'edited-plan');
    const plan = await planRun(input, out2, options, 2);
    const lonely = plan.partners.findIndex((p) => p.length > 0);
    expect(lonely).toBeGreaterThanOrEqual(0);
    await runCheckpointPart({ input, output: out2, options: serializeOptions(options), part: 1 - lonely, parts: 2 }); // leaves the plan
    const planPath = runPlanPath(out2, plan.run);
    writeFileSync(planPath, JSON.stringify({ ...plan, partners: plan.partners.map(() => []) }));
    await runCheckpointPart({ input, output: out2, options: serializeOptions(options), part: lonely, parts: 2 });
    await expect(mergeCheckpointParts(out2)).rejects.toThrow(
      `${join(runFolder(out2, plan.run), `part-${lonely}-of-2.json`)}: says it read no other shards for fused-group scales, its run's plan ${plan.partners[lonely].join(', ')}: run part ${lonely}/2 again`);
  });

  // Review 27: a --shard part worked to plan.json's parts and partners without comparing them to
  // the split it computes (the run key is computed from the split, so an edited plan kept its key).
  it('a damaged plan.json (parts that are not the split of its shard sizes, partners that are the part\'s own shards or no shard): a --shard part plans the run itself and replaces it; a queued part refuses it, saying the plan is damaged', async () => {
    const out = join(root, 'damaged-plan');
    const single = await singleRun(out, options);
    const plan = await planRun(input, out, options, 3);
    const part = (i: number) => runCheckpointPart({ input, output: out, options: serializeOptions(options), part: i, parts: 3 });
    await part(0); // leaves the plan
    const planPath = runPlanPath(out, plan.run);
    // Parts 1 and 2 swapped, the run key kept.
    writeFileSync(planPath, JSON.stringify({ ...plan, parts: [plan.parts[0], plan.parts[2], plan.parts[1]], partners: [plan.partners[0], plan.partners[2], plan.partners[1]] }));
    expect((await part(1)).record.files.map((f) => f.name)).toEqual(plan.parts[1]);
    expect(JSON.parse(readFileSync(planPath, 'utf8'))).toEqual(plan); // replaced by the plan made here
    // Part 2 given one of its own shards as its fused-group neighbour.
    writeFileSync(planPath, JSON.stringify({ ...plan, partners: plan.partners.map((p, i) => (i === 2 ? [plan.parts[2][0]] : p)) }));
    expect((await part(2)).record.partners).toEqual(plan.partners[2]);
    expect(JSON.parse(readFileSync(planPath, 'utf8'))).toEqual(plan);
    await mergeCheckpointParts(out);
    expect(compareOutputFolders(out, single).differences).toEqual([]);
    // A queued run: the producer's plan is the run's; a damaged one is refused by name.
    const queuedOut = join(root, 'damaged-plan-queued');
    const queued = await planRun(input, queuedOut, options, 3, { samples: true });
    await writeRunPlan(queued);
    const job = (i: number) => ({
      input, output: queuedOut, options: serializeOptions(options), part: i, parts: 3, run: queued.run, fingerprint: { digest: queued.fingerprint.digest, files: [] },
      samples: Object.fromEntries(queued.parts[i].map((n) => [n, queued.samples![n]])),
    });
    const queuedPlan = runPlanPath(queuedOut, queued.run);
    writeFileSync(queuedPlan, JSON.stringify({ ...queued, parts: [queued.parts[0], queued.parts[2], queued.parts[1]] }));
    await expect(runCheckpointPart(job(0))).rejects.toThrow(
      `${queuedPlan}: a damaged run plan (its parts are not the split of its shards' sizes (part 1: ${queued.parts[2].join(', ')}, the split gives ${queued.parts[1].join(', ')})): not a plan fp4kit wrote; not run. Run the command again (its producer writes the plan anew)`);
    writeFileSync(queuedPlan, JSON.stringify({ ...queued, partners: queued.partners.map((p, i) => (i === 0 ? ['not-a-shard.safetensors'] : p)) }));
    await expect(runCheckpointPart(job(0))).rejects.toThrow(`${queuedPlan}: a damaged run plan (part 0 reads "not-a-shard.safetensors" for fused-group scales, not a shard of the input)`);
    writeFileSync(queuedPlan, JSON.stringify(queued));
    expect((await runCheckpointPart(job(0))).record.files.map((f) => f.name)).toEqual(queued.parts[0]);
  });

  it('the run is checked as a whole when it is planned (a part opens its own shards only): a fused group partly quantized is refused by planRun', async () => {
    await expect(planRun(input, join(root, 'mixed'), { ...options, skip: /k_proj/ }, 2)).rejects.toThrow(/would be quantized but "model\.layers\.\d+\.self_attn\.k_proj\.weight" copied/);
  });
});

describe('fp4kit quantize --shard / fp4kit merge (the command line)', () => {
  const repo = join(__dirname, '..');
  const cli = (args: string[]) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(repo, 'lib', 'checkpoint', 'cli.ts'), ...args], { cwd: repo, encoding: 'utf8', timeout: 120_000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it('parts in separate processes; the last one merges; merge says what is missing or already done', async () => {
    const out = join(root, 'cli');
    const single = await singleRun(out, { format: 'mxfp4', layout: 'fp4kit' });
    const flags = ['--format', 'mxfp4', '--layout', 'fp4kit'];
    const first = cli(['quantize', input, '-o', out, ...flags, '--shard', '1/2']);
    expect(first.code, first.stderr).toBe(0);
    // Status on stderr; stdout holds results only (a --json reader of a part that does not merge gets nothing).
    expect(first.stdout).toBe('');
    expect(first.stderr).toMatch(new RegExp(`^fp4kit: ${out}: part 1/2 wrote model-\\d{5}-of-\\d{5}\\.safetensors`, 'm'));
    expect(first.stderr).toContain(`run \`fp4kit merge ${out}\` once every part is done`);
    const early = cli(['merge', out]);
    expect(early.code).toBe(1);
    const [runDir] = readdirSync(partsFolder(out));
    expect(early.stderr).toBe(`fp4kit: ${out}: part 0 of 2 is not finished (no ${join(partsFolder(out), runDir)}/part-0-of-2.json); run it, then merge again\n`);
    const last = cli(['quantize', input, '-o', out, ...flags, '--shard', '0/2', '--json']);
    expect(last.code, last.stderr).toBe(0);
    expect(JSON.parse(last.stdout)).toMatchObject({ tool: 'fp4kit', format: 'mxfp4', layout: 'fp4kit', output: out });
    expect(compareOutputFolders(out, single).differences).toEqual([]);
    const again = cli(['merge', out]);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(`fp4kit: ${out}: no part records in ${partsFolder(out)}: already merged\n`);
  });

  it('a merge SIGKILLed while publishing (between its two renames) loses no part: merge --unlock completes it', async () => {
    const out = join(root, 'cli-killed');
    const single = await singleRun(out, { format: 'nvfp4' });
    expect(cli(['quantize', input, '-o', out, '--format', 'mxfp4']).code).toBe(0); // an earlier output: publishing moves it aside first
    await runParts(out, { format: 'nvfp4' }, 2, [0, 1]);
    const killed = spawnSync(process.execPath, ['--import', 'tsx', '--import', join(__dirname, 'helpers', 'fs-faults.mjs'), join(repo, 'lib', 'checkpoint', 'cli.ts'), 'merge', out],
      { cwd: repo, encoding: 'utf8', timeout: 120_000, env: { ...process.env, FP4KIT_FAULT: 'kill-between-renames' } });
    expect(killed.signal).toBe('SIGKILL');
    const again = cli(['merge', out, '--unlock']);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(out, SUMMARY_NAME), 'utf8')).format).toBe('nvfp4');
    expect(compareOutputFolders(out, single).differences).toEqual([]);
    expect(readdirSync(root).filter((n) => n.startsWith('cli-killed.'))).toEqual(['cli-killed.single']); // nothing left beside it
  });

  // Found by an audit (2026-12-07): a merge killed between its two publishing renames and retried on
  // another host (merge --unlock elsewhere, the queue's merge job on another worker) left the previous
  // output and its staging folder for good: their names carry no run key, and a dead process on
  // another host looks like a live one. A merge now records the names in its run's lock folder first.
  const killCases: Array<[string, Record<string, string>, (out: string, left: string[]) => void]> = [
    ['after recording its staging folder\'s name', { FP4KIT_MERGE_KILL: 'recorded' }, (out, left) => {
      expect(left).toEqual([]);
      expect(JSON.parse(readFileSync(join(out, SUMMARY_NAME), 'utf8')).format).toBe('mxfp4'); // the earlier output
    }],
    ['half staged', { FP4KIT_MERGE_KILL: 'staging' }, (out, left) => {
      expect(left).toEqual([expect.stringMatching(/\.tmp-nodea-\d+-[0-9a-f]{8}$/)]);
      expect(JSON.parse(readFileSync(join(out, SUMMARY_NAME), 'utf8')).format).toBe('mxfp4');
    }],
    ['between its two publishing renames', { FP4KIT_FAULT: 'kill-between-renames' }, (out, left) => {
      expect(existsSync(out)).toBe(false);
      expect(left.map((n) => n.replace(/-\d+-[0-9a-f]{8}$/, ''))).toEqual([`${basename(out)}.old-nodea`, `${basename(out)}.tmp-nodea`]);
    }],
    ['right after publishing', { FP4KIT_FAULT: 'kill-after-publish' }, (out, left) => {
      expect(JSON.parse(readFileSync(join(out, SUMMARY_NAME), 'utf8')).format).toBe('nvfp4');
      expect(left).toEqual([expect.stringMatching(/\.old-nodea-\d+-[0-9a-f]{8}$/)]);
    }],
    ['after removing the previous output', { FP4KIT_MERGE_KILL: 'aside-removed' }, (out, left) => {
      expect(left).toEqual([]);
      expect(readdirSync(partsFolder(out))).toHaveLength(1);
    }],
    ['while it cleans up its run folder', { FP4KIT_MERGE_KILL: 'cleanup' }, (out, left) => {
      expect(left).toEqual([]);
      const [run] = readdirSync(partsFolder(out));
      expect(readdirSync(join(partsFolder(out), run))).toEqual(expect.arrayContaining(['part-0-of-2.json', 'part-1-of-2.json', 'merging']));
    }],
    // Without hard links the merge moves the parts' shards into its staging folder, their only
    // copy: the next merge moves them back before it removes that folder (it removed them with
    // it: every part had to run again; review of 2026-12-07).
    ['half staged, on a filesystem without hard links', { FP4KIT_MERGE_KILL: 'staging', FP4KIT_TEST_NO_LINKS: '1' }, (out, left) => {
      expect(left).toEqual([expect.stringMatching(/\.tmp-nodea-\d+-[0-9a-f]{8}$/)]);
      expect(readdirSync(join(dirname(out), left[0])).filter((n) => n.endsWith('.safetensors'))).toHaveLength(2); // moved, not linked
    }],
    ['between its two publishing renames, on a filesystem without hard links', { FP4KIT_FAULT: 'kill-between-renames', FP4KIT_TEST_NO_LINKS: '1' }, (out, left) => {
      expect(existsSync(out)).toBe(false);
      const [run] = readdirSync(partsFolder(out));
      expect(readdirSync(join(partsFolder(out), run)).filter((n) => n.endsWith('.safetensors'))).toEqual([]); // every shard is in the staging folder
    }],
  ];
  it.each(killCases)('a merge SIGKILLed on another machine %s: the next merge of the run, here, finishes or cleans up what it left, and nothing else', async (_when, fault, leftBehind) => {
    const out = join(root, `killed-${Object.values(fault).join('-')}`);
    const single = await singleRun(out, { format: 'nvfp4' });
    await quantizeCheckpoint(input, out, { format: 'mxfp4' }); // an earlier output: publishing moves it aside first
    await runParts(out, { format: 'nvfp4' }, 2, [0, 1]);
    const foreign = `${out}.tmp-nodez-4242-0badf00d`; // another machine's staging folder for this output: no record of this run names it
    mkdirSync(foreign);
    writeFileSync(join(foreign, 'theirs.safetensors'), 'not this run\'s');
    const siblings = () => readdirSync(root).filter((n) => n.startsWith(`${basename(out)}.`) && ![basename(single), basename(foreign), basename(partsFolder(out))].includes(n)).sort();
    const killed = spawnSync(process.execPath, [
      '--import', 'tsx', '--import', join(__dirname, 'helpers', 'fs-faults.mjs'), '--import', join(__dirname, 'helpers', 'merge-kill-points.mjs'),
      join(repo, 'lib', 'checkpoint', 'cli.ts'), 'merge', out,
    ], { cwd: repo, encoding: 'utf8', timeout: 120_000, env: { ...process.env, FP4KIT_TEST_HOST: 'node-a', ...fault } });
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    leftBehind(out, siblings());
    // The retry runs on this machine, which is not node-a: it cannot tell whether node-a's merge is alive, but the lock it takes over says it is not.
    expect((await mergeCheckpointParts(out, { unlock: true }))!.format).toBe('nvfp4');
    expect(compareOutputFolders(out, single).differences).toEqual([]);
    expect(siblings()).toEqual([]);
    expect(existsSync(partsFolder(out))).toBe(false);
    expect(readdirSync(foreign)).toEqual(['theirs.safetensors']);
  }, 120_000);

  const killPoints = join(__dirname, 'helpers', 'merge-kill-points.mjs');
  const cliPath = join(repo, 'lib', 'checkpoint', 'cli.ts');
  const leftBeside = (out: string) => readdirSync(dirname(out)).filter((n) => n.startsWith(`${basename(out)}.`) && ![`${basename(out)}.single`, basename(partsFolder(out))].includes(n)).sort();

  // Review 27: a retry with the killed merge's host name and pid (a restarted container: the same
  // host name, node at the same small pid) took its record for a live merge's and left its staging
  // folder, which without hard links holds the parts' shards: it failed ("missing …; run that part
  // again") on every retry, and the lock stayed. So did a retry while another process held the pid.
  it.each([
    ['this process: a restarted container (a record without a start time)', 'self'],
    ['another live process of this host: the pid was given again since (the record names another start time)', 'parent'],
  ])('a merge killed half staged without hard links, retried where its pid is %s: the retry takes its record for a dead merge\'s and completes', async (_label, mode) => {
    const out = join(root, `same-pid-${mode}`);
    const single = await singleRun(out, { format: 'mxfp4' });
    await runParts(out, { format: 'mxfp4' }, 2, [0, 1]);
    const env = { ...process.env, FP4KIT_TEST_HOST: 'podA', FP4KIT_TEST_NO_LINKS: '1' };
    const killed = spawnSync(process.execPath, ['--import', 'tsx', '--import', killPoints, cliPath, 'merge', out], { cwd: repo, encoding: 'utf8', timeout: 120_000, env: { ...env, FP4KIT_MERGE_KILL: 'staging' } });
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    const [staging] = leftBeside(out);
    expect(readdirSync(join(dirname(out), staging)).filter((n) => n.endsWith('.safetensors'))).toHaveLength(2); // the only copies
    const retry = spawnSync(process.execPath, ['--import', 'tsx', '--import', killPoints, join(__dirname, 'helpers', 'merge-as-pid.ts'), out, mode], { cwd: repo, encoding: 'utf8', timeout: 120_000, env });
    expect(retry.stdout, retry.stderr).toBe('mxfp4\n');
    expect(retry.status).toBe(0);
    expect(compareOutputFolders(out, single).differences).toEqual([]);
    expect(leftBeside(out)).toEqual([]);
    expect(existsSync(partsFolder(out))).toBe(false);
  }, 120_000);

  /** A `fp4kit merge` on pretend host node-a that stalls when it publishes (FP4KIT_MERGE_STALL): resolves with its
   *  staging folder once it waits, and `go()` lets it on. */
  async function stalledMerge(out: string, env: Record<string, string> = {}) {
    const gate = `${out}.gate`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--import', killPoints, cliPath, 'merge', out],
      { cwd: repo, env: { ...process.env, FP4KIT_TEST_HOST: 'node-a', FP4KIT_MERGE_STALL: gate, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.stdout!.resume();
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const deadline = Date.now() + 100_000;
    while (!existsSync(`${gate}.stalled`)) {
      if (Date.now() > deadline) throw new Error(`the merge never reached publishing: ${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const staging = readFileSync(`${gate}.stalled`, 'utf8');
    return {
      staging,
      go: async () => {
        writeFileSync(gate, '');
        const code = await exited;
        rmSync(gate);
        rmSync(`${gate}.stalled`);
        return { code, stderr };
      },
    };
  }

  // Review 27: a merge that took a run over from one stalled past its lock (a queue worker paused)
  // removed the stalled one's staging folder in place, file by file; the stalled one, going on,
  // could rename a part-emptied folder into place. Now the takeover renames the folder away first,
  // and a merge checks, just before its renames, that its staging folder holds every file it wrote.
  it('a merge stalled before publishing whose staging folder lost a file meanwhile publishes nothing: it fails saying so, and the next merge completes', async () => {
    const out = join(root, 'stalled-lost');
    const single = await singleRun(out, { format: 'mxfp4' });
    await runParts(out, { format: 'mxfp4' }, 2, [0, 1]);
    const a = await stalledMerge(out);
    const shard = readdirSync(a.staging).filter((n) => n.endsWith('.safetensors')).sort()[1];
    rmSync(join(a.staging, shard)); // what a removal in progress leaves
    const { code, stderr } = await a.go();
    expect(stderr).toContain(`fp4kit: ${out}: its staging folder ${basename(a.staging)} lost ${shard} before publishing (another merge of this run took it over?); nothing was published\n`);
    expect(code).toBe(1);
    expect(existsSync(out)).toBe(false);
    expect((await mergeCheckpointParts(out))!.format).toBe('mxfp4');
    expect(compareOutputFolders(out, single).differences).toEqual([]);
    expect(leftBeside(out)).toEqual([]);
    expect(existsSync(partsFolder(out))).toBe(false);
  }, 120_000);

  it('a merge that takes a run over from one stalled before publishing (without hard links) renames its staging folder away in one step first: killed right then, the folder is whole under .del-…; the stalled merge fails, and the next merge moves the shards back and completes', async () => {
    const out = join(root, 'stalled-takeover');
    const single = await singleRun(out, { format: 'mxfp4' });
    await runParts(out, { format: 'mxfp4' }, 2, [0, 1]);
    const a = await stalledMerge(out, { FP4KIT_TEST_NO_LINKS: '1' });
    const staged = readdirSync(a.staging).sort();
    expect(staged.filter((n) => n.endsWith('.safetensors'))).toHaveLength(shardNames.length); // moved: the only copies
    const b = spawnSync(process.execPath, ['--import', 'tsx', '--import', killPoints, cliPath, 'merge', out, '--unlock'],
      { cwd: repo, encoding: 'utf8', timeout: 120_000, env: { ...process.env, FP4KIT_TEST_HOST: 'node-b', FP4KIT_MERGE_KILL: 'del-renamed' } });
    expect(b.signal, b.stderr).toBe('SIGKILL');
    const removing = join(dirname(a.staging), basename(a.staging).replace('.tmp-', '.del-'));
    expect(existsSync(a.staging)).toBe(false);
    expect(readdirSync(removing).sort()).toEqual(staged);
    const { code, stderr } = await a.go();
    expect(stderr).toContain(`fp4kit: ${out}: its staging folder ${basename(a.staging)} is gone before publishing (another merge of this run took it over?); nothing was published\n`);
    expect(code).toBe(1);
    expect(existsSync(out)).toBe(false);
    expect((await mergeCheckpointParts(out, { unlock: true }))!.format).toBe('mxfp4');
    expect(compareOutputFolders(out, single).differences).toEqual([]);
    expect(leftBeside(out)).toEqual([]);
    expect(existsSync(partsFolder(out))).toBe(false);
  }, 120_000);

  it('a second copy of a part that loses its files to the merge the first copy completed ends well (exit 0, says so)', async () => {
    const out = join(root, 'cli-twice');
    const single = await singleRun(out, { format: 'mxfp4' });
    const flags = ['--format', 'mxfp4'];
    // The slow copy of part 0 (a machine thought dead, a retry): 500 ms before each tensor, so the
    // two fast parts merge long before it is done, however loaded the machine.
    const slow = spawn(process.execPath, ['--import', 'tsx', join(repo, 'lib', 'checkpoint', 'cli.ts'), 'quantize', input, '-o', out, ...flags, '--shard', '0/2'],
      { cwd: repo, env: { ...process.env, FP4KIT_TEST_TENSOR_DELAY_MS: '500' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let slowOut = '';
    slow.stderr!.on('data', (d: Buffer) => { slowOut += d.toString(); });
    slow.stdout!.resume();
    const slowExit = new Promise<number | null>((r) => slow.on('exit', (code) => r(code)));
    while (!existsSync(partsFolder(out))) await new Promise((r) => setTimeout(r, 20));
    expect(cli(['quantize', input, '-o', out, ...flags, '--shard', '0/2']).code).toBe(0);
    const last = cli(['quantize', input, '-o', out, ...flags, '--shard', '1/2']);
    expect(last.code, last.stderr).toBe(0); // merged
    expect(await slowExit, slowOut).toBe(0);
    expect(slowOut).toMatch(/part 0\/2: another copy of this part finished first and the run is merged; this copy's work was not needed/);
    expect(compareOutputFolders(out, single).differences).toEqual([]);
    expect(existsSync(partsFolder(out))).toBe(false);
  });

  it('--shard parts run with two fp4kit versions: `fp4kit merge` names both (exit 1)', () => {
    const out = join(root, 'cli-versions');
    const part = (i: number, env: Record<string, string>) => spawnSync(process.execPath, ['--import', 'tsx', join(repo, 'lib', 'checkpoint', 'cli.ts'), 'quantize', input, '-o', out, '--format', 'mxfp4', '--shard', `${i}/2`],
      { cwd: repo, encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });
    expect(part(0, { FP4KIT_TEST_VERSION: '0.0.0-old' }).status).toBe(0);
    expect(part(1, {}).status).toBe(0); // another run: nothing merges
    const merge = cli(['merge', out]);
    expect(merge.code).toBe(1);
    expect(merge.stderr).toMatch(new RegExp(`^fp4kit: ${partsFolder(out)}: records of 2 different runs, made by 2 fp4kit versions \\(run-[0-9a-f]+: 1 of 2 parts, fp4kit \\S+; run-[0-9a-f]+: 1 of 2 parts, fp4kit \\S+\\): every part of a run must run one fp4kit version`));
    expect(merge.stderr).toContain('fp4kit 0.0.0-old');
    expect(merge.stderr).toContain(`fp4kit ${packageVersion()}`);
  });

  it('refuses bad distributed flags with the usage (exit 2)', () => {
    const cases: Array<[string[], string]> = [
      [['quantize', input, '-o', join(root, 'x'), '--format', 'mxfp4', '--shard', '2/2'], 'fp4kit: --shard: part 2 does not exist in 2 parts (parts are numbered 0..1)'],
      [['quantize', input, '-o', join(root, 'x'), '--format', 'mxfp4', '--shard', '0/2', '--queue', 'redis://h:1'], 'fp4kit: --shard and --queue exclude each other: --queue splits the run into parts itself'],
      [['quantize', input, '-o', join(root, 'x'), '--format', 'mxfp4', '--parts', '3'], 'fp4kit: --parts applies to --queue only'],
      [['quantize', input, '-o', join(root, 'x'), '--format', 'mxfp4', '--queue', 'http://h:1'], 'fp4kit: --queue: expected a redis:// or rediss:// URL, got "http://h:1"'],
      [['quantize', input, '-o', join(root, 'x'), '--format', 'mxfp4', '--queue', 'redis://h:1', '--parts', '0'], 'fp4kit: --parts: expected a whole number of parts, 1..100000, got "0"'],
      [['quantize', input, '-o', join(root, 'x'), '--format', 'mxfp4', '--queue', 'redis://h:1', '--parts', '0x10'], 'fp4kit: --parts: expected a whole number of parts, 1..100000, got "0x10"'],
      [['worker'], 'fp4kit: worker needs --queue redis://host:port'],
      [['worker', '--queue', 'redis://h:1', '--lock-duration', '5'], 'fp4kit: --lock-duration: expected milliseconds (a whole number in 100..2147483647), got "5"'],
      // Above 2^31 − 1 ms Node fires a timer after 1 ms: an idle worker polled Redis ~1400 times a second.
      [['worker', '--queue', 'redis://h:1', '--stalled-interval', '99999999999'], 'fp4kit: --stalled-interval: expected milliseconds (a whole number in 100..2147483647), got "99999999999"'],
      [['worker', '--queue', 'redis://h:1', '--lock-duration', '1e3'], 'fp4kit: --lock-duration: expected milliseconds (a whole number in 100..2147483647), got "1e3"'],
      [['merge'], 'fp4kit: merge takes one output folder'],
    ];
    for (const [args, message] of cases) {
      const r = cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.split('\n')[0]).toBe(message);
      expect(r.stderr).toContain('fp4kit merge <out> [--unlock] [--json]');
    }
  });
});
