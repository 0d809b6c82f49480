// The benchmarks are typechecked: they run under tsx, which strips types without checking them,
// and the root tsconfig covers lib/ only, so type errors in bench/ (and in the experiments/ files
// a benchmark imports) went unseen. bench/tsconfig.json extends the root one over bench/.
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { expect, it } from 'vitest';

const root = resolve(__dirname, '..');

it('bench/ typechecks with the package\'s compiler options (tsc -p bench: no errors)', () => {
  const r = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'bench')], {
    cwd: root, encoding: 'utf8', timeout: 110_000,
  });
  expect(r.error).toBeUndefined();
  // tsc prints its errors on stdout, one "file(line,col): error TSnnnn: …" each.
  expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
  expect(r.status).toBe(0);
});
