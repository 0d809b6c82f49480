// A tiny gpt-oss checkpoint in transformers' bf16 layout, written without Python: per layer the
// experts' gate_up_proj [E, hidden, 2·inter] and down_proj [E, inter, hidden] (input axis first),
// their biases, the router, one attention projection with its bias and sinks, plus embeddings,
// a norm and lm_head, and a config.json with model_type gpt_oss.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeSafetensors } from '../../lib/checkpoint/safetensors/write.js';
import { gaussian } from './data.js';

export interface GptOssSizes {
  hidden: number;
  inter: number;
  experts: number;
  layers: number;
}

export interface GptOssTensor {
  name: string;
  dtype: 'BF16' | 'F32';
  shape: number[];
  /** float32 values (exactly representable in bf16 when dtype is BF16) */
  values: Float32Array;
}

function bf16Values(n: number, seed: number, scale: number): Float32Array {
  const x = gaussian(n, seed, scale);
  const bits = new Uint32Array(x.buffer);
  for (let i = 0; i < n; i++) bits[i] &= 0xffff0000; // truncate to bf16 so the file holds exactly these values
  return x;
}

export function gptOssTensors(s: GptOssSizes, dtype: 'BF16' | 'F32' = 'BF16'): GptOssTensor[] {
  let seed = 100;
  const t = (name: string, shape: number[], scale: number): GptOssTensor => {
    const n = shape.reduce((a, b) => a * b, 1);
    return { name, dtype, shape, values: dtype === 'BF16' ? bf16Values(n, seed++, scale) : gaussian(n, seed++, scale) };
  };
  const out = [t('model.embed_tokens.weight', [32, s.hidden], 1)];
  for (let l = 0; l < s.layers; l++) {
    const p = `model.layers.${l}.`;
    out.push(
      t(`${p}self_attn.q_proj.weight`, [s.hidden, s.hidden], 0.1),
      t(`${p}self_attn.q_proj.bias`, [s.hidden], 0.1),
      t(`${p}self_attn.sinks`, [2], 0.5),
      t(`${p}mlp.router.weight`, [s.experts, s.hidden], 0.1),
      t(`${p}mlp.router.bias`, [s.experts], 0.1),
      t(`${p}mlp.experts.gate_up_proj`, [s.experts, s.hidden, 2 * s.inter], 0.1),
      t(`${p}mlp.experts.gate_up_proj_bias`, [s.experts, 2 * s.inter], 0.1),
      t(`${p}mlp.experts.down_proj`, [s.experts, s.inter, s.hidden], 0.1),
      t(`${p}mlp.experts.down_proj_bias`, [s.experts, s.hidden], 0.1),
      t(`${p}input_layernorm.weight`, [s.hidden], 0.1),
    );
  }
  out.push(t('model.norm.weight', [s.hidden], 0.1), t('lm_head.weight', [32, s.hidden], 0.1));
  return out;
}

export function gptOssConfig(s: GptOssSizes): Record<string, unknown> {
  return {
    architectures: ['GptOssForCausalLM'], model_type: 'gpt_oss', hidden_size: s.hidden, intermediate_size: s.inter,
    num_local_experts: s.experts, num_hidden_layers: s.layers, num_experts_per_tok: 2, vocab_size: 32,
  };
}

/** Write the checkpoint into `dir` (model.safetensors + config.json, unless config is null). */
export async function writeGptOssCheckpoint(dir: string, tensors: GptOssTensor[], config: Record<string, unknown> | null): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await writeSafetensors(join(dir, 'model.safetensors'), tensors.map((x) => {
    const data = x.dtype === 'F32'
      ? new Uint8Array(x.values.buffer, x.values.byteOffset, x.values.byteLength)
      : new Uint8Array(Uint16Array.from(new Uint32Array(x.values.buffer, x.values.byteOffset, x.values.length), (b) => b >>> 16).buffer);
    return { name: x.name, dtype: x.dtype, shape: x.shape, data };
  }));
  if (config !== null) writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
}

/** [E, a, b] → [E, b, a] by explicit indexing (an independent transpose for the tests). */
export function transposeExperts(x: Float32Array, shape: number[]): Float32Array {
  const [e, a, b] = shape;
  const out = new Float32Array(x.length);
  for (let k = 0; k < e; k++) for (let i = 0; i < a; i++) for (let j = 0; j < b; j++) out[k * a * b + j * a + i] = x[k * a * b + i * b + j];
  return out;
}
