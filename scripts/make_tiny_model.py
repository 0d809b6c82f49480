#!/usr/bin/env python3
"""Generate examples/tiny-model: a small Llama-shaped bf16 checkpoint in two safetensors shards
with model.safetensors.index.json and config.json (< 2 MB), so `npm run example` needs no download.

Weights are seeded Gaussian (std 0.02, like an initialised transformer) with a few heavier-tailed
rows so quantization error statistics are not trivial. Needs numpy and ml_dtypes only; the files
are written by hand (8-byte header length + JSON + data) to keep the dependency list short.
"""
import json
import os
import struct
import sys

import ml_dtypes
import numpy as np

HIDDEN, INTER, VOCAB, LAYERS = 128, 384, 256, 2


def tensors(rng):
    def w(*shape, std=0.02):
        x = rng.standard_normal(shape).astype(np.float32) * std
        # a few outlier rows, as real checkpoints have
        x[rng.integers(0, shape[0], size=2)] *= 8
        return x.astype(ml_dtypes.bfloat16)

    out = {"model.embed_tokens.weight": w(VOCAB, HIDDEN)}
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        out[p + "input_layernorm.weight"] = np.ones(HIDDEN, dtype=ml_dtypes.bfloat16)
        out[p + "self_attn.q_proj.weight"] = w(HIDDEN, HIDDEN)
        out[p + "self_attn.k_proj.weight"] = w(HIDDEN, HIDDEN)
        out[p + "self_attn.v_proj.weight"] = w(HIDDEN, HIDDEN)
        out[p + "self_attn.o_proj.weight"] = w(HIDDEN, HIDDEN)
        out[p + "post_attention_layernorm.weight"] = np.ones(HIDDEN, dtype=ml_dtypes.bfloat16)
        out[p + "mlp.gate_proj.weight"] = w(INTER, HIDDEN)
        out[p + "mlp.up_proj.weight"] = w(INTER, HIDDEN)
        out[p + "mlp.down_proj.weight"] = w(HIDDEN, INTER)
    out["model.norm.weight"] = np.ones(HIDDEN, dtype=ml_dtypes.bfloat16)
    out["lm_head.weight"] = w(VOCAB, HIDDEN)
    return out


def write_safetensors(path, named):
    header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name, arr in named.items():
        data = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": "BF16", "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    return offset


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "examples", "tiny-model")
    os.makedirs(out_dir, exist_ok=True)
    all_tensors = tensors(np.random.default_rng(20251123))
    names = list(all_tensors)
    shards = [names[: len(names) // 2], names[len(names) // 2 :]]
    weight_map, total = {}, 0
    for i, shard in enumerate(shards):
        file = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        total += write_safetensors(os.path.join(out_dir, file), {n: all_tensors[n] for n in shard})
        weight_map.update({n: file for n in shard})
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
        f.write("\n")
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": HIDDEN,
        "intermediate_size": INTER,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "vocab_size": VOCAB,
        "max_position_embeddings": 512,
        "rms_norm_eps": 1e-5,
        "torch_dtype": "bfloat16",
        "tie_word_embeddings": False,
    }
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
