// Serving engines fuse some Linear layers into one GEMM (q/k/v → qkv_proj, gate/up →
// gate_up_proj) and then keep ONE per-tensor scale for the fused weight: vLLM loads
// weight_global_scale (compressed-tensors) or weight_scale_2 (ModelOpt) per shard and uses the
// max over the shards. The block scales of every shard must therefore be computed against the
// same tensor scale, as llm-compressor (update_fused_layer_weight_global_scales) and ModelOpt's
// export do. This file names the groups; lib/checkpoint/quantize-checkpoint.ts computes the shared amax in a pre-pass.

const FUSED = [
  { members: /\.(q_proj|k_proj|v_proj)\.weight$/, fused: 'qkv_proj' },
  { members: /\.(gate_proj|up_proj)\.weight$/, fused: 'gate_up_proj' },
];

/** The fused group a weight belongs to ("model.layers.0.self_attn.qkv_proj"), or null. */
export function fusedGroupOf(name: string): string | null {
  for (const f of FUSED) {
    const m = f.members.exec(name);
    if (m) return `${name.slice(0, m.index)}.${f.fused}`;
  }
  return null;
}
