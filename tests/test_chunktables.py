"""The chunk-tables latent coder: round trips (whole-image and tile models, every quality), never more than one
byte over the static coder, bounded and checked stored counts, and a one-line error for a damaged stream."""
from __future__ import annotations

import numpy as np
import pytest

import aezip
from aezip.coding.chunktables import (CHUNK, CHUNK_CODER, CHUNK_CODER_V2, CHUNK_CODER_V3, decode_chunk_latents,
                                      encode_chunk_latents)
from aezip.coding.counts import MAX_SCALE, pack_counts, unpack_counts
from aezip.chunks import chunk_codes
from aezip.network.tiles import predict
from aezip.coding.entropy import LATENT_CODER, encode_codes, frequency_tables
from aezip.errors import FormatError
from aezip.coding.latentcoder import encode_latents, fine_codes
from aezip.files.modelfile import load_model


def _skewed(rows: int, latent: int, levels: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.minimum(rng.geometric(0.3, size=(rows, latent)) - 1, levels - 1).astype(np.int32)


def test_counts_pack_and_unpack_exactly() -> None:
    q = np.array([[0, 1, 5, 1 << MAX_SCALE], [7, 0, 0, 2]], np.int64)
    data = pack_counts(q)
    back, used = unpack_counts(data + b"\xff" * 9, q.shape)
    assert np.array_equal(back, q) and used == len(data)


@pytest.mark.parametrize("data", [b"", b"\x00" * 8, b"\x00\x00\x00\x01\xff"])
def test_out_of_range_or_cut_counts_are_format_errors(data) -> None:
    with pytest.raises(FormatError, match="chunk table"):
        unpack_counts(data, (3, 4))


def test_a_table_of_zeros_is_refused() -> None:
    with pytest.raises(FormatError, match="no count"):
        unpack_counts(pack_counts(np.zeros((2, 3), np.int64)), (2, 3))


def test_mismatched_codes_use_their_own_tables_and_matched_ones_the_static_floor() -> None:
    levels, latent = 12, 6
    train = _skewed(2000, latent, levels, 1)
    static = frequency_tables(train, levels)
    shifted = (levels - 1 - _skewed(500, latent, levels, 2)).astype(np.int32)   # mass at the other end
    for codes, method in ((shifted, CHUNK), (train[:3], 0)):
        data = encode_chunk_latents(codes, static, None, levels, None)
        assert data[0] == method and len(data) <= len(encode_codes(codes, static)) + 1
        assert np.array_equal(decode_chunk_latents(data, len(codes), static, None, levels, None), codes)
    assert len(encode_chunk_latents(shifted, static, None, levels, None)) < 0.6 * len(encode_codes(shifted, static))


@pytest.mark.parametrize("cut", [1, 2, 5])
def test_a_damaged_chunk_stream_is_a_format_error(cut) -> None:
    levels, latent = 12, 6
    static = frequency_tables(_skewed(100, latent, levels, 1), levels)
    codes = (levels - 1 - _skewed(300, latent, levels, 3)).astype(np.int32)
    data = encode_chunk_latents(codes, static, None, levels, None)
    assert data[0] == CHUNK
    with pytest.raises(FormatError):
        decode_chunk_latents(data[:cut], len(codes), static, None, levels, None)
    with pytest.raises(FormatError, match="scale"):
        decode_chunk_latents(bytes([CHUNK, MAX_SCALE + 1]) + data[2:], len(codes), static, None, levels, None)
    with pytest.raises(FormatError, match="method byte"):
        decode_chunk_latents(b"\x07" + data[1:], len(codes), static, None, levels, None)


def expected_pixels(mf, images: np.ndarray, quality: int | None, chunk: int) -> np.ndarray:
    """What a file of `quality` must decode to (n x D): per chunk, the integer decoder's pixels of the encoder's
    codes, at a quality level from their grid points or their bins' centroids, whichever is closer to the images."""
    out = []
    for lo in range(0, len(images), chunk):
        part = images[lo:lo + chunk]
        codes = chunk_codes(mf, part, "torch", "cpu", quality)
        grid = predict(mf.config, mf.intdec, fine_codes(mf, codes, quality), images.shape[1:])
        if quality is not None:
            cent = predict(mf.config, mf.intdec, fine_codes(mf, codes, quality, True), images.shape[1:])
            flat = part.reshape(len(part), -1).astype(np.int64)
            grid = cent if ((flat - cent) ** 2).sum() < ((flat - grid) ** 2).sum() else grid
        out.append(grid)
    return np.concatenate(out)


def _check_round_trips(mf, images: np.ndarray, chunk: int) -> None:
    """Every quality: the file names the chunk-tables coder (whole-image models: v1, v2 at a quality level; tile
    models: v3), decodes to expected_pixels, and each chunk's latent stream is at most one byte over the static
    coder's."""
    levels = mf.config.levels
    for q in range(2, levels + 1):
        quality = None if q == levels else q
        blob = aezip.compress(images, mf, quality=q, chunk_size=chunk)
        want_coder = CHUNK_CODER_V3 if mf.config.patch else CHUNK_CODER if quality is None else CHUNK_CODER_V2
        assert aezip.info(blob)["entropy"] == want_coder
        want = expected_pixels(mf, images, quality, chunk)
        assert np.array_equal(aezip.decompress(blob, mf).reshape(len(images), -1), want), q
        codes = chunk_codes(mf, images, "torch", "cpu", quality)
        shape = images.shape[1:]
        for lo in range(0, len(images), chunk):
            part = codes[lo:lo + chunk]
            assert (len(encode_latents(mf, part, quality, shape))
                    <= len(encode_latents(mf, part, quality, shape, LATENT_CODER)) + 1)


def test_every_quality_round_trips_with_a_whole_image_model(tiny_model_path, sample_images) -> None:
    _check_round_trips(load_model(tiny_model_path), sample_images[:40], 16)


def test_every_quality_round_trips_with_a_tile_model_and_its_context_model(tmp_path) -> None:
    from tests.test_tiles import _images, _tile_model
    mf = _tile_model(tmp_path, (12, 10), context_model=True)
    assert mf.context is not None and mf.config.patch
    _check_round_trips(mf, _images((12, 10), 20, seed=4), 8)


def test_a_file_whose_chunk_tables_are_damaged_is_a_one_line_error(tmp_path, capsys) -> None:
    from tests import aezcraft
    from tests.test_cli import assert_one_line_error, run
    from tests.test_tiles import _tile_model
    mf = _tile_model(tmp_path, (12, 10))
    images = np.full((200, 12, 10), 255, np.uint8)     # one code per dimension: its own tables win
    parts = aezcraft.parse(aezip.compress(images, mf))
    n, lat, res, crc = aezcraft.payload_parts(parts.payloads[0])
    assert lat[0] == CHUNK
    parts.payloads[0] = aezcraft.make_payload(n, lat[:2] + b"\x00" * 40 + lat[42:], res, crc)   # counts of 2^17+
    bad = tmp_path / "bad.aez"
    bad.write_bytes(aezcraft.build(parts))
    code, _, err = run(capsys, "decode", bad, "-m", mf.path, "-o", tmp_path / "o.npy")
    assert_one_line_error(code, err, "chunk table count is out of range")
