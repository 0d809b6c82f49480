// fp4kit in the browser: the same API as the Node entry (lib/index.ts), with the WebAssembly and
// pure-TypeScript backends only — the addon loader is never imported, so bundlers leave out
// everything Node-specific. The .wasm is fetched once by initWasm(); until then the js backend runs.
import { registerBackendLoader, setBackend } from './kernels/registry.js';
import type { Kernels } from './kernels/contract.js';
import { describe, isObjectArgument } from './core/describe.js';
import { isArrayBuffer } from './core/typed-arrays.js';
import { instantiateWasmKernels } from './kernels/wasm.js';
import type { WasmOptions } from './kernels/wasm-memory.js';
import { SIMD128_MISSING, WASM_DISALLOWED, chooseWasmBuild, simd128Works, wasmCompilationAllowed, type WasmBuildRequest } from './kernels/wasm-builds.js';

let wasm: Kernels | null = null;

registerBackendLoader('native', () => {
  throw new Error('the native addon does not run in a browser');
});
registerBackendLoader('wasm', () => {
  if (!wasm) throw new Error('call initWasm() before using the wasm backend');
  return wasm;
});

/** initWasm's options: the module memory's (WasmOptions) and which build to fetch. */
export interface InitWasmOptions extends WasmOptions {
  /** The build fetched when initWasm is given no source: 'auto' (the default) takes
   *  fp4kit-relaxed.wasm where the browser runs relaxed SIMD as specified (shipped since Chrome 114),
   *  else fp4kit.wasm (SIMD128 only); 'relaxed' or 'simd128' ask for one. Same bits either way. */
  build?: WasmBuildRequest;
}

/**
 * Load the WebAssembly module and make it the active backend. `source`: the module's bytes, or
 * a URL to fetch (default: build-wasm/fp4kit-relaxed.wasm or build-wasm/fp4kit.wasm next to this
 * package, see InitWasmOptions.build). `options.residentBytes`: how much module memory matmul
 * weights may keep between calls (default 256 MiB).
 */
export async function initWasm(source?: BufferSource | URL | string, options?: InitWasmOptions): Promise<void> {
  if (options !== undefined && !isObjectArgument(options)) throw new TypeError(`initWasm: options must be an object, got ${describe(options)}`);
  const resident = options?.residentBytes;
  if (resident !== undefined && !(typeof resident === 'number' && Number.isFinite(resident) && resident >= 0)) {
    throw new RangeError(`initWasm: options.residentBytes must be a number of bytes ≥ 0, got ${describe(resident)}`);
  }
  const build = chooseWasmBuild(options?.build, 'initWasm: options.build');
  // Before any fetch: a page that may not compile WebAssembly gets the reason, not a CompileError.
  if (!wasmCompilationAllowed()) throw new Error(`initWasm: ${WASM_DISALLOWED}`);
  if (!simd128Works()) throw new Error(`initWasm: ${SIMD128_MISSING}; the js backend stays in use`);
  let bytes: BufferSource;
  if (isArrayBuffer(source) || ArrayBuffer.isView(source)) {
    bytes = source as BufferSource; // an ArrayBuffer or a view, from any realm
  } else if (source !== undefined && typeof source !== 'string' && !(source instanceof URL)) {
    throw new TypeError(`initWasm: source must be the module's bytes (an ArrayBuffer or a view) or a URL, got ${describe(source)}`);
  } else {
    // Two literal URLs, not one template: bundlers (Vite) emit a `new URL('…', import.meta.url)` asset only for a literal path.
    const url = source ?? (build === 'relaxed'
      ? new URL('../../build-wasm/fp4kit-relaxed.wasm', import.meta.url)
      : new URL('../../build-wasm/fp4kit.wasm', import.meta.url));
    let response: Response;
    try {
      response = await fetch(url);
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      bytes = await response.arrayBuffer();
    } catch (e) {
      throw new Error(`initWasm: fetching ${String(url)} failed: ${(e as Error).message}`, { cause: e });
    }
  }
  let kernels: Kernels;
  try {
    kernels = instantiateWasmKernels(bytes, options);
  } catch (e) {
    throw new Error(`initWasm: ${(e as Error).message}`, { cause: e });
  }
  wasm = kernels;
  registerBackendLoader('wasm', () => kernels);
  setBackend('wasm');
}

export * from './core/api.js';
export type { WasmOptions } from './kernels/wasm-memory.js';
export type { WasmBuild, WasmBuildRequest } from './kernels/wasm-builds.js';
export { relaxedSimdWorks } from './kernels/wasm-builds.js';
