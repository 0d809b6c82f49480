// The backends this machine can run: every shared suite is run once per backend (describe.each).
import { afterAll, beforeAll } from 'vitest';
import { availableBackends, getBackend, setBackend, type BackendName } from '../../lib/index.js';

/** Backends to test. FP4KIT_TEST_BACKENDS=js,wasm limits the list; CI=true demands native and wasm load. */
export function testedBackends(): BackendName[] {
  const all = availableBackends();
  const wanted = process.env.FP4KIT_TEST_BACKENDS?.split(',').map((s) => s.trim());
  if (process.env.CI === 'true' || process.env.FP4KIT_REQUIRE_ALL === '1') {
    for (const b of all) if (!b.available) throw new Error(`backend ${b.name} failed to load in CI: ${b.error}`);
  }
  return all.filter((b) => b.available && (!wanted || wanted.includes(b.name))).map((b) => b.name);
}

/**
 * Runs the enclosing describe block on `backend`: selected before its first test, and the backend
 * that was in use before restored after its last, so no block leaves its choice to the next.
 */
export function useBackend(backend: BackendName): void {
  let previous: BackendName | undefined;
  beforeAll(() => {
    previous = getBackend().name;
    setBackend(backend);
  });
  afterAll(() => {
    if (previous) setBackend(previous);
  });
}
