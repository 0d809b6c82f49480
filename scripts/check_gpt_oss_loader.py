#!/usr/bin/env python3
"""fp4kit's gpt-oss MXFP4 output against transformers' own loader (test/loaders.test.ts runs it).

usage:
  check_gpt_oss_loader.py make <dir> <hidden> <intermediate> [<dir> <hidden> <intermediate> ...]
      For each folder, a small GptOssForCausalLM built from a config (no download): 2 layers, 4 experts (top 2),
      every parameter seeded random (biases and sinks included, so a bias quantized or lost by
      mistake shows), saved by transformers as bf16 safetensors with its config.json.
  check_gpt_oss_loader.py check <bf16 dir> <quantized dir> <decoded.safetensors> [...]
      For each triple: <quantized dir> is `fp4kit quantize <bf16 dir> --format mxfp4 --layout gpt-oss`;
      <decoded.safetensors> holds fp4kit's own decode of every expert weight (float32, in the bf16
      model's [E, in, out] order). Loads the quantized folder with
      GptOssForCausalLM.from_pretrained(..., quantization_config=Mxfp4Config(dequantize=True)) —
      transformers' MXFP4 loader (Mxfp4HfQuantizer → convert_moe_packed_tensors) on CPU — and a
      reference: the bf16 model with its expert weights replaced by fp4kit's decode. Prints JSON
      keyed by <quantized dir>: loading info, per-tensor bit equality, and the logits of both on
      the same tokens.

Exits non-zero on any exception; the assertions on the printed numbers live in the test.
"""
import json
import math
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import GptOssConfig, GptOssForCausalLM, Mxfp4Config
from transformers.integrations.mxfp4 import convert_moe_packed_tensors

LAYERS, EXPERTS, TOP_K, VOCAB, HEADS, KV_HEADS, HEAD_DIM = 2, 4, 2, 128, 2, 1, 32


def make(folder, hidden, inter, seed):
    config = GptOssConfig(
        vocab_size=VOCAB, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=LAYERS,
        num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, head_dim=HEAD_DIM,
        num_local_experts=EXPERTS, num_experts_per_tok=TOP_K, sliding_window=8,
    )
    model = GptOssForCausalLM(config)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                value = 1 + 0.1 * torch.randn(p.shape, generator=g)
            elif "embed_tokens" in name:
                value = torch.randn(p.shape, generator=g)
            elif name.endswith(("experts.gate_up_proj", "experts.down_proj")):
                value = torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1])  # [E, in, out]: fan-in is axis 1
            elif p.dim() == 2:
                value = torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1])  # Linear [out, in]
            else:
                value = 0.1 * torch.randn(p.shape, generator=g)  # biases, sinks
            p.copy_(value)
    model.to(torch.bfloat16).save_pretrained(folder)


def bits(t):
    """The float32 bit patterns of a tensor (bf16 widened exactly), so -0.0 and 0.0 differ."""
    return t.detach().to(torch.float32).contiguous().view(torch.int32)


def rel_err(a, b):
    a, b = a.detach().to(torch.float64), b.detach().to(torch.float64)
    return float((a - b).norm() / b.norm())


def check(bf16_dir, quant_dir, decoded_path):
    torch.manual_seed(0)
    decoded = load_file(decoded_path)
    original = GptOssForCausalLM.from_pretrained(bf16_dir, dtype=torch.bfloat16).eval()
    reference = GptOssForCausalLM.from_pretrained(bf16_dir, dtype=torch.bfloat16).eval()
    ref_params = dict(reference.named_parameters())
    with torch.no_grad():
        for name, value in decoded.items():
            assert torch.equal(bits(value.to(torch.bfloat16)), bits(value)), f"{name}: fp4kit's decode is not exact in bf16"
            ref_params[name].copy_(value.to(torch.bfloat16))

    loaded, info = GptOssForCausalLM.from_pretrained(
        quant_dir, quantization_config=Mxfp4Config(dequantize=True), dtype=torch.bfloat16, output_loading_info=True,
    )
    loaded.eval()
    loaded_params = dict(loaded.named_parameters())
    orig_params = dict(original.named_parameters())

    stored = {}
    with safe_open(f"{quant_dir}/model.safetensors", "pt") as f:
        for key in f.keys():
            t = f.get_tensor(key)
            stored[key] = {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape)}
        # transformers' decoder called directly on the stored tensors, outside the loading machinery.
        direct = {name: convert_moe_packed_tensors(f.get_tensor(name + "_blocks"), f.get_tensor(name + "_scales")) for name in decoded}

    experts = {}
    for name, value in decoded.items():
        got = loaded_params[name]
        orig = orig_params[name]
        entry = {
            "shape": list(got.shape),
            "dtype": str(got.dtype).replace("torch.", ""),
            "bitMismatches": int((bits(got) != bits(value)).sum()) if list(got.shape) == list(value.shape) else -1,
            "directBitMismatches": int((bits(direct[name]) != bits(value)).sum()) if list(direct[name].shape) == list(value.shape) else -1,
            "relErrVsOriginal": rel_err(got, orig) if got.shape == orig.shape else None,
        }
        if value.shape[-1] == value.shape[-2]:
            # What the pre-fix layout produced for a square matrix: the same values, transposed.
            entry["transposedRelErrVsOriginal"] = rel_err(value.transpose(-1, -2), orig)
        experts[name] = entry

    others = {}
    for name, p in orig_params.items():
        if name in decoded:
            continue
        q = loaded_params.get(name)
        others[name] = q is not None and q.shape == p.shape and bool(torch.equal(bits(q), bits(p)))

    ids = torch.randint(0, VOCAB, (2, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits_loaded = loaded(ids).logits.to(torch.float32)
        logits_ref = reference(ids).logits.to(torch.float32)
        logits_orig = original(ids).logits.to(torch.float32)
    cos = torch.nn.functional.cosine_similarity(logits_loaded.flatten(), logits_orig.flatten(), dim=0)
    return {
        "transformers": __import__("transformers").__version__,
        "torch": torch.__version__,
        # dequantize=True leaves a plain bf16 model: the experts came out of convert_moe_packed_tensors.
        "isQuantized": bool(getattr(loaded, "is_quantized", False)),
        "missing": sorted(info["missing_keys"]),
        "unexpected": sorted(info["unexpected_keys"]),
        "mismatched": sorted(str(k) for k in info["mismatched_keys"]),
        "errors": [str(e) for e in info["error_msgs"]],
        "stored": stored,
        "experts": experts,
        "othersEqual": others,
        "logits": {
            "maxAbsDiffLoadedVsReference": float((logits_loaded - logits_ref).abs().max()),
            "maxAbsReference": float(logits_ref.abs().max()),
            "relErrLoadedVsOriginal": rel_err(logits_loaded, logits_orig),
            "cosineLoadedVsOriginal": float(cos),
        },
    }


def main():
    command, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else (None, [])
    if command == "make" and args and len(args) % 3 == 0:
        for i in range(0, len(args), 3):
            make(args[i], int(args[i + 1]), int(args[i + 2]), seed=i)
    elif command == "check" and args and len(args) % 3 == 0:
        json.dump({args[i + 1]: check(*args[i:i + 3]) for i in range(0, len(args), 3)}, sys.stdout)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
