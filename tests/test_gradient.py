"""The gradient coder (gradient.py, method 8 of the pixel stream): exact round trips within every bound, its
predictions and contexts against a numpy reference, identical bytes across processes, damage detected."""
from __future__ import annotations

import zlib

import numpy as np
import pytest

from aezip.coding.gradient import decode_gradient, encode_gradient, gradient_bits
from aezip.coding.pixelstream import GRADIENT, PIXEL_CODER_V3, XZ, decode_pixels, encode_pixels
from aezip.coding.residual import N_CONTEXTS
from tests.processes import bytes_in_processes


def _images(shape: tuple[int, ...], kind: str, seed: int) -> np.ndarray:
    """n x D uint8: 'noise', 'smooth' (random walks along the raster) or 'photo' (smooth planes, colour channels
    moving together, a little noise)."""
    rng = np.random.default_rng(seed)
    n, d = shape[0], int(np.prod(shape[1:]))
    if kind == "noise":
        return rng.integers(0, 256, (n, d)).astype(np.uint8)
    if kind == "smooth":
        return np.clip(np.cumsum(rng.integers(-6, 7, (n, d)), axis=1) + 128, 0, 255).astype(np.uint8)
    h, w = shape[1], shape[2]
    c = shape[3] if len(shape) == 4 else 1
    yy, xx = np.mgrid[0:h, 0:w]
    base = rng.uniform(-6, 6, (n, 1, 1)) * yy + rng.uniform(-6, 6, (n, 1, 1)) * xx + rng.uniform(40, 200, (n, 1, 1))
    img = base[..., None] + rng.uniform(-30, 30, (n, 1, 1, c)) + rng.normal(0, 1.5, (n, h, w, c))
    return np.clip(img, 0, 255).astype(np.uint8).reshape(n, d)


@pytest.mark.parametrize("shape", [(37, 5, 7), (20, 8, 8, 3), (300, 6, 6)])
@pytest.mark.parametrize("max_error", [0, 4, 255])
def test_ideal_length_is_the_stream_without_the_coder(shape, max_error) -> None:
    x = _images(shape, "photo" if len(shape) == 4 or shape[0] > 100 else "smooth", seed=len(shape) + max_error)
    data, _ = encode_gradient(x, shape[1:], max_error)
    ideal = gradient_bits(x, shape[1:], max_error) / 8
    assert ideal - 4 <= len(data) <= ideal * 1.002 + 12


@pytest.mark.parametrize("shape", [(37, 5, 7), (20, 8, 8, 3), (9, 1, 1), (3, 2, 9, 3)])
@pytest.mark.parametrize("max_error", [0, 1, 4, 255])
@pytest.mark.parametrize("kind", ["noise", "smooth", "photo"])
def test_round_trip_is_exact_and_keeps_the_bound(shape, max_error, kind) -> None:
    x = _images(shape, kind, seed=zlib.crc32(repr((shape, max_error, kind)).encode()))
    data, recon = encode_gradient(x, shape[1:], max_error)
    assert np.abs(recon.astype(int) - x).max() <= max_error
    np.testing.assert_array_equal(decode_gradient(data, x.shape, shape[1:], max_error), recon)
    if max_error == 0:
        np.testing.assert_array_equal(recon, x)


def _reference(planes: np.ndarray, w: int, ch: int, nbins: int) -> tuple[np.ndarray, np.ndarray]:
    """Every position's prediction and context (n x D), from whole bin planes with numpy (the encoder's view)."""
    n, d = planes.shape
    p = planes.reshape(n, -1, w, ch).astype(np.int64)
    pad = np.zeros((n, p.shape[1] + 1, w + 2, ch), np.int64)
    pad[:, 1:, 1:-1] = p
    wv, nv, nw, ne = pad[:, 1:, :-2], pad[:, :-1, 1:-1], pad[:, :-1, :-2], pad[:, :-1, 2:]
    hi, lo = np.maximum(wv, nv), np.minimum(wv, nv)
    med = np.where(nw >= hi, lo, np.where(nw <= lo, hi, wv + nv - nw))
    act = np.abs(wv - nw) + np.abs(nw - nv) + np.abs(nv - ne)
    q = np.searchsorted([1, 3, 7, 15, 31, 63, 127], act, side="right")
    res = p - med
    pred, k = med.copy(), np.zeros_like(med)
    pred[..., 1:] = np.clip(med[..., 1:] + res[..., :-1], 0, nbins - 1)
    k[..., 1:] = np.searchsorted([1, 4, 16], np.abs(res[..., :-1]), side="right")
    ctx = (np.arange(ch) * 8 + q) * 4 + k
    return pred.reshape(n, d), ctx.reshape(n, d)


@pytest.mark.parametrize("shape,nbins", [((6, 5, 7, 1), 256), ((4, 8, 8, 3), 256), ((3, 2, 9, 3), 29), ((2, 1, 1, 3), 2)])
def test_predictions_and_contexts_match_a_numpy_reference(shape, nbins) -> None:
    from aezip.coding.contextkernel import gradient_contexts
    n, h, w, ch = shape
    planes = np.random.default_rng(nbins).integers(0, nbins, (n, h * w * ch))
    want_pred, want_ctx = _reference(planes, w, ch, nbins)
    res, ctx, pred, med = np.zeros_like(planes), *(np.empty(n, np.int64) for _ in range(3))
    for pos in range(planes.shape[1]):
        gradient_contexts(pos, w, ch, nbins, planes, res, ctx, pred, med)
        res[:, pos] = planes[:, pos] - med
        np.testing.assert_array_equal(pred, want_pred[:, pos])
        np.testing.assert_array_equal(ctx, want_ctx[:, pos])


def test_planes_cost_almost_nothing_and_noise_about_8_bits() -> None:
    yy, xx = np.mgrid[0:16, 0:16]
    planes = np.stack([(3 * yy + 2 * xx + k) % 256 for k in range(64)]).reshape(64, -1).astype(np.uint8)
    data, _ = encode_gradient(planes, (16, 16), 0)
    assert len(data) * 8 / planes.size < 0.5       # the median predictor is exact inside a plane
    noise = _images((64, 16, 16), "noise", 1)
    data, _ = encode_gradient(noise, (16, 16), 0)
    assert 7.9 < len(data) * 8 / noise.size < 8.3


def test_identical_bytes_across_processes_and_thread_counts(tmp_path) -> None:
    x = _images((40, 8, 8, 3), "photo", 5)
    outs = bytes_in_processes(tmp_path, x, "aezip.coding.gradient", "encode_gradient", (8, 8, 3))
    assert outs[0] == outs[1] == encode_gradient(x, (8, 8, 3), 0)[0]


def test_a_damaged_stream_is_an_error_or_other_pixels() -> None:
    x = _images((30, 8, 8, 3), "photo", 6)
    data, recon = encode_gradient(x, (8, 8, 3), 0)
    with pytest.raises(ValueError, match="whole number"):
        decode_gradient(data[:-1], x.shape, (8, 8, 3), 0)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    try:
        back = decode_gradient(bytes(flipped), x.shape, (8, 8, 3), 0)
    except ValueError:
        return
    assert not np.array_equal(back, recon)   # the chunk's pixel CRC refuses it in a file


def test_the_pixel_stream_picks_it_on_photographs_and_older_files_refuse_it() -> None:
    x = _images((64, 16, 16, 3), "photo", 7)
    prior = np.zeros((N_CONTEXTS, 256), np.int64)
    stream = encode_pixels(x, x, (16, 16, 3), 0, prior, 0, methods=(GRADIENT, XZ))
    assert stream.method == GRADIENT and not stream.needs_latents
    np.testing.assert_array_equal(stream.recon, x)
    np.testing.assert_array_equal(decode_pixels(stream.data, None, x.shape, (16, 16, 3), 0, prior), x)
    with pytest.raises(ValueError, match=f"gradient pixel stream in a file whose coder \\({PIXEL_CODER_V3}\\) predates"):
        decode_pixels(stream.data, None, x.shape, (16, 16, 3), 0, prior, coder=PIXEL_CODER_V3)
