// fp4kit in the browser: the same API as the Node entry (lib/index.ts), with the WebAssembly and
// pure-TypeScript backends only — the addon loader is never imported, so bundlers leave out
// everything Node-specific. The .wasm is fetched once by initWasm(); until then the js backend runs.
import { registerBackendLoader, setBackend } from './kernels/registry.js';
import type { Kernels } from './kernels/contract.js';
import { describe } from './core/describe.js';
import { isArrayBuffer } from './core/typed-arrays.js';
import { instantiateWasmKernels } from './kernels/wasm.js';
import type { WasmOptions } from './kernels/wasm-memory.js';

let wasm: Kernels | null = null;

registerBackendLoader('native', () => {
  throw new Error('the native addon does not run in a browser');
});
registerBackendLoader('wasm', () => {
  if (!wasm) throw new Error('call initWasm() before using the wasm backend');
  return wasm;
});

/**
 * Load the WebAssembly module and make it the active backend. `source`: the module's bytes, or
 * a URL to fetch (default: build-wasm/fp4kit.wasm next to this package). `options.residentBytes`:
 * how much module memory matmul weights may keep between calls (default 256 MiB).
 */
export async function initWasm(source?: BufferSource | URL | string, options?: WasmOptions): Promise<void> {
  let bytes: BufferSource;
  if (isArrayBuffer(source) || ArrayBuffer.isView(source)) {
    bytes = source as BufferSource; // an ArrayBuffer or a view, from any realm
  } else if (source !== undefined && typeof source !== 'string' && !(source instanceof URL)) {
    throw new TypeError(`initWasm: source must be the module's bytes (an ArrayBuffer or a view) or a URL, got ${describe(source)}`);
  } else {
    const url = source ?? new URL('../../build-wasm/fp4kit.wasm', import.meta.url);
    const response = await fetch(url);
    if (!response.ok) throw new Error(`initWasm: fetching ${String(url)} failed with HTTP ${response.status}`);
    bytes = await response.arrayBuffer();
  }
  if (options !== undefined && (typeof options !== 'object' || options === null)) throw new TypeError(`initWasm: options must be an object, got ${describe(options)}`);
  const resident = options?.residentBytes;
  if (resident !== undefined && !(typeof resident === 'number' && Number.isFinite(resident) && resident >= 0)) {
    throw new RangeError(`initWasm: options.residentBytes must be a number of bytes ≥ 0, got ${describe(resident)}`);
  }
  const kernels = instantiateWasmKernels(bytes, options);
  wasm = kernels;
  registerBackendLoader('wasm', () => kernels);
  setBackend('wasm');
}

export * from './core/api.js';
export type { WasmOptions } from './kernels/wasm-memory.js';
