// A file written under a temporary name in its target folder and renamed into place only when
// complete (after fsync), so an interrupted run never leaves a partial file under the final name.

import { randomBytes } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export function tempNameFor(finalPath: string): string {
  return join(dirname(finalPath), `${basename(finalPath)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** The longest file name most file systems hold (ext4, xfs, btrfs, tmpfs: NAME_MAX). */
export const NAME_MAX_BYTES = 255;
/** What tempNameFor adds to a name at most: `.tmp-<pid>-<8 hex>` with a pid of up to 7 digits
 *  (Linux's pid_max is at most 2^22). */
export const TEMP_SUFFIX_BYTES = '.tmp-'.length + 7 + 1 + 8;

/** Temporary files of this process not yet renamed or removed, for a forced exit (the CLI's
 *  signal handler) to remove synchronously. */
const liveTemps = new Set<string>();

/** Remove every temporary file of this process that is still open or unpublished. */
export function removeTempFilesSync(): void {
  for (const p of liveTemps) {
    try {
      unlinkSync(p);
    } catch {
      // already gone
    }
  }
  liveTemps.clear();
}

/** A file system error (ENOSPC, EIO …) from a handle carries no path: give it the file's, so the
 *  message names the file ("<file>: no space left on device"). */
function withPath(err: unknown, path: string): unknown {
  const e = err as NodeJS.ErrnoException;
  if (e instanceof Error && typeof e.code === 'string' && e.path === undefined) e.path = path;
  return err;
}

export class AtomicFile {
  readonly finalPath: string;
  readonly tempPath: string;
  private handle: FileHandle | null;
  /** Where write() appends next. */
  private position = 0;
  /** Bytes written so far, appended or placed. */
  private written = 0;

  private constructor(finalPath: string, tempPath: string, handle: FileHandle) {
    this.finalPath = finalPath;
    this.tempPath = tempPath;
    this.handle = handle;
  }

  static async create(finalPath: string): Promise<AtomicFile> {
    const tempPath = tempNameFor(finalPath);
    const handle = await open(tempPath, 'wx');
    liveTemps.add(tempPath);
    return new AtomicFile(finalPath, tempPath, handle);
  }

  /** Bytes written so far (appended or placed). */
  get bytesWritten(): number {
    return this.written;
  }

  /** Append bytes at the end of what was appended so far. */
  async write(bytes: Uint8Array): Promise<void> {
    await this.writeAt(bytes, this.position);
    this.position += bytes.length;
  }

  /** Write bytes at byte `position` of the file (a safetensors writer places each tensor at its offset). */
  async writeAt(bytes: Uint8Array, position: number): Promise<void> {
    if (!this.handle) throw new Error(`${this.finalPath}: write after close`);
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await this.handle.write(bytes, done, bytes.length - done, position + done).catch((err: unknown) => {
        throw withPath(err, this.finalPath);
      });
      // A file system that takes nothing (some /proc and /sys files) would make this spin forever.
      if (bytesWritten === 0) throw new Error(`${this.finalPath}: the file system accepted no bytes (is this a regular file system?)`);
      done += bytesWritten;
      this.written += bytesWritten;
    }
  }

  private finished = false;

  /** fsync and close; the file stays under its temporary name until publish(). */
  async finish(): Promise<void> {
    if (!this.handle) throw new Error(`${this.finalPath}: finish after close`);
    const h = this.handle;
    this.handle = null;
    try {
      await h.sync();
      await h.close();
    } catch (err) {
      await h.close().catch(() => {});
      throw withPath(err, this.finalPath);
    }
    this.finished = true;
  }

  /** Rename the finished file into place. */
  async publish(): Promise<void> {
    if (!this.finished) throw new Error(`${this.finalPath}: publish before finish`);
    await rename(this.tempPath, this.finalPath);
    liveTemps.delete(this.tempPath);
    this.finished = false;
  }

  /** fsync, close and rename into place. */
  async commit(): Promise<void> {
    await this.finish();
    await this.publish();
  }

  /** Close and delete the temporary file; safe to call more than once. */
  async abort(): Promise<void> {
    const h = this.handle;
    this.handle = null;
    if (h) await h.close().catch(() => {});
    await unlink(this.tempPath).catch(() => {});
    liveTemps.delete(this.tempPath);
  }
}

export async function writeFileAtomic(finalPath: string, contents: string | Uint8Array): Promise<void> {
  const f = await AtomicFile.create(finalPath);
  try {
    await f.write(typeof contents === 'string' ? new TextEncoder().encode(contents) : contents);
    await f.commit();
  } catch (err) {
    await f.abort();
    throw err;
  }
}
