// Placeholder until the WebAssembly loader lands: reports the wasm backend as not built.
import type { Kernels } from './kernels.js';
export function loadWasmKernels(): Kernels | null {
  throw new Error('wasm module not built yet');
}
