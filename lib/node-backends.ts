// Registers the backends Node can run — the native addon and the WebAssembly module — with the
// backend registry. Imported for its effect by the Node entry (lib/index.ts) and by Node-only
// modules that may be loaded on their own (lib/checkpoint.ts); lib/browser.ts registers its own.
import { registerBackendLoader } from './backend.js';
import { loadNativeKernels } from './backends/native.js';
import { loadWasmKernels } from './backends/wasm.js';

registerBackendLoader('native', loadNativeKernels);
registerBackendLoader('wasm', loadWasmKernels);
