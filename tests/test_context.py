"""The latents' context entropy model: fitting, round trips at every quality, the chunk's method byte, model-file
checks and the header."""
from __future__ import annotations

import numpy as np
import pytest

import aezip
from aezip.codec import decode_file
from aezip.coding.context import BUCKETS, CONTEXT_CODER, PARENTS, ContextModel, decode_context, encode_context, fit_context
from aezip.coding.entropy import frequency_tables
from aezip.errors import FormatError
from aezip.files.modelfile import load_model
from aezip.coding.quality import ladder_tables
from tests import aezcraft


def _correlated_codes(n: int, levels: int, seed: int = 0) -> np.ndarray:
    """Dimension 2 copies dimension 0 (a context model should find it), the rest is noise."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, levels, (n, 4))
    codes[:, 2] = codes[:, 0]
    return codes.astype(np.int32)


def test_fit_finds_earlier_parents_and_counts_without_zeros() -> None:
    cm = fit_context(_correlated_codes(3000, 8), 8)
    assert cm.parents.shape == (4, PARENTS) and cm.tables.shape == (4, BUCKETS ** PARENTS, 8)
    assert cm.tables.min() >= 1
    for j in range(4):
        assert all(p == -1 or 0 <= p < j for p in cm.parents[j])
    assert cm.parents[2, 0] == 0                 # the copied dimension is chosen first


@pytest.mark.parametrize("quality", [None, 2, 5, 7])
def test_context_streams_round_trip_and_never_exceed_the_static_coder_by_more_than_a_byte(quality) -> None:
    levels = 8
    cm = fit_context(_correlated_codes(3000, levels), levels)
    static = frequency_tables(_correlated_codes(3000, levels), levels)
    static = static if quality is None else ladder_tables(static, quality)
    codes = _correlated_codes(500, quality or levels, seed=1)
    data = encode_context(codes, static, cm, levels, quality)
    assert np.array_equal(decode_context(data, 500, static, cm, levels, quality), codes)
    from aezip.coding.entropy import encode_codes
    assert len(data) <= len(encode_codes(codes, static)) + 1
    if quality is None:
        assert data[0] == 1      # dimension 2 is free given dimension 0: the context coder wins
    with pytest.raises(ValueError, match="method byte"):
        decode_context(b"\x07" + data[1:], 500, static, cm, levels, quality)


@pytest.fixture(scope="module")
def context_model(tmp_path_factory, tiny_model_path, sample_images):
    mf = load_model(tiny_model_path)
    from aezip.chunks import chunk_codes
    mf.context = fit_context(chunk_codes(mf, sample_images, "torch", "cpu"), mf.config.levels)
    path = tmp_path_factory.mktemp("ctx") / "ctx.aezm"
    mf.save(path)
    return load_model(path)


def test_every_quality_round_trips_with_a_context_model(context_model, tiny_model_path, sample_images,
                                                        legacy_coders) -> None:
    plain = load_model(tiny_model_path)
    images = sample_images[:60]
    assert context_model.context is not None and plain.context is None
    for q in range(2, context_model.config.levels + 1):
        blob = aezip.compress(images, context_model, quality=q, chunk_size=25)
        h = aezip.info(blob)
        assert h["entropy"] == CONTEXT_CODER and h.get("quality") == (None if q == 8 else q)
        same = aezip.decompress(aezip.compress(images, plain, quality=q), plain)
        assert np.array_equal(aezip.decompress(blob, context_model), same)   # same network, same pixels


def test_a_context_file_with_a_model_without_context_tables_is_refused(tmp_path, tiny_model_path,
                                                                       sample_images, legacy_coders) -> None:
    parts = aezcraft.parse(aezip.compress(sample_images[:10], load_model(tiny_model_path)))
    h = parts.header_json
    h["entropy"] = CONTEXT_CODER
    bad = tmp_path / "bad.aez"
    bad.write_bytes(aezcraft.build(parts.with_header(h)))
    with pytest.raises(FormatError, match="no context tables"):
        decode_file(bad, tmp_path / "o.npy", model_path=tiny_model_path)


@pytest.mark.parametrize("edit,message", [
    (lambda t: t["entropy.context.parents"].__setitem__((0, 0), 0), "earlier dimensions"),
    (lambda t: t["entropy.context.tables"].__setitem__((1, 0, 0), 0), "positive counts"),
    (lambda t: t.pop("entropy.context.tables"), "context tensors"),
    (lambda t: t.__setitem__("entropy.context.parents", t["entropy.context.parents"].astype(np.int32)),
     "context tensors"),
])
def test_bad_context_tensors_are_refused(tmp_path, context_model, edit, message) -> None:
    from aezip.files.modelcheck import check_tensors
    from safetensors.numpy import load
    tensors = {k: v.copy() for k, v in load(context_model.path.read_bytes()).items()}
    edit(tensors)
    with pytest.raises(FormatError, match=message):
        check_tensors(context_model.config.to_dict(), tensors)


def test_training_with_the_context_model_stores_it(sample_images) -> None:
    from aezip.network.config import AEConfig
    from aezip.options import TrainOptions
    from aezip.network.training import train_model
    config = AEConfig(image_shape=(28, 28), hidden=(16,), latent=4, levels=8)
    mf = train_model(sample_images[:64], config, TrainOptions(epochs=1, batch_size=32, device="cpu",
                                                              backend="torch", pixel_model=False,
                                                              context_model=True),
                     progress=False, log=lambda m: None)
    assert isinstance(mf.context, ContextModel) and mf.info["options"]["context_model"] is True
    assert np.array_equal(aezip.decompress(aezip.compress(sample_images[:20], mf), mf).shape, (20, 28, 28))


def test_an_embedded_decode_side_model_carries_the_context_tables(context_model, sample_images,
                                                                  legacy_coders) -> None:
    images = sample_images[:30]
    blob = aezip.compress(images, context_model, quality=5, embed_model=True)
    assert aezip.info(blob)["entropy"] == CONTEXT_CODER
    assert np.array_equal(aezip.decompress(blob), aezip.decompress(aezip.compress(images, context_model, quality=5),
                                                                   context_model))
