// fp4kit/tfjs: fp4kit as a TensorFlow.js backend.
//
//   import * as tf from '@tensorflow/tfjs';
//   import 'fp4kit/tfjs';                      // registers 'fp4kit' (and 'fp4kit-cpu')
//   tf.env().set('FP4KIT_WEIGHTS', 'nvfp4');   // or 'mxfp4', 'mxfp8_e4m3', 'fgmp', 'none'
//   await tf.setBackend('fp4kit');
//
// docs/tfjs.md describes what runs where. This is the Node entry: fp4kit's kernels are the native
// addon (else fp4kit's WebAssembly module); browser.ts is the browser's (package.json "exports").

import '../kernels/node-backends.js';
import '@tensorflow/tfjs';
import { keepDefaultBackend } from './default-backend.js'; // before tfjs-backend-wasm: see there
import '@tensorflow/tfjs-backend-wasm';
import { registerBackends } from './backend.js';
import { registerFlags } from './flags.js';

keepDefaultBackend();
registerFlags();
registerBackends();

export * from './api.js';
