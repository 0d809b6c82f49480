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
import { dirname } from 'node:path';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

export interface SpecEnv {
  name: string;
  backendName: string;
  flags: Record<string, string | number | boolean>;
  isDataSync?: boolean;
}

const require = createRequire(import.meta.url);
const coreDist = require.resolve('@tensorflow/tfjs-core/package.json').replace(/package\.json$/, 'dist/');

type Constraints = { flags?: Record<string, unknown>; predicate?: (env: SpecEnv) => boolean } | null | undefined;

function satisfies(testEnv: SpecEnv, constraints: Constraints): boolean {
  if (constraints == null) return true;
  if (constraints.flags != null) for (const [name, value] of Object.entries(constraints.flags)) if (tf.env().get(name) !== value) return false;
  if (constraints.predicate != null && !constraints.predicate(testEnv)) return false;
  return true;
}

function jasmineUtil(testEnv: SpecEnv) {
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
          engine.endScope();
          engine.disposeVariables();
        });
        afterAll(() => engine.reset());
        tests(testEnv);
      });
    },
  };
}

/** The spec file's code with its imports replaced by bindings to `deps`. */
function specSource(relativePath: string): string {
  const text = readFileSync(coreDist + relativePath, 'utf8');
  return text.replace(/^import \* as (\w+) from '[./]+index';$/m, 'const $1 = deps.tf;')
    .replace(/^import \{([^}]*)\} from '[./]+jasmine_util';$/m, 'const {$1} = deps.jasmineUtil;')
    .replace(/^import \{([^}]*)\} from '[./]+test_util';$/m, 'const {$1} = deps.tf.test_util;')
    .replace(/^import \{([^}]*)\} from '\.\/reduce_util';$/m, 'const {$1} = deps.tf.backend_util;')
    .replace(/^import \{([^}]*)\} from '\.\/ops';$/m, 'const {$1} = deps.tf;')
    // A helper spec module beside it (max_pool_test's identity_pool_test): its code, inlined.
    .replace(/^import \{([^}]*)\} from '\.\/(\w+_test)';$/m,
      (_, names: string, helper: string) => `const {${names}} = (() => {\n${specSource(`${dirname(relativePath)}/${helper}.js`)}\nreturn {${names}};\n})();`)
    .replace(/^export (const|function) /gm, '$1 ');
}

/**
 * Registers the specs of one tfjs-core spec file (path under dist/, e.g. 'ops/mat_mul_test.js').
 * Specs whose name matches `expectedToFail` are registered with it.fails: they must fail (for
 * features the base backend itself lacks), and the run fails if one of them passes.
 */
export function runTfjsCoreSpecs(relativePath: string, testEnv: SpecEnv, expectedToFail?: RegExp): void {
  const source = specSource(relativePath);
  if (/^\s*(import|export) /m.test(source)) throw new Error(`${relativePath}: an import or export was not bound`);
  const deps = { tf, jasmineUtil: jasmineUtil(testEnv) };
  const specIt = (name: string, fn: () => unknown, timeout?: number) => (expectedToFail?.test(name) ? it.fails : it)(name, fn as () => Promise<void>, timeout);
  new Function('deps', 'describe', 'it', 'expect', 'beforeAll', 'beforeEach', 'afterEach', 'afterAll', source)(
    deps, describe, specIt, expect, beforeAll, beforeEach, afterEach, afterAll);
}
