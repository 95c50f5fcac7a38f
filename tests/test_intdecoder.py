"""The integer decoder: float64 GEMM plus bucketed thresholds against an int64 oracle of the same arithmetic."""
from __future__ import annotations

import numpy as np
import pytest

from aezip.coding.intdecoder import ACT_LIMIT, EXACT_LIMIT, IntegerDecoder, integer_decode
from aezip.files.modelfile import load_model


def oracle_decode(dec: IntegerDecoder, codes: np.ndarray) -> np.ndarray:
    """The fixed-point decoder spelled out in int64: exact by construction, no float anywhere."""
    h = np.asarray(codes, np.int64)
    for i, (w, b) in enumerate(zip(dec.weights, dec.biases)):
        acc = h @ np.asarray(w, np.int64).T + b
        if i < len(dec.shifts):
            s = dec.shifts[i]
            acc = (acc + (1 << (s - 1))) >> s if s > 0 else acc << -s
            h = np.clip(acc, 0, ACT_LIMIT - 1)
    return np.searchsorted(dec.thresholds, acc, side="right").astype(np.uint8)


def torch_decode_before(dec: IntegerDecoder, codes: np.ndarray) -> np.ndarray:
    """The implementation before the speed work (torch float64 GEMMs, torch.searchsorted), kept as an oracle."""
    import torch
    h = torch.as_tensor(np.asarray(codes)).to(torch.float64)
    for i in range(len(dec.weights)):
        acc = h @ torch.as_tensor(dec.weights[i]).to(torch.float64).t() + torch.as_tensor(dec.biases[i]).double()
        if i < len(dec.weights) - 1:
            s = dec.shifts[i]
            acc = acc * float(2 ** -s) if s <= 0 else torch.floor((acc + float(2 ** (s - 1))) / float(2 ** s))
            h = torch.clamp(acc, 0.0, float(ACT_LIMIT - 1))
    t = torch.as_tensor(dec.thresholds).to(torch.float64)
    return torch.searchsorted(t, acc.contiguous(), right=True).to(torch.uint8).numpy()


def extreme_codes(levels: int, latent: int, rng: np.random.Generator) -> np.ndarray:
    """All-zero, all-top, random corners and random interior codes."""
    top = levels - 1
    return np.concatenate([np.zeros((1, latent)), np.full((1, latent), top),
                           rng.integers(0, 2, (100, latent)) * top,
                           rng.integers(0, levels, (100, latent))]).astype(np.int32)


def test_default_model_matches_the_int64_oracle_on_extreme_codes():
    dec = load_model().intdec
    codes = extreme_codes(24, 24, np.random.default_rng(0))
    got = integer_decode(dec, codes)
    assert got.dtype == np.uint8 and got.shape == (len(codes), 784)
    np.testing.assert_array_equal(got, oracle_decode(dec, codes))
    np.testing.assert_array_equal(got, torch_decode_before(dec, codes))
    assert got.min() == 0 and got.max() == 255          # the extremes reach both ends of the thresholds


def _random_decoder(rng: np.random.Generator, acc_bits: int) -> IntegerDecoder:
    """A decoder with full-range weights whose final accumulator sweeps far past both ends of the thresholds."""
    k = np.arange(1, 256, dtype=np.float64)
    p = (k - 0.5) / 255.0
    t = np.ceil(np.log(p / (1 - p)) * 2.0 ** acc_bits).astype(np.int64)
    w = [rng.integers(-2 ** 15 + 1, 2 ** 15, (40, 6)), rng.integers(-2 ** 15 + 1, 2 ** 15, (30, 40))]
    b = [rng.integers(-2 ** 20, 2 ** 20, 40), rng.integers(-2 ** 30, 2 ** 30, 30)]
    return IntegerDecoder([x.astype(np.int32) for x in w], b, [3], t)


@pytest.mark.parametrize("acc_bits,bucketed", [(0, False), (3, False), (20, True), (30, True)])
def test_bucketed_thresholds_equal_a_binary_search(acc_bits, bucketed):
    """Few accumulator bits make equal thresholds: those decoders take the binary search instead."""
    rng = np.random.default_rng(acc_bits)
    dec = _random_decoder(rng, acc_bits)
    assert (dec.plan()[1] is not None) == bucketed
    codes = rng.integers(0, 64, (500, 6)).astype(np.int32)
    np.testing.assert_array_equal(integer_decode(dec, codes), oracle_decode(dec, codes))


def test_accumulator_exactly_on_each_threshold_and_one_below():
    dec = load_model().intdec
    _, _, base = dec.plan()
    t = dec.thresholds.astype(np.int64)
    # a one-layer decoder whose accumulator is the code itself: pixel = number of thresholds <= code
    one = IntegerDecoder([np.ones((1, 1), np.int32)], [np.zeros(1, np.int64)], [], t)
    acc = np.concatenate([t, t - 1, t + 1, [t[0] - 10 ** 6, t[-1] + 10 ** 6]])[:, None]
    assert np.abs(acc).max() < EXACT_LIMIT and base != 0
    np.testing.assert_array_equal(integer_decode(one, acc)[:, 0], np.searchsorted(t, acc[:, 0], side="right"))


def _accumulator_bounds(dec: IntegerDecoder, levels: int) -> list[float]:
    """Per layer: max over outputs of sum |w| * max|input| + |b| (what any partial sum of the GEMM stays under)."""
    limits = [levels - 1] + [ACT_LIMIT - 1] * len(dec.shifts)
    return [float((np.abs(w.astype(np.float64)).sum(1) * lim + np.abs(b)).max())
            for w, b, lim in zip(dec.weights, dec.biases, limits)]


def test_default_decoder_is_exact_in_float64_and_would_not_be_in_float32():
    """The docstring's proof, on the shipped model: every bound below 2^52 (float64 exact in any order), and the
    large layers far above 2^24 (float32 would round), as the docstring's figures say."""
    bounds = _accumulator_bounds(load_model().intdec, 24)
    assert max(bounds) < EXACT_LIMIT
    assert [round(float(np.log2(b)), 1) for b in bounds] == [12.9, 35.9, 35.0]
    assert min(bounds[1:]) > 2 ** 24
