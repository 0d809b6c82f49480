// fp4kit: FP4-era low-precision formats, bit-identical on native SIMD, WebAssembly and pure TS.
// This is the Node entry point: it registers the native addon and the WebAssembly module as
// backends (lib/browser.ts is the browser's, without the addon).
import './kernels/node-backends.js';

export * from './core/api.js';
export {
  quantizeCheckpoint, SUMMARY_NAME, type CheckpointOptions, type CheckpointSummary, type CheckpointProgress, type TensorSummary,
} from './checkpoint/quantize-checkpoint.js';
export { SafetensorsError, parseSafetensorsBytes, type TensorInfo } from './checkpoint/safetensors/header.js';
export { SafetensorsFile } from './checkpoint/safetensors/read.js';
export { SafetensorsWriter, writeSafetensors, type TensorSpec } from './checkpoint/safetensors/write.js';
export { openCheckpoint } from './checkpoint/safetensors/checkpoint-files.js';
export { layoutByName, LAYOUT_NAMES, type Layout, type LayoutName } from './checkpoint/layouts/index.js';
export { readBackTensor, readBackValues } from './checkpoint/layouts/index.js';
export { writeDecodedTensors } from './checkpoint/decoded-tensors.js';
