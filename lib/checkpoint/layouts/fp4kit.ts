// fp4kit's own layout: every format, fgmp included, with nothing lost (docs/layouts.md).
//   <name>.qdata         U8                 MX/NVFP4: [...lead, packed row bytes]; fgmp: [bytes]
//   <name>.qscales       F8_E8M0 (MX) | F8_E4M3 (NVFP4, fgmp)
//                                           MX/NVFP4: [...lead, blocks per row]; fgmp: [FP4 blocks]
//   <name>.tensor_scale  F32 [1]            NVFP4 and fgmp: the decode scale of the FP4 blocks
//   <name>.fp8_scale     F32 [1]            fgmp: the decode scale of the FP8 blocks
//   <name>.mask          U8 [ceil(blocks/8)]  fgmp: bit b of byte b>>3 (LSB first) set = block b is FP8
// The safetensors __metadata__ key "fp4kit" holds JSON { version: 1, tensors: { <name>: { format,
// shape, blockSize, scaleRule? } } }; config.json gets quantization_config { quant_method: "fp4kit" }.

import { BLOCK_FORMATS, packedRowBytes, type BlockFormatName } from '../../core/formats.js';
import type { QuantizedTensor } from '../../core/quantize.js';
import type { FgmpTensor } from '../../fgmp/quantize.js';
import type { TensorSpec } from '../safetensors/write.js';
import { f32Bytes, f32From, type ConfigContext, type Layout, type LayoutFiles, type QuantFormat } from './types.js';

const FP4KIT_LAYOUT_VERSION = 1;
const FGMP_BLOCK = 16;

export interface Fp4kitTensorMeta {
  format: QuantFormat;
  shape: number[];
  blockSize: number;
  scaleRule?: string;
}

export const fp4kitLayout: Layout = {
  name: 'fp4kit',
  formats: ['mxfp4', 'mxfp6_e2m3', 'mxfp6_e3m2', 'mxfp8_e4m3', 'mxfp8_e5m2', 'mxint8', 'nvfp4', 'fgmp'],
  unsupported(_name, shape) {
    if (shape.length < 1 || shape[shape.length - 1] === 0) return 'empty last dimension';
    return null;
  },
  plan(name, shape, format, fp4Blocks): TensorSpec[] {
    const lead = shape.slice(0, -1);
    const cols = shape[shape.length - 1];
    const rows = lead.reduce((a, b) => a * b, 1);
    if (format === 'fgmp') {
      const blocks = rows * Math.ceil(cols / FGMP_BLOCK);
      const fp8Blocks = blocks - fp4Blocks;
      return [
        { name: `${name}.qdata`, dtype: 'U8', shape: [fp4Blocks * 8 + fp8Blocks * 16] },
        { name: `${name}.qscales`, dtype: 'F8_E4M3', shape: [fp4Blocks] },
        { name: `${name}.mask`, dtype: 'U8', shape: [Math.ceil(blocks / 8)] },
        { name: `${name}.tensor_scale`, dtype: 'F32', shape: [1] },
        { name: `${name}.fp8_scale`, dtype: 'F32', shape: [1] },
      ];
    }
    const f = BLOCK_FORMATS[format as BlockFormatName];
    const specs: TensorSpec[] = [
      { name: `${name}.qdata`, dtype: 'U8', shape: [...lead, packedRowBytes(f, cols)] },
      { name: `${name}.qscales`, dtype: f.scale.name === 'e4m3' ? 'F8_E4M3' : 'F8_E8M0', shape: [...lead, Math.ceil(cols / f.blockSize)] },
    ];
    if (f.hasTensorScale) specs.push({ name: `${name}.tensor_scale`, dtype: 'F32', shape: [1] });
    return specs;
  },
  encode(_name, q) {
    if (q.format === 'fgmp') {
      const g = q as FgmpTensor;
      return [g.data, g.scales, g.mask, f32Bytes(g.tensorScale), f32Bytes(g.fp8Scale)];
    }
    const t = q as QuantizedTensor;
    return BLOCK_FORMATS[t.format].hasTensorScale ? [t.data, t.scales, f32Bytes(t.tensorScale!)] : [t.data, t.scales];
  },
  async decode(get, name, format, shape, scaleRule) {
    if (format === 'fgmp') {
      const [data, scales, mask, ts, f8] = await Promise.all(['qdata', 'qscales', 'mask', 'tensor_scale', 'fp8_scale'].map((s) => get(`${name}.${s}`)));
      const cols = shape[shape.length - 1];
      const blocks = (shape.reduce((a, b) => a * b, 1) / Math.max(1, cols)) * Math.ceil(cols / FGMP_BLOCK);
      return {
        format: 'fgmp', shape, data, scales, mask, tensorScale: f32From(ts), fp8Scale: f32From(f8), blockSize: FGMP_BLOCK,
        threshold: NaN, tiesTaken: 0, fp4Fraction: blocks === 0 ? 1 : scales.length / blocks,
      };
    }
    const f = BLOCK_FORMATS[format as BlockFormatName];
    const base = { format: format as BlockFormatName, shape, blockSize: f.blockSize, data: await get(`${name}.qdata`), scales: await get(`${name}.qscales`) };
    if (f.hasTensorScale) return { ...base, tensorScale: f32From(await get(`${name}.tensor_scale`)) };
    return { ...base, scaleRule: scaleRule ?? 'floor' };
  },
  metadata(entries) {
    const tensors: Record<string, Fp4kitTensorMeta> = Object.create(null) as Record<string, Fp4kitTensorMeta>;
    for (const e of entries) {
      const blockSize = e.format === 'fgmp' ? FGMP_BLOCK : BLOCK_FORMATS[e.format as BlockFormatName].blockSize;
      const m: Fp4kitTensorMeta = { format: e.format, shape: e.shape, blockSize };
      if (e.scaleRule) m.scaleRule = e.scaleRule;
      tensors[e.name] = m;
    }
    return { fp4kit: JSON.stringify({ version: FP4KIT_LAYOUT_VERSION, tensors }) };
  },
  files(ctx: ConfigContext): LayoutFiles {
    return {
      config: {
        ...(ctx.config ?? {}),
        quantization_config: { quant_method: 'fp4kit', version: FP4KIT_LAYOUT_VERSION, format: ctx.format, quantized: ctx.quantized.length },
      },
      extra: {},
    };
  },
};
