#!/usr/bin/env python3
"""Generate fp4kit's conformance vectors from independent references.

- Element casts: ml_dtypes (`x.astype(fmt).view(uint8)`), swept over every positive float32 to
  find each format's breakpoints, plus structured cases (every representable value, every
  midpoint, one ulp either side, overflow, subnormals, ±0, ±Inf, NaNs).
- MX blocks (OCP MX v1.0, floor scale rule): computed here with numpy (exact exponents from frexp,
  division in float64) and ml_dtypes element casts, then checked against the `microxcaling`
  outputs in ../shared/reference-vectors (copied to test/fixtures/mx/microxcaling).
- NVFP4: torchao's `_nvfp4_quantize` two-level recipe, re-stated here step by step in torch
  float32 ops (torchao itself does not install here), with ml_dtypes for the E2M1 cast.

Nothing here imports fp4kit. Run:  pip install numpy ml_dtypes torch && python3 scripts/gen_vectors.py
The outputs are committed; tests read them, CI needs no Python.
"""
import json
import os
import shutil
import sys

import ml_dtypes
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "test", "fixtures")
SHARED = os.path.join(ROOT, "..", "shared", "reference-vectors")

ELEMENT_DTYPES = {
    "e2m1": ml_dtypes.float4_e2m1fn,
    "e2m3": ml_dtypes.float6_e2m3fn,
    "e3m2": ml_dtypes.float6_e3m2fn,
    "e4m3": ml_dtypes.float8_e4m3fn,
    "e5m2": ml_dtypes.float8_e5m2,
    "e8m0": ml_dtypes.float8_e8m0fnu,
}
CODE_COUNT = {"e2m1": 16, "e2m3": 64, "e3m2": 64, "e4m3": 256, "e5m2": 256, "e8m0": 256}


def write(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.ascontiguousarray(array).tofile(path)


def cast_codes(bits_u32, dtype):
    return bits_u32.view(np.float32).astype(dtype).view(np.uint8)


# ---------------------------------------------------------------- element casts
def breakpoints(dtype, sign_bit):
    """[(first_bits, code)] over all float32 patterns sign|0 .. sign|0x7fffffff, in order."""
    points = []
    prev = None
    step = 1 << 26
    for start in range(0, 1 << 31, step):
        bits = np.arange(start, start + step, dtype=np.uint32) | np.uint32(sign_bit)
        codes = cast_codes(bits, dtype)
        if prev is None or codes[0] != prev:
            points.append([int(bits[0]), int(codes[0])])
        change = np.nonzero(codes[1:] != codes[:-1])[0] + 1
        for i in change:
            points.append([int(bits[i]), int(codes[i])])
        prev = codes[-1]
    return points


def structured_inputs(name, dtype):
    """Every representable value, every midpoint, ±1 ulp around both, plus specials."""
    n = CODE_COUNT[name]
    values = np.arange(n, dtype=np.uint8).view(dtype).astype(np.float32)
    finite = np.unique(np.abs(values[np.isfinite(values)]))
    mids = ((finite[:-1].astype(np.float64) + finite[1:]) / 2).astype(np.float32)
    top = float(finite[-1])
    extra = np.array([top * 1.0625, top * 1.125, top * 1.5, top * 2, 3.0e38, 1e-45, 1e-40, 1.17549435e-38,
                      2.0 ** -127, 2.0 ** -128, 2.0 ** -140], dtype=np.float32)
    base = np.concatenate([finite, mids, extra]).astype(np.float32)
    bits = base.view(np.uint32)
    around = np.concatenate([bits, bits + 1, bits - 1, bits + 2, bits - 2])
    around = around[(around & 0x7FFFFFFF) <= 0x7F7FFFFF]
    both = np.concatenate([around, around | np.uint32(0x80000000)])
    specials = np.array([0, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001, 0xFFFFFFFF,
                         0x7FBFFFFF, 0x00000001, 0x80000001, 0x007FFFFF, 0x00800000, 0x7F7FFFFF, 0xFF7FFFFF],
                        dtype=np.uint32)
    rng = np.random.default_rng(1234)
    random_bits = rng.integers(0, 1 << 32, size=20000, dtype=np.uint64).astype(np.uint32)
    scaled = (rng.standard_normal(20000) * top / 3).astype(np.float32).view(np.uint32)
    allbits = np.unique(np.concatenate([both, specials, random_bits, scaled]))
    return allbits


def gen_elements():
    manifest = {}
    for name, dtype in ELEMENT_DTYPES.items():
        print(f"element {name}: sweeping 2^32 float32 inputs", flush=True)
        pos = breakpoints(dtype, 0)
        neg = breakpoints(dtype, 0x80000000)
        inputs = structured_inputs(name, dtype)
        codes = cast_codes(inputs, dtype)
        decoded = np.arange(CODE_COUNT[name], dtype=np.uint8).view(dtype).astype(np.float32)
        write(os.path.join(OUT, "elements", f"{name}_inputs_u32.bin"), inputs)
        write(os.path.join(OUT, "elements", f"{name}_codes_u8.bin"), codes)
        write(os.path.join(OUT, "elements", f"{name}_decode_f32.bin"), decoded)
        with open(os.path.join(OUT, "elements", f"{name}_breakpoints.json"), "w") as f:
            json.dump({"positive": pos, "negative": neg}, f)
        manifest[name] = {"cases": int(inputs.size), "codes": CODE_COUNT[name],
                          "breakpoints": [len(pos), len(neg)]}
    return manifest


# ---------------------------------------------------------------- MX blocks
# emax and largest finite value of each MX element format (OCP MX v1.0, table 1 / section 5.3).
MX_FORMATS = {
    "mxfp4": ("e2m1", 2, 6.0),
    "mxfp6_e2m3": ("e2m3", 2, 7.5),
    "mxfp6_e3m2": ("e3m2", 4, 28.0),
    "mxfp8_e4m3": ("e4m3", 8, 448.0),
    "mxfp8_e5m2": ("e5m2", 15, 57344.0),
    "mxint8": ("int8", 0, 127 / 64),
}
MICROXCALING_FILES = {
    "mxfp4": "mx_fp4_dequantized_f32.bin",
    "mxfp6_e2m3": "mx_fp6_e2m3_dequantized_f32.bin",
    "mxfp6_e3m2": "mx_fp6_e3m2_dequantized_f32.bin",
    "mxfp8_e4m3": "mx_fp8_e4m3_dequantized_f32.bin",
    "mxfp8_e5m2": "mx_fp8_e5m2_dequantized_f32.bin",
    "mxint8": "mx_int8_dequantized_f32.bin",
}


def mx_quantize(blocks, fmt):
    """OCP MX quantization of float32 blocks [n, 32]: (scale codes, element codes, dequantized)."""
    elem, emax, max_norm = MX_FORMATS[fmt]
    x = blocks.astype(np.float64)
    n = blocks.shape[0]
    scales = np.zeros(n, dtype=np.uint8)
    codes = np.zeros(blocks.shape, dtype=np.uint8)
    deq = np.zeros(blocks.shape, dtype=np.float32)
    for i in range(n):
        row = x[i]
        if not np.all(np.isfinite(row)):
            scales[i] = 0xFF
            deq[i] = np.nan
            continue
        amax = np.max(np.abs(row))
        # floor(log2(amax)) exactly: frexp gives amax = m·2^e with m in [0.5, 1).
        shared = (np.frexp(amax)[1] - 1) if amax > 0 else -126
        s = max(shared - emax, -127)
        scales[i] = s + 127
        scaled = np.clip(row / 2.0 ** s, -max_norm, max_norm)  # exact in float64
        if elem == "int8":
            k = np.rint(scaled * 64).astype(np.int64)  # rint: round half to even
            k = np.clip(k, -127, 127)
            codes[i] = (k & 0xFF).astype(np.uint8)
            deq[i] = (k / 64.0 * 2.0 ** s).astype(np.float32)
        else:
            q = scaled.astype(ELEMENT_DTYPES[elem])
            codes[i] = q.view(np.uint8)
            deq[i] = (q.astype(np.float64) * 2.0 ** s).astype(np.float32)
    return scales, codes, deq


def adversarial_blocks():
    rng = np.random.default_rng(7)
    out = []
    out.append(np.zeros(32))  # all zero
    z = np.zeros(32); z[5] = -0.0; out.append(z)
    for v in [1.0, -1.0, 3.0, 6.0, 7.5, 448.0, 2.0 ** -130, 1e-42, 3.0e38, -3.0e38]:
        b = np.zeros(32); b[3] = v; out.append(b)  # single value
    for e in [-140, -127, -126, -100, -20, -1, 0, 1, 7, 20, 100, 126, 127]:
        p = 2.0 ** e
        b = rng.standard_normal(32) * p / 4; b[0] = p; out.append(b)  # amax exactly a power of two
        below = np.nextafter(np.float32(p), np.float32(0))
        b = rng.standard_normal(32) * p / 4; b[1] = -below; out.append(b)  # amax just below one
    for e in [-149, -145, -135, -127]:
        out.append(rng.integers(-(1 << 20), 1 << 20, 32) * 2.0 ** -149)  # float32-subnormal blocks
        b = rng.standard_normal(32) * 2.0 ** e; out.append(b)
    for special in [np.nan, np.inf, -np.inf]:
        b = rng.standard_normal(32); b[9] = special; out.append(b)
    # Ties: elements exactly at midpoints of each format's grid, under several scales.
    grid = np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 0.0625, 0.1875, 0.3125, 1.0625, 3.75, 6.5, 7.25,
                     13.0, 26.0, 232.0, 464.0, 0.5 + 2 ** -10, 1.5 - 2 ** -12])
    for s in [-3, 0, 5]:
        b = np.zeros(32); b[:len(grid)] = grid * 2.0 ** s; b[31] = 6 * 2.0 ** s; out.append(b)
        out.append(-b)
    for scale in [1e-30, 1e-3, 1.0, 1e3, 1e30]:
        for _ in range(8):
            out.append(rng.standard_normal(32) * scale)
            out.append(rng.laplace(size=32) * scale * (rng.random(32) < 0.3))
    arr = np.array(out, dtype=np.float32)
    # Bring ties back exactly (float32 conversion keeps these exact); also ±1 ulp variants of the tie blocks.
    bits = arr.view(np.uint32)
    up = (bits + 1).view(np.float32); down = (bits - 1).view(np.float32)
    finite_rows = np.all(np.isfinite(arr), axis=1) & np.all((bits & 0x7FFFFFFF) > 1, axis=1)
    return np.concatenate([arr, up[finite_rows], down[finite_rows]]).astype(np.float32)


def gen_mx():
    manifest = {}
    mx_dir = os.path.join(OUT, "mx")
    adv = adversarial_blocks()
    rng = np.random.default_rng(99)
    rand = (rng.standard_normal((512, 32)) * np.exp(rng.uniform(-10, 10, (512, 1)))).astype(np.float32)
    blocks = np.concatenate([adv, rand]).astype(np.float32)
    write(os.path.join(mx_dir, "blocks_f32.bin"), blocks)
    manifest["blocks"] = {"rows": int(blocks.shape[0]), "cols": 32}
    # microxcaling's own outputs (shared/reference-vectors), copied as they are.
    mxc_dir = os.path.join(mx_dir, "microxcaling")
    os.makedirs(mxc_dir, exist_ok=True)
    for f in os.listdir(SHARED):
        shutil.copy(os.path.join(SHARED, f), os.path.join(mxc_dir, f))
    mxc_in = np.fromfile(os.path.join(SHARED, "mx_in_f32.bin"), dtype=np.float32).reshape(-1, 32)
    for fmt in MX_FORMATS:
        scales, codes, deq = mx_quantize(blocks, fmt)
        write(os.path.join(mx_dir, f"{fmt}_scales_u8.bin"), scales)
        write(os.path.join(mx_dir, f"{fmt}_codes_u8.bin"), codes)
        write(os.path.join(mx_dir, f"{fmt}_dequant_f32.bin"), deq)
        # Cross-check this script's MX rule with microxcaling itself.
        _, _, mine = mx_quantize(mxc_in, fmt)
        theirs = np.fromfile(os.path.join(SHARED, MICROXCALING_FILES[fmt]), dtype=np.float32).reshape(-1, 32)
        same = (mine == theirs) | (np.isnan(mine) & np.isnan(theirs))
        bad_rows = int(np.sum(~np.all(same, axis=1)))
        manifest[fmt] = {"microxcaling_rows_differing": bad_rows}
        print(f"{fmt}: {bad_rows} of {mxc_in.shape[0]} microxcaling rows differ from the exact rule", flush=True)
    return manifest


# ---------------------------------------------------------------- NVFP4
def nvfp4_torchao(x, per_tensor_scale=None):
    """torchao _nvfp4_quantize (two-level), step by step in torch float32; returns numpy arrays."""
    import torch

    F4_E2M1_MAX, F8E4M3_MAX = 6.0, 448.0
    E4M3_EPS = torch.finfo(torch.float8_e4m3fn).tiny
    data = torch.from_numpy(x).float()
    rows, k = data.shape
    if per_tensor_scale is None:
        per_tensor_scale = torch.max(torch.abs(data)).to(torch.float32) / (F8E4M3_MAX * F4_E2M1_MAX)
    else:
        per_tensor_scale = torch.tensor(per_tensor_scale, dtype=torch.float32)
    blocks = data.reshape(rows, -1, 16)
    max_abs = torch.amax(torch.abs(blocks), dim=-1)
    block_scale = max_abs / F4_E2M1_MAX
    scaled_block_scales = block_scale.to(torch.float32) / per_tensor_scale
    scaled_fp8 = torch.clamp(scaled_block_scales, min=E4M3_EPS, max=F8E4M3_MAX).to(torch.float8_e4m3fn)
    total_scale = per_tensor_scale * scaled_fp8.to(torch.float32)
    data_scaled = torch.clamp(blocks / total_scale.unsqueeze(-1), -F4_E2M1_MAX, F4_E2M1_MAX).reshape(rows, k)
    codes = data_scaled.numpy().astype(ml_dtypes.float4_e2m1fn).view(np.uint8)
    packed = (codes[:, 0::2] | (codes[:, 1::2] << 4)).astype(np.uint8)  # element 2i in the low nibble
    scales = scaled_fp8.view(torch.uint8).numpy().reshape(rows, -1)
    # torchao NVFP4Tensor.to_dtype: data_f32 * (per_tensor_scale * scale_e4m3)
    hp_scales = (per_tensor_scale * scaled_fp8.to(torch.float32)).reshape(rows, -1, 1)
    values = torch.from_numpy(codes.view(ml_dtypes.float4_e2m1fn).astype(np.float32)).reshape(rows, -1, 16)
    deq = (values * hp_scales).reshape(rows, k).numpy()
    return float(per_tensor_scale), scales, packed, deq


def gen_nvfp4():
    manifest = {}
    d = os.path.join(OUT, "nvfp4")
    rng = np.random.default_rng(2025)
    cases = {}
    cases["normal"] = (rng.standard_normal((64, 256)) * 0.02).astype(np.float32)
    outl = rng.standard_normal((32, 512)).astype(np.float32)
    outl[rng.random(outl.shape) < 0.002] *= 300
    cases["outliers"] = outl
    wide = (rng.standard_normal((16, 128)) * np.exp(rng.uniform(-20, 20, (16, 8))).repeat(16, axis=1)).astype(np.float32)
    wide[3, :32] = 0.0
    wide[4, 16:32] = -0.0
    cases["wide_range"] = wide
    ties = np.tile(np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.0, -0.25, -0.75, -1.25, -1.75, -2.5, -3.5, -5.0, -6.0],
                            dtype=np.float32), (8, 4))
    cases["ties"] = ties * np.float32(0.5)
    bf = (rng.standard_normal((32, 64)) * 0.1).astype(np.float32)
    cases["bf16_source"] = bf.astype(ml_dtypes.bfloat16).astype(np.float32)
    calibrated = {"normal": None, "outliers": None, "wide_range": None, "ties": None, "bf16_source": None}
    runs = [(name, None) for name in cases] + [("outliers", 0.05), ("normal", 1e-5)]
    for idx, (name, pts) in enumerate(runs):
        x = cases[name]
        t, scales, packed, deq = nvfp4_torchao(x, pts)
        key = f"{name}" if pts is None else f"{name}_calibrated{idx}"
        write(os.path.join(d, f"{key}_input_f32.bin"), x)
        write(os.path.join(d, f"{key}_scales_u8.bin"), scales)
        write(os.path.join(d, f"{key}_data_u8.bin"), packed)
        write(os.path.join(d, f"{key}_dequant_f32.bin"), deq.astype(np.float32))
        manifest[key] = {"rows": int(x.shape[0]), "cols": int(x.shape[1]), "tensorScale": t,
                         "calibrated": pts is not None,
                         "tensorScaleBits": int(np.array([t], dtype=np.float32).view(np.uint32)[0])}
    del calibrated
    return manifest


def main():
    os.makedirs(OUT, exist_ok=True)
    only = sys.argv[1:] or ["elements", "mx", "nvfp4"]
    path = os.path.join(OUT, "manifest.json")
    manifest = json.load(open(path)) if os.path.exists(path) else {}
    if "elements" in only:
        manifest["elements"] = gen_elements()
    if "mx" in only:
        manifest["mx"] = gen_mx()
    if "nvfp4" in only:
        manifest["nvfp4"] = gen_nvfp4()
    manifest["generator"] = {
        "script": "scripts/gen_vectors.py",
        "numpy": np.__version__,
        "ml_dtypes": ml_dtypes.__version__,
    }
    try:
        import torch
        manifest["generator"]["torch"] = torch.__version__
    except ImportError:
        pass
    with open(path, "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
