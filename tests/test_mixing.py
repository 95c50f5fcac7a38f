"""The mixing coders (mixing.py + mixkernel.py, methods 9 and 10 of the pixel stream): exact round trips within every
bound, the integer logistic tables, identical bytes across processes and pinned across versions, damage never hangs,
and the pixel stream's choice of them."""
from __future__ import annotations

import hashlib
import subprocess
import sys
import zlib

import numpy as np
import pytest

from aezip.coding import bins, mixcore, mixkernel
from aezip.coding.gradient import encode_gradient
from aezip.coding.mixing import (BLEND, BLEND_STEPS, MEDIAN, MEDIAN_STEPS, HEAD_MODE, VARIANTS,
                                 decode_mixing, decode_mixing_latents, encode_mixing, encode_mixing_latents)
from aezip.coding.pixelstream import (ALL_METHODS, GRADIENT, MIXING, MIXING_LATENTS, PIXEL_CODER_V4, PIXEL_CODER_V5, XZ,
                                      decode_pixels, encode_pixels)
from aezip.coding.rasternet import no_plan
from aezip.coding.residual import N_CONTEXTS
from tests.processes import bytes_in_processes
from tests.test_gradient import _images


@pytest.mark.parametrize("shape", [(37, 5, 7), (20, 8, 8, 3), (9, 1, 1), (3, 2, 9, 3)])
@pytest.mark.parametrize("max_error", [0, 1, 4, 255])
@pytest.mark.parametrize("kind", ["noise", "smooth", "photo"])
def test_round_trip_is_exact_and_keeps_the_bound(shape, max_error, kind) -> None:
    x = _images(shape, kind, seed=zlib.crc32(repr((shape, max_error, kind)).encode()))
    data, recon = encode_mixing(x, shape[1:], max_error)
    assert np.abs(recon.astype(int) - x).max() <= max_error
    np.testing.assert_array_equal(decode_mixing(data, x.shape, shape[1:], max_error), recon)
    if max_error == 0:
        np.testing.assert_array_equal(recon, x)


def test_noise_grows_the_output_buffer_and_photographs_cost_less_than_with_the_gradient_coder() -> None:
    noise = _images((64, 16, 16), "noise", 1)
    data, _ = encode_mixing(noise, (16, 16), 0)
    assert len(data) > noise.size   # more than the first buffer's byte a bin: it grew
    np.testing.assert_array_equal(decode_mixing(data, noise.shape, (16, 16), 0), noise)
    photo = _images((64, 16, 16, 3), "photo", 2)
    assert len(encode_mixing(photo, (16, 16, 3), 0)[0]) < 0.95 * len(encode_gradient(photo, (16, 16, 3), 0)[0])
    flat = np.full((64, 256), 77, np.uint8)
    assert len(encode_mixing(flat, (16, 16), 0)[0]) < 200


def test_logistic_tables_are_integer_monotone_and_inverse() -> None:
    d = np.arange(-2047, 2048)
    s = np.array([mixcore.squash(int(v)) for v in d])
    assert s.min() >= 1 and s.max() <= 4095 and np.all(np.diff(s) >= 0)
    st = mixcore._STRETCH
    assert st.dtype == np.int64 and np.all(np.diff(st) >= 0) and st.min() >= -2047 and st.max() <= 2047
    for p in range(1, 4095):   # stretch(p) is the least d whose squash reaches p
        assert mixcore.squash(int(st[p])) >= p
        assert st[p] == -2047 or mixcore.squash(int(st[p]) - 1) < p


def test_decisions_cover_every_residual() -> None:
    nodes, bits = np.zeros(16, np.int64), np.zeros(16, np.int64)
    seen = set()
    for e in range(-128, 129):
        k = mixkernel._decisions(e, nodes, bits)
        assert 1 <= k <= 16 and nodes[:k].max() < mixkernel.NODES
        seen.add(tuple(zip(nodes[:k], bits[:k])))
    assert len(seen) == 257   # every residual its own decision path


def test_identical_bytes_across_processes_and_thread_counts(tmp_path) -> None:
    x = _images((40, 8, 8, 3), "photo", 5)
    outs = bytes_in_processes(tmp_path, x, "aezip.coding.mixing", "encode_mixing", (8, 8, 3))
    assert outs[0] == outs[1] == encode_mixing(x, (8, 8, 3), 0)[0]


def test_the_format_is_pinned() -> None:
    """The bytes of a fixed input in each variant: any change to the coder's arithmetic, contexts or constants
    changes them, and must come with a new coder version (pixelstream.PIXEL_CODER) so older files keep decoding."""
    x = np.concatenate([_images((30, 8, 8, 3), "photo", 11), _images((10, 8, 8, 3), "smooth", 12)])
    digests = [hashlib.sha256(encode_mixing(x, (8, 8, 3), e, (v,))[0]).hexdigest()[:16]
               for e in (0, 4) for v in VARIANTS if e or v < MEDIAN_STEPS]
    assert digests == PINNED


PINNED = ["640f7689c05fc7cf", "46dd0e29cdeeeb9a", "2de4731ab279b7e7", "9d9e088edd74d3e6", "5a341778b37fc550",
          "31ade05de2f0040a"]


@pytest.mark.parametrize("max_error", [0, 3])
def test_the_encoder_keeps_the_shorter_variant(max_error) -> None:
    """Lossless: the two bases; E >= 1 also their quantized residuals, which decode within E."""
    x = _images((40, 8, 8, 3), "photo", 13)
    usable = [v for v in VARIANTS if max_error or v < MEDIAN_STEPS]
    streams = {v: encode_mixing(x, (8, 8, 3), max_error, (v,)) for v in usable}
    for data, recon in streams.values():
        assert np.abs(recon.astype(int) - x).max() <= max_error
        np.testing.assert_array_equal(decode_mixing(data, x.shape, (8, 8, 3), max_error), recon)
    data, _ = encode_mixing(x, (8, 8, 3), max_error)
    assert len(data) == min(len(d) for d, _ in streams.values()) and streams[data[0]][0] == data


def test_quantized_residuals_cost_less_than_bins_on_smooth_photographs() -> None:
    x = _images((60, 16, 16), "photo", 14)
    sizes = {v: len(encode_mixing(x, (16, 16), 8, (v,))[0]) for v in VARIANTS}
    assert sizes[MEDIAN_STEPS] < sizes[MEDIAN] and sizes[BLEND_STEPS] < sizes[BLEND]
    with pytest.raises(ValueError, match="variant byte"):
        decode_mixing(bytes([MEDIAN_STEPS]) + encode_mixing(x, (16, 16), 8, (MEDIAN_STEPS,))[0][1:], x.shape, (16, 16),
                      0)


def test_a_damaged_stream_decodes_to_other_pixels_and_never_hangs() -> None:
    x = _images((30, 8, 8, 3), "photo", 6)
    data, recon = encode_mixing(x, (8, 8, 3), 0)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    assert not np.array_equal(decode_mixing(bytes(flipped), x.shape, (8, 8, 3), 0), recon)   # the CRC refuses it
    assert not np.array_equal(decode_mixing(data[: len(data) // 3], x.shape, (8, 8, 3), 0), recon)   # truncated
    decode_mixing(b"\x01" + b"\xff" * 7, x.shape, (8, 8, 3), 0)   # garbage: some pixels, no error, no hang
    for bad in (b"", b"\x07abc"):
        with pytest.raises(ValueError, match="variant byte"):
            decode_mixing(bad, x.shape, (8, 8, 3), 0)
    with pytest.raises(ValueError, match="none is coded"):
        decode_mixing(b"x", x.shape, (8, 8, 3), 200)


def test_the_pixel_stream_picks_it_on_photographs_and_older_files_refuse_it() -> None:
    x = _images((64, 16, 16, 3), "photo", 7)
    prior = np.zeros((N_CONTEXTS, 256), np.int64)
    stream = encode_pixels(x, x, (16, 16, 3), 0, prior, 0, methods=(GRADIENT, MIXING, XZ))
    assert stream.method == MIXING and not stream.needs_latents
    assert len(stream.data) < len(encode_pixels(x, x, (16, 16, 3), 0, prior, 0, methods=(GRADIENT,)).data)
    np.testing.assert_array_equal(decode_pixels(stream.data, None, x.shape, (16, 16, 3), 0, prior), x)
    with pytest.raises(ValueError, match=r"mixing pixel stream in a file whose coder \(.*-v4\) predates it"):
        decode_pixels(stream.data, None, x.shape, (16, 16, 3), 0, prior, coder=PIXEL_CODER_V4)


def _predicted(x: np.ndarray, seed: int) -> np.ndarray:
    """A prediction near x, as an autoencoder's: x plus a little noise, clipped."""
    noise = np.random.default_rng(seed).integers(-2, 3, x.shape)
    return np.clip(x.astype(int) + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("shape", [(37, 5, 7), (20, 8, 8, 3), (9, 1, 1)])
@pytest.mark.parametrize("max_error", [0, 1, 4, 255])
@pytest.mark.parametrize("kind", ["noise", "photo"])
def test_with_latents_round_trip_is_exact_and_keeps_the_bound(shape, max_error, kind) -> None:
    x = _images(shape, kind, seed=zlib.crc32(repr((shape, max_error, kind, "latents")).encode()))
    pred = _predicted(x, 3)
    data, recon = encode_mixing_latents(x, pred, shape[1:], max_error)
    assert np.abs(recon.astype(int) - x).max() <= max_error
    np.testing.assert_array_equal(decode_mixing_latents(data, pred, shape[1:], max_error), recon)
    if max_error == 0:
        np.testing.assert_array_equal(recon, x)


def test_with_latents_a_good_prediction_costs_less_and_the_format_is_pinned() -> None:
    x = _images((40, 8, 8, 3), "photo", 21)
    good, poor = _predicted(x, 4), np.zeros_like(x)
    sizes = [len(encode_mixing_latents(x, pred, (8, 8, 3), 0)[0]) for pred in (good, poor)]
    assert sizes[0] < 0.9 * sizes[1]
    digests = [hashlib.sha256(encode_mixing_latents(x, good, (8, 8, 3), e)[0]).hexdigest()[:16] for e in (0, 4)]
    assert digests == PINNED_LATENTS
    data, recon = encode_mixing_latents(x, good, (8, 8, 3), 0)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    assert not np.array_equal(decode_mixing_latents(bytes(flipped), good, (8, 8, 3), 0), recon)


PINNED_LATENTS = ["683c7d7cca4b61a8", "ec1ac06e8dd475b3"]


def _v5_stream(x: np.ndarray, pred: np.ndarray, image_shape: tuple[int, ...], max_error: int) -> bytes:
    """A method-10 stream as coder v5 wrote it: no head, no mode decision."""
    nbins = bins.geometry(max_error)[1]
    shape = (len(x), *image_shape[:2], image_shape[2] if len(image_shape) == 3 else 1)
    planes = bins.to_bins(x, max_error).astype(np.int64).reshape(shape)
    aux = bins.to_bins(pred, max_error).astype(np.int64).reshape(shape)
    return mixkernel.code_values(planes, aux, aux, nbins, max_error, mixkernel.value_state(shape[3], nbins),
                                 np.zeros(0, np.uint8), True, -1, no_plan()).tobytes()


def test_v5_streams_without_a_head_keep_their_bytes_and_decode() -> None:
    """Coder v5's method-10 layout is still what the kernel writes without a mode (its pinned bytes), and v5 files
    decode through decode_pixels by their coder name."""
    x = _images((40, 8, 8, 3), "photo", 21)
    good = _predicted(x, 4)
    streams = [_v5_stream(x, good, (8, 8, 3), e) for e in (0, 4)]
    assert [hashlib.sha256(s).hexdigest()[:16] for s in streams] == ["8deecff0d4a91a11", "de5f2160e2b83665"]
    prior = np.zeros((N_CONTEXTS, 256), np.int64)
    for e, stream in zip((0, 4), streams):
        back = decode_pixels(bytes([MIXING_LATENTS]) + stream, good, x.shape, (8, 8, 3), e, prior,
                             coder=PIXEL_CODER_V5)
        np.testing.assert_array_equal(back, bins.values(bins.to_bins(x, e), e))


def test_the_mode_decision_comes_first_where_one_bin_dominates(sample_images) -> None:
    """Digits on black with a blurred prediction, as an autoencoder's: the head names bin 0 and the stream is
    smaller than without it (on MNIST 0-1999 with the default model's predictions: 0.3-1.1 % at 30-1,000 images);
    data whose most frequent bin is rare gets no mode; a bad head is refused in one line."""
    digits = sample_images[:60].reshape(60, -1)
    padded = np.pad(sample_images[:60].astype(int), ((0, 0), (1, 1), (1, 1)))
    pred = (sum(padded[:, dy:dy + 28, dx:dx + 28] for dy in range(3) for dx in range(3)) // 9).reshape(60, -1)
    data, recon = encode_mixing_latents(digits, pred, (28, 28), 0)
    assert data[:2] == bytes([HEAD_MODE, 0]) and len(data) < len(_v5_stream(digits, pred, (28, 28), 0))
    np.testing.assert_array_equal(decode_mixing_latents(data, pred, (28, 28), 0), digits)
    noise = _images((20, 8, 8), "noise", 32)
    assert encode_mixing_latents(noise, _predicted(noise, 7), (8, 8), 0)[0][:1] == bytes([0])
    for bad in (b"", b"\x04abc", bytes([HEAD_MODE]), bytes([HEAD_MODE, 200]) + data[2:]):
        with pytest.raises(ValueError, match="bad head"):
            decode_mixing_latents(bad, pred, (28, 28), 3)   # E = 3: 37 bins, so mode 200 is out of range


def test_only_effort_max_tries_the_coder_with_latents_and_older_files_refuse_it() -> None:
    x = _images((64, 8, 8), "photo", 22)
    pred, prior = _predicted(x, 5), np.zeros((N_CONTEXTS, 256), np.int64)
    best = encode_pixels(x, pred, (8, 8), 0, prior, 0)
    assert best.method != MIXING_LATENTS
    chosen = encode_pixels(x, pred, (8, 8), 0, prior, 0, methods=ALL_METHODS)
    assert chosen.method == MIXING_LATENTS and chosen.needs_latents and len(chosen.data) < len(best.data)
    np.testing.assert_array_equal(decode_pixels(chosen.data, pred, x.shape, (8, 8), 0, prior), x)
    with pytest.raises(ValueError, match="without latents"):
        decode_pixels(chosen.data, None, x.shape, (8, 8), 0, prior)
    with pytest.raises(ValueError, match=r"mixing, latents pixel stream in a file whose coder \(.*-v4\) predates it"):
        decode_pixels(chosen.data, pred, x.shape, (8, 8), 0, prior, coder=PIXEL_CODER_V4)


def test_a_file_naming_mixing_under_an_older_coder_fails_in_one_line(tmp_path, sample_images) -> None:
    """A v5 file decodes; the same file claiming the v4 coder names method 9, which v4 did not have: `aezip decode`
    says so in one line and exits non-zero, writing nothing."""
    from aezip.codec import encode_dataset
    from aezip.files.data import open_dataset
    from aezip.files.modelfile import load_model
    from tests import aezcraft
    np.save(tmp_path / "x.npy", sample_images[:32])
    aez = tmp_path / "x.aez"
    encode_dataset(open_dataset(tmp_path / "x.npy"), load_model(), aez, max_error=0, pixel_methods=(MIXING,))
    ok = subprocess.run([sys.executable, "-m", "aezip.cli.main", "decode", str(aez), "-o", str(tmp_path / "y.npy")],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and np.array_equal(np.load(tmp_path / "y.npy"), sample_images[:32])
    parts = aezcraft.parse(aez.read_bytes())
    old = tmp_path / "old.aez"
    old.write_bytes(aezcraft.build(parts.with_header({**parts.header_json, "residual": PIXEL_CODER_V4})))
    r = subprocess.run([sys.executable, "-m", "aezip.cli.main", "decode", str(old), "-o", str(tmp_path / "z.npy")],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "mixing pixel stream" in r.stderr and "predates it" in r.stderr and not (tmp_path / "z.npy").exists()


def test_bit_models_saturate_inside_their_uint16_storage() -> None:
    """A long run of equal bits drives a bit model to its end, never past it (a wrap would flip its prediction)."""
    m = mixkernel.residual_state(1)
    ctx = np.zeros(mixkernel.N_INPUTS, np.int64)
    prob, idx = m[0], m[8]
    for bit, check in ((1, lambda p: p.min() >= 65000), (0, lambda p: p.max() <= 600), (1, lambda p: p.min() >= 65000)):
        for _ in range(3000):
            mixcore.predict(m, 0, 0, ctx, 0, 0, 0, 1, mixkernel.NO_EXT)
            mixcore.update(m, bit)
        touched = np.concatenate([prob[idx], prob[m[5][-1] + idx]])
        assert check(touched.astype(np.int64)), (bit, touched.min(), touched.max())
