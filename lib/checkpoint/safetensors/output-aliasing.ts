// An output folder must not alias the input. Publishing replaces the output folder as a whole
// (output-folder.ts), so an output that holds an input file would destroy it, and an output inside
// an input folder would write into a folder the tool promises only to read. Paths are compared
// after resolving links (realpath) and folders by device and inode, which also sees through bind
// mounts and other second names of the same folder.

import { realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { SafetensorsError } from './header.js';

/** The real path of `p`, resolving links in the part of it that exists (the rest may not yet). */
function realPathOf(p: string): string {
  const rest: string[] = [];
  for (let cur = resolve(p); ; cur = dirname(cur)) {
    try {
      return join(realpathSync(cur), ...rest.reverse());
    } catch {
      if (dirname(cur) === cur) return resolve(p);
      rest.push(basename(cur));
    }
  }
}

function identity(p: string): string | null {
  try {
    const s = statSync(p);
    return `${s.dev}:${s.ino}`;
  } catch {
    return null;
  }
}

/** "dev:ino" of a path and of every folder above it (those that exist). */
function identitiesUpFrom(path: string): Set<string> {
  const ids = new Set<string>();
  for (let p = path; ; p = dirname(p)) {
    const id = identity(p);
    if (id !== null) ids.add(id);
    if (dirname(p) === p) break;
  }
  return ids;
}

const isInside = (child: string, parent: string) => child === parent || child.startsWith(parent.endsWith(sep) ? parent : parent + sep);

/**
 * Refuse an output folder that aliases the input: one that is, or holds, an input file or the
 * input folder (links and bind mounts included), or one inside the input folder.
 * @param inputFolder the folder given as input (null when the input is a single file: the
 *   folder around that file is not the tool's to protect, only the files it reads)
 * @param inputFiles every file the run reads (shards, index, config.json, copied files, Fisher)
 */
export function checkNotAliasingInput(outDir: string, inputFolder: string | null, inputFiles: string[]): void {
  const realOut = realPathOf(outDir);
  const outId = identity(realOut);
  const inputs = inputFolder === null ? inputFiles : [inputFolder, ...inputFiles];
  for (const input of inputs) {
    const real = realPathOf(input);
    if (isInside(real, realOut)) {
      throw new SafetensorsError(outDir, `the output folder holds the input (${input}${real !== resolve(input) ? ` → ${real}` : ''}); choose another -o`);
    }
    if (outId !== null && identitiesUpFrom(real).has(outId)) {
      throw new SafetensorsError(outDir, `the output folder holds the input under another path (${input}: a bind mount or a second name of the same folder); choose another -o`);
    }
    // The path as given counts too: a link inside the output that leads to the input would be
    // removed with the folder it lives in.
    if (isInside(resolve(input), resolve(outDir))) {
      throw new SafetensorsError(outDir, `the input (${input}) is reached through the output folder, which publishing replaces; choose another -o`);
    }
  }
  if (inputFolder !== null) {
    const realIn = realPathOf(inputFolder);
    const inId = identity(realIn);
    if (isInside(realOut, realIn) || (inId !== null && identitiesUpFrom(realOut).has(inId))) {
      throw new SafetensorsError(outDir, `the output folder is inside the input folder ${inputFolder}, which is only read; choose a folder outside it`);
    }
  }
}

/** True when `folder` is, or holds, one of `paths` (links and second names seen through): a folder
 *  a run must not move or remove, whatever its name says. */
export function holdsAny(folder: string, paths: string[]): boolean {
  const realFolder = realPathOf(folder);
  const folderId = identity(realFolder);
  return paths.some((p) => {
    const real = realPathOf(p);
    return isInside(resolve(p), resolve(folder)) || isInside(real, realFolder) || (folderId !== null && identitiesUpFrom(real).has(folderId));
  });
}
