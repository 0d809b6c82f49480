// A test file that runs on tfjs's cpu backend: set before its tests, the previous backend back after.
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll } from 'vitest';

export function onTfCpuForThisFile(): void {
  let previous = '';
  beforeAll(async () => {
    previous = tf.getBackend();
    await tf.setBackend('cpu');
  });
  afterAll(async () => {
    if (previous) await tf.setBackend(previous);
  });
}
