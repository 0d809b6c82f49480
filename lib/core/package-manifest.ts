// fp4kit's own package.json, found from this file (Node only): the package root (the addon's
// prebuilds and builds are under it) and the version (queued checkpoint runs refuse workers of
// another version; `fp4kit --version`).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | null = null;
let version: string | null = null;

/** The package root: the nearest folder above this file whose package.json is fp4kit's. */
export function packageRoot(): string {
  if (root !== null) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === 'fp4kit') return (root = dir);
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the fp4kit package root');
    dir = parent;
  }
}

/** fp4kit's version, from its package.json. */
export function packageVersion(): string {
  version ??= String(JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')).version);
  return version;
}
