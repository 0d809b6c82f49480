// A generated Llama-like sharded checkpoint (embeddings, q/k/v/o, gate/up/down, norms, lm_head;
// bf16 with a few f32 tensors) written the way Hugging Face writes them: tensors in order, a new
// shard when the current one would pass `maxShardBytes`, so fused groups (q/k/v, gate/up) can
// straddle two shards. With an index, config.json and tokenizer/generation side files.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SafetensorsWriter, specByteLength, type TensorSpec } from '../../lib/checkpoint/safetensors/write.js';

export interface ShardedModel {
  layers: number;
  hidden: number;
  intermediate: number;
  vocab: number;
  maxShardBytes: number;
  seed?: number;
}

function modelTensors(m: ShardedModel): TensorSpec[] {
  const t: TensorSpec[] = [{ name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [m.vocab, m.hidden] }];
  for (let l = 0; l < m.layers; l++) {
    const p = `model.layers.${l}`;
    t.push(
      { name: `${p}.input_layernorm.weight`, dtype: 'BF16', shape: [m.hidden] },
      { name: `${p}.self_attn.q_proj.weight`, dtype: 'BF16', shape: [m.hidden, m.hidden] },
      { name: `${p}.self_attn.k_proj.weight`, dtype: 'BF16', shape: [m.hidden / 2, m.hidden] },
      { name: `${p}.self_attn.v_proj.weight`, dtype: 'BF16', shape: [m.hidden / 2, m.hidden] },
      { name: `${p}.self_attn.o_proj.weight`, dtype: l % 3 === 2 ? 'F32' : 'BF16', shape: [m.hidden, m.hidden] },
      { name: `${p}.post_attention_layernorm.weight`, dtype: 'BF16', shape: [m.hidden] },
      { name: `${p}.mlp.gate_proj.weight`, dtype: 'BF16', shape: [m.intermediate, m.hidden] },
      { name: `${p}.mlp.up_proj.weight`, dtype: 'BF16', shape: [m.intermediate, m.hidden] },
      { name: `${p}.mlp.down_proj.weight`, dtype: 'BF16', shape: [m.hidden, m.intermediate] },
    );
  }
  t.push({ name: 'model.norm.weight', dtype: 'BF16', shape: [m.hidden] }, { name: 'lm_head.weight', dtype: 'BF16', shape: [m.vocab, m.hidden] });
  return t;
}

/** Random values whose magnitude varies per row and per tensor (`shift` halvings), so members of a
 *  fused group (q/k/v) have different amax values (xorshift, seeded). */
function fill(spec: TensorSpec, state: { s: number }, shift: number): Uint8Array {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const cols = spec.shape[spec.shape.length - 1];
  let s = state.s;
  if (spec.dtype === 'F32') {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
      out[i] = ((s / 4294967296) - 0.5) * 2 ** -((Math.floor(i / cols) % 7) + shift);
    }
    state.s = s;
    return new Uint8Array(out.buffer);
  }
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    const exponent = 0x3c - shift - (Math.floor(i / cols) % 5) - (s >>> 30); // bf16 exponents 2^(-4-shift) .. 2^(-11-shift)
    out[i] = (s & 0x8000) | (exponent << 8) | ((s >>> 8) & 0xff);
  }
  state.s = s;
  return new Uint8Array(out.buffer);
}

/** Write the model into `dir`; returns the shard file names. */
export async function writeShardedCheckpoint(dir: string, m: ShardedModel): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const all = modelTensors(m);
  const groups: TensorSpec[][] = [[]];
  let size = 0;
  for (const t of all) {
    const b = specByteLength(t);
    if (size > 0 && size + b > m.maxShardBytes) {
      groups.push([]);
      size = 0;
    }
    groups[groups.length - 1].push(t);
    size += b;
  }
  const names = groups.map((_g, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(groups.length).padStart(5, '0')}.safetensors`);
  const state = { s: (m.seed ?? 1) >>> 0 || 1 };
  const weightMap: Record<string, string> = {};
  let total = 0;
  for (let g = 0; g < groups.length; g++) {
    const w = await SafetensorsWriter.create(join(dir, names[g]), groups[g], { format: 'pt' });
    for (const t of groups[g]) {
      await w.write(t.name, fill(t, state, all.indexOf(t) % 3));
      weightMap[t.name] = names[g];
      total += specByteLength(t);
    }
    await w.commit();
  }
  writeFileSync(join(dir, 'model.safetensors.index.json'), `${JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2)}\n`);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: m.hidden, intermediate_size: m.intermediate,
    num_hidden_layers: m.layers, vocab_size: m.vocab, torch_dtype: 'bfloat16',
  }, null, 2));
  writeFileSync(join(dir, 'tokenizer.json'), '{"version": "1.0", "model": {"type": "BPE"}}\n');
  writeFileSync(join(dir, 'generation_config.json'), '{"do_sample": false}\n');
  return names;
}
