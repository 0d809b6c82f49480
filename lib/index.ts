// fp4kit: FP4-era low-precision formats, bit-identical on native SIMD, WebAssembly and pure TS.
// This is the Node entry point: it registers the native addon and the WebAssembly module as
// backends (lib/browser.ts is the browser's, without the addon).
import './node-backends.js';

export * from './api.js';
export { quantizeAsync, type AsyncOptions } from './quantize-async.js';
export {
  quantizeCheckpoint, SUMMARY_NAME, type CheckpointOptions, type CheckpointSummary, type CheckpointProgress, type TensorSummary,
} from './checkpoint.js';
export { SafetensorsError, parseSafetensorsBytes, type TensorInfo } from './safetensors/header.js';
export { SafetensorsFile } from './safetensors/read.js';
export { SafetensorsWriter, writeSafetensors, type TensorSpec } from './safetensors/write.js';
export { openCheckpoint } from './safetensors/checkpoint-files.js';
export { layoutByName, LAYOUT_NAMES, type Layout, type LayoutName } from './layouts/index.js';
export { readBackTensor, readBackValues } from './layouts/read-back.js';
export { writeDecodedTensors } from './decoded-tensors.js';
