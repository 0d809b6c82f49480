// Where a checkpoint run writes. Everything goes into a fresh staging folder beside the output,
// `<out>.tmp-<host>-<pid>-<random>`; only when every file in it is complete and fsynced is the
// folder renamed into place. What a loader looking at `<out>` can see, at every instant:
// - before the publish: the previous output (or nothing), untouched — never a file of this run;
// - when `<out>` did not exist or was an empty folder: one rename, the new output appears whole;
// - when `<out>` holds an earlier fp4kit output (or `overwrite` was given): it is renamed to
//   `<out>.old-…`, the staging folder to `<out>`, and the old one is removed. Between those two
//   renames `<out>` does not exist (a loader gets "no such folder"), never a mix of two runs; a kill
//   there leaves the complete old output under `.old-…` and the complete new one under `.tmp-…`.
// A folder that exists, is not empty and is not an earlier fp4kit output is refused unless
// `overwrite`. Leftover `.tmp-`/`.old-` folders of dead runs on this host are removed by the next
// run. Outputs that alias the input (the same folder, the input inside the output, through links or
// bind mounts) are refused before anything is written.

import { existsSync, lstatSync, readdirSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SafetensorsError } from './header.js';

export const SUMMARY_FILE = 'fp4kit-summary.json';

export interface OutputFolderOptions {
  /** Replace an output folder that holds something other than an earlier fp4kit output. */
  overwrite?: boolean;
}

/** Staging folders of runs in this process, removed synchronously on a forced exit (CLI). */
const live = new Set<string>();

export function removeStagingSync(): void {
  for (const dir of live) rmSync(dir, { recursive: true, force: true });
  live.clear();
}

const host = hostname().replace(/[^A-Za-z0-9]/g, '') || 'host';

function isEarlierOutput(dir: string): boolean {
  try {
    const summary = JSON.parse(readFileSync(join(dir, SUMMARY_FILE), 'utf8')) as { tool?: unknown };
    return summary.tool === 'fp4kit';
  } catch {
    return false;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Every ancestor folder of a path (itself included) as "dev:ino". */
function identities(path: string): Set<string> {
  const ids = new Set<string>();
  for (let p = path; ; p = dirname(p)) {
    try {
      const s = statSync(p);
      ids.add(`${s.dev}:${s.ino}`);
    } catch {
      // unreadable ancestor: realpath comparisons still apply
    }
    if (dirname(p) === p) break;
  }
  return ids;
}

/**
 * Refuse an output folder that aliases the input: the same folder, or one that contains the
 * input folder or any input file — by real path (symlinks) and by device and inode (bind mounts,
 * hard-linked folders). Publishing replaces the output folder, so any of these would destroy input.
 */
export function checkNotAliasingInput(outDir: string, inputDir: string, inputFiles: string[]): void {
  const parent = dirname(resolve(outDir));
  let realOut: string;
  try {
    realOut = existsSync(outDir) ? realpathSync(outDir) : join(realpathSync(parent), basename(resolve(outDir)));
  } catch {
    return; // the parent does not exist yet: it cannot hold the input
  }
  const outId = existsSync(realOut) ? (() => { const s = statSync(realOut); return `${s.dev}:${s.ino}`; })() : null;
  for (const input of [inputDir, ...inputFiles]) {
    let real: string;
    try {
      real = realpathSync(input);
    } catch {
      continue;
    }
    if (real === realOut || real.startsWith(realOut + sep)) {
      throw new SafetensorsError(outDir, `the output folder holds the input (${input}${real !== resolve(input) ? ` → ${real}` : ''}); choose another -o`);
    }
    if (outId !== null && identities(real).has(outId)) {
      throw new SafetensorsError(outDir, `the output folder is the input's folder under another path (${input}); choose another -o`);
    }
  }
}

export class OutputFolder {
  /** The folder the run writes into. */
  readonly staging: string;
  /** Where it is published. */
  readonly final: string;
  private published = false;

  private constructor(final: string, staging: string) {
    this.final = final;
    this.staging = staging;
  }

  static async create(outDir: string, options: OutputFolderOptions = {}): Promise<OutputFolder> {
    const final = resolve(outDir);
    const parent = dirname(final);
    await mkdir(parent, { recursive: true });
    const existing = lstatSync(final, { throwIfNoEntry: false });
    if (existing) {
      if (existing.isSymbolicLink()) throw new SafetensorsError(outDir, 'the output is a symbolic link; give the real folder (publishing replaces the folder, not its target)');
      if (!existing.isDirectory()) throw new SafetensorsError(outDir, 'the output exists and is not a folder');
      if (!options.overwrite && readdirSync(final).length > 0 && !isEarlierOutput(final)) {
        throw new SafetensorsError(outDir, `the output folder is not empty and holds no earlier fp4kit output (${SUMMARY_FILE}); empty it, choose another, or pass --force`);
      }
    }
    await removeDeadSiblings(final);
    const staging = `${final}.tmp-${host}-${process.pid}-${randomBytes(4).toString('hex')}`;
    await mkdir(staging);
    live.add(staging);
    return new OutputFolder(final, staging);
  }

  /** Moves the complete staging folder into place (see the header). */
  async publish(): Promise<void> {
    if (this.published) throw new Error(`${this.final}: published twice`);
    await syncFolder(this.staging);
    const existing = await stat(this.final).catch(() => null);
    if (existing && (await readdir(this.final)).length > 0) {
      const old = `${this.final}.old-${host}-${process.pid}-${randomBytes(4).toString('hex')}`;
      await rename(this.final, old);
      await rename(this.staging, this.final);
      live.delete(this.staging);
      await rm(old, { recursive: true, force: true });
    } else {
      // rename over an empty folder replaces it in one step
      await rename(this.staging, this.final);
      live.delete(this.staging);
    }
    this.published = true;
    await syncFolder(dirname(this.final));
  }

  /** Removes the staging folder (an error or an interrupt before publish). */
  async abort(): Promise<void> {
    if (this.published) return;
    await rm(this.staging, { recursive: true, force: true });
    live.delete(this.staging);
  }
}

/** Staging and replaced folders of runs on this host whose process is gone. */
async function removeDeadSiblings(final: string): Promise<void> {
  const parent = dirname(final);
  const prefix = basename(final);
  const pattern = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.(tmp|old)-${host}-(\\d+)-[0-9a-f]{8}$`);
  for (const name of await readdir(parent).catch(() => [] as string[])) {
    const m = pattern.exec(name);
    if (m && !processAlive(Number(m[2]))) await rm(join(parent, name), { recursive: true, force: true });
  }
}

/** fsync a folder so the renames in it survive a crash (where the platform allows it). */
export async function syncFolder(dir: string): Promise<void> {
  try {
    const h = await open(dir, 'r');
    try {
      await h.sync();
    } finally {
      await h.close();
    }
  } catch {
    // Some platforms (Windows) cannot open or fsync a folder; the files themselves are fsynced.
  }
}
