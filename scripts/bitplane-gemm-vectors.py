#!/usr/bin/env python3
"""Reference vectors for the bit-plane product (lib/core/bitplane-gemm.ts), computed with numpy
alone: no bit planes, no popcount, just the integer GEMM of codes and signs and the float32 form
scales[g]*I + zeros[g]*T in numpy float32 arithmetic. Writes test/fixtures/bitplane-gemm-vectors.json.

  python3 scripts/bitplane-gemm-vectors.py

Each case: codes [m, k] (uint8 < 2^bits), x [n, k] float32 (signs: x >= 0 is +1; ternary: x > 0
is +1, x == 0 is 0, else -1), rowsPerGroup, mask, scales, zeros (float32), and the expected
integer product (int32 [m, n]) and float product (float32 bits [m, n]; pruned rows are 0).
"""
import json
import numpy as np

rng = np.random.default_rng(20261204)


def signs_of(x, ternary):
    if ternary:
        return np.where(x > 0, 1, np.where(x == 0, 0, -1)).astype(np.int64)
    return np.where(x >= 0, 1, -1).astype(np.int64)  # NaN compares false: -1


def case(m, n, k, bits, ternary, rows_per_group, keep):
    codes = rng.integers(0, 2 ** bits, size=(m, k), dtype=np.int64)
    if m > 0 and k > 0:
        codes[0, :] = 2 ** bits - 1  # all-max row
    x = rng.standard_normal((n, k)).astype(np.float32)
    if ternary:
        x[rng.random((n, k)) < 0.2] = 0.0
    if n * k > 3:
        flat = x.reshape(-1)
        flat[0], flat[1], flat[2] = np.float32(-0.0), np.float32('nan'), np.float32(0.0)
    s = signs_of(x, ternary)
    groups = -(-m // rows_per_group) if m > 0 else 0
    mask = (rng.random(groups) < keep).astype(np.uint8)
    scales = (rng.random(groups) * 0.01).astype(np.float32) * mask
    zeros = (rng.standard_normal(groups) * 0.1).astype(np.float32) * mask
    I = (codes @ s.T).astype(np.int64)
    row_group = np.arange(m) // rows_per_group
    kept = mask[row_group].astype(bool) if m > 0 else np.zeros(0, bool)
    I_out = np.where(kept[:, None], I, 0).astype(np.int32)
    T = s.sum(axis=1).astype(np.float32)
    with np.errstate(all='ignore'):
        scaled = scales[row_group][:, None] * I.astype(np.float32)
        shift = zeros[row_group][:, None] * T[None, :]
        F = (scaled.astype(np.float32) + shift.astype(np.float32)).astype(np.float32)
    F = np.where(kept[:, None], F, np.float32(0)).astype(np.float32)
    return {
        'm': m, 'n': n, 'k': k, 'bits': bits, 'ternary': ternary, 'rowsPerGroup': rows_per_group,
        'codes': codes.reshape(-1).tolist(),
        'x': [float(v) if np.isfinite(v) else 'NaN' for v in x.reshape(-1)],
        'xBits': x.reshape(-1).view(np.uint32).tolist(),
        'mask': mask.tolist(),
        'scales': scales.view(np.uint32).tolist(),
        'zeros': zeros.view(np.uint32).tolist(),
        'int': I_out.reshape(-1).tolist(),
        'floatBits': F.reshape(-1).view(np.uint32).tolist(),
    }


cases = []
for (m, n, k, bits, ternary, rpg, keep) in [
    (1, 1, 1, 1, False, 1, 1.0),
    (3, 9, 63, 4, False, 1, 1.0),
    (5, 7, 64, 8, False, 2, 0.5),
    (4, 17, 65, 2, True, 1, 0.7),
    (6, 8, 127, 3, False, 3, 1.0),
    (2, 11, 129, 1, True, 1, 1.0),
    (7, 5, 1000, 4, False, 7, 1.0),
    (9, 16, 200, 8, True, 2, 0.6),
]:
    cases.append(case(m, n, k, bits, ternary, rpg, keep))

with open('test/fixtures/bitplane-gemm-vectors.json', 'w') as f:
    json.dump({'generator': 'scripts/bitplane-gemm-vectors.py (numpy ' + np.__version__ + ')', 'cases': cases}, f)
print(len(cases), 'cases')
