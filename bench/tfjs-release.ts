// Freeing a TensorFlow.js backend's instance (its wasm heap) between benchmark runs without
// unregistering it: tf.setBackend makes a fresh instance when the name is used again.
import * as tf from '@tensorflow/tfjs';

export function releaseBackend(name: string): void {
  const engine = tf.engine() as unknown as { registry: Record<string, tf.KernelBackend>; disposeRegisteredKernels(n: string): void };
  if (engine.registry[name] === undefined) return;
  engine.disposeRegisteredKernels(name);
  engine.registry[name].dispose();
  delete engine.registry[name];
}
