"""Method 3 of the chunk-tables coder (neighbours.py): tile codes coded with tables conditioned on the left and upper
tiles' codes. Round trips on odd tile grids, the gain on spatially correlated codes, the chooser, files of tile
models (coder v3) through the codec, and one-line errors for every kind of damage."""
from __future__ import annotations

import numpy as np
import pytest

import aezip
from aezip.coding.chunktables import (CHUNK, CHUNK_CODER_V3, NEIGHBOURS, decode_chunk_latents,
                                      encode_chunk_latents, encode_own)
from aezip.coding.counts import pack_counts
from aezip.coding.entropy import frequency_tables
from aezip.coding.neighbours import MAX_BUCKETS, decode_neighbours, encode_neighbours
from aezip.chunks import chunk_codes
from aezip.coding.latentcoder import encode_latents
from aezip.errors import FormatError


def _field(images: int, grid: tuple[int, int], latent: int, symbols: int, seed: int) -> np.ndarray:
    """Codes (images * tiles x latent) that change slowly across the tile grid, as a photograph's do."""
    rng = np.random.default_rng(seed)
    th, tw = grid
    walk = rng.integers(-1, 2, size=(images, th, tw, latent)).cumsum(1).cumsum(2) // 3
    start = rng.integers(0, symbols, size=(images, 1, 1, latent))
    return np.clip(start + walk, 0, symbols - 1).reshape(-1, latent).astype(np.int32)


@pytest.mark.parametrize("grid,latent,symbols", [((1, 5), 2, 5), ((3, 2), 3, 8), ((4, 4), 1, 24), ((7, 3), 4, 12),
                                                 ((5, 1), 2, 3)])
def test_method_3_round_trips_on_odd_grids(grid, latent, symbols) -> None:
    codes = _field(9, grid, latent, symbols, seed=sum(grid) + latent)
    data = encode_neighbours(codes, grid, symbols)
    assert data is not None
    assert np.array_equal(decode_neighbours(data, len(codes), grid, latent, symbols), codes)
    assert encode_neighbours(codes, grid, symbols) == data                  # deterministic


def _chunk_stream(codes: np.ndarray, symbols: int, grid: tuple[int, int]) -> tuple[bytes, np.ndarray]:
    """The chunk-tables stream of codes on a tile grid (static tables counted on the codes themselves), checked to
    decode back, and those tables."""
    static = frequency_tables(codes, symbols)
    data = encode_chunk_latents(codes, static, None, symbols, None, grid)
    assert np.array_equal(decode_chunk_latents(data, len(codes), static, None, symbols, None, grid), codes)
    return data, static


def test_correlated_tiles_cost_far_less_than_the_chunks_own_tables() -> None:
    codes = _field(40, (8, 8), 4, 24, seed=3)
    data, _ = _chunk_stream(codes, 24, (8, 8))
    assert data[0] == NEIGHBOURS
    assert len(data) < 0.8 * (1 + len(encode_own(codes, 24)))


def test_independent_tiles_keep_another_method_and_single_tiles_never_try_it() -> None:
    codes = np.random.default_rng(5).integers(0, 6, size=(16 * 30, 3)).astype(np.int32)
    assert _chunk_stream(codes, 6, (4, 4))[0][0] != NEIGHBOURS
    assert encode_neighbours(codes[:30], (1, 1), 6) is None
    assert encode_neighbours(codes[:6], (2, 2), 6) is None                   # not whole images of 4 tiles


def test_a_v1_or_v2_stream_may_not_name_method_3() -> None:
    codes = _field(20, (4, 4), 2, 8, seed=1)
    data, static = _chunk_stream(codes, 8, (4, 4))
    assert data[0] == NEIGHBOURS
    with pytest.raises(FormatError, match="method byte"):
        decode_chunk_latents(data, len(codes), static, None, 8, None, None)


def _stream(k: int, scale: int, edges: np.ndarray, q: np.ndarray, words: bytes = b"\1\0\0\0") -> bytes:
    """A method-3 stream by hand: every table marked as holding counts."""
    flags = np.packbits(np.ones(q.shape[0] * q.shape[1], bool)).tobytes()
    return bytes([k, scale]) + flags + pack_counts(np.concatenate([edges.reshape(-1), q.reshape(-1)])[None, :]) + words


def test_damaged_method_3_streams_are_format_errors() -> None:
    grid, latent, symbols = (3, 3), 2, 5
    codes = _field(6, grid, latent, symbols, seed=2)
    good = encode_neighbours(codes, grid, symbols)
    rows = len(codes)
    k = good[0]
    edges = np.zeros((latent, k - 1), np.int64)
    q = np.ones((latent, (k + 1) ** 2, symbols), np.int64)
    bad = {
        "buckets": bytes([1]) + good[1:],
        "too many buckets": bytes([MAX_BUCKETS + 1]) + good[1:],
        "scale": bytes([k, 17]) + good[2:],
        "edge": _stream(k, 4, edges + symbols, q),
        "decreasing": _stream(3, 4, np.array([[3, 1], [0, 0]]), np.ones((latent, 16, symbols), np.int64)),
        "no count": _stream(k, 4, edges, np.where(np.arange((k + 1) ** 2)[None, :, None] == k * (k + 1) + k, 0, q)),
        "words": good + b"\x01",
        "cut": good[:3],
        "empty": b"",
    }
    for name, data in bad.items():
        with pytest.raises(FormatError, match="latent stream"):
            decode_neighbours(data, rows, grid, latent, symbols)
    with pytest.raises(FormatError, match="buckets"):
        decode_neighbours(good, rows - 1, grid, latent, symbols)             # not whole images


def test_tables_larger_than_the_stream_are_refused_before_they_are_built() -> None:
    import tracemalloc
    with pytest.raises(FormatError, match="cut short"):
        decode_neighbours(bytes([MAX_BUCKETS, 4]) + b"\xff" * 64, 4 * 10, (2, 2), 4096, 65536)
    # tables of 64 dimensions x 9 contexts x 65,536 symbols would take 300 MB; a stream marking one table as used
    # holds only that one, and decoding it allocates about as much as the stream's own size
    edges = np.full((64, 1), 5, np.int64)
    one = np.zeros(65536, np.int64)
    one[7] = 1
    flags = np.packbits(np.arange(64 * 9) == 0).tobytes()
    data = bytes([2, 4]) + flags + pack_counts(np.concatenate([edges.reshape(-1), one])[None, :]) + b"\1\0\0\0"
    tracemalloc.start()
    try:
        with pytest.raises(FormatError, match="latent stream"):
            decode_neighbours(data, 4 * 10, (2, 2), 64, 65536)
        assert tracemalloc.get_traced_memory()[1] < 64 << 20
    finally:
        tracemalloc.stop()


def _varied_tile_model(tmp_path):
    """A tiny 4 x 4 tile model trained long enough that its codes follow the image (the shared tiny one's do not)."""
    from tests.conftest import TINY_PIXEL
    from tests.test_tiles import _images
    from aezip.files.modelfile import load_model, save_model
    from aezip.network.config import AEConfig
    from aezip.network.training import TrainOptions, train_model
    config = AEConfig(image_shape=(16, 16), hidden=(16,), latent=2, levels=8, patch=4, margin=1, context=1)
    opts = TrainOptions(epochs=30, batch_size=16, seed=2, device="cpu", backend="torch", pixel=TINY_PIXEL,
                        pixel_model=False, augment=())
    save_model(tmp_path / "m.aezm", train_model(_images((16, 16), 48), config, opts, progress=False,
                                                log=lambda m: None))
    return load_model(tmp_path / "m.aezm")


def test_tile_model_files_name_v3_take_method_3_and_round_trip(tmp_path) -> None:
    from tests.test_tiles import _images
    mf = _varied_tile_model(tmp_path)
    images = _images((48, 44), 30, seed=1)                   # smooth fields: neighbouring tiles' codes agree
    codes = chunk_codes(mf, images, "torch", "cpu")
    assert encode_latents(mf, codes, None, images.shape[1:])[0] == NEIGHBOURS
    recon = None
    for quality in (None, 3):
        blob = aezip.compress(images, mf, quality=quality, chunk_size=16)
        info = aezip.info(blob)
        assert info["entropy"] == CHUNK_CODER_V3 and info.get("quality") == quality
        assert sum(info["latent_coders"].values()) == 2                       # chunks of 16 of the 30 images
        if quality is None:
            assert info["latent_coders"] == {"neighbour tables": 2}
        back = aezip.decompress(blob, mf)
        assert back.shape == images.shape
        if quality is None:
            recon = back
    assert np.abs(recon.astype(int) - images).mean() < np.abs(images.astype(int) - images.mean()).mean()
    lossless = aezip.compress(images, mf, max_error=0)
    assert np.array_equal(aezip.decompress(lossless, mf), images)


def test_a_chunk_never_costs_more_than_a_byte_over_its_own_tables() -> None:
    for seed in range(6):
        codes = _field(12, (4, 4), 3, 10, seed) if seed % 2 else np.random.default_rng(seed).integers(
            0, 10, size=(16 * 12, 3)).astype(np.int32)
        data, _ = _chunk_stream(codes, 10, (4, 4))
        assert len(data) <= 1 + len(encode_own(codes, 10)) and data[0] in (0, CHUNK, NEIGHBOURS)
