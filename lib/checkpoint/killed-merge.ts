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
// removed, as the killed merge would have removed it), and the staging folder is removed. Only the
// two folders a record of this run names are ever moved or removed, and only real folders (never
// through a link); a record of a merge still running on this host (its pid alive) is left alone.

import { lstatSync, renameSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { writeFileAtomic } from './safetensors/atomic-file.js';
import { processAlive } from './safetensors/output-folder.js';
import { readRegularTextFile } from './safetensors/regular-file.js';

/** A record's name: `publish-<host>-<pid>-<random>.json`, the suffix of the folders it names. */
const RECORD = /^publish-([A-Za-z0-9]+-(\d+)-[0-9a-f]{8})\.json$/;

interface PublishRecord {
  run: string;
  /** The host name (as os.hostname() gives it) and pid of the merge. */
  host: string;
  pid: number;
  /** The staging folder and the moved-aside output, names in the output's parent folder. */
  staging: string;
  aside: string;
}

/** Record a merge's staging and moved-aside folders (full paths, as OutputFolder names them) in its
 *  lock folder `lock`; returns the record's path (removed by the merge when its staging folder goes). */
export async function recordPublishing(lock: string, run: string, names: { staging: string; aside: string }): Promise<string> {
  const suffix = basename(names.staging).slice(basename(names.staging).lastIndexOf('.tmp-') + '.tmp-'.length);
  const record: PublishRecord = { run, host: hostname(), pid: process.pid, staging: basename(names.staging), aside: basename(names.aside) };
  const path = join(lock, `publish-${suffix}.json`);
  await writeFileAtomic(path, `${JSON.stringify(record)}\n`);
  return path;
}

/** A real folder (not a link, not a file) at `path`. */
function isFolder(path: string): boolean {
  const st = lstatSync(path, { throwIfNoEntry: false });
  return st !== undefined && st.isDirectory() && !st.isSymbolicLink();
}

/**
 * Put back or remove what earlier merges of `run`, killed while they published, left beside
 * `outDir` (their records in the lock folder `lock`, which the caller holds), and remove their
 * records. Called by a merge once it holds the lock, before it plans. `shards` are the parts'
 * output shards, named as in their folder `partsDir`: on a filesystem without hard links a merge
 * moves them into its staging folder, where they are the only copy, so those missing from
 * `partsDir` are moved back before a staging folder is removed.
 */
export async function finishKilledMerges(outDir: string, lock: string, run: string, partsDir: string, shards: readonly string[]): Promise<void> {
  const final = resolve(outDir);
  const parent = dirname(final);
  if (!isFolder(lock)) return;
  for (const name of (await readdir(lock)).sort()) {
    const m = RECORD.exec(name);
    if (m === null) continue;
    const path = join(lock, name);
    let record: Partial<PublishRecord> | null = null;
    try {
      record = JSON.parse((await readRegularTextFile(path)) ?? 'null') as Partial<PublishRecord> | null;
    } catch { /* not a record a merge wrote: left alone */ }
    // The names must be the ones a merge of this output gives: `<out>.tmp-<suffix>` and `<out>.old-<suffix>`.
    const staging = `${basename(final)}.tmp-${m[1]}`;
    const aside = `${basename(final)}.old-${m[1]}`;
    if (record === null || typeof record !== 'object' || record.run !== run || record.staging !== staging || record.aside !== aside
      || record.pid !== Number(m[2]) || typeof record.host !== 'string') continue;
    if (record.host === hostname() && processAlive(record.pid)) continue; // a merge still running here: its folders are its own
    if (isFolder(join(parent, aside))) {
      // Killed between its two renames: the previous output, complete, goes back under its name.
      // Killed after them: the output it replaced, which it was about to remove.
      if (lstatSync(final, { throwIfNoEntry: false }) === undefined) renameSync(join(parent, aside), final);
      else await rm(join(parent, aside), { recursive: true, force: true, maxRetries: 2 });
    }
    if (isFolder(join(parent, staging))) {
      for (const shard of shards) {
        const moved = lstatSync(join(parent, staging, shard), { throwIfNoEntry: false });
        if (moved?.isFile() && lstatSync(join(partsDir, shard), { throwIfNoEntry: false }) === undefined) renameSync(join(parent, staging, shard), join(partsDir, shard));
      }
      await rm(join(parent, staging), { recursive: true, force: true, maxRetries: 2 });
    }
    await rm(path, { force: true });
  }
}
