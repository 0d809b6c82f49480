// What a weight is in its model, told from its name (and config.json where the name is not
// enough): the 2-D `.weight` tensors that are not Linear layers a serving engine quantizes —
// embedding tables, output heads, MoE routers — and GPT-2's Conv1D weights, which are stored
// [in, out] where a Linear's are [out, in]. The default selection keeps all of them; the serving
// layouts (compressed-tensors, modelopt) refuse them even under --only, since their loaders would
// not read them packed. Names from the loaders' model files (docs/layouts.md "Which tensors").

import { moduleOf } from './types.js';
import type { ModelConfig } from '../model-config.js';

/** The module's last name part: "model.layers.0.mlp.gate.weight" → "gate". */
function leafOf(tensorName: string): string {
  return moduleOf(tensorName).split('.').pop() ?? '';
}

/** An embedding table by its module's name: embed_tokens, word_embeddings, GPT-2's wte/wpe,
 *  T5/BART's shared table and T5's relative_attention_bias (an nn.Embedding). */
export function isEmbedding(tensorName: string): boolean {
  return /embed|^wte$|^wpe$|^shared$|^relative_attention_bias$/i.test(leafOf(tensorName));
}

/** A module the default selection keeps by its own name (its last part, so a Linear inside a
 *  block whose path says `norm` or `embed`, DBRX's norm_attn_norm.attn.Wqkv, is still one):
 *  norms, embeddings, output heads. */
export function isNormEmbeddingOrHead(tensorName: string): boolean {
  return /norm|lm_head/i.test(leafOf(tensorName)) || isEmbedding(tensorName) || isOutputHead(tensorName);
}

/** The projection to the vocabulary (vLLM's ParallelLMHead): lm_head, InternLM2's top-level
 *  `output`, ChatGLM's `output_layer`, OLMo-1's transformer.ff_out (not its blocks' ff_out, an MLP
 *  projection); GPT-NeoX's embed_out is caught as an embedding name. */
export function isOutputHead(tensorName: string): boolean {
  const m = moduleOf(tensorName);
  return /(^|\.)(lm_head|output_layer)$/.test(m) || /^((model|transformer|language_model)\.)?output$/.test(m) || /^(model\.)?transformer\.ff_out$/.test(m);
}

/** An MoE router (gate): Mixtral's block_sparse_moe.gate, Qwen-MoE's and DeepSeek's mlp.gate,
 *  Qwen2-MoE's shared_expert_gate, gpt-oss's and Llama-4's router, Granite's and DBRX's
 *  router.layer, HunYuan's gate.wg. vLLM builds every one unquantized ("gate always runs at half / full precision"). */
export function isRouter(tensorName: string): boolean {
  return /(^|\.)(gate|router|shared_expert_gate)(\.(layer|wg))?$/.test(moduleOf(tensorName));
}

/** Models whose transformers classes hold their projections as Conv1D (weight [in, out]). */
const CONV1D_MODEL_TYPES = new Set(['gpt2', 'openai-gpt', 'imagegpt', 'decision_transformer', 'jais', 'clvp']); // clvp: its decoder's mlp.c_fc/c_proj

/** A GPT-2-style Conv1D weight, stored [in, out]: blocks along its last axis would run along the
 *  output axis, and the serving layouts' loaders read Linear weights [out, in]. */
export function isConv1dWeight(tensorName: string, config: ModelConfig): boolean {
  // The model's type, or a composite's parts' (a VisionEncoderDecoder with a GPT-2 decoder).
  const parts = [config, config?.decoder, config?.encoder, config?.text_config] as unknown[];
  const conv1d = parts.some((c) => c !== null && typeof c === 'object' && CONV1D_MODEL_TYPES.has(String((c as Record<string, unknown>).model_type)));
  return conv1d && /^(c_attn|c_proj|c_fc|q_attn)$/.test(leafOf(tensorName));
}

/** Why a serving layout (compressed-tensors, modelopt) cannot hold this tensor packed, or null
 *  (embeddings: each layout says why in its own words). */
export function notAServedLinear(tensorName: string, config: ModelConfig): string | null {
  if (isOutputHead(tensorName)) return 'the output head: vLLM builds it as a ParallelLMHead, which this layout does not quantize';
  if (isRouter(tensorName)) return 'an MoE router: vLLM builds routers unquantized';
  if (isConv1dWeight(tensorName, config)) return 'a Conv1D weight stored [in, out] (GPT-2): the layout\'s loaders read Linear weights [out, in]';
  // vLLM's mllama4.py builds Llama4VisionModel with quant_config=None (LLaVA's and Qwen2-VL's towers do take it).
  if (config?.model_type === 'llama4' && /^(model\.)?vision_model\./.test(tensorName)) return 'the Llama-4 vision tower: vLLM builds it unquantized';
  return null;
}
