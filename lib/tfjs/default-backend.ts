// Importing fp4kit/tfjs leaves tfjs's default backend as it was. tfjs-backend-wasm, which fp4kit
// imports as the base of 'fp4kit', registers 'wasm' with priority 2 when it is first imported:
// above tfjs's cpu (1), so a program that sets no backend would get 'wasm', which initialises
// asynchronously — a model built before the first `await` would then throw ("The highest priority
// backend 'wasm' has not yet been initialized"). This module is imported before tfjs-backend-wasm:
// it notes whether the program had registered 'wasm' itself, and if not, keepDefaultBackend()
// registers the same factory again below every tfjs backend (fp4kit's own are 0 too).
import * as tf from '@tensorflow/tfjs';

const wasmRegisteredBefore = tf.findBackendFactory('wasm') !== null;

/** Called once tfjs-backend-wasm is imported: its 'wasm' goes below tfjs's own backends, unless the
 *  program imported it first (then it keeps the priority the program chose by importing it). */
export function keepDefaultBackend(): void {
  if (wasmRegisteredBefore) return;
  const factory = tf.findBackendFactory('wasm');
  if (factory === null || tf.engine().registry.wasm !== undefined) return; // made already: leave it
  tf.removeBackend('wasm');
  tf.registerBackend('wasm', factory, 0);
}
