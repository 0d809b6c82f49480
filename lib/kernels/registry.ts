// Backend selection: native (C++ SIMD addon), else wasm (AssemblyScript SIMD), else js (reference).
// FP4KIT_BACKEND=native|wasm|js or setBackend() forces one; availableBackends() reports what loaded.

import { jsKernels } from './ref/index.js';
import type { BackendName, Kernels } from './contract.js';
import { describe, notOneOf } from '../core/validate.js';

export type { BackendName, Kernels } from './contract.js';

export interface BackendInfo {
  name: BackendName;
  /** SIMD level in use ('avx512', 'avx2', 'neon', 'scalar', 'simd128', 'relaxed-simd', 'none'). */
  simd: string;
  /** The block matmul kernel in use ('avx512-vnni-vbmi', 'avx512-vnni', 'avx2', 'neon-dotprod', 'neon', 'scalar', 'simd128', 'relaxed-simd'); absent without one. */
  matmulSimd?: string;
}

// Entry points register the loaders their platform can run: lib/index.ts (Node) registers native
// and wasm, lib/browser.ts only wasm, so a browser bundle never imports the addon loader.
const notRegistered = (name: string) => () => {
  throw new Error(`the ${name} backend is not part of this build`);
};
const loaders: Record<BackendName, () => Kernels | null> = {
  native: notRegistered('native'),
  wasm: notRegistered('wasm'),
  js: () => jsKernels,
};

export function registerBackendLoader(name: 'native' | 'wasm', loader: () => Kernels | null): void {
  loaders[name] = loader;
  loaded.delete(name);
  loadErrors.delete(name);
}

const loaded = new Map<BackendName, Kernels | null>();
const loadErrors = new Map<BackendName, string>();

function load(name: BackendName): Kernels | null {
  if (!loaded.has(name)) {
    try {
      loaded.set(name, loaders[name]());
    } catch (err) {
      loaded.set(name, null);
      loadErrors.set(name, err instanceof Error ? err.message : String(err));
    }
  }
  return loaded.get(name) ?? null;
}

const ORDER: BackendName[] = ['native', 'wasm', 'js'];
let current: Kernels | null = null;

function checkName(fn: string, name: unknown): asserts name is BackendName {
  if (typeof name !== 'string' || !ORDER.includes(name as BackendName)) {
    const what = typeof name === 'string' ? `'${name}'` : describe(name);
    throw notOneOf('string', name, `${fn}: unknown backend ${what}; expected 'native', 'wasm' or 'js'`);
  }
}

function use(fn: string, name: unknown): void {
  checkName(fn, name);
  const k = load(name);
  if (!k) throw new Error(`${fn}: backend '${name}' is not available: ${loadErrors.get(name) ?? 'not built'}`);
  current = k;
}

/** Force a backend. Throws if it cannot load here (the message says why). */
export function setBackend(name: BackendName): void {
  use('setBackend', name);
}

/**
 * Run `fn` with backend `name` in use, then restore the previous choice (also when `fn` throws): a
 * scoped choice for code that compares backends, instead of flipping the process-wide one. Every call
 * picks its kernels when it starts, so a quantizeAsync / matmulAsync started inside `fn` runs on `name`
 * to its end.
 */
export function withBackend<T>(name: BackendName, fn: () => T): T {
  const previous = current;
  use('withBackend', name);
  if (typeof fn !== 'function') {
    current = previous;
    throw new TypeError(`withBackend: fn must be a function, got ${describe(fn)}`);
  }
  try {
    return fn();
  } finally {
    current = previous;
  }
}

/** The backend in use, choosing one on first call. */
export function getKernels(): Kernels {
  if (current) return current;
  // `process.env?.`: some browser polyfills define a `process` without `env`.
  const forced = typeof process !== 'undefined' ? process.env?.FP4KIT_BACKEND : undefined;
  if (forced) {
    use('FP4KIT_BACKEND', forced);
    return current!;
  }
  for (const name of ORDER) {
    const k = load(name);
    if (k) return (current = k);
  }
  throw new Error('no backend loaded'); // unreachable: js always loads
}

export function getBackend(): BackendInfo {
  const k = getKernels();
  return { name: k.name, simd: k.simd, matmulSimd: k.matmul?.matmulSimd };
}

/** Every backend that loads here, with its SIMD level; `error` says why one did not. */
export function availableBackends(): Array<BackendInfo & { available: boolean; error?: string }> {
  return ORDER.map((name) => {
    const k = load(name);
    return k
      ? { name, simd: k.simd, matmulSimd: k.matmul?.matmulSimd, available: true }
      : { name, simd: 'none', available: false, error: loadErrors.get(name) ?? 'not built' };
  });
}

/** Kernels of one named backend, or null (for tests and benchmarks that run every backend). */
export function kernelsFor(name: BackendName): Kernels | null {
  checkName('kernelsFor', name);
  return load(name);
}
