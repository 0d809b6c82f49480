// Runs the same computation on tfjs's cpu backend and on the 'fp4kit' backend told to quantize
// every B operand (FP4KIT_WEIGHTS 'mxfp4', FP4KIT_WEIGHT_TENSORS 'all'): the setting under which a
// float product left as a tf op would be quantized as a weight. Restores cpu and the default flags.
import * as tf from '@tensorflow/tfjs';
import '../../lib/tfjs/index.js';

export async function onCpuAndOnFp4kitQuantizingEveryB(run: () => Float32Array[]): Promise<{ onCpu: Float32Array[]; onFp4kit: Float32Array[] }> {
  await tf.setBackend('cpu');
  const onCpu = run();
  await tf.setBackend('fp4kit');
  tf.env().set('FP4KIT_WEIGHTS', 'mxfp4');
  tf.env().set('FP4KIT_WEIGHT_TENSORS', 'all');
  try {
    return { onCpu, onFp4kit: run() };
  } finally {
    tf.env().set('FP4KIT_WEIGHT_TENSORS', 'variables');
    tf.env().set('FP4KIT_WEIGHTS', 'nvfp4');
    await tf.setBackend('cpu');
  }
}
