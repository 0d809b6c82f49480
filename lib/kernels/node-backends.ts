// Registers the backends Node can run — the native addon and the WebAssembly module — with the
// backend registry. Imported for its effect by the Node entry (lib/index.ts) and by Node-only
// modules that may be loaded on their own (lib/checkpoint/quantize-checkpoint.ts); lib/browser.ts registers its own.
import { registerBackendLoader } from './registry.js';
import { loadNativeKernels } from './native.js';
import { loadWasmKernels } from './wasm.js';

registerBackendLoader('native', loadNativeKernels);
registerBackendLoader('wasm', loadWasmKernels);
