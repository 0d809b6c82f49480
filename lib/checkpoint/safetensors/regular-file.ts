// Opening what should be a regular file without ever blocking on something else. open(2) on a
// FIFO waits for a writer that may never come (and a sync call would freeze the event loop, so no
// signal handler could run); a device may stream forever. Every file fp4kit reads — shards, the
// index, config.json, an earlier summary, files copied beside the output — is opened here with
// O_NONBLOCK (a no-op for regular files) and refused after fstat unless it is a regular file.
// Checking the opened descriptor, not the path, leaves no window for the path to be swapped.

import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { AtomicFile } from './atomic-file.js';
import { SafetensorsError } from './header.js';

const READ_NONBLOCKING = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

/** Side files (index, config.json, summary) beyond this are refused rather than read. */
export const MAX_SIDE_FILE_BYTES = 256 << 20;

const COPY_CHUNK = 4 << 20;

/** "a FIFO", "a folder", ... for an error message. */
export function fileKind(s: Stats): string {
  if (s.isFile()) return 'a regular file';
  if (s.isDirectory()) return 'a folder';
  if (s.isFIFO()) return 'a FIFO';
  if (s.isSocket()) return 'a socket';
  if (s.isCharacterDevice() || s.isBlockDevice()) return 'a device';
  return 'not a file';
}

function openError(path: string, err: unknown): SafetensorsError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new SafetensorsError(path, 'no such file');
  if (code === 'ENXIO') return new SafetensorsError(path, 'not a regular file (a socket or a device without a driver)');
  if (code === 'EACCES') return new SafetensorsError(path, 'permission denied');
  return new SafetensorsError(path, `cannot open: ${code ?? (err as Error).message}`);
}

/** A read-only handle on the regular file at `path` (links followed); anything else is refused. */
export async function openRegularFile(path: string): Promise<{ handle: FileHandle; stats: Stats }> {
  let handle: FileHandle;
  try {
    handle = await open(path, READ_NONBLOCKING);
  } catch (err) {
    throw openError(path, err);
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new SafetensorsError(path, `not a regular file (${fileKind(stats)})`);
    return { handle, stats };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** The text of a small regular file, or null when there is none at `path`. */
export async function readRegularTextFile(path: string): Promise<string | null> {
  const bytes = await readRegularFile(path);
  return bytes === null ? null : bytes.toString('utf8');
}

/** The bytes of a small regular file (at most MAX_SIDE_FILE_BYTES), or null when there is none at `path`. */
export async function readRegularFile(path: string): Promise<Buffer | null> {
  let opened;
  try {
    opened = await openRegularFile(path);
  } catch (err) {
    if (err instanceof SafetensorsError && err.problem === 'no such file') return null;
    throw err;
  }
  const { handle, stats } = opened;
  try {
    if (stats.size > MAX_SIDE_FILE_BYTES) throw new SafetensorsError(path, `${stats.size} bytes; a side file above ${MAX_SIDE_FILE_BYTES} bytes is refused`);
    const bytes = Buffer.alloc(stats.size);
    let done = 0;
    while (done < bytes.length) {
      const { bytesRead } = await handle.read(bytes, done, bytes.length - done, done);
      if (bytesRead === 0) break; // the file shrank while being read: parse what is there
      done += bytesRead;
    }
    return bytes.subarray(0, done);
  } finally {
    await handle.close();
  }
}

/** readRegularTextFile for synchronous callers: still never blocks on a FIFO. */
export function readRegularTextFileSync(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, READ_NONBLOCKING);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw openError(path, err);
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) throw new SafetensorsError(path, `not a regular file (${fileKind(stats)})`);
    if (stats.size > MAX_SIDE_FILE_BYTES) throw new SafetensorsError(path, `${stats.size} bytes; a side file above ${MAX_SIDE_FILE_BYTES} bytes is refused`);
    const bytes = Buffer.alloc(stats.size);
    let done = 0;
    while (done < bytes.length) {
      const n = readSync(fd, bytes, done, bytes.length - done, done);
      if (n === 0) break;
      done += n;
    }
    return bytes.subarray(0, done).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** Copy the regular file `src` to `dest` (written under a temporary name, fsynced, renamed): the
 *  bytes it held when opened, so a file someone keeps appending to cannot keep the copy going. */
export async function copyRegularFile(src: string, dest: string): Promise<void> {
  const { handle, stats } = await openRegularFile(src);
  try {
    const out = await AtomicFile.create(dest);
    try {
      const chunk = new Uint8Array(COPY_CHUNK);
      for (let position = 0; position < stats.size; ) {
        const { bytesRead } = await handle.read(chunk, 0, Math.min(chunk.length, stats.size - position), position);
        if (bytesRead === 0) break; // it shrank: copy what is there
        await out.write(chunk.subarray(0, bytesRead));
        position += bytesRead;
      }
      await out.commit();
    } catch (err) {
      await out.abort();
      throw err;
    }
  } finally {
    await handle.close();
  }
}
