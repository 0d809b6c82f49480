// Byte comparison of two quantized checkpoint folders (a distributed run against a single-machine
// run). Every file must exist in both with the same bytes; the only fields allowed to differ are the
// summary's `seconds` (wall-clock time), blanked before comparing, and the run a merge writes into
// it (a single run has none), dropped (docs/distributed.md).

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SUMMARY_NAME } from '../../lib/checkpoint/quantize-checkpoint.js';

function listFiles(dir: string, prefix = ''): string[] {
  return readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? listFiles(join(dir, n), `${prefix}${n}/`) : [`${prefix}${n}`])).sort();
}

/** The summary text with its `seconds` value blanked and a merge's `run` (key and data samples) dropped. */
export function comparableSummary(text: string): string {
  const blanked = text.replace(/\n {2}"seconds": [0-9.e+-]+,\n/, '\n  "seconds": "-",\n');
  if (blanked === text) throw new Error('comparableSummary: no top-level "seconds" field in the summary');
  // The run object is written right after "output" (publish.ts), two-space indented, closed at that indent.
  return blanked.replace(/\n {2}"run": \{\n[\s\S]*?\n {2}\},\n/, '\n');
}

export function compareOutputFolders(actual: string, expected: string): { differences: string[]; files: number } {
  const a = listFiles(actual);
  const e = listFiles(expected);
  const differences: string[] = [];
  for (const n of e) if (!a.includes(n)) differences.push(`${n}: missing`);
  for (const n of a) if (!e.includes(n)) differences.push(`${n}: not in the single-machine output`);
  for (const n of e.filter((x) => a.includes(x))) {
    let x: Buffer | string = readFileSync(join(actual, n));
    let y: Buffer | string = readFileSync(join(expected, n));
    if (n === SUMMARY_NAME) {
      x = comparableSummary(x.toString('utf8'));
      y = comparableSummary(y.toString('utf8'));
    }
    if (typeof x === 'string' ? x !== y : !x.equals(y as Buffer)) {
      let i = 0;
      while (i < x.length && i < y.length && x[i] === y[i]) i++;
      differences.push(`${n}: differs at byte ${i} (${x.length} vs ${y.length} bytes)`);
    }
  }
  return { differences, files: a.length };
}
