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


@pytest.mark.parametrize("name,max_error", [("lossy", None)])
def test_encoding_the_same_images_writes_the_same_header_and_chunks(tmp_path, name, max_error, legacy_coders):
    """Same header and chunk payloads (the container's framing version may move on: 1 -> 2 when names got packed;
    --max-error files now store the tagged pixel stream of #11, so only their decoding is pinned above; new files
    name the chunk-tables coder, so this pins the static coder that such files name)."""
    src = tmp_path / "src.npy"
    np.save(src, open_dataset(sample_path()).read_all()[:24])
    out = tmp_path / "again.aez"
    encode_dataset(open_dataset(src), load_model(), out, chunk_size=10, max_error=max_error, backend="torch")
    with ContainerReader(out) as new, ContainerReader(DATA / f"golden-{name}.aez") as old:
        assert new.header == old.header and len(new.chunks) == len(old.chunks) == 3
        assert all(new.read_chunk(i) == old.read_chunk(i) for i in range(3))
