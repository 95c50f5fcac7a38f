"""Files written before the speed work (2026-11-29, default model, sample images 8000-8023, chunks of 10) decode to
exactly the pixels they decoded to then: any change to the decode path that alters one pixel fails here."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from aezip.codec import decode_file, encode_dataset
from aezip.files.container import ContainerReader
from aezip.files.data import open_dataset
from aezip.bench.demo import sample_path
from aezip.files.modelfile import load_model

DATA = Path(__file__).parent / "data"
GOLDEN = {   # sha256 of the decoded uint8 pixels (24 x 28 x 28), as the code before the speed work decoded them
    "lossy": "bc4cfc897ccf2a0753924829f7f433f9aad09340b50d74ab71335f649c9c2a75",
    "e0": "027336c19853ff1c4783866a86de9900a0d794b34038fa17ce8a7918b32ec43a",
    "e3": "cf2ff9946e2151956f37faec3a6a53e11db3c7f87f8ce9c8141490eb27cd563e",
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_files_decode_to_the_same_pixels(tmp_path, name):
    out = tmp_path / f"{name}.npy"
    decode_file(DATA / f"golden-{name}.aez", out)
    pixels = np.load(out)
    assert pixels.shape == (24, 28, 28)
    assert hashlib.sha256(pixels.tobytes()).hexdigest() == GOLDEN[name]
    original = open_dataset(sample_path()).read_all()[:24].astype(int)
    bound = {"lossy": 255, "e0": 0, "e3": 3}[name]
    assert np.abs(pixels.astype(int) - original).max() <= bound


def test_golden_slice_decodes_to_the_same_pixels(tmp_path):
    whole, part = tmp_path / "all.npy", tmp_path / "part.npy"
    decode_file(DATA / "golden-lossy.aez", whole)
    decode_file(DATA / "golden-lossy.aez", part, image_range="7:13")
    assert np.array_equal(np.load(part), np.load(whole)[7:13])


def test_encoding_the_same_images_writes_the_same_header_and_chunks(tmp_path):
    """The shipped default model writes the same chunk payloads as the one that wrote golden-lossy-8bit.aez (8-bit
    decoder weights, 2026-11-29; sample images 8000-8023, chunks of 10), and the same header but for the model's id:
    the default since 2026-11-30 is that model with a raster network added, which lossy files do not use. The golden
    file names the earlier default and decodes through its shipped decode-side model to the same pixels. (The first
    default's files, golden-{lossy,e0,e3}, were pinned the same way; they decode through theirs, above.)"""
    from aezip.files.modelfile import default_model, shipped_model
    golden = DATA / "golden-lossy-8bit.aez"
    src = tmp_path / "src.npy"
    np.save(src, open_dataset(sample_path()).read_all()[:24])
    out = tmp_path / "again.aez"
    encode_dataset(open_dataset(src), load_model(), out, chunk_size=10, backend="torch")
    with ContainerReader(out) as new, ContainerReader(golden) as old:
        assert new.header == {**old.header, "model_id": default_model().id}
        assert len(new.chunks) == len(old.chunks) == 3
        assert all(new.read_chunk(i) == old.read_chunk(i) for i in range(3))
        assert shipped_model(old.header["model_id"]) is not None
    decode_file(golden, tmp_path / "back.npy")
    pixels = np.load(tmp_path / "back.npy")
    assert hashlib.sha256(pixels.tobytes()).hexdigest() == \
        "1d1822701656c23583e7b0966bd0267c3943981535495803da70523bac6db551"


def test_files_of_an_earlier_default_model_decode_with_its_shipped_decode_side_model():
    """The golden files name the first default model (a3f79496...); the package ships its decode-side model, so they
    still decode with no -m after the default moved on, and a header's id never names a path."""
    from aezip.files.modelfile import default_model, shipped_model
    with ContainerReader(DATA / "golden-e3.aez") as reader:
        want = reader.header["model_id"]
    previous = shipped_model(want)
    assert previous is not None and previous.id == want != default_model().id
    assert previous.decode_only                       # a decode-side model (.aezd): no encoder is shipped for it
    for bad in ("../" * 8 + "etc/passwd", want[:16], want.upper(), "0" * 64, 64):
        assert shipped_model(bad) is None


def test_a_pixel_model_file_of_the_float64_default_decodes_the_same(tmp_path):
    """golden-e4-v6.aez: sample images 8000-8023 at --max-error 4 in chunks of 12, written by the code and default
    model (4c67e14f..., float64 pixel networks, coder v6) of 2026-11-30 06:12; both chunks are pixel-mlp. It decodes
    with no -m through that model's shipped decode-side model, whose networks now run with the reference folded into
    their weights, to the pixels the old code decoded."""
    from aezip.fileinfo import file_info
    from aezip.files.modelfile import default_model, shipped_model
    path = DATA / "golden-e4-v6.aez"
    info = file_info(path)
    assert info["pixel_coders"] == {"pixel-mlp": 2}
    with ContainerReader(path) as reader:
        old = shipped_model(reader.header["model_id"])
        assert reader.header["residual"].endswith("-v6")
    assert old is not None and old.id != default_model().id and old.pixel.dtypes[0] == np.float64
    decode_file(path, tmp_path / "back.npy")
    pixels = np.load(tmp_path / "back.npy")
    original = open_dataset(sample_path()).read_all()[:24].reshape(pixels.shape)
    assert np.abs(pixels.astype(int) - original.astype(int)).max() <= 4
    assert hashlib.sha256(pixels.tobytes()).hexdigest() == \
        "6f027819331431cf68a909c8e2ac5e8c043177ed03e3b6c8dc8290e352d4c415"
