// The native backend: the C++ addon (native/binding.cc) loaded with node-gyp-build, which takes a
// prebuild from prebuilds/ when one matches this platform and otherwise the node-gyp build in
// build/Release. FP4KIT_NATIVE_BUILD=<dir> loads <dir>/Release/fp4kit.node instead (CI uses it to
// run the suite on the cmake-js build). The addon's functions already have the Kernels shape.

import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { packageRoot } from '../core/package-manifest.js';
import type { Kernels, MatmulKernels } from './contract.js';

interface Addon extends MatmulKernels {
  encodeElements: Kernels['encodeElements'];
  decodeElements: Kernels['decodeElements'];
  quantizeBlocks: Kernels['quantizeBlocks'];
  quantizeBlocksAsync: NonNullable<Kernels['quantizeBlocksAsync']>;
  dequantizeBlocks: Kernels['dequantizeBlocks'];
  absMax: Kernels['absMax'];
  errorSums: Kernels['errorSums'];
  dequantizeFgmp: Kernels['dequantizeFgmp'];
  fgmpCandidates: NonNullable<Kernels['fgmpCandidates']>;
  fgmpCandidatesAsync: NonNullable<Kernels['fgmpCandidatesAsync']>;
  quantizeGradient: Kernels['quantizeGradient'];
  dequantizeGradient: Kernels['dequantizeGradient'];
  packSigns: Kernels['packSigns'];
  packBitPlanes: Kernels['packBitPlanes'];
  bitplaneMatmul: Kernels['bitplaneMatmul'];
  /** Absent from a prebuilt addon older than the transpose kernel: the JavaScript loop runs. */
  transposeMatrices?: Kernels['transposeMatrices'];
  sumLeadingRows?: Kernels['sumLeadingRows'];
  tanhFloat32?: Kernels['tanhFloat32'];
  swapMiddleAxes?: Kernels['swapMiddleAxes'];
  powerFloat32?: Kernels['powerFloat32'];
  simd: string;
  threads: number;
}

function loadAddon(): Addon {
  const require = createRequire(import.meta.url);
  const root = packageRoot();
  const forced = process.env.FP4KIT_NATIVE_BUILD;
  if (forced) return require(join(resolve(root, forced), 'Release', 'fp4kit.node')) as Addon;
  const nodeGypBuild = require('node-gyp-build') as (dir: string) => Addon;
  return nodeGypBuild(root);
}

export function loadNativeKernels(): Kernels {
  const addon = loadAddon();
  return {
    name: 'native',
    simd: addon.simd,
    encodeElements: addon.encodeElements,
    decodeElements: addon.decodeElements,
    quantizeBlocks: addon.quantizeBlocks,
    quantizeBlocksAsync: addon.quantizeBlocksAsync,
    dequantizeBlocks: addon.dequantizeBlocks,
    absMax: addon.absMax,
    errorSums: addon.errorSums,
    dequantizeFgmp: addon.dequantizeFgmp,
    fgmpCandidates: addon.fgmpCandidates,
    fgmpCandidatesAsync: addon.fgmpCandidatesAsync,
    quantizeGradient: addon.quantizeGradient,
    dequantizeGradient: addon.dequantizeGradient,
    packSigns: addon.packSigns,
    packBitPlanes: addon.packBitPlanes,
    bitplaneMatmul: addon.bitplaneMatmul,
    transposeMatrices: addon.transposeMatrices,
    sumLeadingRows: addon.sumLeadingRows,
    tanhFloat32: addon.tanhFloat32,
    swapMiddleAxes: addon.swapMiddleAxes,
    powerFloat32: addon.powerFloat32,
    matmul: addon,
  };
}
