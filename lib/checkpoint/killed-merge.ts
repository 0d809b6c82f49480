// What a distributed merge (lib/checkpoint/checkpoint-parts.ts) killed while it publishes leaves
// beside the output, and how the next merge of the same run, on any host, finds it.
//
// A merge publishes as a single run does (safetensors/output-folder.ts): a staging folder
// `<out>.tmp-<host>-<pid>-<random>`, and, when `<out>` holds an earlier output, that output moved
// aside to `<out>.old-<same suffix>` just before the staging folder takes its name. Killed in
// between, it leaves both, and `<out>` missing. The next run on the same host tells a dead process
// by its pid and puts things back; a merge retried on another host (`merge --unlock`, the queue's
// merge job on another worker) could not, and left both for good. So before the staging folder is
// made, the merge records the two names in its run's lock folder
// (`<out>.parts/run-<key>/merging/publish-<suffix>.json`), and the next merge of that run reads the
// records: the previous output goes back under its name (or, once `<out>` holds a newer one, is
// removed, as the killed merge would have removed it), and the staging folder is removed.
//
// What a record may make the recovery touch: only folders beside the output named as a merge of
// this output names them from the record's own host, pid and random suffix (`.tmp-`, `.old-`, and
// `.del-`, below), only real folders (never through a link), and in the staging folder only files
// with plain names (the parts' output shards, moved back into the run folder). A record of a merge
// still running on this host (its pid alive, with the start time and boot the record names) is left
// alone; so is one this process wrote for a merge it still runs. A staging folder is first renamed
// to `<out>.del-<suffix>` (one atomic step) and only then emptied and removed: a merge thought dead
// but only stalled (a queue worker paused past its lock) then fails to rename its staging folder
// into place, instead of publishing what a removal in progress left of it.

import { lstatSync, renameSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { writeFileAtomic } from './safetensors/atomic-file.js';
import { hostTag, processStart, sameProcessAlive } from './safetensors/output-folder.js';
import { readRegularTextFile } from './safetensors/regular-file.js';
import { SafetensorsError } from './safetensors/header.js';
import { isPlainFileName } from './real-folder.js';

/** A record's name: `publish-<host>-<pid>-<random>.json`, the suffix of the folders it names. */
const RECORD = /^publish-(([A-Za-z0-9]+)-(\d+)-[0-9a-f]{8})\.json$/;

interface PublishRecord {
  run: string;
  /** The host name (as os.hostname() gives it) and pid of the merge. */
  host: string;
  pid: number;
  /** The merge's start time and boot (processStart; absent in records of fp4kit before review 27 (2026-12-07),
   *  and where there is no /proc): a live process with its pid and another start is not it. */
  started?: string;
  boot?: string;
  /** The staging folder and the moved-aside output, names in the output's parent folder. */
  staging: string;
  aside: string;
}

/** Records this process wrote for merges it still runs (their paths): never taken for a killed
 *  merge's, although their pid is alive (checked first: a record with this process's pid that is
 *  not here was left by an earlier process with the same pid, a restarted container). */
const ours = new Set<string>();

/** Record a merge's staging and moved-aside folders (full paths, as OutputFolder names them) in its
 *  lock folder `lock`; returns the record's path (removed with forgetPublishing when its staging folder goes). */
export async function recordPublishing(lock: string, run: string, names: { staging: string; aside: string }): Promise<string> {
  const suffix = basename(names.staging).slice(basename(names.staging).lastIndexOf('.tmp-') + '.tmp-'.length);
  const record: PublishRecord = { run, host: hostname(), pid: process.pid, ...processStart(process.pid), staging: basename(names.staging), aside: basename(names.aside) };
  const path = join(lock, `publish-${suffix}.json`);
  ours.add(path);
  await writeFileAtomic(path, `${JSON.stringify(record)}\n`);
  return path;
}

/** The name a merge that takes a run over gives a killed merge's staging folder while it removes it. */
function removalName(staging: string): string {
  return staging.replace(/\.tmp-([^/]*)$/, '.del-$1');
}

/** Remove a record this process wrote: its merge is over (published, or its staging folder removed).
 *  `staging`, for a merge that failed: if another merge of the run took it over (this one stalled
 *  past its lock) and is moving its staging folder's files back (`.del-…`, maybe killed doing so),
 *  the record stays: it is how that merge, or the next, finds the folder. */
export async function forgetPublishing(path: string, staging?: string): Promise<void> {
  ours.delete(path);
  if (staging !== undefined && isFolder(removalName(staging))) return;
  await rm(path, { force: true });
}

/** A real folder (not a link, not a file) at `path`. */
function isFolder(path: string): boolean {
  const st = lstatSync(path, { throwIfNoEntry: false });
  return st !== undefined && st.isDirectory() && !st.isSymbolicLink();
}

/** Whether the record at `path` (checked) is of a merge still running on this host. */
function stillRunning(path: string, record: PublishRecord): boolean {
  if (record.host !== hostname()) return false; // another host's: the lock the caller took over says it is not
  if (record.pid === process.pid) return ours.has(path);
  return sameProcessAlive(record.pid, record);
}

/**
 * Put back or remove what earlier merges of `run`, killed while they published, left beside
 * `outDir` (their records in the lock folder `lock`, which the caller holds), and remove their
 * records. Called by a merge once it holds the lock, before it plans. `shards` are the parts'
 * output shards, named as in their folder `partsDir` (plain file names: anything else is refused):
 * on a filesystem without hard links a merge moves them into its staging folder, where they are
 * the only copy, so those missing from `partsDir` are moved back before a staging folder is removed.
 */
export async function finishKilledMerges(outDir: string, lock: string, run: string, partsDir: string, shards: readonly string[]): Promise<void> {
  // Joined to a staging folder and to the run folder, and renamed: a `../x` would reach outside them.
  const odd = shards.find((name) => !isPlainFileName(name));
  if (odd !== undefined) throw new SafetensorsError(partsDir, `a part record names ${JSON.stringify(odd)} as a shard: not a plain file name; nothing was moved`);
  const final = resolve(outDir);
  const parent = dirname(final);
  if (!isFolder(lock)) return;
  // The parts' shards in `folder` (a killed merge's staging folder) go back into the run folder, then it is removed.
  const takeBackAndRemove = async (folder: string) => {
    for (const shard of shards) {
      const moved = lstatSync(join(folder, shard), { throwIfNoEntry: false });
      if (!moved?.isFile() || lstatSync(join(partsDir, shard), { throwIfNoEntry: false }) !== undefined) continue;
      try {
        renameSync(join(folder, shard), join(partsDir, shard));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // moved meanwhile (another merge taking it back too)
      }
    }
    await rm(folder, { recursive: true, force: true, maxRetries: 2 });
  };
  for (const name of (await readdir(lock)).sort()) {
    const m = RECORD.exec(name);
    if (m === null) continue;
    const path = join(lock, name);
    let record: Partial<PublishRecord> | null = null;
    try {
      record = JSON.parse((await readRegularTextFile(path)) ?? 'null') as Partial<PublishRecord> | null;
    } catch { /* not a record a merge wrote: left alone */ }
    // The names must be the ones a merge of this output on the record's host, with its pid, gives:
    // `<out>.tmp-<suffix>` and `<out>.old-<suffix>` (plain names beside the output).
    const staging = `${basename(final)}.tmp-${m[1]}`;
    const aside = `${basename(final)}.old-${m[1]}`;
    const removing = removalName(staging);
    if (record === null || typeof record !== 'object' || record.run !== run || record.staging !== staging || record.aside !== aside
      || record.pid !== Number(m[3]) || typeof record.host !== 'string' || hostTag(record.host) !== m[2]
      || (record.started !== undefined && typeof record.started !== 'string') || (record.boot !== undefined && typeof record.boot !== 'string')) continue;
    if (stillRunning(path, record as PublishRecord)) continue; // a merge still running here: its folders are its own
    if (isFolder(join(parent, aside))) {
      // Killed between its two renames: the previous output, complete, goes back under its name.
      // Killed after them: the output it replaced, which it was about to remove.
      if (lstatSync(final, { throwIfNoEntry: false }) === undefined) renameSync(join(parent, aside), final);
      else await rm(join(parent, aside), { recursive: true, force: true, maxRetries: 2 });
    }
    // A recovery killed while it removed the staging folder left it under its .del- name.
    if (isFolder(join(parent, removing))) await takeBackAndRemove(join(parent, removing));
    if (isFolder(join(parent, staging))) {
      // Renamed away in one step before anything in it is touched: a merge thought dead but only
      // stalled then fails to publish it (its rename, or its check of the files, fails); removed in
      // place, it could have published the part a removal had not reached yet.
      try {
        renameSync(join(parent, staging), join(parent, removing));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // published or removed by its own merge meanwhile
      }
      if (isFolder(join(parent, removing))) await takeBackAndRemove(join(parent, removing));
    }
    await rm(path, { force: true });
  }
}
