// The binary CNN of the transfer experiment, in the paper's shape at MNIST scale: a full-precision
// first convolution and last classifier, binary 3×3 convolutions between (sign activations, sign
// weights, a learnable per-channel scale), batch norm after each convolution.
//   28×28×1 → conv 8 (fp32) → BN → binconv 16 /2 → BN → binconv 32 /2 → BN → binconv 32 /2 → BN
//   → flatten (4×4×32) → dense 10 (fp32)
// Small enough that a fine-tuning run takes minutes on two shared cores.

import * as tf from '@tensorflow/tfjs';
import { layers as fp4layers, type BinaryLayerOptions } from '../../lib/tfjs/index.js';

export interface Variant {
  name: string;
  label: string;
  gradients: BinaryLayerOptions;
}

/** The four fine-tuning settings of the issue (and the paper's table). */
export const VARIANTS: readonly Variant[] = [
  { name: 'qat', label: 'QAT (float32 gradients)', gradients: { gradients: 'fp32' } },
  { name: 'psq1', label: '1-bit PSQ', gradients: { gradients: 'psq', bits: 1, prune: 'none' } },
  { name: 'scq4', label: 'AGP + SCQ, b = 4 (1 bit/element on average)', gradients: { gradients: 'scq', bits: 4, prune: 'agp' } },
  { name: 'psq8', label: '8-bit PSQ', gradients: { gradients: 'psq', bits: 8, prune: 'none' } },
];

export function variantByName(name: string): Variant {
  const v = VARIANTS.find((x) => x.name === name);
  if (!v) throw new RangeError(`unknown variant ${JSON.stringify(name)}; expected one of ${VARIANTS.map((x) => x.name).join(', ')}`);
  return v;
}

export function binaryCnn(gradients: BinaryLayerOptions, seed: number): tf.Sequential {
  const init = (k: number) => tf.initializers.glorotUniform({ seed: seed * 16 + k });
  const bin = (filters: number, k: number) => fp4layers.binaryConv2d({
    filters, kernelSize: 3, strides: 2, padding: 'same', useBias: false, kernelInitializer: init(k), ...gradients, seed: seed * 16 + k,
  });
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', inputShape: [28, 28, 1], kernelInitializer: init(0) }),
      tf.layers.batchNormalization(),
      bin(16, 1),
      tf.layers.batchNormalization(),
      bin(32, 2),
      tf.layers.batchNormalization(),
      bin(32, 3),
      tf.layers.batchNormalization(),
      tf.layers.flatten(),
      tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: init(4) }),
    ],
  });
}
