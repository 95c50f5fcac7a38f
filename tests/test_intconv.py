"""Fixed-point convolutional networks: their sums are exact (the same integers as torch's float64 convolutions),
their accumulators stay within the bounds the proof uses, images decode alone or in a batch to the same pixels, and
they follow the float networks they quantize (a GDN synthesis, a ReLU hyper-synthesis)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aezip.coding.intconv import (ACT_CLAMP, ACT_FRAC_BITS, GDN_CLAMP, FloatLayer, _convolve, build_integer_net,
                                  integer_forward, integer_synthesize)
from aezip.coding.intdecoder import EXACT_LIMIT


def _float_synthesis(rng: np.random.Generator, widths: list[int], k: int = 5) -> list[FloatLayer]:
    """Random `up` layers with inverse GDN (gamma >= 0, beta > 0) between them."""
    layers = [FloatLayer("up", rng.normal(0, 1 / (cin * k) ** 0.5, (cin, cout, k, k)), rng.normal(0, 0.05, cout),
                         "igdn", np.abs(rng.normal(0, 0.1, (cout, cout))) + np.eye(cout) * 0.1,
                         rng.uniform(0.5, 1.5, cout))
              for cin, cout in zip(widths[:-1], widths[1:])]
    last = layers[-1]
    layers[-1] = FloatLayer("up", last.weight * 0.005, last.bias * 0.005)   # images mostly inside [0, 1]
    return layers


def _float_reference(layers: list[FloatLayer], y: np.ndarray) -> np.ndarray:
    """The float64 network (NCHW in torch), its last layer's output NHWC."""
    x = torch.from_numpy(y).permute(0, 3, 1, 2)
    for f in layers:
        w, b, k = torch.from_numpy(f.weight), torch.from_numpy(f.bias), f.weight.shape[2]
        if f.kind == "up":
            x = F.conv_transpose2d(x, w, b, stride=2, padding=k // 2, output_padding=1)
        else:
            x = F.conv2d(x, w.transpose(0, 1), b, padding=k // 2)
        if f.activation == "igdn":
            gamma, beta = torch.from_numpy(f.gamma), torch.from_numpy(f.beta)
            x = x * torch.sqrt(torch.einsum("ij,njhw->nihw", gamma, x * x) + beta[None, :, None, None])
        elif f.activation == "relu":
            x = torch.relu(x)
    return x.permute(0, 2, 3, 1).numpy()


def _pixels(v: np.ndarray) -> np.ndarray:
    return np.clip(np.round(255 * (v + 0.5)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("kind", ["up", "same"])
def test_kernel_taps_give_torchs_convolution_exactly(kind: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(-ACT_CLAMP, ACT_CLAMP + 1, (2, 3, 5, 7)).astype(np.float64)
    w = rng.integers(-2 ** 15 + 1, 2 ** 15, (7, 4, 5, 5)).astype(np.int32)
    b = rng.integers(-2 ** 40, 2 ** 40, 4)
    ours = _convolve(x, kind, w, b)
    xt, wt, bt = (torch.from_numpy(a.astype(np.float64)) for a in (x, w, b))
    if kind == "up":
        ref = F.conv_transpose2d(xt.permute(0, 3, 1, 2), wt, bt, stride=2, padding=2, output_padding=1)
    else:
        ref = F.conv2d(xt.permute(0, 3, 1, 2), wt.transpose(0, 1), bt, padding=2)
    assert ours.shape == ((2, 6, 10, 4) if kind == "up" else (2, 3, 5, 4))
    assert np.array_equal(ours, ref.permute(0, 2, 3, 1).numpy())
    assert np.array_equal(ours, np.round(ours))                  # integers: nothing rounded away


def test_accumulators_stay_below_the_exact_limit_for_the_worst_inputs() -> None:
    rng = np.random.default_rng(1)
    syn = build_integer_net(_float_synthesis(rng, [6, 9, 9, 3]), in_frac=8)
    for i, layer in enumerate(syn.layers):         # every layer's inputs are clamped to ACT_CLAMP
        bound = np.abs(layer.weight.astype(np.float64)).sum(axis=(0, 2, 3)) * ACT_CLAMP + np.abs(layer.bias)
        assert bound.max() < EXACT_LIMIT / (512 if i == len(syn.layers) - 1 else 1)
        if layer.gamma is not None:
            assert layer.gdn_frac % 2 == 0
            norm = np.abs(layer.gamma.astype(np.float64)).sum(1) * (GDN_CLAMP ** 2 >> ACT_FRAC_BITS)
            assert (norm + layer.beta).max() < EXACT_LIMIT
            assert np.sqrt(EXACT_LIMIT) * GDN_CLAMP < EXACT_LIMIT   # x * root


def test_images_decode_alone_or_in_a_batch_to_the_same_pixels() -> None:
    rng = np.random.default_rng(2)
    syn = build_integer_net(_float_synthesis(rng, [5, 8, 3]))
    y = rng.integers(-6, 7, (4, 3, 3, 5))
    batch = integer_synthesize(syn, y)
    assert batch.shape == (4, 12, 12, 3) and batch.dtype == np.uint8
    for i in range(4):
        assert np.array_equal(integer_synthesize(syn, y[i:i + 1])[0], batch[i])


@pytest.mark.parametrize("in_frac", [0, 8])
def test_fixed_point_follows_the_float_synthesis(in_frac: int) -> None:
    rng = np.random.default_rng(3 + in_frac)
    layers = _float_synthesis(rng, [4, 8, 8, 3])
    y = np.round(rng.normal(0, 3, (3, 2, 2, 4)) * 2.0 ** in_frac) / 2.0 ** in_frac
    ref = _pixels(_float_reference(layers, y)).astype(int)
    ours = integer_synthesize(build_integer_net(layers, in_frac=in_frac), np.round(y * 2.0 ** in_frac)).astype(int)
    assert ref.std() > 20 and np.mean((ref == 0) | (ref == 255)) < 0.2      # a picture, not a flat or binary one
    assert np.abs(ours - ref).max() <= 1 and np.mean(ours != ref) < 0.02


def test_a_relu_hyper_synthesis_follows_its_float_network() -> None:
    rng = np.random.default_rng(5)
    layers = [FloatLayer("up", rng.normal(0, 0.2, (6, 10, 5, 5)), rng.normal(0, 0.1, 10), "relu"),
              FloatLayer("same", rng.normal(0, 0.1, (10, 8, 3, 3)), rng.normal(0, 0.1, 8))]
    z = rng.integers(-4, 5, (3, 2, 2, 6)).astype(np.float64)
    net = build_integer_net(layers, pixels=False)
    raw = integer_forward(net, z) * 2.0 ** -net.out_frac
    ref = _float_reference(layers, z)
    assert raw.shape == (3, 4, 4, 8) and ref.std() > 0.5
    assert np.abs(raw - ref).max() < 1e-3


def test_perfect_squares_have_exact_roots() -> None:
    k = np.array([1, 3, 2 ** 20 + 7, 2 ** 26 - 1], dtype=np.float64)
    assert np.array_equal(np.floor(np.sqrt(k * k)), k)


def test_only_the_last_layer_goes_without_activation() -> None:
    layers = _float_synthesis(np.random.default_rng(4), [4, 8, 3])
    with pytest.raises(ValueError, match="only it"):
        build_integer_net(layers[:1] + [FloatLayer("up", layers[0].weight, layers[0].bias)] + layers[1:])
    with pytest.raises(ValueError, match="unknown"):
        build_integer_net([FloatLayer("down", layers[1].weight, layers[1].bias)])


def _python_int_reference(net, x: np.ndarray) -> np.ndarray:
    """The same fixed-point network in Python integers (object arrays: no rounding anywhere), ReLU layers only;
    pixels floor(255 acc / 2^frac) + 128, clipped."""
    x = np.clip(x.astype(np.int64), -int(net.in_limit), int(net.in_limit)).astype(object)
    for layer in net.layers:
        n, h, w, _ = x.shape
        k, cout = layer.weight.shape[2], layer.weight.shape[1]
        pad = k // 2
        taps = layer.weight.astype(np.int64).astype(object)
        if layer.kind == "up":
            full = np.zeros((n, 2 * h + k - 1, 2 * w + k - 1, cout), dtype=object)
            for ky in range(k):
                for kx in range(k):
                    full[:, ky:ky + 2 * h:2, kx:kx + 2 * w:2, :] += x @ taps[:, :, ky, kx]
            acc = full[:, pad:pad + 2 * h, pad:pad + 2 * w, :] + layer.bias.astype(object)
        else:
            padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=0)
            acc = np.zeros((n, h, w, cout), dtype=object) + layer.bias.astype(object)
            for ky in range(k):
                for kx in range(k):
                    acc = acc + padded[:, ky:ky + h, kx:kx + w, :] @ taps[:, :, ky, kx]
        if layer.activation == "none":
            return np.clip(np.vectorize(lambda a: (255 * a) >> layer.acc_frac)(acc) + 128, 0, 255).astype(np.uint8)
        shift = layer.acc_frac - ACT_FRAC_BITS
        x = np.vectorize(lambda a: (a + (1 << (shift - 1))) >> shift if shift > 0 else a << -shift)(acc)
        x = np.clip(x, 0, ACT_CLAMP)
    raise AssertionError("no last layer")


@pytest.mark.parametrize("last_scale", [1.0, 1e-7])
def test_python_integers_give_the_same_pixels(last_scale: float) -> None:
    """Exactness end to end, also where tiny last-layer weights give the accumulator ~50 fractional bits."""
    rng = np.random.default_rng(6)
    layers = [FloatLayer("up", rng.normal(0, 0.3, (3, 5, 5, 5)), rng.normal(0, 0.1, 5), "relu"),
              FloatLayer("same", rng.normal(0, 0.2, (5, 3, 3, 3)) * last_scale, rng.normal(0, 0.2, 3) * last_scale)]
    net = build_integer_net(layers)
    z = rng.integers(-20, 21, (2, 3, 3, 3))
    assert np.array_equal(integer_synthesize(net, z), _python_int_reference(net, z))
    if last_scale < 1:
        assert net.out_frac > 40
