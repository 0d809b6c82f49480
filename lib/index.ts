// fp4kit: FP4-era low-precision formats, bit-identical on native SIMD, WebAssembly and pure TS.
// This is the Node entry point: it registers the native addon and the WebAssembly module as
// backends (lib/browser.ts is the browser's, without the addon).
import { registerBackendLoader } from './backend.js';
import { loadNativeKernels } from './backends/native.js';
import { loadWasmKernels } from './backends/wasm.js';

registerBackendLoader('native', loadNativeKernels);
registerBackendLoader('wasm', loadWasmKernels);

export * from './api.js';
