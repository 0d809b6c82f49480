#!/usr/bin/env python3
"""Reference vectors for fp4kit's gradient quantizers (test/gradient-quant.test.ts).

Written from the formulas, not from fp4kit's code:
- the per-group affine quantizer of 1-bit FQT / StatQuant (Gaochang-bjtu/1-bit-FQT
  bnn/layers/preconditioner.py DiagonalPreconditioner, quantize.py UniformQuantize):
  z = min, R = max - min, B = 2^b - 1, code = round-stochastic((x - z) * B / R), x^ = code * R / B + z
  (fp4kit drops the released code's +-1e-8 on min and max: a constant group gets R = 0 and all codes 0);
- the per-group grouping: rows (per sample, PSQ), columns (per channel), the whole tensor (PTQ);
- top-k pruning exactly as the released code's `_mask` does it, with torch.topk:
  score = max |g| per group, th = topk(score, k).values.min(), mask = score >= th, k = int(G / b)
  (fp4kit takes k = max(1, k): the released code fails for G < b);
- AGP as the paper describes it: p_i = N R_i / (b sum R), clamped to 1 with the excess given to the
  others (water-filling, solved here by sorting, not by fp4kit's iteration), kept with
  probability p_i and rescaled by 1/p_i, pruned groups zero;
- stochastic rounding given uniform noise: the noise is fp4kit's documented counter generator
  (README "Stochastic rounding": MurmurHash3 fmix32 keyed by seed and flat index), implemented
  here in numpy; the code rounds up iff bits < frac * 2^32.

Run: python3 scripts/gradient-quant-vectors.py  (writes test/fixtures/gradient-quant-vectors.json)
"""
import json
import os

import numpy as np
import torch

MASK32 = 0xFFFFFFFF


def fmix32(h):
    h = np.asarray(h, dtype=np.uint64) & MASK32
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & MASK32
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & MASK32
    h ^= h >> np.uint64(16)
    return h


def random_bits(seed, index):
    index = np.asarray(index, dtype=np.uint64)
    hi = index >> np.uint64(32)
    lo = index & np.uint64(MASK32)
    key = fmix32(np.uint64(seed) ^ fmix32(hi ^ np.uint64(0x9E3779B9)))
    return fmix32(lo ^ key)


KEEP_BASE = 1 << 52


def keep_uniform(seed, g):
    r1 = random_bits(seed, KEEP_BASE + 2 * g).astype(np.float64)
    r2 = (random_bits(seed, KEEP_BASE + 2 * g + 1) >> np.uint64(11)).astype(np.float64)
    return (r1 * 2.0**21 + r2) * 2.0**-53


def group_view(x, groups):
    """The gradient as a list of groups (each a 1-D float32 array) and each element's group."""
    rows, cols = x.shape
    if groups == 'sample':
        return [x[r, :] for r in range(rows)], np.repeat(np.arange(rows), cols).reshape(rows, cols)
    if groups == 'channel':
        return [x[:, c] for c in range(cols)], np.tile(np.arange(cols), rows).reshape(rows, cols)
    return [x.reshape(-1)], np.zeros((rows, cols), dtype=np.int64)


def water_fill(R, K):
    """p = min(1, c R) with sum p = K over groups with R > 0 (sorted: the k largest clamped)."""
    p = np.zeros_like(R)
    pos = np.flatnonzero(R > 0)
    if len(pos) == 0:
        return p
    order = pos[np.argsort(-R[pos], kind='stable')]
    r = R[order]
    for k in range(len(r) + 1):
        if k == len(r):
            p[order] = 1.0
            return p
        c = (K - k) / r[k:].sum()
        if c * r[k] < 1 and (k == 0 or c * r[k - 1] >= 1):
            p[order[:k]] = 1.0
            p[order[k:]] = c * r[k:]
            return p
    raise AssertionError('no water level')


def quantize(x, bits, groups, prune, seed):
    rows, cols = x.shape
    B = float(2**bits - 1)
    gl, gid = group_view(x, groups)
    G = len(gl)
    lo = np.array([float(v.min()) if v.size else 0.0 for v in gl], dtype=np.float64) + 0.0
    hi = np.array([float(v.max()) if v.size else 0.0 for v in gl], dtype=np.float64) + 0.0
    R = hi - lo
    if prune == 'none':
        p = np.ones(G)
        mask = np.ones(G, dtype=np.uint8)
    elif prune == 'topk':
        score = torch.tensor(np.maximum(np.abs(lo), np.abs(hi)))
        k = max(1, int(G / bits))
        th = torch.topk(score, k).values.min()
        mask = (score >= th).numpy().astype(np.uint8)
        p = mask.astype(np.float64)
    else:
        p = water_fill(R, G / bits)
        p[(R == 0) & (lo != 0)] = 1.0  # a constant non-zero group is exact: always kept
        mask = (keep_uniform(seed, np.arange(G)) < p).astype(np.uint8)
    kept = mask == 1
    safe_p = np.where(kept, p, 1.0)
    scales = np.where(kept, (R / B) / safe_p, 0.0).astype(np.float32)
    zeros = np.where(kept, lo / safe_p, 0.0).astype(np.float32)
    # codes: u = (x - z) * B / R, rounded up iff the element's random bits < frac * 2^32
    xs = x.astype(np.float64)
    g = gid
    Rg = R[g]
    with np.errstate(divide='ignore', invalid='ignore'):
        u = np.where(Rg > 0, (xs - lo[g]) * (B / np.where(Rg > 0, Rg, 1.0)), 0.0)
    u = np.minimum(u, B)
    f = np.floor(u)
    noise = random_bits(seed, np.arange(rows * cols, dtype=np.uint64)).reshape(rows, cols).astype(np.float64)
    codes = f + (noise < (u - f) * 2.0**32)
    codes = np.where(kept[g] & (Rg > 0), codes, 0).astype(np.uint8)
    return dict(scales=scales, zeros=zeros, mask=mask, p=p, codes=codes)


def f32_bits(a):
    return np.asarray(a, dtype=np.float32).view(np.uint32).tolist()


def main():
    rng = np.random.default_rng(20240826)
    inputs = []
    x = (rng.standard_normal((12, 10)) * np.exp(rng.uniform(-3, 3, size=(12, 1)))).astype(np.float32)
    inputs.append(('gaussian rows of varied scale', x))
    x = rng.standard_normal((9, 17)).astype(np.float32)
    x[2, :] = 0.0
    x[5, :] = 1.5
    x[:, 4] = -0.25
    x[7, 3] = 40.0  # one dominant group: clamped to p = 1 under AGP
    inputs.append(('zero row, constant row and column, an outlier', x))
    x = (rng.laplace(size=(16, 8)) * 1e-3).astype(np.float32)
    x[:, 1] = x[:, 0]  # tied channel scores
    x[3, :] = x[4, :]  # tied sample scores
    inputs.append(('tied top-k scores', x))
    inputs.append(('1x1', np.array([[0.3]], dtype=np.float32)))
    x = rng.uniform(-1, 1, size=(1, 33)).astype(np.float32)
    inputs.append(('one row', x))
    x = (rng.standard_normal((5, 6)) * 1e30).astype(np.float32)
    inputs.append(('large values', x))

    cases = []
    for name, x in inputs:
        for bits in (1, 2, 4, 8):
            for groups in ('sample', 'channel', 'tensor'):
                for prune in ('none', 'agp', 'topk'):
                    seed = 1000 + bits * 10 + len(cases)
                    q = quantize(x, bits, groups, prune, seed)
                    cases.append(dict(
                        name=name, rows=x.shape[0], cols=x.shape[1], bits=bits, groups=groups, prune=prune, seed=seed,
                        g=f32_bits(x.reshape(-1)),
                        scales=f32_bits(q['scales']), zeros=f32_bits(q['zeros']), mask=q['mask'].tolist(),
                        keepProbability=q['p'].tolist(), codes=q['codes'].reshape(-1).tolist(),
                    ))
    out = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'gradient-quant-vectors.json')
    with open(out, 'w') as fh:
        json.dump(dict(
            source='scripts/gradient-quant-vectors.py (numpy + torch.topk from the 1-bit FQT / StatQuant formulas)',
            cases=cases), fh, separators=(',', ':'))
    print(f'wrote {len(cases)} cases to {os.path.normpath(out)}')


if __name__ == '__main__':
    main()
