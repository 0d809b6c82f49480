// NVIDIA ModelOpt NVFP4 (the layout of nvidia/*-NVFP4 checkpoints, loaded by vLLM, SGLang and
// TensorRT-LLM; sources in docs/layouts.md):
//   <module>.weight          U8       [N, K/2]   E2M1 codes, element 2i in the low nibble
//   <module>.weight_scale    F8_E4M3  [N, K/16]  block scales
//   <module>.weight_scale_2  F32      []         the DECODE scale amax/(6·448) (fp4kit's tensorScale)
//   <module>.input_scale     F32      []         only with a calibrated activation scale
// plus hf_quant_config.json { producer: { name: "modelopt" }, quantization: { quant_algo:
// "W4A16_NVFP4" (weight-only) or "NVFP4" (with input_scale), group_size: 16, exclude_modules } }. Dequantization: e2m1 · (weight_scale · weight_scale_2),
// the same float32 steps as fp4kit's dequantize.

import { nvfp4TensorScale } from '../../kernels/ref/block-scale.js';
import type { QuantizedTensor } from '../../core/quantize.js';
import type { FgmpTensor } from '../../fgmp/quantize.js';
import { isEmbedding, notAServedLinear } from './module-roles.js';
import { f32Bytes, f32From, moduleOf, type ConfigContext, type Layout, type LayoutFiles } from './types.js';

export function modeloptLayout(inputScale?: number): Layout {
  return {
    name: 'modelopt',
    loadsExpertsAsOneMoe: true,
    formats: ['nvfp4'],
    sharedFusedScales: true,
    tensorScale: nvfp4TensorScale,
    unsupported(name, shape, _format, config) {
      if (!name.endsWith('.weight')) return 'modelopt stores quantized weights under <module>.weight: the name must end in .weight';
      if (isEmbedding(name)) return 'an embedding: loaders of this layout read NVFP4 Linear layers (vLLM quantizes embeddings only with nvfp4_embed)';
      const role = notAServedLinear(name, config);
      if (role !== null) return role;
      if (shape.length !== 2) return 'modelopt packs 2-D weights only';
      if (shape[1] % 16 !== 0) return `last dimension ${shape[1]} is not a multiple of 16`;
      return null;
    },
    plan(name, shape) {
      const m = moduleOf(name);
      const [n, k] = shape;
      const specs = [
        { name: `${m}.weight`, dtype: 'U8', shape: [n, k / 2] },
        { name: `${m}.weight_scale`, dtype: 'F8_E4M3', shape: [n, k / 16] },
        { name: `${m}.weight_scale_2`, dtype: 'F32', shape: [] as number[] },
      ];
      if (inputScale !== undefined) specs.push({ name: `${m}.input_scale`, dtype: 'F32', shape: [] });
      return specs;
    },
    encode(_name, q: QuantizedTensor | FgmpTensor) {
      const out = [q.data, q.scales, f32Bytes((q as QuantizedTensor).tensorScale!)];
      if (inputScale !== undefined) out.push(f32Bytes(inputScale));
      return out;
    },
    async decode(get, name, _format, shape) {
      const m = moduleOf(name);
      return { format: 'nvfp4', shape, blockSize: 16, data: await get(`${m}.weight`), scales: await get(`${m}.weight_scale`), tensorScale: f32From(await get(`${m}.weight_scale_2`)) };
    },
    files(ctx: ConfigContext): LayoutFiles {
      // Weight-only NVFP4 is "W4A16_NVFP4" to vLLM's ModelOpt loader; "NVFP4" means W4A4 and
      // needs a calibrated input_scale per Linear, which only --input-scale provides.
      const quantization = {
        quant_algo: inputScale === undefined ? 'W4A16_NVFP4' : 'NVFP4',
        kv_cache_quant_algo: null,
        group_size: 16,
        exclude_modules: ctx.unquantizedModules,
      };
      const hfQuantConfig = { producer: { name: 'modelopt', version: 'fp4kit' }, quantization };
      return {
        // config.json's flat form names the list "ignore" (ModelOpt's convert_hf_quant_config_format;
        // vLLM's ModelOptQuantConfigBase.from_config reads config.get("ignore") there, and prefers
        // config.json over hf_quant_config.json): both names, so every reader finds it.
        config: { ...(ctx.config ?? {}), quantization_config: { quant_method: 'modelopt', ...quantization, ignore: ctx.unquantizedModules } },
        extra: { 'hf_quant_config.json': `${JSON.stringify(hfQuantConfig, null, 2)}\n` },
      };
    },
  };
}
