"""The pixel model without latents (methods 6/7): bit-exact, chosen where the latents do not pay, files that store
no latents, and files of the previous coder version still decoding."""
from __future__ import annotations

import numpy as np
import pytest

from aezip.codec import decode_file, encode_dataset
from aezip.fileinfo import file_info
from aezip.files.data import open_dataset
from aezip.errors import FormatError
from aezip.files.modelfile import load_model
from aezip.coding.pixelstream import (ALONE, ALONE_EXACT, BEST_METHODS, CONTEXT, MIXING, MLP, XZ, ZSTD, decode_pixels,
                                      encode_pixels)
from aezip.coding.pixeltrain import fit_pixel_model
from tests import aezcraft
from tests.modeledit import rewrite
from tests.test_pixelmodel import PRIOR, SMALL, _smooth


@pytest.fixture(scope="module", params=[(5, 7), (8, 8, 3)], ids=["gray5x7", "rgb8x8x3"])
def alone(request):
    shape = request.param
    x, _ = _smooth(200, shape, 0)
    mlp = fit_pixel_model(x, None, shape, SMALL, 2, seed=3, log=lambda m: None)
    return mlp, shape


@pytest.mark.parametrize("e", [0, 1, 4, 255])
def test_round_trip_without_latents_is_bit_exact(alone, e) -> None:
    mlp, shape = alone
    assert mlp.base is not None and mlp.base.shape == (int(np.prod(shape)),)
    x, _ = _smooth(30, shape, 1)
    s = encode_pixels(x, None, shape, e, PRIOR, 0, alone=mlp, methods=(ALONE, ALONE_EXACT))
    assert not s.needs_latents
    back = decode_pixels(s.data, None, x.shape, shape, e, PRIOR, alone=mlp)
    np.testing.assert_array_equal(back, s.recon)
    assert np.abs(back.astype(int) - x.astype(int)).max() <= e
    if e < 128:
        assert s.method in ((ALONE,) if e == 0 else (ALONE, ALONE_EXACT))
        assert len(s.data) * 8 / x.size < 7.0   # it learned something: raw samples cost 8 bits


def test_costly_latents_leave_the_pixel_model_alone_chosen(alone) -> None:
    mlp, shape = alone
    x, pred = _smooth(30, shape, 2)
    s = encode_pixels(x, pred, shape, 0, PRIOR, 10 ** 6, alone=mlp,
                      methods=[m for m in BEST_METHODS if m != MIXING])   # mixing, no latents either, would win
    assert s.method == ALONE
    with pytest.raises(ValueError, match="without latents"):
        decode_pixels(s.data, None, x.shape, shape, 0, PRIOR)


def test_noise_falls_back_to_a_generic_coder(alone) -> None:
    mlp, shape = alone
    x = np.random.default_rng(5).integers(0, 256, (40, int(np.prod(shape))), dtype=np.uint8)
    assert encode_pixels(x, np.zeros_like(x), shape, 0, PRIOR, 0, alone=mlp).method in (ZSTD, XZ)


def _encode(tmp_path, model_path, images, max_error, methods):
    src, aez = tmp_path / "x.npy", tmp_path / "x.aez"
    np.save(src, images)
    encode_dataset(open_dataset(src), load_model(model_path), aez, max_error=max_error, chunk_size=16, force=True,
                   pixel_methods=methods)
    return aez


def test_a_file_coded_without_latents_stores_none_and_decodes(tmp_path, tiny_model_path, sample_images) -> None:
    images = sample_images[:32]
    assert load_model(tiny_model_path).pixel_alone is not None
    aez = _encode(tmp_path, tiny_model_path, images, 0, (ALONE,))
    with_latents = _encode(tmp_path / "..", tiny_model_path, images, 0, (MLP,))
    assert file_info(aez)["pixel_coders"] == {"pixel-mlp alone": 2}
    for i, payload in enumerate(aezcraft.parse(aez.read_bytes()).payloads):
        assert aezcraft.payload_parts(payload)[1] == b""     # no latent stream
    decode_file(aez, tmp_path / "y.npy", model_path=tiny_model_path, force=True)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), images)
    assert aez.stat().st_size != with_latents.stat().st_size


def test_files_of_the_previous_coder_version_still_decode(tmp_path, tiny_model_path, sample_images) -> None:
    images = sample_images[:32]
    aez = _encode(tmp_path, tiny_model_path, images, 0, (CONTEXT, MLP))
    parts = aezcraft.parse(aez.read_bytes())
    h = parts.header_json
    h["residual"] = "tagged-pixel-mlp-context-or-generic-v2"
    old = tmp_path / "old.aez"
    old.write_bytes(aezcraft.build(parts.with_header(h)))
    decode_file(old, tmp_path / "old.npy", model_path=tiny_model_path)
    np.testing.assert_array_equal(np.load(tmp_path / "old.npy"), images)
    # a version-2 file cannot name the model without latents
    alone_file = _encode(tmp_path, tiny_model_path, images, 0, (ALONE,))
    parts = aezcraft.parse(alone_file.read_bytes())
    alone_file.write_bytes(aezcraft.build(parts.with_header(h)))
    with pytest.raises(FormatError):
        decode_file(alone_file, tmp_path / "bad.npy", model_path=tiny_model_path)


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.update({"pixel0.base": t["pixel0.base"][:-1].copy()}), "pixel0.base"),
    (lambda t: t.update({"pixel0.table": t["pixel0.table"] * 0}), "pixel0.table outside"),
    (lambda t: t.pop("pixel0.base"), "pixel0.base is missing"),
])
def test_modelcheck_refuses_bad_tensors_of_the_model_without_latents(tmp_path, tiny_model_path, edit, message):
    bad = tmp_path / "bad.aezm"
    rewrite(tiny_model_path, bad, edit)
    with pytest.raises(FormatError, match=message):
        load_model(bad)


def test_an_embedded_decode_side_model_carries_the_model_without_latents(tmp_path, tiny_model_path,
                                                                          sample_images) -> None:
    images = sample_images[:16]
    src, aez = tmp_path / "x.npy", tmp_path / "x.aez"
    np.save(src, images)
    encode_dataset(open_dataset(src), load_model(tiny_model_path), aez, max_error=0, chunk_size=16,
                   embed_model=True, pixel_methods=(ALONE,))
    decode_file(aez, tmp_path / "y.npy")     # no model given: the file's own
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), images)
