// gpt-oss style MXFP4 (openai/gpt-oss-* checkpoints, transformers' Mxfp4HfQuantizer, vLLM's
// mxfp4 method; sources in docs/layouts.md). Only the MoE expert weights are MXFP4
// (lib/checkpoint/layouts/gpt-oss-tensors.ts decides which tensors, from names and config.json). A bf16
// expert weight [E, in, out] is transposed and blocked along `in`:
//   <name>_blocks  U8  [E, out, in/32, 16]  32 E2M1 codes per block, element 2i in the low nibble
//   <name>_scales  U8  [E, out, in/32]      E8M0 exponents, value 2^(code − 127)
// config.json quantization_config { quant_method: "mxfp4", modules_to_not_convert }.
// Dequantization (transformers convert_moe_packed_tensors): ldexp(lut[nibble], scale − 127), then
// the last two axes are swapped back to [E, in, out].

import type { Layout, LayoutFiles, ConfigContext } from './types.js';
import { gptOssDefaultSelection, gptOssUnsupported, isGptOssExpertWeight } from './gpt-oss-tensors.js';

export const gptOssLayout: Layout = {
  name: 'gpt-oss',
  loadsExpertsAsOneMoe: true,
  formats: ['mxfp4'],
  defaultSelection: gptOssDefaultSelection,
  unsupported(name, shape, _format, config) {
    return gptOssUnsupported(name, shape, config);
  },
  transposedForBlocking: isGptOssExpertWeight,
  plan(name, shape) {
    // `shape` is the blocked shape, [E, out, in].
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
  async decode(get, name, _format, shape, scaleRule) {
    // Only expert weights are stored, blocked along `in`: `shape` is the blocked [E, out, in].
    if (!isGptOssExpertWeight(name)) throw new RangeError(`readBackTensor: the gpt-oss layout stores only MoE expert weights as MXFP4 (…mlp.experts.gate_up_proj / down_proj); got ${JSON.stringify(name)}`);
    return { format: 'mxfp4', shape, blockSize: 32, data: await get(`${name}_blocks`), scales: await get(`${name}_scales`), scaleRule: scaleRule ?? 'floor' };
  },
  files(ctx: ConfigContext): LayoutFiles {
    return {
      config: { ...(ctx.config ?? {}), quantization_config: { quant_method: 'mxfp4', modules_to_not_convert: ctx.unquantizedModules } },
      extra: {},
    };
  },
};
