"""The raster network (rasternet.py, rasterkernel.py) inside the mixing coder with latents: its integer counts equal
an exact integer reference, its features are the coder's, round trips stay exact with it, its bytes do not depend on
the process or thread count, it lowers the rate on data like its training images, and hostile tensors are refused."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import save_file

from aezip.coding import bins, rasterkernel
from aezip.coding.intdecoder import ACT_LIMIT, quantize_mlp
from aezip.coding.mixing import HEAD_MODE, HEAD_NET, decode_mixing_latents, encode_mixing_latents
from aezip.coding.rasternet import EXP2, FEATURES, VALUES, RasterNet, features, is_exact
from aezip.coding.rastertrain import fit_raster, raster_applies
from aezip.errors import FormatError
from tests.modeledit import rewrite, set_tensor
from aezip.files.decodemodel import decode_tensors
from aezip.files.modelfile import load_model


def _net(seed: int, hidden: tuple[int, int] = (5, 3), scale: float = 1.0) -> RasterNet:
    """A random network of odd widths, quantized as training quantizes it."""
    rng = np.random.default_rng(seed)
    sizes = (FEATURES, *hidden, VALUES)
    ws = [rng.normal(0, scale, (o, i)) / np.sqrt(i) for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [rng.normal(0, 0.5, o) for o in sizes[1:]]
    ws[0] = ws[0] / 255.0
    qw, qb, shifts, out_bits = quantize_mlp(ws, bs, 255.0)
    return RasterNet(qw, qb, np.asarray(shifts, np.int64), out_bits)


def _reference_counts(net: RasterNet, f: list[int]) -> list[int]:
    """The cumulative counts in Python integers: no floating point anywhere."""
    h = f
    for i, (w, b) in enumerate(zip(net.weights, net.biases)):
        acc = [sum(int(w[j, k]) * h[k] for k in range(len(h))) + int(b[j]) for j in range(w.shape[0])]
        if i < 2:
            s = int(net.shifts[i])
            acc = [(a + (1 << (s - 1))) >> s if s > 0 else a << -s for a in acc]
            acc = [min(max(a, 0), ACT_LIMIT - 1) for a in acc]
        h = acc
    top, cum = max(h), [0]
    for v in h:
        d = (top - v) >> (net.out_bits - 4) if net.out_bits >= 4 else (top - v) << (4 - net.out_bits)
        c = int(EXP2[d & 15]) >> (d >> 4) if d < 16 * 17 else 0
        cum.append(cum[-1] + max(c, 1))
    return cum


@pytest.mark.parametrize("seed, scale", [(0, 1.0), (1, 8.0), (2, 0.01)])
def test_counts_equal_an_exact_integer_reference(seed, scale) -> None:
    net = _net(seed, scale=scale)
    assert is_exact(net)
    rng = np.random.default_rng(seed)
    rows = [np.zeros(FEATURES), np.full(FEATURES, 255.0)] + [rng.integers(0, 256, FEATURES).astype(np.float64)
                                                             for _ in range(40)]
    plan = net.plan()
    h0, h1, logits, cum = np.zeros(5), np.zeros(3), np.zeros(VALUES), np.zeros(VALUES + 1, np.int64)
    for f in rows:
        rasterkernel.counts(f, plan, h0, h1, logits, cum)
        assert cum.tolist() == _reference_counts(net, [int(v) for v in f])
        assert cum[-1] <= VALUES << 16 and (np.diff(cum) >= 1).all()


@pytest.mark.parametrize("shape", [(3, 5, 7), (2, 1, 1), (2, 4, 9)])
@pytest.mark.parametrize("max_error", [0, 3])
def test_the_coders_features_are_the_training_features_of_the_decoded_values(shape, max_error) -> None:
    """Under E the coder's planes hold bins: it sees their decoded values, as training sees pixels."""
    rng = np.random.default_rng(sum(shape))
    x, pred = rng.integers(0, 256, shape), rng.integers(0, 256, shape)
    planes = bins.to_bins(x, max_error)
    rows = features(bins.values(planes, max_error), pred)
    f = np.zeros(FEATURES)
    n, h, w = shape
    for i in range(n):
        for y in range(h):
            for xx in range(w):
                rasterkernel.pixel_features(planes[..., None], pred[..., None], i, y, xx, max_error, f)
                np.testing.assert_array_equal(f, rows[(i * h + y) * w + xx])


@pytest.mark.parametrize("max_error", [0, 1, 4, 40])
def test_bin_counts_sum_the_values_of_each_bin(max_error) -> None:
    counts = np.random.default_rng(max_error).integers(1, 1000, VALUES)
    cum = np.concatenate([[0], np.cumsum(counts)])
    nbins = bins.geometry(max_error)[1]
    out = np.zeros((1 << int(np.ceil(np.log2(max(nbins, 2))))) + 1, np.int64)
    rasterkernel.bin_counts(cum, max_error, out)
    per_bin = np.diff(out)
    np.testing.assert_array_equal(per_bin[:nbins], bins.sum_into_bins(counts, max_error))
    assert (per_bin[nbins:] == 0).all() and out[-1] == counts.sum()


def _digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Blobs on black (n x 10 x 10, most pixels 0) and a blurred prediction of them, both n x D uint8."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:10, :10]
    cy, cx = rng.uniform(3, 7, (2, n, 1, 1))
    x = np.clip(300 - 60 * ((yy - cy) ** 2 + (xx - cx) ** 2) + rng.normal(0, 20, (n, 10, 10)), 0, 255)
    pred = np.clip(300 - 60 * ((yy - cy) ** 2 + (xx - cx) ** 2), 0, 255)
    return x.astype(np.uint8).reshape(n, -1), pred.astype(np.uint8).reshape(n, -1)


def _blurred(images: np.ndarray) -> np.ndarray:
    """A 3x3 box blur of n x 28 x 28 images, n x D: a prediction as blurry as an autoencoder's."""
    padded = np.pad(images.astype(int), ((0, 0), (1, 1), (1, 1)))
    return (sum(padded[:, dy:dy + 28, dx:dx + 28] for dy in range(3) for dx in range(3)) // 9).reshape(len(images), -1)


@pytest.fixture(scope="module")
def fitted() -> RasterNet:
    x, pred = _digits(300, 1)
    return fit_raster(x, pred, (10, 10), seed=2, log=lambda m: None, hidden=(8, 8), epochs=3)


def test_it_lowers_the_rate_on_images_like_its_training_images(sample_images) -> None:
    """Trained on 200 of the shipped digits with a blurred prediction, it codes the other 100 smaller."""
    net = fit_raster(sample_images[:200].reshape(200, -1), _blurred(sample_images[:200]), (28, 28), seed=2,
                     log=lambda m: None, hidden=(32, 32), epochs=12)
    x, pred = sample_images[200:].reshape(100, -1), _blurred(sample_images[200:])
    plain, _ = encode_mixing_latents(x, pred, (28, 28), 0)
    mixed, recon = encode_mixing_latents(x, pred, (28, 28), 0, net)
    assert mixed[0] == HEAD_MODE | HEAD_NET and plain[0] == HEAD_MODE
    assert len(mixed) < 0.95 * len(plain), (len(mixed), len(plain))   # measured: 0.935
    np.testing.assert_array_equal(recon, x)
    np.testing.assert_array_equal(decode_mixing_latents(mixed, pred, (28, 28), 0, net), x)


@pytest.mark.parametrize("shape", [(5, 7), (1, 1), (10, 10, 1)])
@pytest.mark.parametrize("max_error", [0, 1, 4, 255])
def test_round_trips_stay_exact_within_every_bound_and_the_network_is_for_one_channel(fitted, shape,
                                                                                      max_error) -> None:
    rng = np.random.default_rng(len(shape) + max_error)
    d = int(np.prod(shape))
    x = rng.integers(0, 256, (30, d)).astype(np.uint8)
    pred = np.clip(x.astype(int) + rng.integers(-9, 10, x.shape), 0, 255).astype(np.uint8)
    data, recon = encode_mixing_latents(x, pred, shape, max_error, fitted)
    assert np.abs(recon.astype(int) - x).max() <= max_error
    np.testing.assert_array_equal(decode_mixing_latents(data, pred, shape, max_error, fitted), recon)
    if max_error < 128:   # E >= 128 leaves one bin: nothing is coded
        assert data[0] & HEAD_NET
        with pytest.raises(ValueError, match="raster network the model does not have"):
            decode_mixing_latents(data, pred, shape, max_error)
    rgb = rng.integers(0, 256, (10, 4 * 4 * 3)).astype(np.uint8)
    assert not encode_mixing_latents(rgb, rgb, (4, 4, 3), 0, fitted)[0][0] & HEAD_NET
    assert not raster_applies((4, 4, 3)) and raster_applies((4, 4, 1)) and raster_applies((4, 4))


_SCRIPT = """
import sys, numpy as np
from safetensors.numpy import load_file
from aezip.coding.mixing import encode_mixing_latents
from aezip.coding.rasternet import RasterNet
t = load_file(sys.argv[1])
data, _ = encode_mixing_latents(t["x"], t["pred"], (10, 10), 0, RasterNet.from_tensors(t))
open(sys.argv[2], "wb").write(data)
"""


def test_identical_bytes_across_processes_and_thread_counts(tmp_path, fitted) -> None:
    x, pred = _digits(40, 4)
    save_file({**fitted.tensors(), "x": x, "pred": pred}, str(tmp_path / "t.safetensors"))
    outs = []
    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "NUMBA_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
        subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path / "t.safetensors"), str(tmp_path / threads)],
                       check=True, env=env)
        outs.append((tmp_path / threads).read_bytes())
    assert outs[0] == outs[1] == encode_mixing_latents(x, pred, (10, 10), 0, fitted)[0]


@pytest.mark.parametrize("edit, message", [
    (set_tensor("raster.w0", lambda a: a + 40000), "exceeds"),
    (set_tensor("raster.b1", lambda a: a + 2 ** 60), "exact integer arithmetic"),
    (set_tensor("raster.out_bits", lambda a: a + 99), "exact integer arithmetic"),
    (set_tensor("raster.w2", lambda a: a[:-1].copy()), "raster.w2"),
    (set_tensor("raster.w0", lambda a: a[:, :-1].copy()), "raster.w0"),
    (lambda t: t.pop("raster.b0"), "missing"),
    (lambda t: t.update({"raster.w0": np.zeros((600, FEATURES), np.int32), "raster.b0": np.zeros(600, np.int64),
                         "raster.w1": np.zeros((32, 600), np.int32)}), "raster.w0 has 600 outputs"),
])
def test_modelcheck_refuses_hostile_raster_tensors(tmp_path, tiny_model_path, edit, message) -> None:
    mf = load_model(tiny_model_path)
    assert mf.raster is not None and is_exact(mf.raster)   # aezip train fits one for gray images
    bad = tmp_path / "bad.aezm"
    rewrite(tiny_model_path, bad, edit)
    with pytest.raises(FormatError, match=message):
        load_model(bad)


def test_the_decode_side_model_carries_it_for_max_error_files_only(tiny_model_path) -> None:
    mf = load_model(tiny_model_path)
    assert any(k.startswith("raster.") for k in decode_tensors(mf))
    assert not any(k.startswith("raster.") for k in decode_tensors(mf, max_error_parts=False))
