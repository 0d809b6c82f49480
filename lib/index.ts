// fp4kit: FP4-era low-precision formats, bit-identical on native SIMD, WebAssembly and pure TS.
// This is the Node entry point: it registers the native addon and the WebAssembly module as
// backends (lib/browser.ts is the browser's, without the addon).
import { registerBackendLoader } from './backend.js';
import { loadNativeKernels } from './backends/native.js';
import { loadWasmKernels } from './backends/wasm.js';

registerBackendLoader('native', loadNativeKernels);
registerBackendLoader('wasm', loadWasmKernels);


export { quantize, dequantize, type QuantizeOptions, type QuantizedTensor, type DequantizeOptions } from './quantize.js';
export { encode, decode, type EncodeOptions } from './encode.js';
export { pack, unpack } from './pack.js';
export { setBackend, getBackend, availableBackends, type BackendInfo, type BackendName } from './backend.js';
export {
  BLOCK_FORMATS,
  ELEMENT_FORMATS,
  bitsPerElement,
  type BlockFormatName,
  type ElementFormatName,
  type DtypeName,
  type RoundingName,
  type ScaleRuleName,
} from './formats.js';
export { matmul, matmulAsync, type MatmulOptions, type MatmulOperand } from './matmul.js';
export { fgmpImpacts, fgmpBitsPerElement, type FgmpOptions, type FgmpTensor } from './fgmp/quantize.js';
export { selectThreshold, assignPrecision, type Selection } from './fgmp/select.js';
export { quantizeFgmpActivations, calibrateFgmpActivations, type FgmpActivationOptions } from './fgmp/activations.js';
