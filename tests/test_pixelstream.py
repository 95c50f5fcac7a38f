"""The tagged pixel stream: never larger than a generic coder or than E = 0, bound kept, hostile streams refused."""
from __future__ import annotations

import lzma

import numpy as np
import pytest
import zstandard

from aezip.pixelstream import CONTEXT, CONTEXT_EXACT, XZ, ZSTD, decode_pixels, encode_pixels
from aezip.residual import N_CONTEXTS

PRIOR = np.zeros((N_CONTEXTS, 256), np.int64)
SHAPE = (8, 8)


def _round_trip(x: np.ndarray, pred: np.ndarray, e: int, latent_bytes: int = 0):
    s = encode_pixels(x, pred, SHAPE, e, PRIOR, latent_bytes)
    back = decode_pixels(s.data, pred if s.needs_latents else None, x.shape, SHAPE, e, PRIOR)
    np.testing.assert_array_equal(back, s.recon)
    assert np.abs(back.astype(int) - x.astype(int)).max() <= e
    return s


@pytest.mark.parametrize("e", [0, 1, 4, 255])
def test_noise_falls_back_to_a_generic_coder(e) -> None:
    x = np.random.default_rng(0).integers(0, 256, (40, 64), dtype=np.uint8)
    s = _round_trip(x, np.zeros_like(x), e, latent_bytes=200)
    if e < 128:
        assert s.method in (ZSTD, XZ) and not s.needs_latents
    bins = (x.astype(int) // (2 * e + 1)).astype(np.uint8).tobytes()
    generic = min(len(zstandard.ZstdCompressor(level=19).compress(bins)),
                  len(lzma.compress(bins, preset=9 | lzma.PRESET_EXTREME)))
    assert len(s.data) + (200 if s.needs_latents else 0) <= generic + 1   # + 1: the method byte


def test_constant_images_cost_almost_nothing() -> None:
    x = np.full((40, 64), 37, np.uint8)
    s = _round_trip(x, np.full_like(x, 37), 0)
    assert len(s.data) < 64


def test_max_error_never_costs_more_than_lossless() -> None:
    # 8x8 digits scaled by 255/16: 17 levels, where bins of width 9 once cost more than exact coding
    rng = np.random.default_rng(1)
    x = (rng.integers(0, 17, (200, 64)) * 255 // 16).astype(np.uint8)
    pred = np.clip(x.astype(int) + rng.integers(-20, 20, x.shape), 0, 255).astype(np.uint8)
    lossless = _round_trip(x, pred, 0)
    for e in (1, 2, 4, 8):
        s = _round_trip(x, pred, e)
        assert len(s.data) <= len(lossless.data)
    assert {_round_trip(x, pred, 4).method} <= {CONTEXT, CONTEXT_EXACT, ZSTD, XZ}


@pytest.mark.parametrize("data", [b"", b"\x07abc", b"\x02" + zstandard.ZstdCompressor().compress(bytes(10 ** 6)),
                                  b"\x03" + lzma.compress(bytes(10 ** 6)), b"\x02garbage", b"\x03garbage",
                                  b"\x02" + zstandard.ZstdCompressor().compress(bytes([200]) * 640)])
def test_hostile_streams_are_refused(data) -> None:
    with pytest.raises((ValueError, zstandard.ZstdError, lzma.LZMAError)):
        decode_pixels(data, None, (10, 64), SHAPE, 4, PRIOR)
