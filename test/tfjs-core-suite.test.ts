// TensorFlow.js's whole kernel spec suite (every spec file of @tensorflow/tfjs-core 4.22's ops/ and
// optimizers/, and its gradient, tensor and variable specs: ~2900 specs) on fp4kit's two tfjs
// backends, as tfjs's own CI runs it on each of its backends. fp4kit replaces some kernels and
// shares every other with its base (tfjs's wasm or cpu backend), so a spec may fail on fp4kit only
// where it fails on the stock base backend too: those are listed, with the base's own failure, in
// test/fixtures/tfjs-core-spec-failures.json, written by scripts/tfjs-core-spec-failures.ts (which
// runs the suite on the stock backends as well and refuses a list with a spec that passes there).
// A listed spec runs as it.fails, so one that starts to pass (a kernel filled) fails this run until
// the list is regenerated.
//
// The kernels fp4kit implements itself (OWN_KERNEL_SPEC_FILES) have no listed failure at all.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { FP4KIT_BACKEND, FP4KIT_CPU_BACKEND } from '../lib/tfjs/index.js';
import { OWN_KERNEL_SPEC_FILES, runTfjsCoreSpecs, type SpecName } from './helpers/tfjs-core-specs.js';

const require = createRequire(import.meta.url);
const coreDist = require.resolve('@tensorflow/tfjs-core/package.json').replace(/package\.json$/, 'dist/');

function specFilesUnder(dir: string): string[] {
  return readdirSync(coreDist + dir).sort().flatMap((f) =>
    statSync(coreDist + dir + f).isDirectory() ? specFilesUnder(`${dir}${f}/`) : f.endsWith('_test.js') ? [dir + f] : []);
}

/** Spec files left out, and why. */
const LEFT_OUT: Record<string, string> = {
  'ops/draw_test.js': 'BROWSER_ENVS only (a canvas)',
  'ops/image/rotate_with_offset_test.js': 'BROWSER_ENVS only',
  'ops/identity_pool_test.js': 'no specs of its own: a helper that max_pool_test and avg_pool_test import (inlined there)',
};

const ALL_SUITE_FILES = [...specFilesUnder('ops/'), ...specFilesUnder('optimizers/'), 'gradients_test.js', 'tensor_test.js', 'variable_test.js']
  .filter((f) => !(f in LEFT_OUT));
/** FP4KIT_SPEC_SUITE_FILES=<substring>: only the spec files whose path holds it (debugging one file). */
const SUITE_FILES = ALL_SUITE_FILES.filter((f) => f.includes(process.env.FP4KIT_SPEC_SUITE_FILES ?? ''));

type FailureList = Record<string, Record<SpecName, string>>;
const FAILURES: FailureList = JSON.parse(readFileSync(new URL('./fixtures/tfjs-core-spec-failures.json', import.meta.url), 'utf8')).failures;

/** Record mode (the generator): these backends, no expected failures. */
const RECORD = process.env.FP4KIT_SPEC_SUITE_RECORD === '1';
const BACKENDS = RECORD ? (process.env.FP4KIT_SPEC_SUITE_BACKENDS ?? '').split(',').filter(Boolean) : [FP4KIT_BACKEND, FP4KIT_CPU_BACKEND];

describe('the expected-failure list', () => {
  it('names only specs of the suite, and none of fp4kit\'s own kernels\'', () => {
    for (const [backend, specs] of Object.entries(FAILURES)) {
      expect([FP4KIT_BACKEND, FP4KIT_CPU_BACKEND]).toContain(backend);
      for (const name of Object.keys(specs)) {
        const file = name.split(' > ')[0];
        expect(ALL_SUITE_FILES, name).toContain(file);
        expect(OWN_KERNEL_SPEC_FILES, name).not.toContain(file);
      }
    }
  });
});

describe.each(BACKENDS)('tfjs-core spec suite on %s', (backendName) => {
  const expected = new Set(RECORD ? [] : Object.keys(FAILURES[backendName] ?? {}));
  for (const file of SUITE_FILES) {
    describe(file, () => {
      try {
        runTfjsCoreSpecs(file, { name: backendName, backendName, flags: {}, isDataSync: true }, expected);
      } catch (error) {
        (expected.has(`${file} > loads`) ? it.fails : it)('loads', () => { throw error; });  // an import the harness could not bind
      }
    });
  }
});
