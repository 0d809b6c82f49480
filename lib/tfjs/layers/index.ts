// `layers` of fp4kit/tfjs: training layers built on fp4kit's quantizers (README "Binary layers",
// "FP4 training layers").
import { binaryConv2d } from './binary-conv2d.js';
import { binaryDense } from './binary-dense.js';
import { fp4Dense } from './fp4-dense.js';

export { BinaryDense, binaryDense, type BinaryDenseArgs } from './binary-dense.js';
export { BinaryConv2D, binaryConv2d, type BinaryConv2dArgs } from './binary-conv2d.js';
export type { BinaryLayerOptions } from './binary-options.js';
export { Fp4Dense, fp4Dense, type Fp4DenseArgs } from './fp4-dense.js';
export type { Fp4LayerOptions } from './fp4-options.js';

export const layers = { binaryDense, binaryConv2d, fp4Dense };
