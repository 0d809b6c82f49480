// The block-kernel entry points of the contract (quantizeBlocks / dequantizeBlocks) over a
// backend's per-family kernels: the block-format table's entry (lib/core/formats.ts) says which family
// runs — MX (element format, E8M0 scale per 32) or NVFP4 (E4M3 scale per 16, tensor scale). The
// native addon does the same in C++ (native/binding.cc); js and wasm share this.
import type { ElementIdValue } from '../core/formats.js';
import { guardBlockArgs } from './kernel-guards.js';
import type { DequantizeBlocksArgs, Kernels, QuantizeBlocksArgs, Source } from './contract.js';

export interface BlockFamilies {
  quantizeMx(src: Source, dtype: number, rows: number, cols: number, element: ElementIdValue, scaleRule: number, rounding: number, seed: number, data: Uint8Array, scales: Uint8Array, firstIndex: number): void;
  dequantizeMx(data: Uint8Array, scales: Uint8Array, rows: number, cols: number, element: ElementIdValue, out: Float32Array): void;
  quantizeNvfp4(src: Source, dtype: number, rows: number, cols: number, tensorScale: number, rounding: number, seed: number, data: Uint8Array, scales: Uint8Array, firstIndex: number): void;
  dequantizeNvfp4(data: Uint8Array, scales: Uint8Array, rows: number, cols: number, tensorScale: number, out: Float32Array): void;
}

export function blockKernels(f: BlockFamilies): Pick<Kernels, 'quantizeBlocks' | 'dequantizeBlocks'> {
  return {
    quantizeBlocks(a: QuantizeBlocksArgs): void {
      const { args: x, format } = guardBlockArgs<QuantizeBlocksArgs>('quantizeBlocks', a);
      if (format.hasTensorScale) f.quantizeNvfp4(x.src, x.dtype, x.rows, x.cols, x.tensorScale, x.rounding, x.seed, x.data, x.scales, x.firstIndex);
      else f.quantizeMx(x.src, x.dtype, x.rows, x.cols, format.element.id as ElementIdValue, x.scaleRule, x.rounding, x.seed, x.data, x.scales, x.firstIndex);
    },
    dequantizeBlocks(a: DequantizeBlocksArgs): void {
      const { args: x, format } = guardBlockArgs<DequantizeBlocksArgs>('dequantizeBlocks', a);
      if (format.hasTensorScale) f.dequantizeNvfp4(x.data, x.scales, x.rows, x.cols, x.tensorScale, x.out);
      else f.dequantizeMx(x.data, x.scales, x.rows, x.cols, format.element.id as ElementIdValue, x.out);
    },
  };
}
