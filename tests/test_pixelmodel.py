"""The learned pixel model: bit-exact round trips, identical bytes across processes and threads, damage detected,
hostile model tensors refused, reproducible training."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import save_file

from aezip.errors import FormatError
from tests.modeledit import rewrite, set_tensor
from aezip.files.modelfile import load_model
from aezip.coding.pixelkernel import mu_offset
from aezip.coding.pixelcoding import decode_mlp, encode_mlp
from aezip.coding.pixelmodel import (PixelMLP, merge_classes, mu_bits, mu_thresholds, n_features, n_passes,
                                     outside_sample, pass_classes)
from aezip.coding.pixelstream import CONTEXT, CONTEXT_EXACT, MLP, MLP_EXACT, XZ, ZSTD, decode_pixels, encode_pixels
from aezip.options import PixelOptions
from aezip.coding.pixeltrain import fit_pixel_model
from aezip.coding.residual import N_CONTEXTS

PRIOR = np.zeros((N_CONTEXTS, 256), np.int64)
SMALL = PixelOptions(hidden=(8,), scales=4, samples=3000, epochs=4, batch_size=64, lr=1e-2)


def _smooth(n: int, shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Images that are a ramp plus noise, and a blurred prediction of them (both n x D uint8)."""
    rng = np.random.default_rng(seed)
    h, w = shape[:2]
    c = shape[2] if len(shape) == 3 else 1
    ramp = rng.uniform(0, 8, (n, 1, 1, c)) * np.arange(h)[None, :, None, None] \
        + rng.uniform(0, 8, (n, 1, 1, c)) * np.arange(w)[None, None, :, None] + rng.uniform(0, 100, (n, 1, 1, c))
    x = np.clip(ramp + rng.normal(0, 6, ramp.shape), 0, 255).astype(np.uint8).reshape(n, -1)
    pred = np.clip(ramp + rng.normal(0, 3, ramp.shape), 0, 255).astype(np.uint8).reshape(n, -1)
    return x, pred


@pytest.fixture(scope="module", params=[(5, 7), (8, 8, 3)], ids=["gray5x7", "rgb8x8x3"])
def trained(request) -> tuple[PixelMLP, tuple[int, ...]]:
    shape = request.param
    x, pred = _smooth(200, shape, 0)
    return fit_pixel_model(x, pred, shape, SMALL, 2, seed=3, log=lambda m: None), shape


@pytest.mark.parametrize("e", [0, 1, 4, 255])
def test_round_trip_is_bit_exact_and_keeps_the_bound(trained, e) -> None:
    mlp, shape = trained
    x, pred = _smooth(30, shape, 1)
    data, recon = encode_mlp(mlp, x, pred, shape, e)
    back = decode_mlp(mlp, data, pred, shape, e)
    np.testing.assert_array_equal(back, recon)
    assert np.abs(back.astype(int) - x.astype(int)).max() <= e
    if e == 0:
        np.testing.assert_array_equal(back, x)
        assert len(data) * 8 / x.size < 7.0   # the model learned something: raw samples cost 8 bits


def _searched(mlp: PixelMLP, k: int, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PixelMLP.classes by binary search over both threshold sets (the code before mu_offset)."""
    acc = mlp.accumulators(k, feats)
    offset = np.searchsorted(mlp.mu_thresholds[k].astype(np.float64), acc[:, 0], side="right") - 255
    s = np.searchsorted(mlp.s_thresholds[k].astype(np.float64), acc[:, 1], side="right")
    return np.clip(feats[:, -1].astype(np.int64) + offset, 0, 255), s


@pytest.mark.parametrize("a", [0, 1, 2, 5, 21, 22, 23, 43, 51, 52])
def test_mu_offset_counts_the_thresholds_a_search_counts(a) -> None:
    t = mu_thresholds(a)
    assert mu_bits(t) == a
    limit = 2.0 ** 52 - 1   # |accumulator| < 2^52
    acc = np.concatenate([t - 1, t, t + 1]).astype(np.float64)
    acc = np.concatenate([acc[np.abs(acc) <= limit], [-limit, -limit + 1, -1.0, 0.0, 1.0, limit - 1, limit]])
    got = [mu_offset(v, a) for v in acc]
    np.testing.assert_array_equal(got, np.searchsorted(t.astype(np.float64), acc, side="right") - 255)


def test_thresholds_of_another_form_still_use_the_search(trained) -> None:
    mlp, shape = trained
    assert all(a is not None for a in mlp.mu_bits)   # the trainer's thresholds take the arithmetic path
    rng = np.random.default_rng(5)
    t = mlp.mu_thresholds.copy()
    t[0] += 1   # still spaced by 2^a around 0, but not mu_thresholds(a)
    t[1] = np.sort(rng.integers(-2 ** 30, 2 ** 30, t.shape[1]))
    t[2, 255] = t[2, 254]   # no power-of-two spacing
    other = dataclasses.replace(mlp, mu_thresholds=t)
    assert other.mu_bits[:3] == [None, None, None] and other.mu_bits[3:] == mlp.mu_bits[3:]
    c = len(shape) == 3 and shape[2] or 1
    for m in (mlp, other):
        for k in range(len(m.weights)):
            feats = rng.integers(0, 256, (5000, n_features(k % c))).astype(np.float64)
            for got, want in zip(m.classes(k, feats), _searched(m, k, feats)):
                np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("e", [0, 4])
def test_the_tagged_stream_picks_the_pixel_model_where_it_wins(trained, e) -> None:
    mlp, shape = trained
    x, pred = _smooth(30, shape, 2)
    s = encode_pixels(x, pred, shape, e, PRIOR, 0, mlp)
    assert s.method in ((MLP,) if e == 0 else (MLP, MLP_EXACT))
    back = decode_pixels(s.data, pred, x.shape, shape, e, PRIOR, mlp)
    np.testing.assert_array_equal(back, s.recon)
    with pytest.raises(ValueError, match="no pixel model"):
        decode_pixels(s.data, pred, x.shape, shape, e, PRIOR, None)


def test_noise_still_falls_back_to_a_generic_coder(trained) -> None:
    mlp, shape = trained
    x = np.random.default_rng(5).integers(0, 256, (40, int(np.prod(shape))), dtype=np.uint8)
    s = encode_pixels(x, np.zeros_like(x), shape, 0, PRIOR, 100, mlp)
    assert s.method in (ZSTD, XZ)


def test_constant_images_cost_almost_nothing(trained) -> None:
    mlp, shape = trained
    x = np.full((40, int(np.prod(shape))), 37, np.uint8)
    s = encode_pixels(x, x.copy(), shape, 0, PRIOR, 0, mlp)
    np.testing.assert_array_equal(decode_pixels(s.data, x.copy(), x.shape, shape, 0, PRIOR, mlp), x)
    assert len(s.data) < x.size // 8


def test_a_flipped_byte_in_the_pixel_stream_is_detected(trained) -> None:
    mlp, shape = trained
    x, pred = _smooth(30, shape, 4)
    data, recon = encode_mlp(mlp, x, pred, shape, 0)
    for pos in range(0, len(data) // 2, max(1, len(data) // 16)):
        bad = bytearray(data)
        bad[pos] ^= 0x10
        try:
            back = decode_mlp(mlp, bytes(bad), pred, shape, 0)
        except (ValueError, AssertionError, RuntimeError):
            continue
        assert not np.array_equal(back, recon), f"flip at byte {pos} went unnoticed"


def test_training_is_reproducible_and_quantized_for_float32(trained) -> None:
    mlp, shape = trained
    assert mlp.dtypes == [np.float32] * len(mlp.weights)   # every pass of gray and RGB (previous-channel inputs too)
    x, pred = _smooth(200, shape, 0)
    again = fit_pixel_model(x, pred, shape, SMALL, 2, seed=3, log=lambda m: None)
    for k, v in mlp.tensors().items():
        np.testing.assert_array_equal(v, again.tensors()[k])


_SCRIPT = """
import sys, numpy as np
from safetensors.numpy import load_file
from aezip.coding.pixelmodel import PixelMLP
from aezip.coding.pixelcoding import decode_mlp, encode_mlp
t = load_file(sys.argv[1]); mlp = PixelMLP.from_tensors(t)
shape = tuple(int(s) for s in sys.argv[3].split("x"))
data, recon = encode_mlp(mlp, t["x"], t["pred"], shape, int(sys.argv[4]))
back = decode_mlp(mlp, data, t["pred"], shape, int(sys.argv[4]))
assert (back == recon).all()
open(sys.argv[2], "wb").write(data + back.tobytes())
"""


def test_identical_bytes_across_processes_and_thread_counts(tmp_path, trained) -> None:
    mlp, shape = trained
    x, pred = _smooth(64, shape, 6)
    save_file({**mlp.tensors(), "x": x, "pred": pred}, str(tmp_path / "m.safetensors"))
    outs = []
    for threads in (1, 2):
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
               "MKL_NUM_THREADS": str(threads)}
        out = tmp_path / f"out{threads}"
        subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path / "m.safetensors"), str(out),
                        "x".join(map(str, shape)), "1"], check=True, env=env)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    data, recon = encode_mlp(mlp, x, pred, shape, 1)
    assert outs[0] == data + recon.tobytes()


@pytest.mark.parametrize("e", [0, 4])
def test_the_block_pool_codes_the_same_bytes_as_one_thread(trained, e, monkeypatch) -> None:
    """Passes spread over two threads (small blocks, so every pass has several) give one thread's stream."""
    from aezip import threads
    from aezip.coding import pixelmodel
    mlp, shape = trained
    x, pred = _smooth(50, shape, 7)
    single, recon = encode_mlp(mlp, x, pred, shape, e)
    monkeypatch.setattr(pixelmodel, "ROW_BLOCK", 40)
    monkeypatch.setitem(threads._state, "workers", 2)
    try:
        data, pooled = encode_mlp(mlp, x, pred, shape, e)
        assert threads.block_pool() is not None
        assert data == single
        np.testing.assert_array_equal(pooled, recon)
        np.testing.assert_array_equal(decode_mlp(mlp, data, pred, shape, e), recon)
    finally:
        if threads._state["pool"] is not None:
            threads._state["pool"][1].shutdown()
            threads._state["pool"] = None


@pytest.mark.parametrize("edit, message", [
    (set_tensor("pixel.table", lambda a: a * 0), "pixel.table outside"),
    (set_tensor("pixel.p0.w0", lambda a: a + 40000), "exceeds"),
    (set_tensor("pixel.p1.b1", lambda a: a + 2 ** 60), "exact integer arithmetic"),
    (set_tensor("pixel.mu_thresholds", lambda a: a[:, ::-1].copy()), "sorted"),
    (set_tensor("pixel.s_thresholds", lambda a: a[:, :-1].copy()), "pixel.s_thresholds"),
    (set_tensor("pixel.p2.w0", lambda a: a[:, :-1].copy()), "pixel.p2.w0"),
    (lambda t: t.pop("pixel.p3.b0"), "missing"),
])
def test_modelcheck_refuses_out_of_bound_pixel_tensors(tmp_path, tiny_model_path, edit, message) -> None:
    mf = load_model(tiny_model_path)
    assert mf.pixel is not None and len(mf.pixel.weights) == n_passes((28, 28), 1)
    bad = tmp_path / "bad.aezm"
    rewrite(tiny_model_path, bad, edit)
    with pytest.raises(FormatError, match=message):
        load_model(bad)


def test_a_model_without_a_pixel_model_still_loads(tmp_path, tiny_model_path) -> None:
    plain = tmp_path / "plain.aezm"
    rewrite(tiny_model_path, plain, lambda t: [t.pop(k) for k in list(t) if k.startswith("pixel.")])
    assert load_model(plain).pixel is None


@pytest.mark.parametrize("n", [21, 24])
def test_a_chunks_classes_are_its_samples_merged_with_the_rest(trained, n) -> None:
    """The chooser's sample is not run twice: the whole chunk's classes are the sample's merged with the others'
    (24 images: by slices; 21: by index)."""
    mlp, shape = trained
    x, pred = _smooth(n, shape, 8)
    others = outside_sample(n, 8)
    whole = pass_classes(mlp, x, pred, shape, 4)
    merged = merge_classes(pass_classes(mlp, x[::8], pred[::8], shape, 4),
                           pass_classes(mlp, x[others], pred[others], shape, 4), 8, n)
    np.testing.assert_array_equal(merged[1], whole[1])
    for a, b in zip(merged[0], whole[0]):
        for f in ("mu", "s", "ref", "q", "values"):
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


@pytest.mark.parametrize("kind, e", [("binary", 4), ("smooth", 4), ("binary", 1)])
def test_the_pixel_models_at_e0_are_estimated_where_bins_buy_little(trained, monkeypatch, kind, e) -> None:
    """Under E > 0 MLP_EXACT is estimated only where the context coder at E = 0 comes within EXACT_LOOK of the
    context coder at E: on two-level images (bins merge nothing; gray, E = 4: 0.96x) it is, on smooth ones (1.6x)
    not; the mixing coder with latents at E = 0 (--effort max) then follows the pixel model's own gain (gray
    two-level images at E = 1: 1.18x, estimated; at E = 4: 1.40x, not). The stream decodes either way."""
    from aezip.coding import pixelstream
    mlp, shape = trained
    n = pixelstream.SAMPLE_STEP * pixelstream.SAMPLE_MIN
    x, pred = _smooth(n, shape, 9)
    if kind == "binary":
        x = np.where(x > 128, 255, 0).astype(np.uint8)
    coders = pixelstream._Coders(x, pred, shape, e, PRIOR, mlp, None, None)
    best = lambda m, step: min(coders.estimates(m, step).values())   # noqa: E731
    context_gain = best(CONTEXT_EXACT, 8) / best(CONTEXT, 8)
    pixel_gain = best(MLP_EXACT, 8 * pixelstream.SECONDARY_THIN) / best(MLP, 8)
    seen: list[int] = []
    real = pixelstream._Coders.estimates
    monkeypatch.setattr(pixelstream._Coders, "estimates",
                        lambda self, m, step, variants=None: seen.append(m) or real(self, m, step, variants))
    s = encode_pixels(x, pred, shape, e, PRIOR, 0, mlp, methods=pixelstream.ALL_METHODS)
    exact = context_gain <= pixelstream.EXACT_LOOK
    assert (MLP_EXACT in seen) == exact
    assert (pixelstream.MIXING_LATENTS_EXACT in seen) == (exact and pixel_gain <= pixelstream.EXACT_LOOK)
    if kind == "smooth" or len(shape) == 2:
        assert (MLP_EXACT in seen) == (kind == "binary")
    if len(shape) == 2 and kind == "binary":
        assert (pixelstream.MIXING_LATENTS_EXACT in seen) == (e == 1)
    np.testing.assert_array_equal(decode_pixels(s.data, pred, x.shape, shape, e, PRIOR, mlp), s.recon)
