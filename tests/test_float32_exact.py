"""The pixel model's float32 path: quantize_mlp_float32 makes networks that float32_exact accepts, and on them
PixelMLP.accumulators gives the integers of exact (Python int) arithmetic, the float64 path's, at the bounds too."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from aezip.coding.intdecoder import (ACT_LIMIT, FLOAT32_LIMIT, SHIFT_LIMIT, WEIGHT_LIMIT, float32_exact, quantize_mlp,
                                     quantize_mlp_float32)
from aezip.coding.pixelmodel import INPUT_BOXES, INPUT_LIMIT, MU_BUCKETS, PixelMLP, mu_thresholds

FEATURES = 35


def _reference(weights: list[np.ndarray], biases: list[np.ndarray], shifts: list[int], feats: np.ndarray
               ) -> list[list[int]]:
    """Each row's output accumulators in Python integers (inputs relative to the reference, the last feature): the
    arithmetic the float paths must reproduce."""
    out = []
    for row in (feats - feats[:, -1:]).astype(np.int64).tolist():
        x = [int(v) for v in row]
        for i, (w, b) in enumerate(zip(weights, biases)):
            acc = [sum(int(wj) * xj for wj, xj in zip(wr, x)) + int(bi) for wr, bi in zip(w.tolist(), b.tolist())]
            if i < len(shifts):
                s = int(shifts[i])
                acc = [(a + (1 << (s - 1))) >> s if s > 0 else a << -s for a in acc]
                acc = [min(max(a, 0), ACT_LIMIT - 1) for a in acc]
            x = acc
        out.append(x)
    return out


def _mlp(weights: list[np.ndarray], biases: list[np.ndarray], shifts: list[int], out_bits: int) -> PixelMLP:
    """A one-pass pixel model around the given integer layers (tables uniform: only the network is under test)."""
    return PixelMLP([weights], [biases], np.asarray([shifts], np.int64), mu_thresholds(out_bits)[None],
                    np.zeros((1, 3), np.int64), np.ones((4, MU_BUCKETS, 256), np.int32), np.ones((4, 511), np.int32))


def _features(weights: list[np.ndarray], rng: np.random.Generator, n: int) -> np.ndarray:
    """Feature rows as the coder makes them (values 0..255, the reference last): n random ones, then for every
    first-layer unit its largest and smallest accumulator at references 0 and 255, and flat rows."""
    up = (weights[0] > 0).astype(np.float64) * INPUT_LIMIT
    down = (weights[0] < 0).astype(np.float64) * INPUT_LIMIT
    rows, refs = [rng.integers(0, INPUT_LIMIT + 1, (n, FEATURES)).astype(np.float64)], [rng.integers(0, 256, n)]
    for r in (0, INPUT_LIMIT):
        for f in (up, down, np.full((1, FEATURES), r)):
            rows.append(f)
            refs.append(np.full(len(f), r))
    feats = np.concatenate(rows)
    feats[:, -1] = np.concatenate(refs)
    return feats


def _float_mlp(rng: np.random.Generator, scale: float, hidden: tuple[int, ...], outlier: float = 50.0
               ) -> tuple[list, list]:
    sizes = (FEATURES, *hidden, 2)
    ws = [rng.normal(0, scale / np.sqrt(a), (b, a)) for a, b in zip(sizes, sizes[1:])]
    bs = [rng.normal(0, scale, b) for b in sizes[1:]]
    ws[0][0, 0] *= outlier
    return ws, bs


@pytest.mark.parametrize("scale, hidden", [(1e-4, (32, 32)), (1.0, (32, 32)), (1e3, (32, 32)), (1.0, (7,)),
                                           (1.0, (64, 16, 16))])
def test_quantized_for_float32_and_exact_there(scale, hidden) -> None:
    rng = np.random.default_rng(int(scale * 10) + len(hidden))
    ws, bs = _float_mlp(rng, scale, hidden)
    qw, qb, shifts, out_bits = quantize_mlp_float32(ws, bs, INPUT_BOXES)
    assert float32_exact(qw, qb, shifts, INPUT_BOXES)
    assert all(np.abs(w.astype(np.int64)).max() <= WEIGHT_LIMIT for w in qw)
    mlp = _mlp(qw, qb, shifts, out_bits)
    assert mlp.dtypes == [np.float32]
    feats = _features(qw, rng, 300)
    got = mlp.accumulators(0, feats)
    np.testing.assert_array_equal(got, np.asarray(_reference(qw, qb, shifts, feats), np.float64))
    wide = dataclasses.replace(mlp)
    wide.dtypes = [np.float64]
    np.testing.assert_array_equal(wide.accumulators(0, feats), got)


@pytest.mark.parametrize("hidden", [(32, 32), (7,), (64, 16, 16)])
def test_the_float32_network_follows_the_float_one(hidden) -> None:
    """Fewer bits than the float64 quantizer's, but the mean offset stays within 1 % of its range (a network as
    pixeltrain makes: inputs scaled by 1/128, no outliers)."""
    rng = np.random.default_rng(len(hidden))
    ws, bs = _float_mlp(rng, 1.0, hidden, outlier=1.0)
    ws[0] = ws[0] / 128.0
    qw, qb, shifts, out_bits = quantize_mlp_float32(ws, bs, INPUT_BOXES)
    feats = _features(qw, rng, 2000)
    x = feats - feats[:, -1:]
    for i, (w, b) in enumerate(zip(ws, bs)):
        x = x @ w.T + b
        if i < len(ws) - 1:
            x = np.maximum(x, 0.0)
    got = _mlp(qw, qb, shifts, out_bits).accumulators(0, feats) * 2.0 ** -out_bits
    assert np.abs(got - x).max() <= 0.01 * np.abs(x).max()


def test_the_float64_quantizer_is_not_taken_for_float32() -> None:
    ws, bs = _float_mlp(np.random.default_rng(1), 1.0, (32, 32))
    qw, qb, shifts, out_bits = quantize_mlp(ws, bs, float(INPUT_LIMIT))
    assert not float32_exact(qw, qb, shifts, INPUT_BOXES)
    assert _mlp(qw, qb, shifts, out_bits).dtypes == [np.float64]


def _edge(reach: int, shift: int) -> tuple[list[np.ndarray], list[np.ndarray], list[int]]:
    """A 35 -> 1 -> 2 network whose hidden accumulator reaches exactly reach (weights 1 but on the reference, which
    the network sees as 0, and the rest in the bias) and whose output copies the activation."""
    w0 = np.ones((1, FEATURES), np.int32)
    w0[0, -1] = 0
    b0 = np.array([reach - (FEATURES - 1) * INPUT_LIMIT], np.int64)
    return [w0, np.ones((2, 1), np.int32)], [b0, np.zeros(2, np.int64)], [shift]


@pytest.mark.parametrize("shift", [-2, 0, 1, 7])
def test_the_float32_bound_is_tight(shift) -> None:
    """A hidden accumulator plus the rounding half at 2^24 - 1 is accepted and computed exactly; one more is not."""
    half = 1 << (shift - 1) if shift > 0 else 0
    ok = _edge(FLOAT32_LIMIT - 1 - half, shift)
    assert float32_exact(*ok, INPUT_BOXES)
    assert not float32_exact(*_edge(FLOAT32_LIMIT - half, shift), INPUT_BOXES)
    mlp = _mlp(*ok, 0)
    assert mlp.dtypes == [np.float32]
    feats = np.zeros((4, FEATURES))
    feats[0, :-1] = INPUT_LIMIT            # reference 0, every other feature 255: the accumulator's bound
    feats[1, -1] = INPUT_LIMIT             # reference 255, the rest 0: its least
    feats[2, ::2] = INPUT_LIMIT
    np.testing.assert_array_equal(mlp.accumulators(0, feats), np.asarray(_reference(*ok, feats), np.float64))


def test_degenerate_networks_still_get_loadable_integers() -> None:
    """Layers of zeros or of weights near 1e-40 leave nothing to scale by: the scale and fractional bits are capped,
    so the shifts stay within what a model file may hold, and the integers are still computed exactly."""
    for scale in (0.0, 1e-40):
        rng = np.random.default_rng(3)
        ws, bs = _float_mlp(rng, 1.0, (8, 8), outlier=1.0)
        ws[0] *= scale
        bs[0] *= scale
        qw, qb, shifts, out_bits = quantize_mlp_float32(ws, bs, INPUT_BOXES)
        assert all(abs(s) <= SHIFT_LIMIT for s in shifts)
        mlp = _mlp(qw, qb, shifts, out_bits)
        feats = _features(qw, rng, 50)
        np.testing.assert_array_equal(mlp.accumulators(0, feats),
                                      np.asarray(_reference(qw, qb, shifts, feats), np.float64))
