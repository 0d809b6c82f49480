// Reading a quantized tensor back from any layout into fp4kit's QuantizedTensor / FgmpTensor, so
// `dequantize` can check what was written (tests, interop, inspect), and its values in the order
// of the input tensor (readBackValues undoes the transposition of gpt-oss experts).

import { dequantize, type QuantizedTensor } from '../../core/quantize.js';
import type { FgmpTensor } from '../../fgmp/quantize.js';
import { BLOCK_FORMATS, type BlockFormatName } from '../../core/formats.js';
import { swapLastTwo, transposeLastTwo } from '../../core/transpose.js';
import { isGptOssExpertWeight } from './gpt-oss-tensors.js';
import { moduleOf, type LayoutName, type QuantFormat } from './types.js';

export type TensorBytes = (name: string) => Promise<Uint8Array>;

function f32(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, 4).getFloat32(0, true);
}

/** Rebuild the quantized tensor `name` (input name, input shape) stored in `layout`. Its shape is the
 *  blocked shape: the input shape, or for gpt-oss experts ([E, in, out]) the stored order [E, out, in]. */
export async function readBackTensor(
  layout: LayoutName, get: TensorBytes, name: string, format: QuantFormat, shape: number[], scaleRule?: 'floor' | 'ceil',
): Promise<QuantizedTensor | FgmpTensor> {
  if (format === 'fgmp') {
    const [data, scales, mask, ts, f8] = await Promise.all(['qdata', 'qscales', 'mask', 'tensor_scale', 'fp8_scale'].map((s) => get(`${name}.${s}`)));
    const cols = shape[shape.length - 1];
    const blocks = (shape.reduce((a, b) => a * b, 1) / Math.max(1, cols)) * Math.ceil(cols / 16);
    return {
      format: 'fgmp', shape, data, scales, mask, tensorScale: f32(ts), fp8Scale: f32(f8), blockSize: 16,
      threshold: NaN, tiesTaken: 0, fp4Fraction: blocks === 0 ? 1 : scales.length / blocks,
    };
  }
  const blockSize = BLOCK_FORMATS[format as BlockFormatName].blockSize;
  const base = { format: format as BlockFormatName, shape, blockSize };
  switch (layout) {
    case 'fp4kit': {
      const data = await get(`${name}.qdata`);
      const scales = await get(`${name}.qscales`);
      if (format === 'nvfp4') return { ...base, data, scales, tensorScale: f32(await get(`${name}.tensor_scale`)) };
      return { ...base, data, scales, scaleRule: scaleRule ?? 'floor' };
    }
    case 'compressed-tensors': {
      const m = moduleOf(name);
      const g = f32(await get(`${m}.weight_global_scale`));
      return { ...base, data: await get(`${m}.weight_packed`), scales: await get(`${m}.weight_scale`), tensorScale: Math.fround(1 / g) };
    }
    case 'modelopt': {
      const m = moduleOf(name);
      return { ...base, data: await get(`${m}.weight`), scales: await get(`${m}.weight_scale`), tensorScale: f32(await get(`${m}.weight_scale_2`)) };
    }
    case 'gpt-oss':
      // Only expert weights are MXFP4 in gpt-oss (lib/checkpoint/layouts/gpt-oss-tensors.ts), always stored [E, out, in].
      if (!isGptOssExpertWeight(name)) throw new RangeError(`readBackTensor: the gpt-oss layout stores only MoE expert weights as MXFP4 (…mlp.experts.gate_up_proj / down_proj); got ${JSON.stringify(name)}`);
      return { ...base, shape: swapLastTwo(shape), data: await get(`${name}_blocks`), scales: await get(`${name}_scales`), scaleRule: scaleRule ?? 'floor' };
  }
}

/** The dequantized values of tensor `name` in the order of the input tensor (shape `shape`): what a
 *  loader of `layout` puts into the model. */
export async function readBackValues(
  layout: LayoutName, get: TensorBytes, name: string, format: QuantFormat, shape: number[], scaleRule?: 'floor' | 'ceil',
): Promise<Float32Array> {
  const q = await readBackTensor(layout, get, name, format, shape, scaleRule);
  const values = dequantize(q);
  // gpt-oss holds only expert weights, all stored [E, out, in]: swap back to the input's [E, in, out].
  return layout === 'gpt-oss' ? transposeLastTwo(values, q.shape) : values;
}
