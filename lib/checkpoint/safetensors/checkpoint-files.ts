// Finding the safetensors files of a checkpoint: one file, a folder with
// model.safetensors.index.json (sharded: every shard it names must exist and hold exactly the
// tensors the index assigns to it), or a folder of *.safetensors files. A distributed part opens
// only the shards it reads (`only`): the others are listed (and must exist), not opened.

import { constants, existsSync, readdirSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { SafetensorsError } from './header.js';
import { SafetensorsFile } from './read.js';
import { readRegularTextFile } from './regular-file.js';

export const INDEX_NAME = 'model.safetensors.index.json';

export interface CheckpointFiles {
  /** The input folder (or the folder holding the single input file). */
  dir: string;
  /** The input was sharded with an index file. */
  indexed: boolean;
  /** The index's own metadata (e.g. total_size), when indexed. */
  indexMetadata: Record<string, unknown>;
  shards: SafetensorsFile[];
  /** Set when only some shards are open (openCheckpoint's `only`): the name of every shard of the
   *  input, in input order. Checks of the whole input were made when its run was planned. */
  allShards?: string[];
}

/** Open the checkpoint at `input`: every shard, or with `only` just the shards of those names (a
 *  distributed part's; lib/checkpoint/checkpoint-parts.ts). */
export async function openCheckpoint(input: string, only?: ReadonlySet<string>): Promise<CheckpointFiles> {
  let stat;
  try {
    stat = statSync(input);
  } catch {
    throw new SafetensorsError(input, 'no such file or folder');
  }
  if (stat.isFile()) {
    try {
      return { dir: join(input, '..'), indexed: false, indexMetadata: {}, ...(await openShards([input], only)) };
    } catch (err) {
      // The index (or config.json) given for its model folder failed with "header length
      // 7017841271895827067 is too large": say what the file is and what to give instead.
      if (err instanceof SafetensorsError && input.endsWith('.json') && (await startsWithBrace(input))) {
        throw new SafetensorsError(input, `a JSON file, not a safetensors file: give the model folder (${dirname(input)}) as the input`);
      }
      throw err;
    }
  }
  if (!stat.isDirectory()) throw new SafetensorsError(input, 'not a regular file or a folder');
  const indexPath = join(input, INDEX_NAME);
  const indexText = await readRegularTextFile(indexPath); // a FIFO or folder under that name is refused
  if (indexText !== null) return openIndexed(input, indexPath, indexText, only);
  const names = readdirSync(input).filter((n) => n.endsWith('.safetensors')).sort();
  if (names.length === 0) throw new SafetensorsError(input, 'no .safetensors files in this folder');
  const opened = await openShards(names.map((n) => join(input, n)), only);
  await closingOnError(opened.shards, () => checkUniqueNames(opened.shards));
  return { dir: input, indexed: false, indexMetadata: {}, ...opened };
}

/** The file's first byte is "{" (opened with O_NONBLOCK, as every input: a FIFO swapped in blocks nothing). */
async function startsWithBrace(path: string): Promise<boolean> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK).catch(() => null);
  if (fh === null) return false;
  try {
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(1), 0, 1, 0);
    return bytesRead === 1 && buffer[0] === 0x7b;
  } finally {
    await fh.close();
  }
}

/** The shards at `paths` (those named in `only`, and then the names of all of them as allShards). */
async function openShards(paths: string[], only: ReadonlySet<string> | undefined): Promise<Pick<CheckpointFiles, 'shards' | 'allShards'>> {
  if (only === undefined) return { shards: await openAll(paths) };
  return { shards: await openAll(paths.filter((p) => only.has(basename(p)))), allShards: paths.map((p) => basename(p)) };
}

async function openIndexed(dir: string, indexPath: string, indexText: string, only: ReadonlySet<string> | undefined): Promise<CheckpointFiles> {
  let index: unknown;
  try {
    index = JSON.parse(indexText);
  } catch (err) {
    throw new SafetensorsError(indexPath, `index is not JSON (${(err as Error).message})`);
  }
  const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
  if (weightMap === null || typeof weightMap !== 'object' || Array.isArray(weightMap)) {
    throw new SafetensorsError(indexPath, 'index has no "weight_map" object');
  }
  const byFile = new Map<string, Set<string>>();
  for (const [tensor, file] of Object.entries(weightMap as Record<string, unknown>)) {
    if (typeof file !== 'string' || file !== basename(file)) throw new SafetensorsError(indexPath, `weight_map entry for ${tensor} is not a file name in this folder`);
    if (!byFile.has(file)) byFile.set(file, new Set());
    byFile.get(file)!.add(tensor);
  }
  // An empty map (a cut-off download, a tool that wrote none) left a run with no shard at all: an
  // output of no tensors was published, or a serving layout failed with a TypeError.
  if (byFile.size === 0) throw new SafetensorsError(indexPath, 'index lists no tensor (its "weight_map" is empty)');
  const files = [...byFile.keys()].sort();
  for (const f of files) if (!existsSync(join(dir, f))) throw new SafetensorsError(indexPath, `missing shard ${f}`);
  const opened = await openShards(files.map((f) => join(dir, f)), only);
  const { shards } = opened;
  // A refusal after the shards are open closes them (no file handle is left to the collector).
  await closingOnError(shards, () => {
    for (const s of shards) {
      const expected = byFile.get(basename(s.path))!;
      for (const t of s.tensors) {
        if (!expected.has(t.name)) throw new SafetensorsError(s.path, `tensor ${t.name} is not assigned to this shard by ${INDEX_NAME}`);
      }
      const present = new Set(s.tensors.map((t) => t.name));
      for (const name of expected) if (!present.has(name)) throw new SafetensorsError(s.path, `tensor ${name}, listed in ${INDEX_NAME}, is missing`);
    }
    checkUniqueNames(shards);
  });
  const metadata = (index as { metadata?: unknown }).metadata;
  return { dir, indexed: true, indexMetadata: metadata && typeof metadata === 'object' ? (metadata as Record<string, unknown>) : {}, ...opened };
}

async function closingOnError(shards: SafetensorsFile[], check: () => void): Promise<void> {
  try {
    check();
  } catch (err) {
    await Promise.all(shards.map((f) => f.close()));
    throw err;
  }
}

async function openAll(paths: string[]): Promise<SafetensorsFile[]> {
  const opened: SafetensorsFile[] = [];
  try {
    for (const p of paths) opened.push(await SafetensorsFile.open(p));
  } catch (err) {
    await Promise.all(opened.map((f) => f.close()));
    throw err;
  }
  return opened;
}

function checkUniqueNames(shards: SafetensorsFile[]): void {
  const owner = new Map<string, string>();
  for (const s of shards) {
    for (const t of s.tensors) {
      const prev = owner.get(t.name);
      if (prev !== undefined) throw new SafetensorsError(s.path, `duplicate tensor name ${t.name} (also in ${basename(prev)})`);
      owner.set(t.name, s.path);
    }
  }
}

export async function closeCheckpoint(c: CheckpointFiles): Promise<void> {
  await Promise.all(c.shards.map((s) => s.close()));
}
