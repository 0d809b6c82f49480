#!/usr/bin/env python3
"""Independent reader for fp4kit's quantized checkpoints (test/interop.test.ts runs it).

usage: check_interop.py <output folder>

Parses every *.safetensors file with the `safetensors` package's own (Rust) parser
(`safetensors.deserialize`, framework-free), decodes element and scale codes with `ml_dtypes`
(float4_e2m1fn, float6_*, float8_e4m3fn, float8_e5m2, float8_e8m0fnu) and dequantizes in numpy
float32 following each layout's loader:
  compressed-tensors: e2m1 · (weight_scale / weight_global_scale)      (compressed_tensors dequantize)
  modelopt:           e2m1 · (weight_scale · weight_scale_2)           (ModelOpt NVFP4QTensor)
  gpt-oss:            ldexp(e2m1, scales − 127), blocks [E, out, in/32, 16] decoded to [E, out, in]
                      and transposed to the model's [E, in, out]        (transformers convert_moe_packed_tensors)
  fp4kit:             docs/layouts.md
Which tensors were quantized, with which format and shape, comes from fp4kit-summary.json.
Prints JSON { tensor: { sha256 of the float32 little-endian values in the input tensor's order,
count, first values } }.
"""
import glob
import hashlib
import json
import os
import sys

import ml_dtypes
import numpy as np
from safetensors import deserialize, safe_open

E2M1 = ml_dtypes.float4_e2m1fn
ELEMENT = {
    "mxfp4": (4, E2M1),
    "mxfp6_e2m3": (6, ml_dtypes.float6_e2m3fn),
    "mxfp6_e3m2": (6, ml_dtypes.float6_e3m2fn),
    "mxfp8_e4m3": (8, ml_dtypes.float8_e4m3fn),
    "mxfp8_e5m2": (8, ml_dtypes.float8_e5m2),
    "mxint8": (8, None),
}


def load_all(folder):
    """Every tensor of every file, and the fp4kit metadata of all files merged by tensor name."""
    tensors, fp4kit_meta = {}, {}
    for path in sorted(glob.glob(os.path.join(folder, "*.safetensors"))):
        for name, t in deserialize(open(path, "rb").read()):
            assert name not in tensors, name
            tensors[name] = t
        with safe_open(path, "numpy") as f:
            meta = f.metadata() or {}
        if "fp4kit" in meta:
            fp4kit_meta.update(json.loads(meta["fp4kit"])["tensors"])
    return tensors, fp4kit_meta


def u8(t):
    return np.frombuffer(bytes(t["data"]), dtype=np.uint8)


def f32_scalar(t):
    assert t["dtype"] == "F32", t["dtype"]
    return np.frombuffer(bytes(t["data"]), dtype="<f4")[0]


def decode_e2m1(codes):
    # ml_dtypes' float4 is stored one code per byte: view the 4-bit codes as that dtype.
    return codes.astype(np.uint8).view(E2M1).astype(np.float32)


def unpack(packed, bits, count):
    """fp4kit/compressed-tensors/ModelOpt/gpt-oss packing: element 2i in the low nibble;
    FP6: element j of 4 at bits 6j.. of the little-endian 24-bit word."""
    if bits == 8:
        return packed[:count].copy()
    if bits == 4:
        out = np.empty(packed.size * 2, dtype=np.uint8)
        out[0::2] = packed & 0x0F
        out[1::2] = packed >> 4
        return out[:count]
    if bits == 6:
        g = packed.reshape(-1, 3).astype(np.uint32)
        word = g[:, 0] | (g[:, 1] << 8) | (g[:, 2] << 16)
        out = np.stack([(word >> (6 * j)) & 0x3F for j in range(4)], axis=1).astype(np.uint8).reshape(-1)
        return out[:count]
    raise ValueError(bits)


def nvfp4_values(packed, scale_codes, rows, cols, combine):
    """E2M1 codes [rows, cols] times per-block (16) float32 multipliers from combine(e4m3 values)."""
    codes = unpack(packed, 4, rows * ((cols + 15) // 16) * 16).reshape(rows, -1)
    vals = decode_e2m1(codes)
    scales = scale_codes.view(ml_dtypes.float8_e4m3fn).astype(np.float32).reshape(rows, -1)
    mult = combine(scales).astype(np.float32)
    out = (vals.reshape(rows, -1, 16) * mult[:, :, None]).astype(np.float32)
    return out.reshape(rows, -1)[:, :cols]


def mx_values(packed, scale_codes, rows, cols, fmt):
    bits, dtype = ELEMENT[fmt]
    blocks = (cols + 31) // 32
    codes = unpack(packed, bits, rows * blocks * 32).reshape(rows, blocks, 32)
    if dtype is None:  # MX INT8: two's complement k, value k/64
        vals = codes.view(np.int8).astype(np.float32) / np.float32(64)
    else:
        vals = codes.view(dtype).astype(np.float32) if bits == 8 else decode_small(codes, dtype)
    scales = scale_codes.view(ml_dtypes.float8_e8m0fnu).astype(np.float32).reshape(rows, blocks)
    out = (vals * scales[:, :, None]).astype(np.float32)
    return out.reshape(rows, -1)[:, :cols]


def decode_small(codes, dtype):
    return codes.astype(np.uint8).view(dtype).astype(np.float32)


def fgmp_values(t, name, rows, cols):
    data, scales, mask = u8(t[name + ".qdata"]), u8(t[name + ".qscales"]), u8(t[name + ".mask"])
    ts, f8 = f32_scalar(t[name + ".tensor_scale"]), f32_scalar(t[name + ".fp8_scale"])
    bpr = (cols + 15) // 16
    out = np.zeros((rows, bpr * 16), dtype=np.float32)
    o = s = 0
    for b in range(rows * bpr):
        r, j = divmod(b, bpr)
        if (mask[b >> 3] >> (b & 7)) & 1:
            v = data[o:o + 16].view(ml_dtypes.float8_e4m3fn).astype(np.float32) * f8
            o += 16
        else:
            total = np.float32(ts * scales[s:s + 1].view(ml_dtypes.float8_e4m3fn).astype(np.float32)[0])
            s += 1
            v = decode_e2m1(unpack(data[o:o + 8], 4, 16)) * total
            o += 8
        out[r, j * 16:(j + 1) * 16] = v.astype(np.float32)
    return out[:, :cols]


def dequantize(layout, t, meta, entry):
    name, fmt, shape = entry["name"], entry["format"], entry["shape"]
    cols = shape[-1]
    rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    module = name[: -len(".weight")] if name.endswith(".weight") else name
    if layout == "compressed-tensors":
        g = f32_scalar(t[module + ".weight_global_scale"])
        return nvfp4_values(u8(t[module + ".weight_packed"]), u8(t[module + ".weight_scale"]), rows, cols, lambda s: s / g)
    if layout == "modelopt":
        s2 = f32_scalar(t[module + ".weight_scale_2"])
        return nvfp4_values(u8(t[module + ".weight"]), u8(t[module + ".weight_scale"]), rows, cols, lambda s: s * s2)
    if layout == "gpt-oss":
        # As convert_moe_packed_tensors: the stored shapes alone say how to decode, [*prefix, G, 16]
        # blocks to [*prefix, G·32] values, then axes 1 and 2 swapped. fp4kit's summary shape is only
        # checked against the result, not used to decode.
        blocks, scales = t[name + "_blocks"], t[name + "_scales"]
        *prefix, groups, sixteen = blocks["shape"]
        assert sixteen == 16 and scales["shape"] == prefix + [groups], (blocks["shape"], scales["shape"])
        n = int(np.prod(prefix)) * groups
        codes = unpack(u8(blocks), 4, n * 32).reshape(n, 32)
        exps = u8(scales).astype(np.int32).reshape(n, 1) - 127
        values = np.ldexp(decode_e2m1(codes), exps).astype(np.float32).reshape(*prefix, groups * 32)
        values = np.ascontiguousarray(values.swapaxes(1, 2))
        assert list(values.shape) == list(shape), (values.shape, shape)
        return values
    if layout == "fp4kit":
        info = meta[name]
        assert info["format"] == fmt and info["shape"] == shape, info
        if fmt == "fgmp":
            return fgmp_values(t, name, rows, cols)
        if fmt == "nvfp4":
            ts = f32_scalar(t[name + ".tensor_scale"])
            return nvfp4_values(u8(t[name + ".qdata"]), u8(t[name + ".qscales"]), rows, cols, lambda s: ts * s)
        return mx_values(u8(t[name + ".qdata"]), u8(t[name + ".qscales"]), rows, cols, fmt)
    raise ValueError(layout)


def main():
    folder = sys.argv[1]
    summary = json.load(open(os.path.join(folder, "fp4kit-summary.json")))
    tensors, meta = load_all(folder)
    result = {}
    for entry in summary["tensors"]:
        if entry["action"] != "quantized":
            assert entry["name"] in tensors, entry["name"]
            continue
        values = np.ascontiguousarray(dequantize(summary["layout"], tensors, meta, entry), dtype="<f4")
        result[entry["name"]] = {
            "sha256": hashlib.sha256(values.tobytes()).hexdigest(),
            "count": int(values.size),
            "first": [float(v) for v in values.reshape(-1)[:4]],
        }
    json.dump({"layout": summary["layout"], "tensors": result}, sys.stdout)


if __name__ == "__main__":
    main()
