// Serving engines fuse some Linear layers into one GEMM (q/k/v → qkv_proj, gate/up →
// gate_up_proj) and then keep ONE per-tensor scale for the fused weight: vLLM loads
// weight_global_scale (compressed-tensors) or weight_scale_2 (ModelOpt) per shard and uses the
// max over the shards. The block scales of every shard must therefore be computed against the
// same tensor scale, as llm-compressor (update_fused_layer_weight_global_scales) and ModelOpt's
// export do. This file names the groups (vLLM's packed_modules_mapping) and the fused MoE layers
// (vLLM's FusedMoE); lib/checkpoint/plan.ts computes each group's shared amax in a pre-pass.

import type { ModelConfig } from '../model-config.js';

const FUSED = [
  { members: /\.(q_proj|k_proj|v_proj)\.weight$/, fused: 'qkv_proj' },
  // Dense MLPs and Qwen/DeepSeek-style experts (experts.N.gate_proj / up_proj).
  { members: /\.(gate_proj|up_proj)\.weight$/, fused: 'gate_up_proj' },
  // Mixtral-style experts (experts.N.w1 / w3 → vLLM's w13; its NVFP4 MoE methods keep w1's scale for both).
  { members: /(?<=\.experts\.\d+)\.(w1|w3)\.weight$/, fused: 'w13' },
  // InternLM2's dense MLP (feed_forward.w1 / w3 → gate_up_proj).
  { members: /(?<=\.feed_forward)\.(w1|w3)\.weight$/, fused: 'gate_up_proj' },
  // BERT-style encoders (attention.self.query / key / value → qkv_proj).
  { members: /\.(query|key|value)\.weight$/, fused: 'qkv_proj' },
  // DeepSeek-V2/V3 MLA with q_lora_rank (vLLM's fused_qkv_a_proj).
  { members: /\.(q_a_proj|kv_a_proj_with_mqa)\.weight$/, fused: 'fused_qkv_a_proj' },
];

/** Groups whose member names mean something else in other models, by config.json's model_type:
 *  Qwen-1's mlp.w2 is the up projection (vLLM's qwen.py stacks w2 and w1 into gate_up_proj), where
 *  a Mixtral-style w2 is the down projection. */
const FUSED_BY_MODEL_TYPE = new Map<unknown, typeof FUSED>([
  ['qwen', [{ members: /(?<=\.mlp)\.(w1|w2)\.weight$/, fused: 'gate_up_proj' }]],
]);

/** The MoE layer an expert weight belongs to ("model.layers.0.mlp.experts.3.down_proj.weight" →
 *  "model.layers.0.mlp.experts"), or null: vLLM loads all of a layer's experts into one fused MoE
 *  with one quantization method, so they are quantized all or none. */
export function expertLayerOf(name: string): string | null {
  const m = /^(.*\.experts)\.\d+\.[^.]+\.weight$/.exec(name);
  return m ? m[1] : null;
}

/** The fused MoE module (vLLM's FusedMoE prefix, which its quantization configs look up in the
 *  ignore list) of a tensor that holds a whole layer's experts, or null:
 *  - 3-D `…experts.<name>` (gpt-oss, Llama-4, transformers 5's fused Qwen/Mixtral experts) → `…experts`;
 *  - Granite-MoE's 3-D `…block_sparse_moe.input_linear/output_linear.weight` → `…block_sparse_moe.experts`
 *    (vLLM's granitemoe.py splits them into experts.N.w1/w3/w2);
 *  - DBRX's `…ffn.experts.mlp.w1/v1/w2` ([E·I, H], no `.weight`) → `…ffn.experts`. */
export function wholeMoeLayerOf(name: string, shape: readonly number[]): string | null {
  if (shape.length === 3) {
    const granite = /^(.*\.block_sparse_moe)\.(input_linear|output_linear)\.weight$/.exec(name);
    if (granite) return `${granite[1]}.experts`;
    const fused = /^(.*\.experts)\.[^.]+$/.exec(name);
    if (fused) return fused[1];
  }
  const dbrx = /^(.*\.experts)\.mlp\.(w1|v1|w2)$/.exec(name);
  return dbrx ? dbrx[1] : null;
}

/** The fused group a weight belongs to ("model.layers.0.self_attn.qkv_proj"), or null. */
export function fusedGroupOf(name: string, config: ModelConfig): string | null {
  for (const f of [...(FUSED_BY_MODEL_TYPE.get(config?.model_type) ?? []), ...FUSED]) {
    const m = f.members.exec(name);
    if (m) return `${name.slice(0, m.index)}.${f.fused}`;
  }
  return null;
}
