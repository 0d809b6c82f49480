// gpt-oss style MXFP4 (openai/gpt-oss-* checkpoints, transformers' Mxfp4HfQuantizer, vLLM's
// mxfp4 method; sources in docs/layouts.md):
//   <name>_blocks  U8  [..., K/32, 16]  32 E2M1 codes per block, element 2i in the low nibble
//   <name>_scales  U8  [..., K/32]      E8M0 exponents, value 2^(code − 127)
// config.json quantization_config { quant_method: "mxfp4", modules_to_not_convert }.
// Dequantization (transformers convert_moe_packed_tensors): ldexp(lut[nibble], scale − 127).

import type { Layout, LayoutFiles, ConfigContext } from './types.js';

export const gptOssLayout: Layout = {
  name: 'gpt-oss',
  formats: ['mxfp4'],
  unsupported(_name, shape, format) {
    if (format !== 'mxfp4') return `the gpt-oss layout holds mxfp4 only, not ${format}`;
    if (shape.length < 2) return 'gpt-oss blocks need at least 2 dimensions';
    if (shape[shape.length - 1] % 32 !== 0) return `last dimension ${shape[shape.length - 1]} is not a multiple of 32`;
    return null;
  },
  plan(name, shape) {
    const lead = shape.slice(0, -1);
    const k = shape[shape.length - 1];
    return [
      { name: `${name}_blocks`, dtype: 'U8', shape: [...lead, k / 32, 16] },
      { name: `${name}_scales`, dtype: 'U8', shape: [...lead, k / 32] },
    ];
  },
  encode(_name, q) {
    return [q.data, q.scales];
  },
  files(ctx: ConfigContext): LayoutFiles {
    return {
      config: { ...(ctx.config ?? {}), quantization_config: { quant_method: 'mxfp4', modules_to_not_convert: ctx.unquantizedModules } },
      extra: {},
    };
  },
};
