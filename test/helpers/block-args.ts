// The block kernels' argument objects (lib/kernels/contract.ts BlockArgs) built from the
// positional form the older kernel tests were written in: MX calls name an element format,
// NVFP4 calls a tensor scale.
import { BLOCK_FORMATS, ElementId } from '../../lib/core/formats.js';
import type { DequantizeBlocksArgs, QuantizeBlocksArgs, Source } from '../../lib/kernels/contract.js';

/** The MX block format id of an element format id (an unknown element gives an unknown id). */
export function mxFormatId(element: number): number {
  const f = Object.values(BLOCK_FORMATS).find((b) => !b.hasTensorScale && b.element.id === element);
  return f ? f.id : 100 + element;
}

export function mxArgs(
  src: Source, dtype: number, rows: number, cols: number, element: number, scaleRule: number, rounding: number, seed: number,
  data: Uint8Array, scales: Uint8Array, firstIndex = 0,
): QuantizeBlocksArgs {
  return { format: mxFormatId(element), src, dtype, rows, cols, scaleRule, rounding, seed, data, scales, tensorScale: 0, firstIndex } as QuantizeBlocksArgs;
}

export function nvfp4Args(
  src: Source, dtype: number, rows: number, cols: number, tensorScale: number, rounding: number, seed: number,
  data: Uint8Array, scales: Uint8Array, firstIndex = 0,
): QuantizeBlocksArgs {
  return { format: BLOCK_FORMATS.nvfp4.id, src, dtype, rows, cols, scaleRule: 0, rounding, seed, data, scales, tensorScale, firstIndex } as QuantizeBlocksArgs;
}

export function mxOutArgs(data: Uint8Array, scales: Uint8Array, rows: number, cols: number, element: number, out: Float32Array): DequantizeBlocksArgs {
  return { format: mxFormatId(element), data, scales, rows, cols, tensorScale: 0, out };
}

export function nvfp4OutArgs(data: Uint8Array, scales: Uint8Array, rows: number, cols: number, tensorScale: number, out: Float32Array): DequantizeBlocksArgs {
  return { format: BLOCK_FORMATS.nvfp4.id, data, scales, rows, cols, tensorScale, out };
}

export { ElementId };
