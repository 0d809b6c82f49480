// fp4kit/tfjs in a browser: the same 'fp4kit' and 'fp4kit-cpu' backends as the Node entry
// (index.ts), with fp4kit's kernels on its WebAssembly module (lib/browser.ts). Nothing here or
// below imports the addon loader, fs or worker_threads. package.json's "browser" export condition
// makes `import 'fp4kit/tfjs'` resolve here in bundlers; `fp4kit/tfjs/browser` names it directly.
//
//   import * as tf from '@tensorflow/tfjs';
//   import { setWasmPaths } from 'fp4kit/tfjs/browser';
//   setWasmPaths('/wasm/');        // serves fp4kit*.wasm and tfjs-backend-wasm*.wasm (optional, below)
//   await tf.setBackend('fp4kit');
//
// Two WebAssembly modules load when a backend is first made: tfjs-backend-wasm's (located by
// tfjs's own setWasmPaths state) and fp4kit's (initWasm of lib/browser.ts). setWasmPaths below
// sets both; without it, tfjs looks next to the page and fp4kit next to its own dist/ files.

import '@tensorflow/tfjs';
import { keepDefaultBackend } from './default-backend.js'; // before tfjs-backend-wasm: see there
// Also registers tfjs's 'wasm' backend, the base of 'fp4kit' (the package has side effects).
import { setWasmPaths as setTfjsWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { initWasm } from '../browser.js';
import { describe, isObjectArgument } from '../core/describe.js';
import { isArrayBuffer } from '../core/typed-arrays.js';
import { kernelsFor } from '../kernels/registry.js';
import { chooseWasmBuild, simd128Works, WASM_BUILD_FILES, wasmCompilationAllowed } from '../kernels/wasm-builds.js';
import { FP4KIT_BACKEND, registerBackends } from './backend.js';
import { registerFlags } from './flags.js';

/** Where the two WebAssembly modules are. */
export interface WasmPaths {
  /**
   * tfjs-backend-wasm's binaries, given to its setWasmPaths: a folder URL ending in '/' holding
   * tfjs-backend-wasm.wasm, tfjs-backend-wasm-simd.wasm and tfjs-backend-wasm-threaded-simd.wasm,
   * or a map from each of those three names to its URL.
   */
  tfjs?: string | Record<string, string>;
  /** fp4kit's module (build-wasm/fp4kit-relaxed.wasm or fp4kit.wasm in the package, see
   *  lib/kernels/wasm-builds.ts): its URL, or its bytes. */
  fp4kit?: string | URL | BufferSource;
}

/** The module initWasm() gets; undefined: its default, the build this browser runs
 *  (fp4kit-relaxed.wasm or fp4kit.wasm) in build-wasm/ next to fp4kit's dist/. */
let fp4kitSource: string | URL | BufferSource | undefined;
let loading: Promise<void> | undefined;

function checkPaths(paths: unknown): WasmPaths {
  if (typeof paths === 'string') return { tfjs: paths, fp4kit: paths + WASM_BUILD_FILES[chooseWasmBuild('auto', 'setWasmPaths')] };
  if (!isObjectArgument(paths) || isArrayBuffer(paths)) {
    throw new TypeError(`setWasmPaths: paths must be a folder URL (a string) or { tfjs?, fp4kit? }, got ${describe(paths)}`);
  }
  for (const key of Object.keys(paths)) {
    if (key !== 'tfjs' && key !== 'fp4kit') throw new RangeError(`setWasmPaths: unknown key '${key}' in paths; expected 'tfjs' and/or 'fp4kit'`);
  }
  const { tfjs, fp4kit } = paths as Record<string, unknown>;
  if (tfjs !== undefined && typeof tfjs !== 'string' && !isObjectArgument(tfjs)) {
    throw new TypeError(`setWasmPaths: paths.tfjs must be a folder URL (a string) or a map of file names to URLs, got ${describe(tfjs)}`);
  }
  if (fp4kit !== undefined && typeof fp4kit !== 'string' && !(fp4kit instanceof URL) && !ArrayBuffer.isView(fp4kit) && !isArrayBuffer(fp4kit)) {
    throw new TypeError(`setWasmPaths: paths.fp4kit must be a URL (a string or URL) or the module's bytes, got ${describe(fp4kit)}`);
  }
  return { tfjs: tfjs as WasmPaths['tfjs'], fp4kit: fp4kit as WasmPaths['fp4kit'] };
}

/**
 * Where the backends' WebAssembly modules are served. A string is one folder (ending in '/')
 * holding fp4kit.wasm, fp4kit-relaxed.wasm (fetched instead where the browser runs relaxed SIMD)
 * and tfjs-backend-wasm's three binaries; an object sets either separately.
 * Call it before the first `tf.setBackend('fp4kit')` (or 'fp4kit-cpu'), as tfjs's own.
 */
export function setWasmPaths(paths: string | WasmPaths): void {
  const { tfjs, fp4kit } = checkPaths(paths);
  if (fp4kit !== undefined && loading !== undefined) {
    throw new Error("setWasmPaths: fp4kit's WebAssembly module is already loaded or loading; call setWasmPaths before tf.setBackend('fp4kit')");
  }
  if (tfjs !== undefined) setTfjsWasmPaths(tfjs);
  if (fp4kit !== undefined) fp4kitSource = fp4kit;
}

/** fp4kit's WebAssembly kernels, loaded once (unless the page already called initWasm itself). */
function fp4kitWasm(): Promise<void> {
  if (loading === undefined) {
    loading = kernelsFor('wasm') !== null ? Promise.resolve() : initWasm(fp4kitSource);
    // A failed load may be retried (after a fix of the path, or the server).
    loading.catch(() => {
      loading = undefined;
    });
  }
  return loading;
}

async function kernelsReady(backendName: string): Promise<void> {
  try {
    await fp4kitWasm();
  } catch (err) {
    const from = fp4kitSource === undefined ? "its default URL (build-wasm/ beside fp4kit's dist/)"
      : typeof fp4kitSource === 'string' || fp4kitSource instanceof URL ? String(fp4kitSource) : 'the bytes given to setWasmPaths';
    const message = err instanceof Error ? err.message : String(err);
    // An engine without SIMD128 or a page that may not compile WebAssembly: no path would help.
    const why = !simd128Works() || !wasmCompilationAllowed()
      ? `this browser cannot run fp4kit's WebAssembly (${message})`
      : `fp4kit's WebAssembly module did not load from ${from} (${message}); serve build-wasm/fp4kit.wasm and fp4kit-relaxed.wasm and say where with setWasmPaths() from fp4kit/tfjs/browser`;
    // 'fp4kit-cpu' is for where WebAssembly does not run: it goes on with fp4kit's pure-TypeScript
    // kernels (the same bytes, slower). 'fp4kit' needs WebAssembly for its base anyway.
    if (backendName === FP4KIT_BACKEND) throw new Error(`fp4kit tfjs backend: ${why}`);
    console.warn(`fp4kit tfjs backend '${backendName}': ${why}; running fp4kit's pure-TypeScript kernels`);
  }
}

keepDefaultBackend();
registerFlags();
registerBackends(kernelsReady);

export * from './api.js';
