// A merge retried by a process that has the pid of the killed merge it finds, as pid reuse gives
// it (run as `node --import tsx --import test/helpers/merge-kill-points.mjs merge-as-pid.ts OUT MODE`
// with FP4KIT_TEST_HOST set to the killed merge's host). Before merging (`--unlock`), every publish
// record of the run and the folders it names are renamed to the pid MODE gives:
//   self    this process's pid, the record's start time and boot left out (a record of fp4kit
//           before they were recorded, or a host without /proc): a restarted container, whose node
//           got the killed one's pid
//   parent  the parent's pid (a live process of this host, not a merge), the record's start time
//           and boot kept: an unrelated process that got the killed merge's pid since
// Prints the merged summary's format, or `merge failed: <message>` (exit 1).
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { mergeCheckpointParts, partsFolder } from '../../lib/checkpoint/checkpoint-parts.js';

const [out, mode] = process.argv.slice(2);
if (out === undefined || (mode !== 'self' && mode !== 'parent')) throw new Error('usage: merge-as-pid.ts OUT self|parent');
const pid = mode === 'self' ? process.pid : process.ppid;
for (const run of readdirSync(partsFolder(out))) {
  const lock = join(partsFolder(out), run, 'merging');
  for (const name of readdirSync(lock)) {
    const m = /^publish-([A-Za-z0-9]+)-(\d+)-([0-9a-f]{8})\.json$/.exec(name);
    if (m === null) continue;
    const record = JSON.parse(readFileSync(join(lock, name), 'utf8')) as Record<string, unknown>;
    const suffix = `${m[1]}-${pid}-${m[3]}`;
    for (const kind of ['tmp', 'old']) {
      try {
        renameSync(join(dirname(out), `${basename(out)}.${kind}-${m[1]}-${m[2]}-${m[3]}`), join(dirname(out), `${basename(out)}.${kind}-${suffix}`));
      } catch { /* not left by the killed merge */ }
    }
    Object.assign(record, { pid, staging: `${basename(out)}.tmp-${suffix}`, aside: `${basename(out)}.old-${suffix}` });
    if (mode === 'self') {
      delete record.started;
      delete record.boot;
    }
    writeFileSync(join(lock, `publish-${suffix}.json`), JSON.stringify(record));
    rmSync(join(lock, name));
  }
}
try {
  console.log((await mergeCheckpointParts(out, { unlock: true }))!.format);
} catch (err) {
  console.log(`merge failed: ${(err as Error).message}`);
  process.exitCode = 1;
}
