// The pure-TypeScript backend: the readable reference every other backend must match bit for bit.
// It favours plain loops over speed; its files have the stems of assembly/ (element-codec, dtype,
// stochastic, pack, elements, mx, nvfp4, error-sums, fgmp-dequantize) and the steps of native/quantize_scalar.cc. Like the other
// backends it checks its buffers at the boundary (../kernel-guards.ts): the real lengths, so a caller
// that skips the facade cannot make it read or write past them.
import { decodeElements, encodeElements } from './elements.js';
import { dequantizeMx, quantizeMx } from './mx.js';
import { absMax, dequantizeNvfp4, quantizeNvfp4 } from './nvfp4.js';
import { errorSums } from './error-sums.js';
import { dequantizeFgmp } from './fgmp-dequantize.js';
import { blockKernels } from '../block-kernels.js';
import { bitplaneMatmulJs, packBitPlanesJs, packSignsJs } from '../bitplane-gemm-glue.js';
import { dequantizeGradientJs, quantizeGradientJs } from '../gradient-quant-glue.js';
import type { Kernels } from '../contract.js';

export const jsKernels: Kernels = {
  name: 'js',
  simd: 'none',
  encodeElements,
  decodeElements,
  ...blockKernels({ quantizeMx, dequantizeMx, quantizeNvfp4, dequantizeNvfp4 }),
  absMax,
  errorSums,
  dequantizeFgmp,
  quantizeGradient: quantizeGradientJs,
  dequantizeGradient: dequantizeGradientJs,
  packSigns: packSignsJs,
  packBitPlanes: packBitPlanesJs,
  bitplaneMatmul: bitplaneMatmulJs,
};
