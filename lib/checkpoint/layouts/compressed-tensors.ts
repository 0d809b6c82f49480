// compressed-tensors "nvfp4-pack-quantized", as llm-compressor writes it and vLLM / transformers
// load it (sources in docs/layouts.md):
//   <module>.weight_packed        U8       [N, K/2]   E2M1 codes, element 2i in the low nibble
//   <module>.weight_scale         F8_E4M3  [N, K/16]  block scales
//   <module>.weight_global_scale  F32      [1]        the ENCODE scale (448·6/amax in llm-compressor);
//                                                     loaders compute scale / global_scale
// fp4kit's tensorScale is the decode scale, so the stored global scale is 1/tensorScale. To make
// that reciprocal exact, this layout uses a power-of-two tensorScale (the smallest at or above
// amax/(448·6)): then weight_scale / weight_global_scale == weight_scale · tensorScale exactly and
// every loader convention dequantizes to fp4kit's bits.

import { nvfp4TensorScale } from '../../kernels/ref/block-scale.js';
import type { QuantizedTensor } from '../../core/quantize.js';
import type { FgmpTensor } from '../../fgmp/quantize.js';
import { isEmbedding, notAServedLinear } from './module-roles.js';
import { editedConfig } from '../model-config.js';
import { f32Bytes, f32From, moduleOf, type ConfigContext, type Layout, type LayoutFiles, type QuantFormat } from './types.js';

/** The largest power-of-two tensor scale whose NVFP4 values all decode finite: 6 · 448 · 2^116 ≈
 *  2.23e38 ≤ float32's largest; at 2^117 a block scale rounded up to E4M3 352 decoded 6 · 352 · 2^117
 *  = +Inf (weights near ±3.3e38 were published as Inf). */
const MAX_POWER_OF_TWO_SCALE = 2 ** 116;

/** The smallest power of two ≥ f32(amax / 2688), within float32's normal range. An amax beyond
 *  6 · 448 · 2^116 ≈ 2.23e38 is refused: no power of two both holds it and decodes finite. */
export function powerOfTwoTensorScale(amax: number): number {
  const t = nvfp4TensorScale(amax);
  // An infinite scale would halve forever in the loop below; NaN would come out as a silent NaN.
  if (!Number.isFinite(t) || !(amax >= 0)) throw new RangeError(`powerOfTwoTensorScale: amax must be a number ≥ 0 within float32's range, got ${amax}`);
  let p = 2 ** Math.floor(Math.log2(t));
  while (p < t) p *= 2; // Math.log2 may round: settle exactly
  while (p / 2 >= t) p /= 2;
  if (p > MAX_POWER_OF_TWO_SCALE) {
    throw new RangeError(`values up to ${amax} need a power-of-two global scale of ${p}, whose NVFP4 values would decode to ±Inf in compressed-tensors (|w| ≤ ${6 * 448 * MAX_POWER_OF_TWO_SCALE} fits); use --layout modelopt or fp4kit, or --skip it`);
  }
  return Math.max(p, 2 ** -126);
}

export const compressedTensorsLayout: Layout = {
  name: 'compressed-tensors',
  loadsExpertsAsOneMoe: true,
  formats: ['nvfp4'],
  sharedFusedScales: true,
  unsupported(name, shape, _format, config) {
    if (!name.endsWith('.weight')) return 'compressed-tensors names quantized weights <module>.weight_packed: the name must end in .weight';
    if (isEmbedding(name)) return 'an embedding: the layout\'s config targets Linear layers, so a loader would not read it packed';
    const role = notAServedLinear(name, config);
    if (role !== null) return role;
    if (shape.length !== 2) return 'compressed-tensors packs 2-D weights only';
    if (shape[1] % 16 !== 0) return `last dimension ${shape[1]} is not a multiple of 16`;
    return null;
  },
  tensorScale: powerOfTwoTensorScale,
  plan(name, shape) {
    const m = moduleOf(name);
    const [n, k] = shape;
    return [
      { name: `${m}.weight_packed`, dtype: 'U8', shape: [n, k / 2] },
      { name: `${m}.weight_scale`, dtype: 'F8_E4M3', shape: [n, k / 16] },
      { name: `${m}.weight_global_scale`, dtype: 'F32', shape: [1] },
    ];
  },
  encode(_name, q: QuantizedTensor | FgmpTensor) {
    const t = (q as QuantizedTensor).tensorScale!;
    return [q.data, q.scales, f32Bytes(Math.fround(1 / t))];
  },
  async decode(get, name, format, shape) {
    const m = moduleOf(name);
    const g = f32From(await get(`${m}.weight_global_scale`));
    return { format: 'nvfp4', shape, blockSize: 16, data: await get(`${m}.weight_packed`), scales: await get(`${m}.weight_scale`), tensorScale: Math.fround(1 / g) };
  },
  files(ctx: ConfigContext): LayoutFiles {
    const weights = {
      num_bits: 4,
      type: 'float',
      symmetric: true,
      group_size: 16,
      strategy: 'tensor_group',
      block_structure: null,
      dynamic: false,
      actorder: null,
      observer: 'minmax',
      observer_kwargs: {},
    };
    const quantization_config = {
      quant_method: 'compressed-tensors',
      format: 'nvfp4-pack-quantized',
      quantization_status: 'compressed',
      config_groups: {
        group_0: {
          targets: ['Linear'],
          weights,
          input_activations: null,
          output_activations: null,
          format: 'nvfp4-pack-quantized',
        },
      },
      ignore: ignoreList(ctx.unquantizedModules, ctx.config),
      kv_cache_scheme: null,
      sparsity_config: {},
      global_compression_ratio: null,
      producer: 'fp4kit',
    };
    return { config: { ...declaredBfloat16(ctx.config ?? {}), quantization_config }, extra: {} };
  },
};

/**
 * `ignore`: the modules kept unquantized, by their checkpoint names (vLLM maps those through each
 * model's hf_to_vllm_mapper). transformers 5 renames a composite model's modules on load
 * (conversion_mapping.py: LLaVA's vision_tower → model.vision_tower, language_model.model →
 * model.language_model, Qwen2-VL's visual → model.visual, …) but matches `ignore` against the
 * renamed modules, so a vision tower kept in bf16 was wrapped as a quantized one and loaded as
 * garbage. For a composite model (a sub-config with its own model_type) each name also comes as a
 * regex over those prefixes: `re:^((model|language_model)\.){0,3}<name without them>$`.
 */
function ignoreList(modules: string[], config: Record<string, unknown> | null | undefined): string[] {
  const composite = Object.values(config ?? {}).some((v) => v !== null && typeof v === 'object' && !Array.isArray(v) && typeof (v as { model_type?: unknown }).model_type === 'string');
  if (!composite) return modules;
  const renamed = modules.map((m) => {
    const core = m.replace(/^((model|language_model)\.){0,3}(?=.)/, ''); // up to three such prefixes, never the whole name
    return `re:^((model|language_model)\\.){0,3}${core.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`;
  });
  return [...new Set([...modules, ...renamed])];
}

const DTYPE_KEYS = ['dtype', 'torch_dtype'];

/**
 * The config with its model dtype declared bfloat16. compressed-tensors decompresses NVFP4 weights
 * to bfloat16 whatever the model's dtype (compressors/nvfp4/base.py), so transformers loading a
 * model declared anything else (float32, float16, null: float32) ran its bf16 Linear weights on
 * other activations and the forward failed ("expected m1 and m2 to have the same dtype … float !=
 * BFloat16"). Every dtype key (transformers 5's `dtype`, 4's `torch_dtype`, a sub-config's such as
 * text_config's) says bfloat16; a config with none gets `dtype`.
 */
function declaredBfloat16(config: Record<string, unknown>): Record<string, unknown> {
  const bfloat16 = (c: Record<string, unknown>) => editedConfig(c, Object.fromEntries(DTYPE_KEYS.filter((k) => k in c).map((k) => [k, 'bfloat16'])));
  const out = bfloat16(config);
  if (!DTYPE_KEYS.some((k) => k in out)) out.dtype = 'bfloat16';
  for (const [key, value] of Object.entries(out)) {
    if (key !== 'quantization_config' && value !== null && typeof value === 'object' && !Array.isArray(value) && DTYPE_KEYS.some((k) => k in value)) {
      out[key] = bfloat16(value as Record<string, unknown>);
    }
  }
  return out;
}

export type { QuantFormat };
