// `layers` of fp4kit/tfjs: training layers built on fp4kit's quantizers (README "Binary layers").
import { binaryConv2d } from './binary-conv2d.js';
import { binaryDense } from './binary-dense.js';

export { BinaryDense, binaryDense, type BinaryDenseArgs } from './binary-dense.js';
export { BinaryConv2D, binaryConv2d, type BinaryConv2dArgs } from './binary-conv2d.js';
export type { BinaryLayerOptions } from './binary-options.js';

export const layers = { binaryDense, binaryConv2d };
