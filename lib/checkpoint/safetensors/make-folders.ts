// Creating a folder and its missing parents, one mkdir per missing path component. Node's own
// `mkdir(path, { recursive: true })` (sync and async) retries forever where mkdir reports ENOENT
// under a parent that exists — /proc and /sys do — so `-o /proc/x/out` would spin at 100 % CPU.
// Here the work is bounded by the number of components, and every failure is an error naming the
// folder.

import { mkdir, rmdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { SafetensorsError } from './header.js';

/** Whether `path` is a folder (true), missing (false); anything else there is an error. */
async function isFolder(path: string): Promise<boolean> {
  try {
    const s = await stat(path);
    if (!s.isDirectory()) throw new SafetensorsError(path, 'exists and is not a folder');
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return false;
    if (code === 'ENOTDIR') throw new SafetensorsError(path, 'a part of this path is a file, not a folder');
    throw err;
  }
}

/**
 * Create the folder `path` and every missing folder above it. Returns the top-most folder it
 * created (undefined when `path` already existed), so a caller can remove what it made.
 */
export async function makeFolders(path: string): Promise<string | undefined> {
  const missing: string[] = [];
  for (let dir = resolve(path); !(await isFolder(dir)); dir = dirname(dir)) {
    if (dirname(dir) === dir) throw new SafetensorsError(dir, 'the root folder does not exist');
    missing.push(dir);
  }
  const created: string[] = [];
  for (const dir of missing.reverse()) {
    try {
      await mkdir(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' && (await isFolder(dir))) continue; // made meanwhile by someone else
      for (const made of created.reverse()) await rmdir(made).catch(() => {}); // leave nothing behind
      throw new SafetensorsError(dir, `cannot create this folder (${code ?? (err as Error).message})${code === 'ENOENT' ? '; its parent takes no new folders (is it /proc or /sys?)' : ''}`);
    }
    created.push(dir);
  }
  return created[0];
}
