// Kill points of a distributed merge for CLI child processes (node --import tsx --import
// test/helpers/merge-kill-points.mjs), beside test/helpers/fs-faults.mjs (whose kill-between-renames
// and kill-after-publish are the two publishing renames):
//   FP4KIT_TEST_HOST=name   os.hostname() says `name`: the process is "another machine" (the
//                           names of its staging folders, its merge's publish record)
//   FP4KIT_MERGE_KILL=step  SIGKILL at one step of `fp4kit merge`:
//     recorded       right after the merge recorded its staging folder's name in the run's lock
//                    folder (merging/publish-….json), before the staging folder exists
//     staging        at the second shard hard-linked into the staging folder (half staged)
//     aside-removed  right after the previous output (moved aside to <out>.old-…) is removed,
//                    before the run's folder is cleaned up
//     cleanup        right after the first file of the run's folder is removed
import fs from 'node:fs';
import os from 'node:os';
import { syncBuiltinESMExports } from 'node:module';

const host = process.env.FP4KIT_TEST_HOST;
if (host !== undefined) os.hostname = () => host;

const step = process.env.FP4KIT_MERGE_KILL;
const die = () => process.kill(process.pid, 'SIGKILL');
const p = fs.promises;

if (step === 'recorded') {
  const rename = p.rename;
  p.rename = async function killingRename(from, to) {
    await rename(from, to);
    if (/\/merging\/publish-[^/]+\.json$/.test(String(to))) die();
  };
}
if (step === 'staging') {
  const link = p.link;
  let links = 0;
  p.link = async function killingLink(from, to) {
    await link(from, to);
    if (++links === 2) die();
  };
}
if (step === 'aside-removed' || step === 'cleanup') {
  const rm = p.rm;
  p.rm = async function killingRm(path, options) {
    await rm(path, options);
    if (step === 'aside-removed' && /\.old-[^/]+$/.test(String(path))) die();
    if (step === 'cleanup' && /\.parts\/run-[0-9a-f]+\/[^/]+$/.test(String(path))) die();
  };
}
syncBuiltinESMExports(); // `import { rename } from 'node:fs/promises'` and `import { hostname } from 'node:os'` see these too
