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
//     del-renamed    right after the merge renamed a killed merge's staging folder to <out>.del-…
//                    (taking it out of that merge's reach), before it empties and removes it
//   FP4KIT_MERGE_STALL=file  at publishing (when the merge opens its staging folder to fsync it),
//                           write `file.stalled` and wait until `file` exists: a merge stalled
//                           past its lock (a queue worker paused) while another takes the run over
//   FP4KIT_TEST_NO_LINKS=1  a filesystem without hard links: link() fails with EXDEV, so the merge
//                           moves the parts' shards into its staging folder (`staging` then kills
//                           at the second shard moved)
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
const noLinks = process.env.FP4KIT_TEST_NO_LINKS === '1';
if (noLinks) {
  p.link = async function noLink() {
    throw Object.assign(new Error('EXDEV: cross-device link not permitted, link'), { code: 'EXDEV' });
  };
}
if (step === 'staging' && !noLinks) {
  const link = p.link;
  let links = 0;
  p.link = async function killingLink(from, to) {
    await link(from, to);
    if (++links === 2) die();
  };
}
if (step === 'staging' && noLinks) {
  const rename = p.rename;
  let moves = 0;
  p.rename = async function killingRename(from, to) {
    await rename(from, to);
    if (/\.tmp-[^/]+\/[^/]+\.safetensors$/.test(String(to)) && ++moves === 2) die();
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
if (step === 'del-renamed') {
  const renameSync = fs.renameSync;
  fs.renameSync = function killingRenameSync(from, to) {
    renameSync(from, to);
    if (/\.del-[^/]+$/.test(String(to))) die();
  };
}
const stallUntil = process.env.FP4KIT_MERGE_STALL;
if (stallUntil !== undefined) {
  const open = p.open;
  const stagingFolder = /\.tmp-[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*-\d+-[0-9a-f]{8}$/; // not a file's temporary name (.tmp-<pid>-<hex>)
  p.open = async function stallingOpen(path, ...rest) {
    if (stagingFolder.test(String(path))) {
      fs.writeFileSync(`${stallUntil}.stalled`, String(path));
      while (!fs.existsSync(stallUntil)) await new Promise((r) => setTimeout(r, 20));
    }
    return open(path, ...rest);
  };
}
syncBuiltinESMExports(); // `import { rename } from 'node:fs/promises'` and `import { hostname } from 'node:os'` see these too
