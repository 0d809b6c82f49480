// Where a checkpoint run writes. Everything goes into a fresh staging folder beside the output,
// `<out>.tmp-<host>-<pid>-<random>`; only when every file in it is complete and fsynced is the
// folder renamed into place. What a loader looking at `<out>` can see, at every instant:
// - before the publish: the previous output (or nothing), untouched — never a file of this run;
// - when `<out>` did not exist or was an empty folder: one rename, the new output appears whole;
// - when `<out>` holds an earlier fp4kit output (or `overwrite` was given): it is renamed to
//   `<out>.old-…` (the staging folder's name with .old- for .tmp-, so a distributed merge can
//   record both before it publishes: checkpoint-parts.ts), the staging folder to `<out>`, and the
//   old one is removed. The two renames are synchronous and back to back (no signal handler or
//   other JavaScript runs between them), so only a SIGKILL, a crash or a power cut can land
//   between them; `<out>` then does not exist (a loader gets "no such folder", never a mix of two
//   runs), the complete old output is in `.old-…` and the complete new one in `.tmp-…`. The next
//   run for `<out>` on this host renames that `.old-…` folder back to `<out>` before doing
//   anything else, and removes `.tmp-…` (a distributed merge retried on any host does the same
//   for its run's killed merge).
// An earlier fp4kit output is a folder whose fp4kit-summary.json lists every file in it; a folder
// that is not empty and is not one (someone else's files, or files added to an output) is refused
// unless `overwrite`. Outputs that alias the input are refused earlier (output-aliasing.ts), and a
// folder named like a leftover that holds an input of the run is never moved or removed.

import { lstatSync, readdirSync, readFileSync, realpathSync, renameSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { mkdir, open, readdir, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SafetensorsError } from './header.js';
import { NAME_MAX_BYTES } from './atomic-file.js';
import { readRegularTextFileSync } from './regular-file.js';
import { holdsAny } from './output-aliasing.js';
import { makeFolders } from './make-folders.js';

export const SUMMARY_FILE = 'fp4kit-summary.json';

export interface OutputFolderOptions {
  /** Replace an output folder that holds something other than an earlier fp4kit output. */
  overwrite?: boolean;
  /** Files and folders the run reads: a leftover named like a dead run's folder that holds one of
   *  them is left where it is (tidyDeadSiblings). */
  inputs?: string[];
  /** Told the staging folder's and the moved-aside output's paths before the staging folder is made
   *  (a distributed merge records them in its run's folder, so a merge retried on another host can
   *  tell them for its own run's if this one is killed). */
  beforeStaging?: (names: { staging: string; aside: string }) => Promise<void>;
}

/** Staging folders (and replaced outputs) of runs in this process, removed synchronously on a
 *  forced exit (the CLI's signal handler). */
const live = new Set<string>();
/** Output folders this process has published. */
const published = new Set<string>();
/** For a staging folder whose output's parent folders this run created: the parent and the
 *  top-most folder created, removed again (while empty) when nothing is published. */
const createdParents = new Map<string, { parent: string; top: string }>();

/** Remove every staging folder of this process; returns the outputs it had already published. */
export function removeStagingSync(): string[] {
  for (const dir of live) rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
  live.clear();
  for (const { parent, top } of createdParents.values()) removeEmptyFoldersSync(parent, top);
  createdParents.clear();
  return [...published];
}

/** rmdir `from` and the folders above it up to `top`, stopping at the first that is not empty. */
function removeEmptyFoldersSync(from: string, top: string): void {
  for (let dir = from; ; dir = dirname(dir)) {
    try {
      rmdirSync(dir);
    } catch {
      return; // not empty (another run writes there too), or already gone
    }
    if (dir === top || dirname(dir) === dir) return;
  }
}

const host = hostTag(hostname());

/** A per-file temporary name (atomic-file.ts) that an interrupted older version may have left. */
const FILE_TEMP = /\.tmp-\d+-[0-9a-f]{8}$/;

/** Why the non-empty folder `dir` may not be replaced without `overwrite`, or null if it may. */
function whyNotReplaceable(dir: string): string | null {
  let text: string | null;
  try {
    text = readRegularTextFileSync(join(dir, SUMMARY_FILE)); // a FIFO here must not freeze the process
  } catch (err) {
    return `its ${SUMMARY_FILE} cannot be read (${(err as SafetensorsError).problem ?? (err as Error).message})`;
  }
  if (text === null) return `holds no earlier fp4kit output (${SUMMARY_FILE})`;
  let summary: { tool?: unknown; files?: unknown };
  try {
    summary = JSON.parse(text) as typeof summary;
  } catch {
    return `its ${SUMMARY_FILE} is not JSON`;
  }
  if (summary === null || summary.tool !== 'fp4kit') return `its ${SUMMARY_FILE} was not written by fp4kit`;
  const listed = new Set(Array.isArray(summary.files) ? summary.files.filter((f): f is string => typeof f === 'string') : []);
  // fp4kit writes only regular files: a folder, link or FIFO under a listed name was put there since.
  const foreign = readdirSync(dir, { withFileTypes: true })
    .filter((e) => !(listed.has(e.name) && e.isFile()) && !FILE_TEMP.test(e.name))
    .map((e) => e.name);
  if (foreign.length > 0) {
    return `holds files the earlier fp4kit run did not write (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', …' : ''})`;
  }
  return null;
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** What tells a process from a later one given the same pid (a restarted container often gets the
 *  same small pid): its start time in clock ticks after boot (/proc/<pid>/stat field 22) and the
 *  boot's id. Fields absent where there is no /proc (or it cannot be read). */
export interface ProcessStart {
  started?: string;
  boot?: string;
}

export function processStart(pid: number): ProcessStart {
  const start: ProcessStart = {};
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2, the command name in parentheses, may hold spaces and parentheses: count after the last ')'.
    const field22 = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[22 - 3];
    if (field22 !== undefined && /^\d+$/.test(field22)) start.started = field22;
  } catch { /* no /proc, or the process is gone */ }
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    if (/^[0-9a-f-]{1,64}$/.test(boot)) start.boot = boot;
  } catch { /* not Linux */ }
  return start;
}

/**
 * Whether the process `pid` of this host, which was `start` (processStart, taken when it wrote
 * what names it; fields absent: not known), still runs. A live pid whose start time or boot differs
 * is another process that got the pid since. Without the fields (records of fp4kit before
 * review 27 of 2026-12-07, no /proc) a live pid is taken for it. This process is not asked about: the caller
 * knows what it wrote itself.
 */
export function sameProcessAlive(pid: number, start: ProcessStart): boolean {
  if (!processAlive(pid)) return false;
  const now = processStart(pid);
  if (start.boot !== undefined && now.boot !== undefined && start.boot !== now.boot) return false; // the machine started again since
  if (start.started !== undefined && now.started !== undefined && start.started !== now.started) return false;
  return true;
}

/** The host part of the names a run on `name` gives its folders (os.hostname(), letters and digits). */
export function hostTag(name: string): string {
  return name.replace(/[^A-Za-z0-9]/g, '') || 'host';
}

export class OutputFolder {
  /** The folder the run writes into. */
  readonly staging: string;
  /** Where it is published. */
  readonly final: string;
  /** Where publishing moves an earlier output aside first: the staging name with .old- for .tmp-. */
  readonly aside: string;
  private readonly overwrite: boolean;
  private published = false;

  private constructor(final: string, staging: string, aside: string, overwrite: boolean) {
    this.final = final;
    this.staging = staging;
    this.aside = aside;
    this.overwrite = overwrite;
  }

  static async create(outDir: string, options: OutputFolderOptions = {}): Promise<OutputFolder> {
    const final = resolve(outDir);
    if (dirname(final) === final) throw new SafetensorsError(outDir, 'the output cannot be the root folder');
    const parent = dirname(final);
    await tidyDeadSiblings(final, options.inputs ?? []);
    checkReplaceable(outDir, final, options.overwrite === true);
    const suffix = `${host}-${process.pid}-${randomBytes(4).toString('hex')}`;
    const staging = `${final}.tmp-${suffix}`;
    const aside = `${final}.old-${suffix}`;
    const stagingBytes = Buffer.byteLength(basename(staging));
    if (stagingBytes > NAME_MAX_BYTES) {
      throw new SafetensorsError(outDir, `the name leaves no room for the staging folder beside it (${basename(staging).slice(basename(final).length)}: ${stagingBytes} bytes in all, file names hold ${NAME_MAX_BYTES}); choose a shorter output name`);
    }
    await options.beforeStaging?.({ staging, aside });
    let top: string | undefined;
    try {
      top = await makeFolders(parent); // the top-most folder it created, if any
      await mkdir(staging);
    } catch (err) {
      if (top !== undefined) removeEmptyFoldersSync(parent, top);
      if (err instanceof SafetensorsError) throw err; // names the folder that could not be made
      const e = err as NodeJS.ErrnoException;
      throw new SafetensorsError(outDir, `cannot create the staging folder beside it (${e.code ?? e.message}); is ${parent} a writable folder? (A run stages beside its output and renames it into place: to write into a folder whose parent you cannot write, give a new folder inside it, e.g. -o ${join(outDir, 'model')})`);
    }
    live.add(staging);
    if (top !== undefined) createdParents.set(staging, { parent, top });
    return new OutputFolder(final, staging, aside, options.overwrite === true);
  }

  /** Moves the complete staging folder into place (see the header). `files`: every file the run
   *  wrote into it, checked to be there just before the renames (a distributed merge: another
   *  merge of its run that took its lock over moves its staging folder away). */
  async publish(files?: readonly string[]): Promise<void> {
    if (this.published) throw new Error(`${this.final}: published twice`);
    await syncFolder(this.staging);
    // Checked again: another run may have published here since create().
    checkReplaceable(this.final, this.final, this.overwrite);
    // From here to the renames nothing is awaited: what is checked is what is renamed (a folder
    // moved away meanwhile makes the rename fail; it is never published in part).
    if (files !== undefined) this.checkHolds(files);
    const existing = lstatSync(this.final, { throwIfNoEntry: false });
    let old: string | null = null;
    if (existing && readdirSync(this.final).length > 0) {
      old = this.aside;
      renameSync(this.final, old);
      try {
        renameSync(this.staging, this.final);
      } catch (err) {
        renameSync(old, this.final); // put the previous output back
        throw err;
      }
      live.add(old);
    } else {
      // rename over an empty folder replaces it in one step
      renameSync(this.staging, this.final);
    }
    live.delete(this.staging);
    createdParents.delete(this.staging);
    this.published = true;
    published.add(this.final);
    if (old !== null) {
      await rm(old, { recursive: true, force: true, maxRetries: 2 });
      live.delete(old);
    }
    await syncFolder(dirname(this.final));
  }

  /** Refuse to publish a staging folder that is gone or lacks one of `files`. */
  private checkHolds(files: readonly string[]): void {
    let present: Set<string>;
    try {
      present = new Set(readdirSync(this.staging));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      throw new SafetensorsError(this.final, `its staging folder ${basename(this.staging)} is gone before publishing (another merge of this run took it over?); nothing was published`);
    }
    const missing = files.filter((name) => !present.has(name));
    if (missing.length > 0) {
      throw new SafetensorsError(this.final, `its staging folder ${basename(this.staging)} lost ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? `, … (${missing.length} files)` : ''} before publishing (another merge of this run took it over?); nothing was published`);
    }
  }

  /** Removes the staging folder (an error or an interrupt before publish). */
  async abort(): Promise<void> {
    if (this.published) return;
    await rm(this.staging, { recursive: true, force: true, maxRetries: 2 });
    live.delete(this.staging);
    const created = createdParents.get(this.staging);
    if (created) removeEmptyFoldersSync(created.parent, created.top); // nothing of the run stays
    createdParents.delete(this.staging);
  }
}

/** Refuse `final` unless it is absent, an empty folder, an earlier fp4kit output, or `overwrite`. */
function checkReplaceable(outDir: string, final: string, overwrite: boolean): void {
  const existing = lstatSync(final, { throwIfNoEntry: false });
  if (!existing) return;
  if (existing.isSymbolicLink()) throw new SafetensorsError(outDir, 'the output is a symbolic link; give the real folder (publishing replaces the folder, not its target)');
  if (!existing.isDirectory()) throw new SafetensorsError(outDir, 'the output exists and is not a folder');
  if (isMountPoint(final, existing.dev)) {
    throw new SafetensorsError(outDir, `the output is a mount point: a run publishes by renaming its staging folder onto the output, which a mount point cannot take (EBUSY, after all the work); give a folder inside it, e.g. -o ${join(outDir, 'model')}`);
  }
  if (overwrite || readdirSync(final).length === 0) return;
  const why = whyNotReplaceable(final);
  if (why !== null) throw new SafetensorsError(outDir, `the output folder is not empty and ${why}; empty it, choose another, or pass --force`);
}

/**
 * Whether `folder` (resolved, an existing folder of device `dev`) is a mount point: on another
 * device than its parent, or listed as a mount point in /proc/self/mountinfo (Linux; a bind mount
 * of a folder of the same device keeps its device number). Containers mount output volumes this way.
 */
function isMountPoint(folder: string, dev: number): boolean {
  const parent = lstatSync(dirname(folder), { throwIfNoEntry: false });
  if (parent !== undefined && parent.dev !== dev) return true;
  let mountinfo: string;
  try {
    mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return false; // not Linux: the device check above is what there is
  }
  let real: string;
  try {
    real = realpathSync(folder);
  } catch {
    return false;
  }
  // Field 5 is the mount point, with space, tab, newline and backslash written as octal escapes.
  const unescape = (p: string) => p.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
  return mountinfo.split('\n').some((line) => {
    const mountPoint = line.split(' ')[4];
    return mountPoint !== undefined && unescape(mountPoint) === real;
  });
}

/**
 * Leftovers of runs for `final` on this host whose process is gone. A `.old-…` folder while
 * `final` is missing means that run died between its two publishing renames: the old output is
 * complete, so it goes back under its name. Everything else (staging folders, replaced outputs
 * of published runs, `.del-…`: a killed merge's staging folder that the next merge of its run
 * was removing, killed-merge.ts) is removed. Folders of live processes, or of other hosts sharing
 * the file system, are left alone. Folders named with this process's pid are its own only while
 * it has them (`live`): otherwise an earlier process with the same pid left them (a restarted
 * container keeps its host name, and node often gets the same small pid).
 */
async function tidyDeadSiblings(final: string, inputs: string[]): Promise<void> {
  const parent = dirname(final);
  const prefix = basename(final);
  const pattern = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.(tmp|old|del)-${host}-(\\d+)-[0-9a-f]{8}$`);
  const alive = (name: string, pid: number) => (pid === process.pid ? live.has(join(parent, name)) : processAlive(pid));
  const dead = (await readdir(parent).catch(() => [] as string[]))
    .map((name) => ({ name, m: pattern.exec(name) }))
    .filter((e): e is { name: string; m: RegExpExecArray } => e.m !== null && !alive(e.name, Number(e.m[2])))
    .filter((e) => !holdsAny(join(parent, e.name), inputs)); // named like a leftover, but this run reads from it
  const olds = dead.filter((e) => e.m[1] === 'old');
  if (olds.length > 0 && !lstatSync(final, { throwIfNoEntry: false })) {
    const newest = olds.map((e) => ({ e, t: statSync(join(parent, e.name)).mtimeMs })).sort((a, b) => b.t - a.t)[0].e;
    renameSync(join(parent, newest.name), final);
    dead.splice(dead.indexOf(newest), 1);
  }
  for (const e of dead) await rm(join(parent, e.name), { recursive: true, force: true, maxRetries: 2 });
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
