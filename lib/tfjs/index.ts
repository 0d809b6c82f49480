// fp4kit/tfjs: fp4kit as a TensorFlow.js backend.
//
//   import * as tf from '@tensorflow/tfjs';
//   import 'fp4kit/tfjs';                      // registers 'fp4kit' (and 'fp4kit-cpu')
//   tf.env().set('FP4KIT_WEIGHTS', 'nvfp4');   // or 'mxfp4', 'mxfp8_e4m3', 'fgmp', 'none'
//   await tf.setBackend('fp4kit');
//
// docs/tfjs.md describes what runs where.

import '../kernels/node-backends.js';
import '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerBackends } from './backend.js';
import { registerFlags } from './flags.js';

registerFlags();
registerBackends();

export { FP4KIT_BACKEND, FP4KIT_CPU_BACKEND } from './backend.js';
export { WEIGHT_MODES, WEIGHTS_FLAG, WEIGHT_TENSORS_FLAG, type WeightMode, type WeightTensors } from './flags.js';
export { readCounters, resetCounters, type Fp4kitTfjsCounters } from './counters.js';
export { weightCacheOf } from './kernel-context.js';
