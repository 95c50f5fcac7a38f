"""The decode-side model (decodemodel.py): exact round trips of every integer, narrow storage, and refusal of
damaged or out-of-range blobs with one-line errors."""
from __future__ import annotations

import numpy as np
import pytest

from aezip.codec import encode_dataset
from aezip.files.data import array_dataset
from aezip.files.decodemodel import (MAGIC, decode_tensors, decoder_bytes, load_decoder_bytes, narrow, pack, save_decoder,
                               unpack)
from aezip.errors import FormatError, InputError
from aezip.coding.intdecoder import WEIGHT_LIMIT
from aezip.files.modelfile import load_model, model_bytes


@pytest.fixture(scope="module")
def tiny(tiny_model_path):
    return load_model(tiny_model_path)


@pytest.fixture(scope="module")
def blob(tiny) -> bytes:
    return decoder_bytes(tiny)


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and np.array_equal(a[k], b[k]), k


def test_every_integer_comes_back_equal(tiny, blob) -> None:
    assert tiny.pixel is not None                       # the tiny model has a pixel model: its tensors are covered
    assert blob[:8] == MAGIC and decoder_bytes(tiny) == blob       # same model, same bytes
    back = load_decoder_bytes(blob, "x")
    _same(decode_tensors(tiny), decode_tensors(back))
    assert back.id == tiny.id and back.config == tiny.config and back.decode_only
    lossy = load_decoder_bytes(decoder_bytes(tiny, max_error_parts=False), "x")
    assert lossy.residual_prior is None and lossy.pixel is None
    _same(decode_tensors(tiny, max_error_parts=False), decode_tensors(lossy, max_error_parts=False))


def test_weights_are_stored_as_int16_or_narrower(blob) -> None:
    manifest, _ = unpack(blob)
    stored = {name: kept for name, _, kept, _ in manifest["tensors"]}
    weights = [n for n in stored if n.startswith("intdec.w") or (n.startswith("pixel.p") and ".w" in n)]
    assert weights and all(stored[n] in ("int8", "int16") for n in weights)
    assert narrow(np.array([-WEIGHT_LIMIT, WEIGHT_LIMIT], np.int32)).dtype == np.int16      # the bound fits int16
    assert narrow(np.array([0, 255], np.int64)).dtype == np.uint8
    assert narrow(np.array([0, 4096], np.int16)).dtype == np.int16   # uint16 would not cast back to int16 safely
    assert narrow(np.array([-1, 2 ** 40], np.int64)).dtype == np.int64


def _crafted(tiny, blob, edit) -> bytes:
    """tiny's decode-side blob with its manifest and tensor dict changed by `edit(manifest, tensors)`."""
    from aezip.files.decodemodel import _planes
    manifest, _ = unpack(blob)
    tensors = decode_tensors(tiny)
    edit(manifest, tensors)
    data = b"".join(_planes(tensors[name].astype(kept)) for name, _, kept, _ in manifest["tensors"])
    return pack(manifest, data, preset=0)


def _entry(manifest: dict, name: str) -> list:
    return next(e for e in manifest["tensors"] if e[0] == name)


def _wide_weight(m, t):
    _entry(m, "intdec.w0")[2] = "int32"
    t["intdec.w0"] = t["intdec.w0"].copy()
    t["intdec.w0"][0, 0] = WEIGHT_LIMIT + 1


@pytest.mark.parametrize("edit,message", [
    (_wide_weight, f"intdec.w0 exceeds {WEIGHT_LIMIT}"),
    (lambda m, t: _entry(m, "intdec.w0").__setitem__(2, "int64"), "is not an integer type aezip stores"),
    (lambda m, t: _entry(m, "intdec.w0").__setitem__(1, "float32"), "is not an integer type aezip stores"),
    (lambda m, t: _entry(m, "residual.prior").__setitem__(2, "uint16"), "is not an integer type aezip stores"),
    (lambda m, t: _entry(m, "entropy.tables").__setitem__(3, [1000, 1000]), "runs past the data"),
    (lambda m, t: _entry(m, "entropy.tables").__setitem__(3, [2 ** 40]), "bad shape"),
    (lambda m, t: m["tensors"].pop(0), "tensor entropy.tables is missing"),
    (lambda m, t: m["tensors"].append(["evil", "int8", "int8", [0]]) or t.__setitem__("evil", np.zeros(0, np.int8)),
     r"unknown tensors \['evil'\]"),
    (lambda m, t: m.__setitem__("model_id", "x" * 64), "model_id is not a sha256 digest"),
    (lambda m, t: m["config"].__setitem__("latent", 10 ** 6), "config latent"),
])
def test_out_of_range_or_inconsistent_blobs_are_refused(tiny, blob, edit, message) -> None:
    with pytest.raises(FormatError, match=message) as err:
        load_decoder_bytes(_crafted(tiny, blob, edit), "crafted")
    assert str(err.value).startswith("crafted: damaged decode-side model (") and "\n" not in str(err.value)


def test_data_beyond_the_listed_tensors_is_refused(blob) -> None:
    manifest, data = unpack(blob)
    with pytest.raises(FormatError, match="3 bytes of data follow the last tensor"):
        load_decoder_bytes(pack(manifest, data + b"abc", preset=0), "x")


def test_a_flipped_byte_anywhere_is_detected(blob) -> None:
    rng = np.random.default_rng(0)
    for pos in [0, 9, 11, 15, *rng.integers(16, len(blob), 40).tolist(), len(blob) - 1]:
        bad = bytearray(blob)
        bad[pos] ^= 1 << int(rng.integers(8))
        with pytest.raises(FormatError, match="^x: (not an aezip|damaged)"):
            load_decoder_bytes(bytes(bad), "x")
    with pytest.raises(FormatError, match="not the stated size"):
        load_decoder_bytes(blob[:-5], "x")


def test_a_decode_side_model_decodes_but_does_not_encode(tmp_path, tiny, sample_images) -> None:
    path = tmp_path / "tiny.aezd"
    size = save_decoder(tiny, path)
    assert size == path.stat().st_size < tiny.path.stat().st_size / 4
    dec = load_model(path)                     # load_model reads both kinds, by the magic
    assert dec.id == tiny.id and dec.decode_only
    with pytest.raises(InputError, match="holds no encoder"):
        encode_dataset(array_dataset(sample_images[:4]), dec, tmp_path / "x.aez")
    with pytest.raises(InputError, match="cannot be saved as a model file"):
        model_bytes(dec)
