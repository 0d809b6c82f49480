// fp4kit/tfjs: fp4kit as a TensorFlow.js backend.
//
//   import * as tf from '@tensorflow/tfjs';
//   import 'fp4kit/tfjs';                      // registers 'fp4kit' (and 'fp4kit-cpu')
//   tf.env().set('FP4KIT_WEIGHTS', 'nvfp4');   // or 'mxfp4', 'mxfp8_e4m3', 'fgmp', 'none'
//   await tf.setBackend('fp4kit');
//
// docs/tfjs.md describes what runs where. This is the Node entry: fp4kit's kernels are the native
// addon (else fp4kit's WebAssembly module); browser.ts is the browser's (package.json "exports").

import { createRequire } from 'node:module';
import '../kernels/node-backends.js';
import '@tensorflow/tfjs';
import { keepDefaultBackend } from './default-backend.js'; // before tfjs-backend-wasm: see there
import { registerBackends } from './backend.js';
import { registerFlags } from './flags.js';

// 'fp4kit' is built on tfjs's wasm backend, an optional peer dependency npm does not install by
// itself: loaded here, not imported statically, so that its absence is this message rather than a
// bare module-not-found error. With require (tfjs's packages are CommonJS in Node, so this is the
// module a static import gives), not a top-level await: that would make require('fp4kit/tfjs') fail.
try {
  createRequire(import.meta.url)('@tensorflow/tfjs-backend-wasm');
} catch (err) {
  if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND' || !String((err as Error).message).includes('@tensorflow/tfjs-backend-wasm')) throw err;
  throw new Error('fp4kit/tfjs needs @tensorflow/tfjs-backend-wasm (the base of the fp4kit backend) beside @tensorflow/tfjs: npm install @tensorflow/tfjs@4.22.0 @tensorflow/tfjs-backend-wasm@4.22.0', { cause: err });
}
keepDefaultBackend();
registerFlags();
registerBackends();

export * from './api.js';
