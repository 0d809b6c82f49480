// What fp4kit/tfjs exports, the same from its Node entry (index.ts) and its browser entry (browser.ts).
export { FP4KIT_BACKEND, FP4KIT_CPU_BACKEND } from './backend.js';
export { WEIGHT_MODES, WEIGHTS_FLAG, WEIGHT_TENSORS_FLAG, type WeightMode, type WeightTensors } from './flags.js';
export { readCounters, resetCounters, type Fp4kitTfjsCounters } from './counters.js';
export { weightCacheOf } from './kernel-context.js';
export {
  layers, BinaryDense, BinaryConv2D, Fp4Dense, type BinaryDenseArgs, type BinaryConv2dArgs, type BinaryLayerOptions, type Fp4DenseArgs, type Fp4LayerOptions,
} from './layers/index.js';
