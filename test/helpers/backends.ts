// The backends this machine can run: every shared suite is run once per backend (describe.each).
import { availableBackends, type BackendName } from '../../lib/index.js';

/** Backends to test. FP4KIT_TEST_BACKENDS=js,wasm limits the list; CI=true demands native and wasm load. */
export function testedBackends(): BackendName[] {
  const all = availableBackends();
  const wanted = process.env.FP4KIT_TEST_BACKENDS?.split(',').map((s) => s.trim());
  if (process.env.CI === 'true' || process.env.FP4KIT_REQUIRE_ALL === '1') {
    for (const b of all) if (!b.available) throw new Error(`backend ${b.name} failed to load in CI: ${b.error}`);
  }
  return all.filter((b) => b.available && (!wanted || wanted.includes(b.name))).map((b) => b.name);
}
