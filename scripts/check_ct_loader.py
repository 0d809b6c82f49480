#!/usr/bin/env python3
"""fp4kit's compressed-tensors NVFP4 output against the real loader (test/loaders.test.ts runs it):
transformers with the compressed-tensors package, vendored in test/vendor/compressed-tensors (not in
the CI machines' package mirror; see its PROVENANCE.md).

usage:
  check_ct_loader.py make <dir> <arch> <dtype> [<dir> <arch> <dtype> ...]
      A small model of each architecture (llama, gemma2, phi3, qwen2-tied) built by transformers from
      a config (no download), every parameter seeded random, saved as safetensors in <dtype>
      (bfloat16, float32 or float16; llama is saved in two shards).
  check_ct_loader.py check <model dir> <quantized dir> <decoded.safetensors> [...]
      For each triple: <quantized dir> is `fp4kit quantize <model dir> --format nvfp4 --layout
      compressed-tensors`; <decoded.safetensors> holds fp4kit's own decode of every quantized weight
      (float32, input names). Loads the quantized folder as a user would,
      AutoModelForCausalLM.from_pretrained(<quantized dir>), runs a forward, and loads it again with
      CompressedTensorsConfig(dequantize=True) to read every weight; the reference is the input model
      in bfloat16 with each quantized weight replaced by fp4kit's decode. Prints JSON keyed by
      <quantized dir>: loading info, the config dtype, per-weight bit equality, and logits.

  check_ct_loader.py make-vlm <dir>
      A small LLaVA (CLIP vision tower, projector, Llama language model), seeded random, bfloat16.
      transformers 5 saves it under the hub's names (vision_tower…, language_model.model…) and
      renames its modules on load (model.vision_tower…, model.language_model…).
  check_ct_loader.py check-vlm <model dir> <quantized dir>
      <quantized dir> is the LLaVA quantized with its vision tower and projector kept (--skip). Loads
      it as a user would and prints JSON: loading info, whether every kept parameter equals the
      input's bit for bit, how many there are, and whether the logits are finite.

Exits non-zero on any exception; the assertions on the printed numbers live in the test.
"""
import json
import math
import os
import sys

VENDORED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "vendor", "compressed-tensors", "src")
sys.path.insert(0, os.path.abspath(VENDORED))

import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoConfig, AutoModelForCausalLM, CompressedTensorsConfig  # noqa: E402

VOCAB, HIDDEN, INTER, LAYERS, HEADS = 128, 64, 128, 2, 2
DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32, "float16": torch.float16}


def config_for(arch):
    common = dict(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=INTER, num_hidden_layers=LAYERS,
                  num_attention_heads=HEADS, num_key_value_heads=1, max_position_embeddings=64)
    if arch == "llama":
        return transformers.LlamaConfig(**common, head_dim=32)
    if arch == "gemma2":  # its config holds floats such as final_logit_softcapping 30.0: strict in transformers 5
        return transformers.Gemma2Config(**common, head_dim=32, sliding_window=16)
    if arch == "phi3":  # one fused qkv_proj and gate_up_proj tensor per layer
        return transformers.Phi3Config(**common, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    if arch == "qwen2-tied":
        return transformers.Qwen2Config(**common, tie_word_embeddings=True)
    raise SystemExit(f"unknown arch {arch}")


def make(folder, arch, dtype, seed):
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config_for(arch))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1]))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    model.to(DTYPES[dtype]).save_pretrained(folder, max_shard_size="200KB" if arch == "llama" else "50GB")


def bits(t):
    """float32 bit patterns (bf16/f16 widened exactly), so -0.0 and 0.0 differ."""
    return t.detach().to(torch.float32).contiguous().view(torch.int32)


def check(model_dir, quant_dir, decoded_path):
    tokens = torch.randint(0, VOCAB, (2, 12), generator=torch.Generator().manual_seed(7))
    # As a user loads it: the config's dtype, compressed-tensors' default mode.
    model, info = AutoModelForCausalLM.from_pretrained(quant_dir, output_loading_info=True)
    with torch.no_grad():
        logits = model(tokens).logits.float()
    loading = {k: sorted(map(str, v)) for k, v in info.items()}
    # Every weight, decompressed at load.
    plain = AutoModelForCausalLM.from_pretrained(quant_dir, quantization_config=CompressedTensorsConfig(dequantize=True), dtype=torch.bfloat16)
    params = dict(plain.named_parameters())
    decoded = load_file(decoded_path)
    weights = {}
    for name, mine in decoded.items():
        theirs = params[name]
        weights[name] = {"shape": list(theirs.shape), "dtype": str(theirs.dtype),
                         "bitMismatches": int((bits(theirs) != bits(mine.to(torch.bfloat16))).sum()),
                         "bf16Exact": bool(torch.equal(bits(mine.to(torch.bfloat16)), bits(mine)))}
    # The reference: the input model in bf16 with fp4kit's decode in place of each quantized weight.
    ref = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
    original = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    ref_params = dict(ref.named_parameters())
    with torch.no_grad():
        for name, mine in decoded.items():
            ref_params[name].copy_(mine.to(torch.bfloat16))
        ref_logits = ref(tokens).logits.float()
        original_logits = original(tokens).logits.float()
    others = {n: bool(torch.equal(bits(p), bits(ref_params[n]))) for n, p in params.items() if n not in decoded and n in ref_params}
    return {
        "transformers": transformers.__version__,
        "compressedTensors": __import__("compressed_tensors").__version__,
        "configDtype": str(AutoConfig.from_pretrained(quant_dir).dtype),
        "modelDtype": str(model.dtype),
        "missing": loading.get("missing_keys", []), "unexpected": loading.get("unexpected_keys", []),
        "mismatched": loading.get("mismatched_keys", []), "errors": loading.get("error_msgs", []),
        "weights": weights,
        "othersEqual": others,
        "logits": {
            "maxAbsDiffLoadedVsReference": float((logits - ref_logits).abs().max()),
            "maxAbsReference": float(ref_logits.abs().max()),
            "relErrLoadedVsOriginal": float((logits - original_logits).norm() / original_logits.norm()),
        },
    }


def make_vlm(folder):
    text = dict(model_type="llama", vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=INTER, num_hidden_layers=LAYERS,
                num_attention_heads=HEADS, num_key_value_heads=1, max_position_embeddings=64)
    vision = dict(model_type="clip_vision_model", hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                  image_size=32, patch_size=8)
    torch.manual_seed(5)
    model = transformers.LlavaForConditionalGeneration(transformers.LlavaConfig(text_config=text, vision_config=vision, image_token_index=VOCAB - 1))
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g) if "norm" in name else
                    torch.randn(p.shape, generator=g) / math.sqrt(p.shape[-1]) if p.dim() >= 2 else 0.1 * torch.randn(p.shape, generator=g))
    model.to(torch.bfloat16).save_pretrained(folder)


def check_vlm(model_dir, quant_dir):
    cls = transformers.LlavaForConditionalGeneration
    model, info = cls.from_pretrained(quant_dir, output_loading_info=True)
    ref = cls.from_pretrained(model_dir, dtype=torch.bfloat16)
    ref_params = dict(ref.named_parameters())
    kept = {n: bool(torch.equal(bits(p), bits(ref_params[n]))) for n, p in model.named_parameters()
            if ("vision_tower" in n or "multi_modal_projector" in n) and n in ref_params}
    tokens = torch.randint(0, VOCAB - 2, (1, 10), generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        logits = model(input_ids=tokens).logits.float()
    loading = {k: sorted(map(str, v)) for k, v in info.items()}
    return {"missing": loading.get("missing_keys", []), "unexpected": loading.get("unexpected_keys", []),
            "errors": loading.get("error_msgs", []), "kept": kept, "logitsFinite": bool(torch.isfinite(logits).all())}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("make", "check", "make-vlm", "check-vlm"):
        raise SystemExit(__doc__)
    args = sys.argv[2:]
    if sys.argv[1] == "make-vlm":
        make_vlm(args[0])
        return
    if sys.argv[1] == "check-vlm":
        torch.set_num_threads(1)
        print(json.dumps(check_vlm(args[0], args[1])))
        return
    if sys.argv[1] == "make":
        for i in range(0, len(args), 3):
            make(args[i], args[i + 1], args[i + 2], 1000 + i)
        return
    torch.set_num_threads(1)
    print(json.dumps({args[i + 1]: check(args[i], args[i + 1], args[i + 2]) for i in range(0, len(args), 3)}))


if __name__ == "__main__":
    main()
