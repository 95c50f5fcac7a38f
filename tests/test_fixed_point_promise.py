"""The fixed-point decoder's promise, checked directly: its pixels are round(255 * sigmoid(logit)) of the float
decoder (its weights and biases on the integer grid) to within one gray level (only near a rounding boundary do they
differ), and its accumulators stay below 2^52, where float64 sums are exact, even for extreme weights."""
from __future__ import annotations

import numpy as np
import torch

from aezip.coding.intdecoder import (ACT_LIMIT, EXACT_LIMIT, build_integer_decoder, integer_decode, layer_input,
                                     weight_shift)
from aezip.network.model import DecoderLayers
from aezip.files.modelfile import load_model


def test_pixels_are_the_rounded_float_sigmoid_within_one_level() -> None:
    mf = load_model()
    m = mf.model.double()
    bits = mf.info.get("requantized", {}).get("decoder_weight_bits", 16)
    with torch.no_grad():       # the float weights and biases on the integer decoder's grid (requantized: 8 bits)
        for i, layer in enumerate(m.decoder):
            div = 23.0 if i == 0 else 1.0
            w, b = layer.weight.numpy() / div, layer.bias.numpy()
            in_limit, in_frac = layer_input(i, 23.0)
            s = weight_shift(w, b, in_limit, in_frac, 2 ** (bits - 1) - 1)
            layer.weight.copy_(torch.from_numpy(np.round(w * 2.0 ** s) * 2.0 ** -s * div))
            layer.bias.copy_(torch.from_numpy(np.round(b * 2.0 ** (s + in_frac)) * 2.0 ** -(s + in_frac)))
    rng = np.random.default_rng(0)
    codes = np.concatenate([rng.integers(0, 24, (400, 24)), rng.integers(0, 2, (100, 24)) * 23,
                            np.zeros((1, 24), np.int64), np.full((1, 24), 23)])
    with torch.no_grad():
        v = (255 * torch.sigmoid(m.decode_logits(m.dequantize(torch.from_numpy(codes)).double()))).numpy()
    got = integer_decode(mf.intdec, codes).astype(np.float64)
    assert np.abs(got - v).max() < 1.0                        # never a whole level away from the float value
    differ = got != np.round(v)
    assert differ.mean() < 0.01                               # measured: 0.03 % of pixels (0.29 % at 16 bits)
    assert np.abs(v[differ] - np.floor(v[differ]) - 0.5).max() < 0.4   # and only near a .5 boundary


def _worst_accumulators(dec, levels: int) -> list[int]:
    """The largest |accumulator| each layer can reach, in exact integers (inputs at their limits)."""
    worst, in_limit = [], levels - 1
    for i, (w, b) in enumerate(zip(dec.weights, dec.biases)):
        row = np.abs(np.asarray(w, np.int64)).sum(1).astype(object) * in_limit + np.abs(np.asarray(b, np.int64))
        worst.append(int(row.max()))
        in_limit = ACT_LIMIT - 1
    return worst


def test_accumulator_bound_holds_for_extreme_weights() -> None:
    g = torch.Generator().manual_seed(0)
    for scale in (1e-6, 1.0, 1e4):
        weights = [torch.randn(64, 24, generator=g, dtype=torch.float64) * scale,
                   torch.randn(784, 64, generator=g, dtype=torch.float64) * scale]
        weights[0][0, 0] = 1e5 * scale                       # one outlier weight
        biases = [torch.randn(64, generator=g, dtype=torch.float64) * scale * 100,
                  torch.randn(784, generator=g, dtype=torch.float64) * scale]
        dec = build_integer_decoder(DecoderLayers(weights, biases), levels=256)
        assert all(acc < EXACT_LIMIT for acc in _worst_accumulators(dec, 256)), scale
        assert all(np.abs(np.asarray(w)).max() <= 2 ** 15 - 1 for w in dec.weights)
        codes = np.array([[0] * 24, [255] * 24, [255, 0] * 12])
        out = integer_decode(dec, codes)
        assert out.shape == (3, 784) and out.dtype == np.uint8
