#!/usr/bin/env python3
"""Reference vectors for fp4kit's FP4 training path (test/fp4-training-vectors.test.ts).

Wang et al. 2025, "Optimizing Large Language Model Training Using FP4 Quantization" (arXiv 2501.17116),
written from the paper and its released code, never from fp4kit (nothing of fp4kit is imported or read):
  [AZ] Azure/MS-AMP @ 9746ea85289f8e6233646e73ace35f730d1245d5 (the released FP4 operator)
  [MP] Mr-Philo/MS-AMP @ 8fde5351464636613e76706d2d7fbc34b73e6536 (the first author's fork, experiment date)
Our notes on both: ../shared/design/papers-training.md section 2 (cited as "notes 2.x").

What is reproduced, and where it departs from the released code (each departure is the paper's text or
a choice the notes record; none comes from fp4kit):
- E2M1 quantizer: the released CUDA table [AZ msamp/operators/fp4_quantize/quantize.cu:16-56], strict `<`
  on ascending midpoints, i.e. ties toward +inf ('ties-up'), NaN -> 6, everything in [-0.25, 0.25) -> +0.
  Also round-to-nearest-even ('nearest-even', OCP MX v1.0 E2M1 conversion: ties to the even code,
  saturating at +-6, the sign kept so small negatives give -0), written here from the grid and
  cross-checked against ml_dtypes.float4_e2m1fn when that package is present.
- Scale: the exact absmax scale of the paper's Eq. 1 and of [MP msamp/common/tensor/meta.py:54-59]
  (sf = fp_max / amax; sf = 1 where amax is 0 or not finite), not the release's power of two
  [AZ msamp/common/tensor/meta.py:51-56] (notes 2.1). Activations per token = the `token_wise` branch
  [AZ fp4_quantize.py:155-157]; weights per OUTPUT channel = the `channel_wise` branch (amax over dim 0,
  [AZ fp4_quantize.py:152-154]) applied to the kernel stored [in, out] as tfjs keeps it (on the release's
  [out, in] weight that branch is per input channel, which the notes 2.2 record as a code discrepancy).
- The scale's rounding: the released `fp_max / amax` is torch's reversed division, amax.reciprocal() *
  fp_max (two roundings). The vectors take gamma = f32(6 / amax) correctly rounded (the paper's Eq. 1 quotient)
  and, for the quantizer cases, also the released expression on float32 (`release_expression`).
- Precision: the release runs this in bfloat16 (it refuses other dtypes, [AZ fp4_quantize.py:137-138]);
  here the same torch expressions run on float32 tensors (fp4kit's layer is float32), so
  sf = f32(6 / amax), u = f32(x * sf), x^ = f32(Q(u) / sf) [AZ fp4_quantize.py:164-173].
- DGE: f'(u) = (1/k) |2(u - l)/delta - 1|^(1/k - 1), capped, on the intervals and with the branch
  structure of [AZ quantize.cu:71-119] (u < -4 -> first interval, so u < -6 too; u > 6 and NaN -> 0).
  'exact': that formula in float64 (u - l, 2x/delta - 1 exact in float64 for float32 u; one pow);
  'kernel': the CUDA arithmetic in float32 (x + 6.0f, 2.0f*x/delta - 1.0f, powf(.)/k, fminf) rounded to
  bf16 [AZ quantize.cu:118] -- bit-exact to CUDA only where powf's <= 2 ulp cannot move the bf16 result,
  which is checked here against the float64 value (flag `bf16_determined`).
  The release's unit vector [AZ tests/operators/test_fp4_quantize.py:18-26] is reproduced in bf16.
- OCC: [AZ fp4_quantize.py:46-102] token_wise branch verbatim on float32 (sort each row; lower =
  sorted[int((1 - a) n)], upper = sorted[int(a n)] in Python float arithmetic; clamp; residual =
  input - output). Not torch.quantile: the released code does not interpolate (notes 2.4).
- Layer (W4A4 linear, X [m, k], kernel W [k, n], y = X W as tfjs's dense): the paper's
  Y = FP4GEMM(Q(A_c), Q(W)) + dA W (Eq. 9 and Sec. 3.2; notes 2.4, 2.7). The release integration has no
  compensation [AZ msamp/megatron/layers.py:66-67] and the fork adds dA to the dequantized activation
  before the GEMM (i.e. multiplies it by Q(W)) [MP fp4_quant.py:177-178]; the paper's form is used.
  Forward in float64: Qa Qw is exact (multiples of 1/4), then / ga / gw in float64; dA W in float64.
  Backward, as the paper's chain rule (notes 2.3, 2.7; [AZ layers.py:161-206]): G = dY ('fp32') or
  G = E5M2(dY) with one per-tensor exact scale 57344/amax (the fork's exact scale rule [MP meta.py:54-59]
  applied to the output gradient cast [AZ layers.py:161]; torch.float8_e5m2 codec, RNE);
  dX = G Q(W)^T (straight through quantizer and clamp); dW = (Q(A)^T G) * f'(W sf) + dA^T G,
  everything in float64 from the float32 operands (the release multiplies in FP8 with a bf16 result,
  [AZ layers.py:198-206]; not reproducible on a CPU). For 'e5m2' the operands Q(W) and Q(A)^T are
  stored as FP8 E4M3 with one exact absmax scale per output row (torch.float8_e4m3fn codec): the release
  stores them E4M3 with MS-AMP's per-tensor delayed scale [AZ layers.py:68,81], which is not reproduced
  (a documented fp4kit choice, docs/fp4-training.md "Backward with E5M2 gradients").
  DGE's argument u = W sf as the release computes it can be 6.0000005 in float32 (6 in bf16); the
  released kernel gives 0 there. Both are written: `dge_release` (u as computed) and `dge_u_clamped`
  (u clamped to +-6 first).

Values: float32 as uint32 bit patterns; float64 as JSON numbers (Python repr, exact round trip).
Run: python3 scripts/fp4-training-vectors.py  (writes test/fixtures/fp4-training-vectors.json)
"""
import json
import math
import os

import numpy as np
import torch

F32 = np.float32
SEED = 20250129
rng = np.random.default_rng(SEED)
torch.manual_seed(SEED)


def bits(a):
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32)).view(np.uint32).ravel().tolist()


def bound_list(a):
    """Non-negative error scales, rounded up to 4 significant digits (they only size tolerances)."""
    return [float(f'{v * 1.001:.4g}') for v in np.asarray(a, dtype=np.float64).ravel()]


def f64list(a):
    a = np.asarray(a, dtype=np.float64).ravel()
    assert np.all(np.isfinite(a)), 'float64 values must be finite for JSON'
    return [float(v) for v in a]


# ---------------------------------------------------------------- E2M1 ------------------------------
# [AZ quantize.cu:22-51]: (threshold, value) in order; the first `value < threshold` wins, else 6.
TABLE = [(-5.0, -6.0), (-3.5, -4.0), (-2.5, -3.0), (-1.75, -2.0), (-1.25, -1.5), (-0.75, -1.0), (-0.25, -0.5),
         (0.25, 0.0), (0.75, 0.5), (1.25, 1.0), (1.75, 1.5), (2.5, 2.0), (3.5, 3.0), (5.0, 4.0)]


def lut_ties_up(u):
    """quantize_bf16_kernel on float32 values: __hlt chain; NaN fails every test -> 6; 0 is +0."""
    u = np.asarray(u, dtype=np.float32)
    out = np.full(u.shape, 6.0, dtype=np.float32)
    done = np.zeros(u.shape, dtype=bool)
    for threshold, value in TABLE:
        hit = ~done & (u < F32(threshold))
        out[hit] = F32(value)
        done |= hit
    return out


GRID = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6], dtype=np.float64)  # code order 0..7 (notes 2.1)


def round_nearest_even(u):
    """OCP E2M1: nearest grid value, ties to the even code, saturating at 6, sign kept (-0 for small
    negatives). Finite input only."""
    u = np.asarray(u, dtype=np.float32)
    assert np.all(np.isfinite(u))
    a = np.minimum(np.abs(u.astype(np.float64)), 6.0)
    out = np.empty(a.shape, dtype=np.float64)
    for i, v in np.ndenumerate(a):
        d = np.abs(GRID - v)
        best = np.flatnonzero(d == d.min())
        code = best[0] if len(best) == 1 else [c for c in best if c % 2 == 0][0]
        out[i] = GRID[code]
    return np.where(np.signbit(u), -out, out).astype(np.float32)


def check_nearest_even_against_ml_dtypes():
    try:
        import ml_dtypes
    except ImportError:
        return 'ml_dtypes not installed: not cross-checked'
    v = (np.arange(-8 * 64, 8 * 64 + 1) / 64).astype(np.float32)
    theirs = np.clip(v, -6, 6).astype(ml_dtypes.float4_e2m1fn).astype(np.float32)
    ours = round_nearest_even(v)
    assert np.array_equal(ours.view(np.uint32), theirs.view(np.uint32)), 'RNE disagrees with ml_dtypes'
    return f'agrees with ml_dtypes {ml_dtypes.__version__} float4_e2m1fn on every multiple of 1/64 in [-8, 8] (bits)'


def compute_scaling_factor_exact(amax, scale, fp_max, release_expression=False):
    """[MP msamp/common/tensor/meta.py:54-59] (the `if True:` exact branch).

    `fp_max / amax` with a Python float over a tensor is torch's Tensor.__rtruediv__, which computes
    amax.reciprocal() * fp_max: two roundings (in bf16 on the release's tensors). With
    release_expression=True that expression is kept as written (on float32: f32(f32(1/amax) * 6));
    otherwise the quotient of the paper's Eq. 1, gamma = MAX / amax, correctly rounded to float32
    (torch's tensor / tensor division). The two differ by one float32 ulp for ~28 % of amax values.
    """
    sf = fp_max / amax if release_expression else torch.full_like(amax, fp_max) / amax
    sf = torch.where(amax > 0.0, sf, scale)
    sf = torch.where(torch.isfinite(amax), sf, scale)
    return sf


def quantize_simulate_fp4(x, axis, ties, release_expression=False):
    """[AZ fp4_quantize.py:151-173] on a float32 2-D tensor: 'rows' = token_wise (amax over dim 1),
    'columns' = channel_wise (amax over dim 0). Returns (x^, u = x*sf, Q(u), sf)."""
    x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    if axis == 'columns':
        amax = x.abs().max(dim=0, keepdim=True)[0]
    else:
        amax = x.abs().max(dim=1, keepdim=True)[0]
    scale = torch.ones((1, 1), dtype=x.dtype)
    sf = compute_scaling_factor_exact(amax, scale, 6.0, release_expression)
    scaled = x * sf
    q = lut_ties_up(scaled.numpy()) if ties == 'ties-up' else round_nearest_even(scaled.numpy())
    out = torch.from_numpy(q.copy()).div_(sf)
    return out.numpy(), scaled.numpy(), q, sf.numpy().ravel()


def f32_reaching_past_6(count, lo, hi):
    """amax values (float32) whose f32(amax * f32(6 / amax)) is 6.0000005: the largest element's u
    lies past the grid by rounding. Found by a seeded scan."""
    found = []
    r = np.random.default_rng(7)
    while len(found) < count:
        a = F32(r.uniform(lo, hi))
        if F32(a * (F32(6.0) / a)) > F32(6.0):
            found.append(a)
    return found


def quantizer_cases():
    cases = []
    # Activations X [8, 40], per token, with edge rows.
    m, k = 8, 40
    x = rng.standard_normal((m, k)).astype(np.float32)
    x[0, :] *= F32(0.37)
    # row 1: max 6 -> sf = 1 exactly; every midpoint and its negative (ties), grid values, -0, +0
    ties = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0]
    row = [6.0] + ties + [-t for t in ties] + [0.0, 0.5, 1, 1.5, 2, 3, 4, -6, -4, 0.2499, 0.2501, -0.2501, 5.0001, -4.9999]
    row += [0.1] * (k - len(row))
    x[1, :] = np.array(row, dtype=np.float32)
    x[1, 17] = F32(-0.0)  # a negative zero (the release gives +0 for it)
    x[1, 18] = F32(-0.1)  # a small negative (release +0; sign-keeping rules -0)
    # row 2: max 3 -> sf = 2 exactly: ties at x = midpoint / 2
    x[2, :] = (rng.integers(-24, 25, k) / 8).astype(np.float32)  # multiples of 1/8 in [-3, 3]
    x[2, 0] = F32(3.0)
    # row 3: all zero
    x[3, :] = 0
    # row 4: all negative, the maximum magnitude negative
    x[4, :] = -np.abs(rng.standard_normal(k)).astype(np.float32) - F32(0.01)
    # row 5: max 12 -> sf = 0.5: ties at 2 * midpoint
    x[5, :] = (rng.integers(-24, 25, k) / 2).astype(np.float32)
    x[5, 3] = F32(-12.0)
    # row 6: an amax whose largest element scales to 6.0000005 (u past the grid by rounding)
    a6 = f32_reaching_past_6(1, 0.5, 3.0)[0]
    x[6, :] = rng.uniform(-1, 1, k).astype(np.float32) * a6 * F32(0.9)
    x[6, 5] = a6
    # row 7: one large outlier, the rest tiny (most go to 0)
    x[7, :] = (rng.standard_normal(k) * 1e-3).astype(np.float32)
    x[7, 9] = F32(-1234.5)
    # Weights (kernel [k, n] = [40, 6]), per output channel (column)
    kw, n = 40, 6
    w = (rng.standard_normal((kw, n)) * 0.05).astype(np.float32)
    w[:, 1] = 0  # an all-zero output channel
    w[:, 2] = (rng.integers(-12, 13, kw) / 2).astype(np.float32)  # max 6 -> sf = 1: ties on midpoints
    w[0, 2] = F32(6.0)
    w[1:8, 2] = np.array([0.25, -0.25, 2.5, -2.5, 5, -5, -6], dtype=np.float32)
    a3 = f32_reaching_past_6(2, 0.01, 0.2)
    w[:, 3] *= F32(0.5)
    w[4, 3] = -a3[0]  # a negative maximum that scales to -6.0000005
    w[:, 4] = -np.abs(w[:, 4])
    w[7, 5] = a3[1]
    w[:, 5] = np.clip(w[:, 5], -a3[1], a3[1])
    for name, arr, axis in [('activations per token', x, 'rows'), ('weights per output channel', w, 'columns')]:
        rows, cols = arr.shape
        for ties_rule in ('ties-up', 'nearest-even'):
            values, scaled, grid, sf = quantize_simulate_fp4(arr, axis, ties_rule)
            rv, rs, rg, rsf = quantize_simulate_fp4(arr, axis, ties_rule, release_expression=True)
            cases.append({'name': f'{name}, {ties_rule}', 'rows': rows, 'cols': cols, 'axis': axis, 'ties': ties_rule,
                          'x': bits(arr), 'scales': bits(sf), 'scaled': bits(scaled), 'grid': bits(grid), 'values': bits(values),
                          'release_expression': {'scales': bits(rsf), 'scaled': bits(rs), 'grid': bits(rg), 'values': bits(rv)}})
    return cases


def scalar_rounding_cases():
    """Q(v) alone (no scale) for both rules, on ties, grid values, saturation, +-0 and near-ties."""
    v = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, -0.25, -0.75, -1.25, -1.75, -2.5, -3.5, -5.0,
         0.0, -0.0, 0.5, -0.5, 6.0, -6.0, 6.5, -6.5, 100.0, -1e30, 0.1, -0.1, 2.9999998, 5.0000005, 4.9999995,
         -4.9999995, 0.24999999, 0.25000003, -0.25000003, 1.7499999]
    v += list((np.arange(-7 * 16, 7 * 16 + 1) / 16))  # every multiple of 1/16 in [-7, 7]
    v = np.array(v, dtype=np.float32)
    return {'x': bits(v), 'ties_up': bits(lut_ties_up(v)), 'nearest_even': bits(round_nearest_even(v))}


def nonfinite_quantizer_case():
    """What the release does with Inf / NaN (fp4kit documents a different, NaN-propagating choice)."""
    x = np.array([[1.0, -2.0, np.inf, 0.3], [0.5, np.nan, -1.0, 2.0], [1.0, 2.0, 3.0, -6.0]], dtype=np.float32)
    values, scaled, grid, sf = quantize_simulate_fp4(x, 'rows', 'ties-up')
    return {'rows': 3, 'cols': 4, 'x': bits(x), 'scales': bits(sf), 'values': bits(values)}


# ---------------------------------------------------------------- DGE -------------------------------
EDGES = [-6.0, -4.0, -3.0, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]


def interval(x):
    """(l, delta) of the branch [AZ quantize.cu:88-116] takes x into, or None (x > 6 or NaN: dy = 0)."""
    if not (x <= 6.0):  # NaN or > 6: no branch is taken, dy stays 0.0f
        return None
    if x < -4.0:  # quantize.cu:88 has no lower bound: x < -6 uses [-6, -4)
        return (-6.0, 2.0)
    for l, r in zip(EDGES[1:-2], EDGES[2:-1]):  # [-4, -3) ... [3, 4): quantize.cu:90-113
        if l <= x < r:
            return (l, r - l)
    assert 4.0 <= x <= 6.0, x  # quantize.cu:114: the last interval is closed, [4, 6]
    return (4.0, 2.0)


def dge_exact(u, k, cap):
    """float64: (1/k) * |2(u - l)/delta - 1|^(1/k - 1), min cap. t is exact in float64 for float32 u."""
    out = []
    for x in np.asarray(u, dtype=np.float32).astype(np.float64):
        iv = interval(x)
        if iv is None:
            out.append(0.0)
            continue
        l, delta = iv
        t = abs(2.0 * (x - l) / delta - 1.0)
        if math.isinf(t):
            out.append(0.0)  # |..|^(negative) -> 0 (x = -inf)
            continue
        out.append(min((1.0 / k) * t ** (1.0 / k - 1.0), cap) if t > 0 else cap)
    return np.array(out, dtype=np.float64)


def dge_kernel_f32(u, k, cap):
    """[AZ quantize.cu:71-74, 85-118] in float32 arithmetic (numpy float32 ops; powf from libm)."""
    out = []
    kf, capf = F32(k), F32(cap)
    with np.errstate(divide='ignore', over='ignore', invalid='ignore'):
        for x in np.asarray(u, dtype=np.float32):
            iv = interval(float(x))
            if iv is None:
                out.append(F32(0.0))
                continue
            l, delta = iv
            xs = F32(x - F32(l))  # x + 6.0f, x + 4.0f, ..., x - 4.0f: float32 adds
            abs_term = np.abs(F32(F32(F32(2.0) * xs) / F32(delta)) - F32(1.0))
            p = np.power(abs_term, F32(F32(1.0) / kf) - F32(1.0))
            out.append(np.fmin(F32(p / kf), capf))
    return np.array(out, dtype=np.float32)


def to_bf16_bits(a):
    """float32 -> bf16 (RNE, torch) -> back to float32, as uint32 bits."""
    t = torch.from_numpy(np.asarray(a, dtype=np.float32).copy()).to(torch.bfloat16).to(torch.float32)
    return t.numpy().view(np.uint32).ravel().tolist()


def bf16_determined(exact):
    """True where every value within 4 float32 ulps of the float64 result rounds to the same bf16:
    then CUDA's powf (<= 2 ulp) and this CPU's cannot disagree after the bf16 rounding."""
    ok = []
    for v in exact:
        v32 = F32(v)
        lo = np.nextafter(v32, F32(-np.inf))
        hi = v32
        for _ in range(4):
            lo = np.nextafter(lo, F32(-np.inf))
            hi = np.nextafter(hi, F32(np.inf))
        b = to_bf16_bits([lo, v32, hi])
        ok.append(b[0] == b[1] == b[2])
    return ok


def f32_determined(exact):
    """True where the float64 value is not within 2^-40 (relative) of a float32 rounding boundary."""
    ok = []
    for v in exact:
        if v == 0:
            ok.append(True)
            continue
        lo, hi = F32(v * (1 - 2.0**-40)), F32(v * (1 + 2.0**-40))
        ok.append(bool(lo == hi))
    return ok


def dge_cases():
    cases = []
    # The released unit test [AZ tests/operators/test_fp4_quantize.py:20-26]
    u = torch.linspace(-6.0, 6.0, 20).to(torch.bfloat16).to(torch.float32).numpy()
    released_expected = torch.tensor([0.2002, 0.4375, 0.6055, 0.2168, 1.8359, 0.2695, 0.3027, 0.2695, 0.2402, 0.5781,
                                      0.5781, 0.2402, 0.2695, 0.3027, 0.2695, 1.8359, 0.2168, 0.6055, 0.4375, 0.2002],
                                     dtype=torch.bfloat16).to(torch.float32).numpy()
    kernel = to_bf16_bits(dge_kernel_f32(u, 5.0, 3.0))
    assert kernel == released_expected.view(np.uint32).tolist(), 'kernel emulation misses the released unit vector'
    exact = dge_exact(u, 5.0, 3.0)
    assert all(bf16_determined(exact)) and to_bf16_bits(exact.astype(np.float32)) == kernel
    cases.append({'name': 'released test_DGE: bf16(linspace(-6, 6, 20)), k = 5, cap = 3', 'k': 5.0, 'cap': 3.0,
                  'u': bits(u), 'exact': f64list(exact), 'f32': bits(exact.astype(np.float32)), 'kernel_bf16': kernel,
                  'bf16_determined': bf16_determined(exact), 'f32_determined': f32_determined(exact)})
    # float32 arguments: every multiple of 1/16 in [-7, 7], grid points, midpoints, neighbours of edges
    pts = list(np.arange(-7 * 16, 7 * 16 + 1) / 16)
    special = []
    for e in EDGES + [(a + b) / 2 for a, b in zip(EDGES, EDGES[1:])]:
        e = F32(e)
        special += [np.nextafter(e, F32(-np.inf)), e, np.nextafter(e, F32(np.inf))]
    special += [F32(-0.0), F32(6.0000005), F32(-6.0000005), F32(1e-30), F32(-1e-30), F32(-100.0), F32(100.0),
                F32(2.5000002), F32(0.2500001), F32(-3.4999998)]
    u = np.array(pts + special, dtype=np.float32)
    nonfinite = np.array([np.nan, np.inf, -np.inf], dtype=np.float32)
    for k, cap in [(5.0, 3.0), (3.0, 2.0)]:
        exact = dge_exact(u, k, cap)
        cases.append({'name': f'float32 grid and edges, k = {k:g}, cap = {cap:g}', 'k': k, 'cap': cap, 'u': bits(u),
                      'exact': f64list(exact), 'f32': bits(exact.astype(np.float32)),
                      'kernel_bf16': to_bf16_bits(dge_kernel_f32(u, k, cap)),
                      'bf16_determined': bf16_determined(exact), 'f32_determined': f32_determined(exact)})
    # NaN and +-Inf: the kernel's branches give 0 for each ([AZ quantize.cu:86-116]; -inf: powf(inf, <0) = 0)
    kz = dge_kernel_f32(nonfinite, 5.0, 3.0)
    assert np.all(kz == 0)
    cases.append({'name': 'NaN, +Inf, -Inf', 'k': 5.0, 'cap': 3.0, 'u': bits(nonfinite), 'exact': [0.0, 0.0, 0.0],
                  'f32': bits(np.zeros(3)), 'kernel_bf16': to_bf16_bits(kz), 'bf16_determined': [True] * 3,
                  'f32_determined': [True] * 3})
    return cases


# ---------------------------------------------------------------- OCC -------------------------------
def apply_quantile_clipping_token_wise(inp, clip_threshold):
    """[AZ fp4_quantize.py:78-86, 98-100] verbatim (token_wise=True, return_residual=True)."""
    sorted_tensor = torch.sort(inp, dim=1).values
    lower_index = int((1 - clip_threshold) * sorted_tensor.size(1))
    upper_index = int(clip_threshold * sorted_tensor.size(1))
    lower_bound = sorted_tensor[:, lower_index:lower_index + 1]
    upper_bound = sorted_tensor[:, upper_index:upper_index + 1]
    output = torch.clamp(inp, min=lower_bound, max=upper_bound)
    output = output.to(inp.dtype)
    return output, inp - output, lower_index, upper_index, lower_bound.numpy().ravel(), upper_bound.numpy().ravel()


def occ_rows(rows, cols):
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    # outliers of both signs, a few per row
    for r in range(rows):
        idx = rng.choice(cols, size=max(1, cols // 40), replace=False)
        x[r, idx] *= F32(30.0)
    if rows > 1:
        x[1, :] = 0  # an all-zero row
    if rows > 2:
        x[2, :] = -np.abs(x[2, :]) - F32(0.5)  # all negative
    if rows > 3:
        # duplicates at and around the quantile positions: only a few distinct values
        x[3, :] = (rng.integers(-3, 4, cols)).astype(np.float32)
    if rows > 4:
        x[4, :] = F32(1.75)  # constant row
    if rows > 5:
        # a huge outlier: f32(v - upper) rounds
        x[5, 0] = F32(1e10)
        x[5, 1] = F32(-3.0e9)
    if rows > 6:
        x[6, 2] = F32(np.inf)  # one +inf (the residual is +inf)
        x[6, 3] = F32(-np.inf)
    return x


def occ_cases():
    cases = []
    # (cols, alpha): 0.99 * 100 = 99.0 -> upper = the maximum (nothing clamped above);
    # (1 - 0.9) * 40 = 3.9999999999999996 -> lower index 3, not 4 (Python float arithmetic)
    for rows, cols, alpha in [(7, 100, 0.99), (7, 128, 0.99), (3, 300, 0.99), (4, 64, 0.99), (7, 50, 0.97),
                              (7, 40, 0.9), (3, 256, 0.999)]:
        x = occ_rows(rows, cols)
        out, res, lo_i, hi_i, lo, hi = apply_quantile_clipping_token_wise(torch.from_numpy(x.copy()), alpha)
        cases.append({'name': f'{rows} x {cols}, alpha = {alpha}', 'rows': rows, 'cols': cols, 'alpha': alpha,
                      'lower_index': lo_i, 'upper_index': hi_i, 'x': bits(x), 'lower': bits(lo), 'upper': bits(hi),
                      'clamped': bits(out.numpy()), 'residual': bits(res.numpy())})
    return cases


# ---------------------------------------------------------------- layer -----------------------------
def e5m2_per_tensor(g):
    """E5M2 with one exact scale 57344 / amax (sf = 1 where amax is 0) [MP meta.py:54-59]; returns
    (codes as float64 values, scale)."""
    gt = torch.from_numpy(np.asarray(g, dtype=np.float32).copy())
    amax = gt.abs().max().reshape(1, 1)
    sf = compute_scaling_factor_exact(amax, torch.ones((1, 1)), 57344.0)
    codes = (gt * sf).to(torch.float8_e5m2).to(torch.float64)
    return codes.numpy(), float(sf.item())


def e4m3_per_row(a):
    """E4M3 with one exact absmax scale per row (448 / amax); (codes as float64, scales [rows])."""
    at = torch.from_numpy(np.asarray(a, dtype=np.float32).copy())
    amax = at.abs().max(dim=1, keepdim=True)[0]
    sf = compute_scaling_factor_exact(amax, torch.ones((1, 1)), 448.0)
    codes = (at * sf).to(torch.float8_e4m3fn).to(torch.float64)
    return codes.numpy(), sf.numpy().astype(np.float64).ravel()


def layer_case(name, x, w, dy, ties, occ_alpha, gradients, k_dge=5.0, cap=3.0):
    m, k = x.shape
    n = w.shape[1]
    if occ_alpha is not None:
        a_c, d_a, *_ = apply_quantile_clipping_token_wise(torch.from_numpy(x.copy()), occ_alpha)
        a_c, d_a = a_c.numpy(), d_a.numpy()
    else:
        a_c, d_a = x, np.zeros_like(x)
    a_hat, _, qa, ga = quantize_simulate_fp4(a_c, 'rows', ties)
    w_hat, u, qw, gw = quantize_simulate_fp4(w, 'columns', ties)
    # forward: Qa Qw exact (multiples of 1/4, |sum| < 2^53), scales divided in float64
    prod = (qa.astype(np.float64) @ qw.astype(np.float64)) / ga.astype(np.float64)[:, None] / gw.astype(np.float64)[None, :]
    resid = d_a.astype(np.float64) @ w.astype(np.float64)
    y = prod + resid
    # backward
    dge_rel = dge_exact(u.ravel(), k_dge, cap).reshape(u.shape)
    dge_clamped = dge_exact(np.clip(u, F32(-6), F32(6)).ravel(), k_dge, cap).reshape(u.shape)
    if gradients == 'fp32':
        g = dy.astype(np.float64)
        dx = g @ w_hat.astype(np.float64).T
        base = a_hat.astype(np.float64).T @ g
        # error scales: sum |a||b| of each output (for the tolerance of float32 accumulation)
        dx_abs = np.abs(g) @ np.abs(w_hat.astype(np.float64)).T
        base_abs = np.abs(a_hat.astype(np.float64)).T @ np.abs(g)
        g_vals = g
    else:
        gc, gs = e5m2_per_tensor(dy)
        wc, ws = e4m3_per_row(w_hat)  # Q(W) [k, n], a scale per row (the rows of dX's operand)
        atc, ats = e4m3_per_row(a_hat.T.copy())  # Q(A)^T [k, m]
        dx = (gc @ wc.T) / gs / ws[None, :]
        base = (atc @ gc) / ats[:, None] / gs
        dx_abs = (np.abs(gc) @ np.abs(wc).T) / gs / ws[None, :]
        base_abs = (np.abs(atc) @ np.abs(gc)) / ats[:, None] / gs
        g_vals = gc / gs
    dres = d_a.astype(np.float64).T @ g_vals
    dres_abs = np.abs(d_a.astype(np.float64)).T @ np.abs(g_vals)
    case = {'name': name, 'ties': ties, 'occ': occ_alpha, 'gradients': gradients, 'dge': {'k': k_dge, 'cap': cap},
            'a_scales': bits(ga), 'w_scales': bits(gw), 'a_grid': bits(qa), 'w_grid': bits(qw), 'w_scaled': bits(u),
            'residual': bits(d_a),
            'y_product': f64list(prod), 'y_residual': f64list(resid), 'y': f64list(y),
            'y_residual_abs': bound_list(np.abs(d_a.astype(np.float64)) @ np.abs(w.astype(np.float64))),
            'dx': f64list(dx), 'dx_abs': bound_list(dx_abs),
            'dw_base': f64list(base), 'dw_base_abs': bound_list(base_abs),
            'dge_release': f64list(dge_rel), 'dge_u_clamped': f64list(dge_clamped),
            'dw_residual': f64list(dres), 'dw_residual_abs': bound_list(dres_abs),
            'dw': f64list(base * dge_clamped + dres),
            'u_past_grid': int(np.sum(np.abs(u) > 6))}
    if gradients == 'e5m2':
        case['g_e5m2'] = bits((gc / gs).astype(np.float32))
    return case


def layer_cases():
    m, k, n = 6, 128, 4
    x = rng.standard_normal((m, k)).astype(np.float32)
    for i in range(0, x.size, 37):
        x.flat[i] *= F32(25.0)  # outliers, what OCC is for
    x[2, :] = 0  # an all-zero token
    x[3, :] = -np.abs(x[3, :])
    x[4, :] = (rng.integers(-12, 13, k) / 4).astype(np.float32)  # many ties after scaling
    x[4, 0] = F32(3.0)
    x[4, 1] = F32(-3.0)
    w = (rng.standard_normal((k, n)) * 0.08).astype(np.float32)
    w[:, 1] = 0  # an all-zero output channel
    w[:, 0] = (rng.integers(-12, 13, k) / 2).astype(np.float32)  # max 6: sf = 1, ties
    w[0, 0] = F32(6.0)
    past = f32_reaching_past_6(2, 0.1, 0.3)  # columns whose largest weight scales past 6 by rounding
    w[:, 2] = np.clip(w[:, 2], -past[0], past[0])
    w[3, 2] = past[0]
    w[:, 3] = np.clip(w[:, 3], -past[1], past[1])
    w[9, 3] = -past[1]
    dy = rng.standard_normal((m, n)).astype(np.float32)
    dy[:, 0] *= F32(1e-3)  # a small column (E5M2 subnormals after the per-tensor scale)
    out = []
    variants = [(t, o, g) for t in ('ties-up',) for o in (None, 0.99) for g in ('fp32', 'e5m2')]
    variants += [('nearest-even', None, 'fp32'), ('nearest-even', 0.99, 'e5m2')]
    for ties, occ, gradients in variants:
        name = f"W4A4 {m}x{k} @ {k}x{n}, {ties}, {'OCC 0.99' if occ else 'no OCC'}, DGE k=5 cap=3, {gradients} gradients"
        out.append(layer_case(name, x, w, dy, ties, occ, gradients))
    return {'m': m, 'k': k, 'n': n, 'x': bits(x), 'w': bits(w), 'dy': bits(dy), 'cases': out}


def main():
    rne_check = check_nearest_even_against_ml_dtypes()
    data = {
        'source': 'scripts/fp4-training-vectors.py',
        'how': ('Written from Wang et al. 2025 (arXiv 2501.17116) and its released code: Azure/MS-AMP@9746ea8 '
                '(quantize.cu table and DGE kernel, fp4_quantize.py quantile clipping and simulation) and '
                'Mr-Philo/MS-AMP@8fde535 (meta.py exact scale), ported to numpy/torch on float32 tensors; '
                'nothing from fp4kit. Float32 values are uint32 bit patterns, float64 values JSON numbers. '
                'See the script docstring for every departure from the released code.'),
        'seed': SEED,
        'versions': {'numpy': np.__version__, 'torch': torch.__version__},
        'nearest_even_check': rne_check,
        'rounding': scalar_rounding_cases(),
        'quantizer': quantizer_cases(),
        'quantizer_nonfinite_release': nonfinite_quantizer_case(),
        'dge': dge_cases(),
        'occ': occ_cases(),
        'layer': layer_cases(),
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'fp4-training-vectors.json')
    with open(path, 'w') as f:
        json.dump(data, f, separators=(',', ':'))
        f.write('\n')
    print(f'wrote {os.path.normpath(path)} ({os.path.getsize(path)} bytes); {rne_check}')


if __name__ == '__main__':
    main()
