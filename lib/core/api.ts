// The public API shared by both entry points (lib/index.ts for Node, lib/browser.ts for browsers).
export { quantize, dequantize, quantizedByteLengths, type QuantizeOptions, type QuantizedTensor, type DequantizeOptions } from './quantize.js';
export { encode, decode, type EncodeOptions } from './encode.js';
export { pack, unpack } from './pack.js';
export { setBackend, getBackend, availableBackends, withBackend, type BackendInfo, type BackendName } from '../kernels/registry.js';
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
export { matmul, matmulAsync, prepareWeights, PreparedWeights, type MatmulOptions, type MatmulOperand } from './matmul.js';
export { quantizeAsync, type AsyncOptions } from './quantize-async.js';
export { fgmpImpacts, fgmpBitsPerElement, type FgmpOptions, type FgmpTensor } from '../fgmp/quantize.js';
export { selectThreshold, assignPrecision, forTensor, type Selection } from '../fgmp/select.js';
export { quantizeFgmpActivations, calibrateFgmpActivations, type FgmpActivationOptions } from '../fgmp/activations.js';
export {
  quantizeGradient, dequantizeGradient,
  type QuantizeGradientOptions, type QuantizedGradient, type GradientBuffers, type DequantizeGradientOptions, type GradientGroups, type GradientPrune,
} from './quantize-gradient.js';
export {
  packSigns, packBitPlanes, packGradient, bitplaneMatmul, bitplaneMatmulInt,
  type PackedSigns, type PackedBitPlanes, type PackedGradient, type PackSignsOptions, type PackBitPlanesOptions,
  type PackGradientOptions, type BitplaneMatmulOptions, type BitplaneMatmulIntOptions,
} from './bitplane-gemm.js';
