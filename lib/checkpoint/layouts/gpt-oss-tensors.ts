// Which tensors of a gpt-oss checkpoint are stored as MXFP4, and along which axis they are
// blocked — decided from the tensor's NAME and config.json, never from its shape: gpt-oss-20b and
// -120b's down_proj is 2880×2880, which reads the same either way round.
//
// transformers' bf16 GptOssExperts (models/gpt_oss/modeling_gpt_oss.py, is_transposed=True: the
// forward pass computes x @ W[e], so the INPUT axis comes first):
//   <layer>.mlp.experts.gate_up_proj   [E, hidden, 2·inter]
//   <layer>.mlp.experts.down_proj      [E, inter, hidden]
// gpt-oss MXFP4 checkpoints (openai/gpt-oss-*; transformers' Mxfp4GptOssExperts and
// convert_moe_packed_tensors, integrations/mxfp4.py; vLLM's Mxfp4MoEMethod) block along the input
// (reduction) axis and put the output axis first:
//   gate_up_proj_blocks [E, 2·inter, hidden/32, 16]   gate_up_proj_scales [E, 2·inter, hidden/32]
//   down_proj_blocks    [E, hidden, inter/32, 16]     down_proj_scales    [E, hidden, inter/32]
// and the loader transposes the last two axes back after decoding. So the bf16 tensor is
// transposed before blocking. Other MoE models in transformers (Mixtral, Qwen3-MoE) use the same
// names with the opposite order ([E, 2·inter, hidden]), hence config.json's model_type decides.
//
// Everything else stays bf16, as in openai/gpt-oss-*: the experts' biases (gate_up_proj_bias,
// down_proj_bias; Mxfp4HfQuantizer.param_needs_quantization excludes them), the router, attention
// (q/k/v/o_proj and their biases, sinks), embeddings, norms and lm_head. transformers and vLLM load
// MXFP4 into the experts only: a Linear weight written as `<name>.weight_blocks` would leave
// `<name>.weight` missing, and transformers fills missing weights with random values.

import type { ModelConfig } from '../model-config.js';

const EXPERT_WEIGHT = /(^|\.)mlp\.experts\.(gate_up_proj|down_proj)$/;

/** True for the names of gpt-oss MoE expert weights (`…mlp.experts.gate_up_proj` / `down_proj`). */
export function isGptOssExpertWeight(name: string): boolean {
  return EXPERT_WEIGHT.test(name);
}

/** The default selection of the gpt-oss layout: the expert weights, nothing else. */
export function gptOssDefaultSelection(name: string): string | null {
  if (isGptOssExpertWeight(name)) return null;
  return 'gpt-oss stores only the MoE expert weights (mlp.experts.gate_up_proj / down_proj) as MXFP4';
}

function positiveInteger(config: Record<string, unknown>, key: string): number {
  const v = config[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new RangeError(`config.json ${key} is ${JSON.stringify(v)}; expected a positive integer (the gpt-oss layout checks expert shapes against it)`);
  }
  return v;
}

/**
 * Why tensor `name` ([shape]) stays unquantized in the gpt-oss layout, or null when it is an
 * expert weight to store as MXFP4 (transposed, see above). Throws a RangeError when the tensor
 * cannot be placed without guessing: a 3-D (or larger) tensor that is not a gpt-oss expert weight,
 * an expert weight without config.json or of another model_type, or one whose shape is not the
 * one transformers' GptOssExperts gives it (e.g. a checkpoint already stored [E, out, in]).
 */
export function gptOssUnsupported(name: string, shape: readonly number[], config: ModelConfig): string | null {
  const where = `the gpt-oss layout cannot place tensor ${JSON.stringify(name)} [${shape.join(', ')}]`;
  if (!isGptOssExpertWeight(name)) {
    if (shape.length >= 3) {
      throw new RangeError(`${where}: a tensor of ${shape.length} dimensions that is not a gpt-oss expert weight (mlp.experts.gate_up_proj / down_proj), so which axis is its input axis is unknown; leave it out of --only`);
    }
    if (/(\.|_)bias$/.test(name)) return 'gpt-oss keeps biases in bf16';
    return gptOssDefaultSelection(name);
  }
  if (config === null) throw new RangeError(`${where}: needs the model's config.json (model_type gpt_oss, hidden_size, intermediate_size, num_local_experts) beside the weights to know the order of its axes`);
  if (config.model_type !== 'gpt_oss') {
    throw new RangeError(`${where}: config.json model_type is ${JSON.stringify(config.model_type)}; expected "gpt_oss" (other MoE models store experts under the same names as [E, out, in], the opposite order of gpt-oss's [E, in, out])`);
  }
  const experts = positiveInteger(config, 'num_local_experts');
  const hidden = positiveInteger(config, 'hidden_size');
  const inter = positiveInteger(config, 'intermediate_size');
  const gateUp = name.endsWith('gate_up_proj');
  const want = gateUp ? [experts, hidden, 2 * inter] : [experts, inter, hidden];
  if (shape.length !== 3 || shape.some((d, i) => d !== want[i])) {
    throw new RangeError(`${where}: expected transformers' GptOssExperts ${gateUp ? 'gate_up_proj [E, hidden, 2·inter]' : 'down_proj [E, inter, hidden]'} = [${want.join(', ')}] from config.json`);
  }
  const inputAxis = want[1];
  if (inputAxis % 32 !== 0) return `input axis ${inputAxis} is not a multiple of 32 (MXFP4 blocks)`;
  return null;
}
