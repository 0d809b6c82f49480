// Runs TensorFlow.js's own kernel specs (the compiled jasmine specs that @tensorflow/tfjs-core ships
// in dist/, e.g. dist/ops/mat_mul_test.js) under vitest on a chosen backend. Each spec file is read
// as text, its three imports are bound to the tfjs instance of this process (tfjs keeps its engine
// and registries global, so it is the same engine), and its body runs as it is: the same `it`s,
// inputs, expected values and tolerances as in tfjs's own CI.
//
// describeWithFlags is tfjs's (jasmine_util.ts executeTests) re-expressed with vitest hooks: reset
// the engine, set the flags and IS_TEST (tfjs's per-kernel leak check), set the backend, and a
// scope around each test.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

/** tfjs-core's spec files for the kernels fp4kit implements (paths under @tensorflow/tfjs-core/dist/). */
export const OWN_KERNEL_SPEC_FILES = [
  'ops/mat_mul_test.js', // BatchMatMul (matMul, dot, batched, broadcast, transposes, gradients)
  'ops/fused/fused_mat_mul_test.js', // _FusedMatMul (bias shapes, activations, gradients)
  'ops/conv2d_test.js', // Conv2D, and its gradients (Conv2DBackpropInput/Filter)
  'ops/fused/fused_conv2d_test.js', // FusedConv2D
  'ops/conv2d_transpose_test.js', // Conv2DBackpropInput
  'ops/depthwise_conv2d_test.js', // DepthwiseConv2dNative's gradients (filled on the wasm base, faster on cpu)
  'ops/conv2d_separable_test.js', // separableConv2d, whose gradients take the depthwise ones
  'ops/unsorted_segment_sum_test.js', // UnsortedSegmentSum (filled on the wasm base)
  'ops/einsum_test.js', // Einsum (filled on the wasm base)
  'ops/max_pool_test.js', // MaxPool's gradient (MaxPoolGrad: the wasm base's is wrong for negative maxima)
  'ops/image/resize_nearest_neighbor_test.js', // its gradient (ResizeNearestNeighborGrad: both bases' are wrong somewhere)
  'ops/image/transform_test.js', // Transform (cpu's computes batch 0 only; the wasm base's 'reflect' differs)
  'ops/clone_test.js', // Identity (shares data on the wasm base)
  'ops/transpose_test.js', // Transpose (shares data for the identity permutation)
  'ops/split_test.js', // SplitV (pieces of a weight are recorded as such)
  'ops/slice_test.js', // Slice (likewise)
  'ops/sum_test.js', // Sum (leading axes summed without a transpose on the wasm base)
  'ops/arithmetic_test.js', // Pow (by a scalar 2 or 3 on the wasm base), beside the arithmetic it shares with the base
  'ops/slice2d_test.js', // Slice's bounds check (the wasm base accepts a slice out of bounds)
  'ops/clip_by_value_test.js', // ClipByValue (NaN passes through on the wasm base)
  'ops/abs_test.js', // ComplexAbs (filled on the wasm base), beside Abs
  'ops/complex_ops_test.js', // Complex, Real, Imag (on the wasm base through the cpu backend: cpu-fallback.ts)
  'ops/spectral/fft_test.js', // FFT (likewise)
  'ops/tanh_test.js', // Tanh (natively on the wasm base, with the base's tanhf bits)
  'tensor_test.js', // Cast (a cast to the same dtype shares data on the wasm base), beside the rest of tf.Tensor
];

export interface SpecEnv {
  name: string;
  backendName: string;
  flags: Record<string, string | number | boolean>;
  isDataSync?: boolean;
}

const require = createRequire(import.meta.url);
const coreDist = require.resolve('@tensorflow/tfjs-core/package.json').replace(/package\.json$/, 'dist/');
/** Packages as tfjs-core resolves them (its helpers' dependencies). */
const coreRequire = createRequire(coreDist);

type Constraints = { flags?: Record<string, unknown>; predicate?: (env: SpecEnv) => boolean } | null | undefined;

function satisfies(testEnv: SpecEnv, constraints: Constraints): boolean {
  if (constraints == null) return true;
  if (constraints.flags != null) for (const [name, value] of Object.entries(constraints.flags)) if (tf.env().get(name) !== value) return false;
  if (constraints.predicate != null && !constraints.predicate(testEnv)) return false;
  return true;
}

/** tfjs's jasmine_util for one backend; `path` is the spec names' describe stack (describeWithFlags' name is
 *  entered without the backend and flags its vitest title carries). */
function jasmineUtil(testEnv: SpecEnv, path: string[]) {
  const engine = tf.engine() as unknown as { reset(): void; setBackend(name: string): Promise<boolean>; startScope(): void; endScope(): void; disposeVariables(): void };
  return {
    ALL_ENVS: {},
    NODE_ENVS: { predicate: () => tf.env().platformName === 'node' },
    BROWSER_ENVS: { predicate: () => tf.env().platformName === 'browser' },
    SYNC_BACKEND_ENVS: { predicate: (e: SpecEnv) => e.isDataSync === true },
    describeWithFlags(name: string, constraints: Constraints, tests: (env: SpecEnv) => void) {
      tf.env().setFlags(testEnv.flags);
      tf.env().set('IS_TEST', true);
      if (!satisfies(testEnv, constraints)) return;
      describe(`${name} ${testEnv.name} ${JSON.stringify(testEnv.flags)}`, () => {
        beforeAll(async () => {
          engine.reset();
          tf.env().setFlags(testEnv.flags);
          tf.env().set('IS_TEST', true);
          if (!(await engine.setBackend(testEnv.backendName))) throw new Error(`backend ${testEnv.backendName} did not initialise`);
        });
        beforeEach(() => engine.startScope());
        afterEach(() => {
          vi.restoreAllMocks();  // jasmine removes a spec's spies after it
          engine.endScope();
          engine.disposeVariables();
        });
        afterAll(() => engine.reset());
        path.push(name);
        try { tests(testEnv); } finally { path.pop(); }
      });
    },
  };
}

/** Module names whose exports tfjs re-exports under a namespace of its public API. */
const NAMESPACE_OF: Record<string, (t: typeof tf) => unknown> = {
  index: (t) => t,
  '..': (t) => t,
  util: (t) => t.util,
  test_util: (t) => t.test_util,
};

/** The tfjs namespaces a named import is looked up in (ENGINE is the engine, `tf.engine()`). */
function publicBinding(name: string): unknown {
  if (name === 'ENGINE') return tf.engine();
  for (const ns of [tf, tf.util, tf.backend_util, tf.test_util, tf.slice_util] as Array<Record<string, unknown>>) if (name in ns) return ns[name];
  return undefined;
}

/** A module's names as `const` bindings: `names` is an import list (`a, b as c`). */
function bindNames(names: string, valueOf: (imported: string) => string): string {
  return names.split(',').map((n) => n.trim()).filter(Boolean).map((n) => {
    const [imported, local] = n.split(/\s+as\s+/);
    return `const ${local ?? imported} = ${valueOf(imported)};`;
  }).join('\n');
}

/**
 * The code of the module at `relativePath` (under dist/) with its imports bound: jasmine_util to
 * this harness, names tfjs's public API exports (ops, classes, util, backend_util, test_util, the
 * engine) to them — the same instances the backend runs with — and a module whose names it does not
 * export (a spec's helper: identity_pool_test, rand_util, image_test_util, …) inlined, its own imports
 * bound the same way; an npm package (seedrandom) from tfjs-core's own dependencies.
 */
function moduleSource(relativePath: string): string {
  const dir = dirname(relativePath);
  const inline = (module: string, names: string) =>
    `const {${names}} = (() => {\n${moduleSource(join(dir, `${module}.js`))}\nreturn {${names.replace(/\s+as\s+\w+/g, '')}};\n})();`;
  return readFileSync(coreDist + relativePath, 'utf8')
    .replace(/^import \{([^}]*)\} from '[./]+jasmine_util';$/m, 'const {$1} = deps.jasmineUtil;')
    .replace(/^import \* as (\w+) from '([^.][^']*)';$/gm, (_, local: string, pkg: string) => `const ${local} = deps.require(${JSON.stringify(pkg)});`)
    .replace(/^import \* as (\w+) from '([./]*)([\w.]*)';$/gm, (_, local: string, dots: string, module: string) => {
      const key = module === '' ? '..' : module;
      if (key in NAMESPACE_OF) return `const ${local} = deps.namespace(${JSON.stringify(key)});`;
      // A util module (reduce_util, conv_util, …): its functions as backend_util and util export them.
      return `const ${local} = new Proxy({}, { get: (_, name) => deps.binding(name) });`;
    })
    .replace(/^import \{([^}]*)\} from '(\.[./\w]*)';$/gm, (_, names: string, module: string) => {
      const imported = names.split(',').map((n) => n.trim().split(/\s+as\s+/)[0]).filter(Boolean);
      if (imported.every((n) => publicBinding(n) !== undefined)) return bindNames(names, (n) => `deps.binding(${JSON.stringify(n)})`);
      return inline(module, names);
    })
    .replace(/^export (const|function|class) /gm, '$1 ');
}

/** jasmine's globals that a few specs use: expectAsync(p).toBeRejectedWithError, spyOn, the timeout. */
const jasmineGlobals = {
  jasmine: { DEFAULT_TIMEOUT_INTERVAL: 5000 },
  // jasmine's spyOn stubs the method (it returns undefined) unless told otherwise.
  spyOn: (object: Record<string, (...args: unknown[]) => unknown>, method: string) => {
    const spy = vi.spyOn(object, method).mockImplementation(() => undefined);
    return { and: { callFake: (fake: (...args: unknown[]) => unknown) => spy.mockImplementation(fake), returnValue: (value: unknown) => spy.mockReturnValue(value) } };
  },
  expectAsync: (promise: Promise<unknown>) => ({
    async toBeRejectedWithError(message?: string | RegExp) {
      if (message === undefined) await expect(promise).rejects.toThrow();
      else await expect(promise).rejects.toThrow(message);
    },
  }),
};

/** A jasmine spec that takes a `done` callback (done(), done.fail(error)) as a function returning a promise. */
function withDoneCallback(fn: (done?: unknown) => unknown): () => unknown {
  if (fn.length === 0) return fn;
  return () => new Promise<void>((resolve, reject) => {
    const done = Object.assign(() => resolve(), { fail: (error: unknown) => reject(error instanceof Error ? error : new Error(String(error))) });
    Promise.resolve(fn(done)).catch(reject);
  });
}

/** A spec's name as the expected-failure lists spell it: spec file, its describe blocks, its `it`. */
export type SpecName = string;

/**
 * Registers the specs of one tfjs-core spec file (path under dist/, e.g. 'ops/mat_mul_test.js').
 * Specs that `expectedToFail` names (a RegExp tested against the `it`'s title, or a set of full
 * spec names: `file > describe > … > it`, the backend's name left out of describeWithFlags' title)
 * are registered with it.fails: they must fail (for features the base backend itself lacks), and the
 * run fails if one of them passes.
 */
export function runTfjsCoreSpecs(relativePath: string, testEnv: SpecEnv, expectedToFail?: RegExp | ReadonlySet<SpecName>): void {
  const source = moduleSource(relativePath);
  if (/^\s*(import|export) /m.test(source)) throw new Error(`${relativePath}: an import or export was not bound`);
  const path: string[] = [relativePath];
  const jasmine = jasmineUtil(testEnv, path);
  const deps = { tf, jasmineUtil: jasmine, namespace: (key: string) => NAMESPACE_OF[key](tf), binding: publicBinding, require: coreRequire };
  const fails = (name: string) =>
    expectedToFail instanceof RegExp ? expectedToFail.test(name) : expectedToFail?.has([...path, name].join(' > ')) ?? false;
  const specIt = (name: string, fn: (done?: unknown) => unknown, timeout?: number) =>
    (fails(name) ? it.fails : it)(name, withDoneCallback(fn), timeout);
  const specDescribe = (name: string, body: () => void) => describe(name, () => {
    path.push(name);
    try { body(); } finally { path.pop(); }
  });
  new Function('deps', 'describe', 'it', 'expect', 'beforeAll', 'beforeEach', 'afterEach', 'afterAll', 'jasmine', 'expectAsync', 'spyOn', source)(
    deps, specDescribe, specIt, expect, beforeAll, beforeEach, afterEach, afterAll, jasmineGlobals.jasmine, jasmineGlobals.expectAsync, jasmineGlobals.spyOn);
}
