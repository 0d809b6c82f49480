// The folders fp4kit writes, links and removes in for a distributed run (the parts folder, a run's
// folder, its lock) and beside an output: each must be a real folder, never a symbolic link to one
// (which would make a merge write into, or remove, a folder elsewhere); and the names in them a
// record gives must be plain file names.
import { lstat } from 'node:fs/promises';
import { basename } from 'node:path';
import { SafetensorsError } from './safetensors/header.js';
import { fileKind } from './safetensors/regular-file.js';

/** `path` is a real folder (true) or absent (false); anything else is refused by name. */
export async function isRealFolder(path: string): Promise<boolean> {
  const st = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (st === null) return false;
  if (st.isSymbolicLink()) throw new SafetensorsError(path, 'is a symbolic link: fp4kit writes, links and removes only in folders it made itself; replace it with the folder, or delete it');
  if (!st.isDirectory()) throw new SafetensorsError(path, `is ${fileKind(st)}, not a folder fp4kit made`);
  return true;
}

/** A plain file name: one path component, not `.` or `..`, no separator or NUL. A name a part
 *  record or a publish record gives is joined to a folder fp4kit renames in: anything else (a
 *  `../../x`) would reach a file outside it. */
export function isPlainFileName(name: unknown): name is string {
  return typeof name === 'string' && name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0') && basename(name) === name;
}
