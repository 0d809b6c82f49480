// What a machine sees of a checkpoint, cheaply, so the machines of a distributed run can tell
// whether they read the same input (docs/distributed.md). Two levels:
// - the fingerprint: every shard's name, size and parsed header, the index and config.json (whole,
//   as side files are read: regular files of at most 256 MiB)
//   and a Fisher file. No tensor data is read (openCheckpoint has parsed the headers already). The
//   planner and the merge compute it over every shard; a part opens only the shards it reads and
//   checks those headers, the other shards' sizes, the index and config against its run's plan.
// - data samples: per shard, a hash of 3 × 64 KiB of its data section (start, middle, end). Two
//   checkpoints of one architecture (two fine-tunes of a base) share every header byte and differ
//   only there. Each part samples its own shards; the producer and the merge sample all of them.
// Neither proves two files equal byte for byte: they catch a different file at the same path.

import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { INDEX_NAME, type CheckpointFiles } from './safetensors/checkpoint-files.js';
import { SafetensorsFile } from './safetensors/read.js';
import { readRegularFile } from './safetensors/regular-file.js';

export interface InputFingerprint {
  digest: string;
  files: Array<{ name: string; bytes: number; sha256: string }>;
}

/** A fingerprint as a job or record carries it (JSON from elsewhere): { digest, files: [{ name, bytes, sha256 }] }. */
export function isInputFingerprint(v: unknown): v is InputFingerprint {
  if (v === null || typeof v !== 'object') return false;
  const { digest, files } = v as Record<string, unknown>;
  return typeof digest === 'string' && Array.isArray(files)
    && files.every((f) => f !== null && typeof f === 'object' && typeof f.name === 'string' && typeof f.bytes === 'number' && typeof f.sha256 === 'string');
}

/** Shard name → sha256 of the sampled bytes of its data section. */
export type DataSamples = Record<string, string>;

const SAMPLE_BYTES = 64 << 10;

const sha256 = (text: string | Uint8Array) => createHash('sha256').update(text).digest('hex');

/** sha256 of the byte ranges [start, end) of a file, in order. */
async function sha256OfRanges(path: string, ranges: Array<[number, number]>): Promise<string> {
  const h = await open(path, 'r');
  try {
    const hash = createHash('sha256');
    for (const [start, end] of ranges) {
      const buf = new Uint8Array(Math.max(0, end - start));
      let done = 0;
      while (done < buf.length) {
        const { bytesRead } = await h.read(buf, done, buf.length - done, start + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      hash.update(buf.subarray(0, done));
    }
    return hash.digest('hex');
  } finally {
    await h.close();
  }
}

/** Start, middle and end of a data section [dataStart, size). */
function sampleRanges(size: number, dataStart: number): Array<[number, number]> {
  const clamp = (a: number, b: number): [number, number] => [Math.max(dataStart, Math.min(a, size)), Math.max(dataStart, Math.min(b, size))];
  const mid = dataStart + Math.floor((size - dataStart) / 2);
  return [clamp(dataStart, dataStart + SAMPLE_BYTES), clamp(mid - SAMPLE_BYTES / 2, mid + SAMPLE_BYTES / 2), clamp(size - SAMPLE_BYTES, size)];
}

const headerHash = (f: SafetensorsFile) => sha256(JSON.stringify({ metadata: f.metadata, tensors: f.tensors }));

/**
 * The fingerprint of an open checkpoint (and a Fisher file, whose data is sampled too: it is one
 * file). A checkpoint of which only some shards are open (a distributed part's, ckpt.allShards) is
 * compared with its run's `planned` fingerprint: a shard not open here gets its size from the
 * folder and its header's hash from the plan, so the digests agree when every open header, every
 * size, the index and config agree with the plan's (the merge checks every header again).
 */
export async function inputFingerprint(ckpt: CheckpointFiles, fisher?: string, planned?: InputFingerprint): Promise<InputFingerprint> {
  const opened = new Map(ckpt.shards.map((s) => [basename(s.path), s]));
  const plannedHash = new Map((planned?.files ?? []).map((f) => [f.name, f.sha256]));
  if (ckpt.allShards !== undefined && planned === undefined) throw new Error('internal: the fingerprint of a part of a checkpoint needs its run\'s planned one');
  // The sizes of the shards not open, asked all at once (one by one, 600 stats took ~10 ms a part).
  const sizes = await Promise.all((ckpt.allShards ?? []).map((name) => (opened.has(name) ? null : stat(join(ckpt.dir, name)).then((st) => st.size, () => -1))));
  const files: InputFingerprint['files'] = [];
  (ckpt.allShards ?? [...opened.keys()]).forEach((name, i) => {
    const s = opened.get(name);
    if (s !== undefined) files.push({ name, bytes: s.size, sha256: headerHash(s) });
    else if (sizes[i]! >= 0) files.push({ name, bytes: sizes[i]!, sha256: plannedHash.get(name) ?? 'not in the plan' }); // a missing shard has no entry
  });
  for (const name of ckpt.indexed ? [INDEX_NAME, 'config.json'] : ['config.json']) {
    // As every run reads side files: a regular file of at most MAX_SIDE_FILE_BYTES (a FIFO is not waited on).
    const bytes = await readRegularFile(join(ckpt.dir, name));
    if (bytes !== null) files.push({ name, bytes: bytes.length, sha256: sha256(bytes) });
  }
  if (fisher !== undefined) {
    const f = await SafetensorsFile.open(fisher);
    try {
      files.push({ name: `fisher:${resolve(fisher)}`, bytes: f.size, sha256: `${headerHash(f)}:${await sha256OfRanges(fisher, sampleRanges(f.size, f.dataStart))}` });
    } finally {
      await f.close();
    }
  }
  return { digest: sha256(JSON.stringify(files)), files };
}

/** Data samples of the named shards (all of them without `names`). */
export async function dataSamples(ckpt: CheckpointFiles, names?: Iterable<string>): Promise<DataSamples> {
  const wanted = names ? new Set(names) : null;
  const out: DataSamples = {};
  for (const s of ckpt.shards) {
    const name = basename(s.path);
    if (!wanted || wanted.has(name)) out[name] = await sha256OfRanges(s.path, sampleRanges(s.size, s.dataStart));
  }
  return out;
}

/** The first difference between two fingerprints, in words ("planned" is the other machine's). */
export function fingerprintDifference(here: InputFingerprint, planned: InputFingerprint): string {
  const there = new Map(planned.files.map((f) => [f.name, f]));
  for (const f of here.files) {
    const p = there.get(f.name);
    if (!p) return `${f.name} exists here but not in the planned input`;
    if (p.bytes !== f.bytes) return `${f.name} has ${f.bytes} bytes here, ${p.bytes} in the planned input`;
    if (p.sha256 !== f.sha256) return `${f.name} has ${f.name.endsWith('.safetensors') ? 'another header' : 'different content'} here than in the planned input`;
  }
  const mine = new Set(here.files.map((f) => f.name));
  const missing = planned.files.find((f) => !mine.has(f.name));
  return missing ? `${missing.name} is missing here` : 'the files differ';
}

/** The first shard whose samples differ between `here` and `planned` (shards in both only), or null. */
export function sampleDifference(here: DataSamples, planned: DataSamples): string | null {
  for (const [name, digest] of Object.entries(here)) {
    if (planned[name] !== undefined && planned[name] !== digest) return name;
  }
  return null;
}
